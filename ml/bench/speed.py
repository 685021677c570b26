"""``python -m ml.bench speed``: training throughput of the shared loop vs a plain fp32 PyTorch loop.

Per model, the same network and the same random batches run (a) through ``ml.training.Trainer``'s
``train_one_epoch`` (bf16 autocast, ``torch.compile`` and channels-last where they apply - all only on
CUDA) and (b) a plain loop (fp32, eager: zero_grad, forward, loss, backward, step). Reported: samples/s
after warm-up steps and peak memory (CUDA: ``max_memory_allocated``; CPU: process peak RSS, shared by
both loops, so only indicative). Full sizes (GPU): CT grader 1x64x128x128 batch 16; MRI lesion crops
2x12x96x96 batch 64; contour crops 2x96x96 batch 64. Without ``--full`` tiny sizes run as a smoke test.
"""

from __future__ import annotations

import copy
import resource
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ml.contours.model import ContourLoss, ContourModelConfig, ContourNet
from ml.ctgrade.model import GraderConfig, build_grader, soft_cross_entropy
from ml.lesions.model import JOINT_CROP_NET, LesionLoss, LesionModel, LesionModelConfig
from ml.training import TrainConfig, Trainer, resolve_device

Spec = tuple[str, Callable[[], nn.Module], Callable[[int], dict[str, torch.Tensor]], Any, int]
#: The lesion network as trained (``JOINT_CROP_NET``), at the channel widths of each size.
LESION_HEAD: dict[str, Any] = {k: v for k, v in JOINT_CROP_NET.items() if k != "channels"}


def _specs(full: bool) -> list[Spec]:
    """(name, model factory, batch factory, loss, batch size) per model."""
    if full:
        ct_shape, ct_batch, grader = (1, 64, 128, 128), 16, GraderConfig()
        mri_shape, mri_batch = (2, 12, 96, 96), 64
        lesion = LesionModelConfig(size_px=96, n_slices=12, channels=(32, 64, 128, 256), **LESION_HEAD)
        contour = ContourModelConfig(in_channels=2, width=32, crop_mm=72.0, pixel_mm=0.75)
    else:
        ct_shape, ct_batch, grader = (1, 32, 32, 32), 2, GraderConfig(init_features=8, growth_rate=4)
        mri_shape, mri_batch = (2, 4, 32, 32), 4
        lesion = LesionModelConfig(size_px=32, n_slices=4, channels=(8, 16, 32, 64), **LESION_HEAD)
        contour = ContourModelConfig(in_channels=2, width=8, crop_mm=32.0, pixel_mm=1.0)
    n = contour.crop_px

    def ct_batch_fn(b: int) -> dict[str, torch.Tensor]:
        return {"input": torch.rand(b, *ct_shape), "target": torch.eye(5)[torch.randint(0, 5, (b,))]}

    def mri_batch_fn(b: int) -> dict[str, torch.Tensor]:
        return {"input": torch.rand(b, *mri_shape), "soft": torch.rand(b, 14)}

    def contour_batch_fn(b: int) -> dict[str, torch.Tensor]:
        field = torch.nn.functional.normalize(torch.randn(b, 2, n, n), dim=1)
        return {"input": torch.rand(b, 2, n, n), "field": field, "heatmap": torch.rand(b, 2, n, n),
                "weight": torch.ones(b, n, n)}  # fmt: skip

    return [
        ("ctgrade DenseNet-121 3-D", lambda: build_grader(grader), ct_batch_fn,
         lambda out, batch: soft_cross_entropy(out, batch["target"]), ct_batch),
        ("lesions ResidualUnit quadrant", lambda: LesionModel(lesion), mri_batch_fn, LesionLoss("soft"), mri_batch),
        ("contours BasicUNet", lambda: ContourNet(contour), contour_batch_fn, ContourLoss(), mri_batch),
    ]  # fmt: skip


def _peak(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB -> MiB (Linux)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _plain(model: nn.Module, loss_fn: Any, batches: list[dict[str, torch.Tensor]], device: torch.device, warmup: int) -> float:  # fmt: skip
    """Samples/s of a plain fp32 eager loop over ``batches`` (first ``warmup`` untimed)."""
    model.to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    start, count = 0.0, 0
    for i, batch in enumerate(batches):
        if i == warmup:
            _sync(device)
            start = time.perf_counter()
        batch = {k: v.to(device) for k, v in batch.items()}
        loss = loss_fn(model(batch["input"]), batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        count += len(batch["input"]) if i >= warmup else 0
    _sync(device)
    return count / (time.perf_counter() - start)


def _shared(model: nn.Module, loss_fn: Any, batches: list[dict[str, torch.Tensor]], device: torch.device, warmup: int) -> float:  # fmt: skip
    """Samples/s of ``ml.training.Trainer.train_one_epoch`` (bf16 + compile + channels-last on CUDA)."""
    cuda = device.type == "cuda"
    config = TrainConfig(
        epochs=1, lr=1e-4, device="cuda" if cuda else "cpu", amp=True, compile=cuda, channels_last=cuda
    )
    stamps: list[float] = []

    def progress(epoch: int, step: int, loss: float, metrics: Any) -> None:
        _sync(device)
        stamps.append(time.perf_counter())

    Trainer(model, loss_fn, batches, None, config, progress=progress).train_one_epoch(0)
    b = len(batches[0]["input"])
    return b * (len(stamps) - warmup) / (stamps[-1] - stamps[warmup - 1])


def run_speed(*, full: bool = False, device: str = "auto", steps: int = 0) -> list[dict[str, Any]]:
    """Measure every model with both loops; returns one row per model."""
    dev = resolve_device(device)
    steps = steps or (20 if dev.type == "cuda" else 3)
    warmup = 5 if dev.type == "cuda" else 1
    rows = []
    for name, factory, make_batch, loss_fn, batch_size in _specs(full):
        torch.manual_seed(0)
        batches = [make_batch(batch_size) for _ in range(warmup + steps)]
        model = factory()
        twin = copy.deepcopy(model)
        row: dict[str, Any] = {
            "model": name,
            "batch": batch_size,
            "input": list(batches[0]["input"].shape[1:]),
        }
        for label, run, net in (("plain", _plain, twin), ("shared", _shared, model)):
            if dev.type == "cuda":
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats(dev)
            row[f"{label}_samples_s"] = run(net, loss_fn, batches, dev, warmup)
            row[f"{label}_peak_mib"] = _peak(dev)
        row["speedup"] = row["shared_samples_s"] / row["plain_samples_s"]
        row["device"] = str(dev)
        rows.append(row)
    return rows


def format_speed(rows: list[dict[str, Any]]) -> str:
    """Fixed-width table of :func:`run_speed` rows."""
    out = [f"{'model':<30} {'input':<18} {'batch':>5} {'plain/s':>9} {'shared/s':>9} {'x':>5} "
           f"{'plain MiB':>9} {'shared MiB':>10}"]  # fmt: skip
    for r in rows:
        shape = "x".join(str(v) for v in r["input"])
        out.append(f"{r['model']:<30} {shape:<18} {r['batch']:>5} {r['plain_samples_s']:>9.1f} "
                   f"{r['shared_samples_s']:>9.1f} {r['speedup']:>5.2f} {r['plain_peak_mib']:>9.0f} "
                   f"{r['shared_peak_mib']:>10.0f}")  # fmt: skip
    out.append(f"device: {rows[0]['device'] if rows else '?'} (CPU peak = process RSS, indicative only)")
    return "\n".join(out)
