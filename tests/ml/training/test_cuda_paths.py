"""The code a GPU worker runs, run on the CPU: bf16 autocast, ``torch.compile`` and the memory formats.

CI has no GPU, so without ``cuda_paths_on_cpu`` these branches would first run on a GPU worker. Every model
kind trains through them here (``aot_eager`` traces and splits the graphs as Inductor does, without its
minutes of code generation on two cores).
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from ml.bench.speed import run_speed
from ml.ctgrade.model import GraderConfig, build_grader
from ml.training import TrainConfig, Trainer
from ml.training.loop import memory_format, move_to


def test_every_model_trains_through_the_cuda_branches_on_the_cpu() -> None:
    # the shared loop with channels-last runs every branch the one without does, and more
    rows = run_speed(
        full=False,
        device="cpu",
        steps=1,
        cuda_paths_on_cpu=True,
        compile_backend="aot_eager",
        loops=("shared_cl",),
    )
    assert [r["model"].split()[0] for r in rows] == ["ctgrade", "lesions", "contours"]
    for r in rows:
        assert r["plain_samples_s"] > 0 and r["shared_cl_samples_s"] > 0, r["model"]
        assert math.isfinite(r["speedup_cl"]) and math.isnan(r["speedup"])  # "shared" was not asked for


def test_channels_last_on_the_3d_grader_uses_the_3d_format() -> None:
    # was: model.to(memory_format=torch.channels_last) -> "required rank 4 tensor to use channels_last format"
    grader = build_grader(GraderConfig(init_features=8, growth_rate=4))
    config = TrainConfig(epochs=1, device="cpu", channels_last=True, amp=True, cuda_paths_on_cpu=True)
    batch = {"input": torch.rand(2, 1, 32, 32, 32), "target": torch.eye(5)[torch.tensor([0, 3])]}

    def loss(out: torch.Tensor, b: dict[str, torch.Tensor]) -> torch.Tensor:
        assert out.dtype == torch.bfloat16  # autocast ran
        return -(b["target"] * out.float().log_softmax(1)).sum(1).mean()

    trainer = Trainer(grader, loss, [batch], None, config)
    assert trainer.train_one_epoch(0) is not None
    conv = next(m for m in grader.modules() if isinstance(m, nn.Conv3d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last_3d)


def test_inputs_get_the_format_of_their_rank() -> None:
    moved = move_to(
        {
            "a": torch.rand(2, 3, 4, 5),
            "b": torch.rand(2, 3, 4, 5, 6),
            "m": torch.ones(2, 4, 5, dtype=torch.long),
        },
        torch.device("cpu"),
        channels_last=True,
    )
    assert moved["a"].is_contiguous(memory_format=torch.channels_last)
    assert moved["b"].is_contiguous(memory_format=torch.channels_last_3d)
    assert moved["m"].is_contiguous()
    assert memory_format(nn.Conv2d(1, 2, 3)) == torch.channels_last
    assert memory_format(nn.Sequential(nn.Conv3d(1, 2, 3))) == torch.channels_last_3d


@pytest.mark.parametrize("flag", ["amp", "compile", "channels_last"])
def test_cuda_only_switches_stay_off_on_the_cpu_by_default(flag: str) -> None:
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.LazyLinear(1))
    model(torch.rand(1, 1, 5, 5))
    config = TrainConfig(device="cpu", **{flag: True})  # type: ignore[arg-type]
    trainer = Trainer(model, lambda o, t: o.mean(), [], None, config)
    assert not trainer.amp and not trainer.channels_last
    assert trainer.model is trainer.raw_model  # not compiled


def test_the_contour_net_runs_no_replicate_padding() -> None:
    # Inductor's channels-last backward of aten.replication_pad2d is wrong in torch 2.13 (an assert_size_stride
    # failure seen compiling the contour model): MONAI's BasicUNet padded every skip connection by zero pixels
    from torch.utils._python_dispatch import TorchDispatchMode

    from ml.contours.model import ContourModelConfig, ContourNet

    class Ops(TorchDispatchMode):
        def __init__(self) -> None:
            super().__init__()
            self.names: set[str] = set()

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
            self.names.add(func.__name__)
            return func(*args, **(kwargs or {}))

    net = ContourNet(ContourModelConfig(in_channels=2, width=8, crop_mm=32.0, pixel_mm=1.0))
    x = torch.rand(2, 2, 32, 32, requires_grad=True)
    with Ops() as ops:
        out = net(x)
        out.sum().backward()
    assert out.shape == (2, 4, 32, 32)
    assert "conv2d.default" in ops.names or "convolution.default" in ops.names  # the mode saw the network
    assert not {n for n in ops.names if "replication_pad" in n}
