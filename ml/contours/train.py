"""Train and evaluate the contour model with the shared loop (``ml.training``)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from ml.contours.data import ContourDataset, JointSample, samples_from_arrays
from ml.contours.files import ScanArrays
from ml.contours.infer import MODEL_KIND, ContourPredictor, rmse_against_truth
from ml.contours.metrics import summarise_rmse, symmetric_rmse
from ml.contours.model import ContourLoss, ContourModelConfig, ContourNet
from ml.training import FitResult, TrainConfig, fit


def scan_samples(
    scans: Iterable[ScanArrays],
    config: ContourModelConfig,
    *,
    jitter_mm: float = 0.0,
    copies: int = 1,
    seed: int = 0,
) -> list[JointSample]:
    """Crops around every truth polyline; ``copies`` > 1 with ``jitter_mm`` adds shifted crops."""
    rng = np.random.default_rng(seed)
    out: list[JointSample] = []
    for scan in scans:
        for _ in range(copies):
            out += samples_from_arrays(
                scan.images,
                scan.polylines,
                scan.pixel_spacing,
                config,
                row_dir_x=scan.row_dir_x,
                jitter_mm=jitter_mm,
                rng=rng,
                scan_id=scan.scan_id,
            )
    return out


def crop_rmse_mm(model: ContourNet, samples: Sequence[JointSample]) -> list[float]:
    """Symmetric RMSE (mm) of the walker's trace vs truth per crop (crop px are ``pixel_mm`` wide)."""
    predictor = ContourPredictor(model, device=next(model.parameters()).device)  # stay on this rank's GPU
    out = []
    for sample, (result, _) in zip(samples, predictor.trace_samples(samples), strict=True):
        assert sample.polyline is not None
        out.append(symmetric_rmse(result.points, sample.polyline) * model.config.pixel_mm)
    return out


def evaluate_crops(model: nn.Module, val_data: Any, device: torch.device) -> dict[str, float]:
    """``evaluate_fn`` for the loop: RMSE summary on a :class:`ContourDataset`'s crops."""
    assert isinstance(model, ContourNet) and isinstance(val_data, ContourDataset)
    was_training = model.training
    summary = summarise_rmse(crop_rmse_mm(model, val_data.samples))
    model.train(was_training)
    return {
        "val_rmse_mm": summary["mean"],
        "val_rmse_p95_mm": summary["p95"],
        "val_frac_below_2_76mm": summary["frac_below"],
    }


def cosine_schedule(optimizer: torch.optim.Optimizer, config: TrainConfig) -> Any:
    """Cosine decay of the learning rate over ``config.epochs`` to 5% of its start value."""
    return torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=max(config.epochs, 1), eta_min=0.05 * config.lr
    )


def train_contours(
    train_scans: Sequence[ScanArrays],
    val_scans: Sequence[ScanArrays],
    model_config: ContourModelConfig,
    train_config: TrainConfig,
    *,
    jitter_mm: float = 8.0,
    copies: int = 2,
    resume: bool = False,
    **fit_kwargs: Any,
) -> FitResult:
    """Fit a :class:`ContourNet` on the scans' truth polylines; early-stops on ``train_config.metric``
    (use ``"val_rmse_mm"`` with mode ``"min"``). The learning rate follows :func:`cosine_schedule` unless
    ``scheduler_factory`` is given. Extra keyword arguments go to :func:`ml.training.fit` (progress,
    should_stop, data_snapshot_id, consensus_run_id, scheduler_factory)."""
    train = ContourDataset(
        scan_samples(train_scans, model_config, jitter_mm=jitter_mm, copies=copies, seed=train_config.seed),
        model_config,
        augment=True,
    )
    val = ContourDataset(scan_samples(val_scans, model_config), model_config) if val_scans else None
    torch.manual_seed(train_config.seed)
    model = ContourNet(model_config)
    extra = {
        "model_config": model_config.to_dict(),
        "n_train_crops": len(train),
        "n_val_crops": len(val) if val is not None else 0,
        **fit_kwargs.pop("card_extra", {}),
    }
    fit_kwargs.setdefault("scheduler_factory", cosine_schedule)
    return fit(
        model,
        ContourLoss(heatmap_loss=model_config.heatmap_loss),
        train,
        val,
        train_config,
        resume=resume,
        model_kind=MODEL_KIND,
        evaluate_fn=evaluate_crops if val is not None else None,
        card_extra=extra,
        **fit_kwargs,
    )


def evaluate_scans(
    predictor: ContourPredictor, scans: Iterable[ScanArrays], *, use_truth_centres: bool = False
) -> dict[str, Any]:
    """Full-pipeline accuracy: locate (or truth centres), trace, RMSE in mm against every truth polyline.

    Returns the :func:`summarise_rmse` summary plus per-contour rows, the count of truth contours that
    were not traced and that count per scan (``missing_by_scan``).
    """
    rows: list[dict[str, Any]] = []
    missing = 0
    missing_by_scan: dict[str, int] = {}
    for scan in scans:
        centres = None
        if use_truth_centres:
            centres = {k: (v.min(0) + v.max(0)) / 2.0 for k, v in scan.polylines.items()}
        traced = predictor.predict_scan(scan, centres=centres)
        rmse = rmse_against_truth(scan, traced)
        missing_by_scan[scan.scan_id] = len(set(scan.polylines) - set(rmse))
        missing += missing_by_scan[scan.scan_id]
        rows += [
            {"scan_id": scan.scan_id, "slice_index": k[0], "side": k[1], "rmse_mm": v}
            for k, v in sorted(rmse.items())
        ]
    summary = summarise_rmse([r["rmse_mm"] for r in rows])
    return {**summary, "missing": missing, "missing_by_scan": missing_by_scan, "rows": rows}


__all__ = [
    "cosine_schedule",
    "crop_rmse_mm",
    "evaluate_crops",
    "evaluate_scans",
    "scan_samples",
    "train_contours",
]
