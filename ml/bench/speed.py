"""``python -m ml.bench speed``: training throughput of the shared loop vs a plain fp32 PyTorch loop.

Per model, the same network and the same random batches run (a) a plain loop (fp32, eager: zero_grad,
forward, loss, backward, step; PyTorch's default TF32 settings, printed with the table) and (b) through
``ml.training.Trainer``'s ``train_one_epoch`` (bf16 autocast, ``torch.compile``, pinned batches copied
without blocking), once without and once with channels-last (``channels_last_3d`` for the 3-D CT grader).
Reported: samples/s after warm-up steps and peak memory (CUDA: ``max_memory_allocated``; CPU: process peak
RSS, shared by all loops, so only indicative). Full sizes (GPU): CT grader 1x64x128x128 batch 16; MRI
lesion crops 2x12x96x96 batch 64; contour crops 2x96x96 batch 64. Without ``--full`` tiny sizes run as a
smoke test; on the CPU the shared loop's CUDA-only branches are off unless ``cuda_paths_on_cpu``.
"""

from __future__ import annotations

import copy
import math
import resource
import time
from collections.abc import Callable, Sequence
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
        return {
            "input": torch.rand(b, 2, n, n),
            "field": field,
            "heatmap": torch.rand(b, 2, n, n),
            "weight": torch.ones(b, n, n),
        }

    return [
        (
            "ctgrade DenseNet-121 3-D",
            lambda: build_grader(grader),
            ct_batch_fn,
            lambda out, batch: soft_cross_entropy(out, batch["target"]),
            ct_batch,
        ),
        (
            "lesions ResidualUnit quadrant",
            lambda: LesionModel(lesion),
            mri_batch_fn,
            LesionLoss("soft"),
            mri_batch,
        ),
        ("contours BasicUNet", lambda: ContourNet(contour), contour_batch_fn, ContourLoss(), mri_batch),
    ]


