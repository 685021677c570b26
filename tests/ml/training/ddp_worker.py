"""Worker for test_ddp: run under torchrun with 2 CPU processes (gloo); writes per-rank weight sums."""

from __future__ import annotations

import json
import os
import sys

import torch
from torch import nn
from torch.utils.data import TensorDataset

from ml.training import TrainConfig, fit


def main(out_dir: str) -> None:
    """Train a tiny regression with DDP and record what each rank ends with."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(32, 3, generator=g)
    data = TensorDataset(x, x.sum(1, keepdim=True))
    torch.manual_seed(int(os.environ["RANK"]))  # different init per rank: DDP must broadcast rank 0's
    model = nn.Linear(3, 1)
    config = TrainConfig(
        epochs=2, batch_size=4, lr=0.05, device="cpu", checkpoint_dir=os.path.join(out_dir, "ckpt")
    )
    steps: list[int] = []
    result = fit(
        model,
        nn.functional.mse_loss,
        data,
        data,
        config,
        progress=lambda epoch, step, loss, metrics: steps.append(step) if step >= 0 else None,
    )
    rank = os.environ["RANK"]
    weights = [float(v) for v in result.model.weight.detach().ravel()]
    with open(os.path.join(out_dir, f"rank{rank}.json"), "w", encoding="utf-8") as fh:
        json.dump({"weights": weights, "steps": len(steps), "epochs": result.epochs_completed}, fh)
    torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