def _peak(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB -> MiB (Linux)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _plain(
    model: nn.Module, loss_fn: Any, batches: list[dict[str, torch.Tensor]], device: torch.device, warmup: int
) -> float:
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


def _shared(
    model: nn.Module,
    loss_fn: Any,
    batches: list[dict[str, torch.Tensor]],
    device: torch.device,
    warmup: int,
    *,
    channels_last: bool,
    cuda_paths_on_cpu: bool = False,
    compile_backend: str = "inductor",
) -> float:
    """Samples/s of ``ml.training.Trainer.train_one_epoch``: bf16 autocast and ``torch.compile`` (on CUDA,
    or on the CPU with ``cuda_paths_on_cpu``), the batches pinned as the product's DataLoader pins them
    and copied without blocking, and with ``channels_last`` the memory format that suits the network."""
    config = TrainConfig(
        epochs=1,
        lr=1e-4,
        device="cuda" if device.type == "cuda" else "cpu",
        amp=True,
        compile=True,
        channels_last=channels_last,
        cuda_paths_on_cpu=cuda_paths_on_cpu,
        compile_backend=compile_backend,
    )
    if device.type == "cuda":
        batches = [{k: v.pin_memory() for k, v in b.items()} for b in batches]
    stamps: list[float] = []

    def progress(epoch: int, step: int, loss: float, metrics: Any) -> None:
        _sync(device)
        stamps.append(time.perf_counter())

    Trainer(model, loss_fn, batches, None, config, progress=progress).train_one_epoch(0)
    b = len(batches[0]["input"])
    return b * (len(stamps) - warmup) / (stamps[-1] - stamps[warmup - 1])


#: (column, loop, keyword arguments): the plain fp32 baseline, then the shared loop without and with
#: channels-last (``channels_last_3d`` for the 3-D CT grader), each on a fresh copy of the same weights.
LOOPS: tuple[tuple[str, Callable[..., float], dict[str, Any]], ...] = (
    ("plain", _plain, {}),
    ("shared", _shared, {"channels_last": False}),
    ("shared_cl", _shared, {"channels_last": True}),
)


def tf32_state() -> str:
    """How the fp32 baseline's matrix products and convolutions run on CUDA (PyTorch's defaults, untouched)."""
    matmul = torch.backends.cuda.matmul.allow_tf32
    conv = torch.backends.cudnn.allow_tf32
    return (
        f"fp32 baseline: TF32 matmul {'on' if matmul else 'off'}, cuDNN conv TF32 {'on' if conv else 'off'}"
    )


def run_speed(
    *,
    full: bool = False,
    device: str = "auto",
    steps: int = 0,
    cuda_paths_on_cpu: bool = False,
    compile_backend: str = "inductor",
    loops: Sequence[str] = ("plain", "shared", "shared_cl"),
    on_row: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Measure every model with every loop of :data:`LOOPS`; returns one row per model.

    ``cuda_paths_on_cpu`` runs the shared loop's CUDA-only branches (bf16 autocast, ``torch.compile``,
    channels-last) on the CPU: the CPU test of the code a GPU worker runs, not a speed figure (with
    ``compile_backend="aot_eager"`` it skips Inductor's code generation, minutes on two cores). ``loops``
    picks columns of :data:`LOOPS` (``plain`` is always measured: the others are relative to it). ``on_row``
    gets each row as soon as its model is measured.
    """
    dev = resolve_device(device)
    if dev.type == "cuda":
        torch.empty(0, device=dev)  # the caching allocator exists only after a first use; its stats need it
    steps = steps or (20 if dev.type == "cuda" else 3)
    warmup = 5 if dev.type == "cuda" else 1
    rows = []
    for name, factory, make_batch, loss_fn, batch_size in _specs(full):
        torch.manual_seed(0)
        batches = [make_batch(batch_size) for _ in range(warmup + steps)]
        model = factory()
        row: dict[str, Any] = {
            "model": name,
            "batch": batch_size,
            "input": list(batches[0]["input"].shape[1:]),
        }
        for label, run, kwargs in (loop for loop in LOOPS if loop[0] in {"plain", *loops}):
            if dev.type == "cuda":
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats(dev)
            if run is _shared:
                kwargs = {
                    **kwargs,
                    "cuda_paths_on_cpu": cuda_paths_on_cpu,
                    "compile_backend": compile_backend,
                }
            row[f"{label}_samples_s"] = run(copy.deepcopy(model), loss_fn, batches, dev, warmup, **kwargs)
            row[f"{label}_peak_mib"] = _peak(dev)
        for label, key in (("shared", "speedup"), ("shared_cl", "speedup_cl")):
            row[key] = row.get(f"{label}_samples_s", math.nan) / row["plain_samples_s"]
        row["device"] = str(dev)
        rows.append(row)
        if on_row:
            on_row(row)
    return rows


def format_speed(rows: list[dict[str, Any]]) -> str:
    """Fixed-width table of :func:`run_speed` rows."""
    out = [f"{'model':<30} {'input':<14} {'batch':>5} {'plain/s':>8} {'shared/s':>8} {'x':>5} {'+CL/s':>8} "
           f"{'x':>5} {'MiB plain':>9} {'shared':>7} {'+CL':>7}"]  # fmt: skip
    for r in rows:
        r = {
            "shared_samples_s": math.nan,
            "shared_cl_samples_s": math.nan,
            "shared_peak_mib": math.nan,
            "shared_cl_peak_mib": math.nan,
        } | r
        shape = "x".join(str(v) for v in r["input"])
        out.append(f"{r['model']:<30} {shape:<14} {r['batch']:>5} {r['plain_samples_s']:>8.1f} "
                   f"{r['shared_samples_s']:>8.1f} {r['speedup']:>5.2f} {r['shared_cl_samples_s']:>8.1f} "
                   f"{r['speedup_cl']:>5.2f} {r['plain_peak_mib']:>9.0f} {r['shared_peak_mib']:>7.0f} "
                   f"{r['shared_cl_peak_mib']:>7.0f}")  # fmt: skip
    device = rows[0]["device"] if rows else "?"
    out.append(
        f"device: {device}; shared = bf16 autocast + torch.compile + pinned, non-blocking copies; "
        f"+CL = shared with channels-last (channels_last_3d for 3-D)"
    )
    out.append(tf32_state() if device.startswith("cuda") else "CPU peak = process RSS, indicative only")
    return "\n".join(out)
