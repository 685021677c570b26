"""Train and evaluate the lesion classifier with the shared loop (``ml.training``).

Public entry points (what the product's retraining task calls)::

    train(data_dir, checkpoint_dir, target="soft", train_config=TrainConfig(...), progress=..., should_stop=...)
        -> {"checkpoint_dir", "stopped", "epochs_completed", "best_epoch", "best_metric", "val": metrics}
    evaluate(data_dir, checkpoint_dir) -> lesion_metrics(...) against the reference labels

``data_dir`` is a phantom folder or a dataset snapshot (:mod:`ml.data.snapshot`); crops are cached
as npz under ``cache_dir`` (default ``<checkpoint_dir>/crops``).
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn
from torch.utils.data import Dataset

from ml.config import check_keys, load_config
from ml.contours.infer import ContourPredictor
from ml.data.snapshot import StudyRecord, load_data_folder
from ml.lesions.crops import CropConfig, cached_crops
from ml.lesions.infer import CONTOURS_DIR, MODEL_KIND, LesionPredictor
from ml.lesions.labels import (
    OUTPUTS,
    TARGET_MODES,
    fit_soft_targets,
    majority_targets,
    reader_tensor,
    reference_targets,
    snapshot_soft_targets,
)
from ml.lesions.metrics import lesion_metrics
from ml.lesions.model import LesionLoss, LesionModel, LesionModelConfig
from ml.training import TrainConfig, copy_model, fit
from ml.training.loop import CancelFn, ProgressFn

F32 = NDArray[np.float32]


def _swap(a: str, b: str) -> torch.Tensor:
    """Output permutation exchanging regions named with ``a`` and ``b`` (e.g. upper <-> lower)."""
    return torch.as_tensor(
        [
            OUTPUTS.index((lesion, region.replace(a, "@").replace(b, a).replace("@", b)))
            for lesion, region in OUTPUTS
        ]
    )


#: Output permutations swapping every upper quadrant with the lower one of its side / iliac with sacral.
HALF_SWAP, SIDE_SWAP = _swap("upper", "lower"), _swap("iliac", "sacral")


class LesionDataset(Dataset[dict[str, torch.Tensor]]):
    """Joint crops (N, C, S, H, W) with targets: ``majority``/``soft``/``reference`` (N, 14) float (NaN =
    none) and ``readers`` (N, R, S, 14) (-1 = missing). ``augment`` reverses the slice order (labels are
    "on any slice", so order-free), shifts by up to 2 px in-plane and applies a random gain/offset and
    noise, all from torch's seeded global RNG. ``flip_halves`` (joint-mode crops, whose middle row is the
    upper/lower split) also mirrors the rows half of the time and swaps the upper and lower quadrants'
    targets with them, so every quadrant learns from the other half's lesions too; ``flip_sides`` does the
    same with the columns (the joint line) and the iliac and sacral quadrants. With ``alternatives`` (the
    same joints cropped along other lines), augmentation takes those half of the time."""

    def __init__(
        self,
        crops: F32,
        targets: dict[str, np.ndarray],
        *,
        augment: bool = False,
        flip_halves: bool = False,
        flip_sides: bool = False,
        alternatives: F32 | None = None,
    ) -> None:
        self.crops = torch.from_numpy(np.ascontiguousarray(crops, dtype=np.float32))
        self.targets = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in targets.items()}
        self.augment, self.flip_halves, self.flip_sides = augment, flip_halves, flip_sides
        self.alternatives = (
            None if alternatives is None else torch.from_numpy(np.ascontiguousarray(alternatives))
        )

    def __len__(self) -> int:
        return int(self.crops.shape[0])

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        x = self.crops[index]
        if self.augment:
            if self.alternatives is not None and bool(torch.rand(()) < 0.5):
                x = self.alternatives[index]
            if bool(torch.rand(()) < 0.5):
                x = x.flip(1)
            shift = tuple(int(v) for v in torch.randint(-2, 3, (2,)))
            x = torch.roll(x, shifts=shift, dims=(2, 3))
            x = x * (0.85 + 0.3 * torch.rand(())) + 0.1 * (torch.rand(()) - 0.5) + 0.02 * torch.randn_like(x)
            order = torch.arange(len(OUTPUTS))
            if self.flip_halves and bool(torch.rand(()) < 0.5):
                x, order = x.flip(2), order[HALF_SWAP]
            if self.flip_sides and bool(torch.rand(()) < 0.5):
                x, order = x.flip(3), order[SIDE_SWAP]
            return {"input": x, **{k: v[index][..., order] for k, v in self.targets.items()}}
        return {"input": x, **{k: v[index] for k, v in self.targets.items()}}


def split_studies(
    studies: Sequence[StudyRecord], val_fraction: float
) -> tuple[list[StudyRecord], list[StudyRecord]]:
    """Train/val split: the manifest's ``split`` when any study has one (``test`` studies are left out), else
    the last ``val_fraction`` of the studies. A manifest that names no ``val`` study (a product snapshot names
    only ``train`` and ``test``) has the last ``val_fraction`` of its training studies held out for validation:
    without it, a run never validated and its reported validation loss was the training loss."""
    if any(s.split for s in studies):
        train = [s for s in studies if s.split in (None, "train")]
        val = [s for s in studies if s.split == "val"]
        if val:
            return train, val
        studies = train
    n_val = round(val_fraction * len(studies)) if len(studies) > 1 else 0
    return list(studies[: len(studies) - n_val]), list(studies[len(studies) - n_val :])


def build_targets(
    studies: Sequence[StudyRecord], readers: Sequence[str], n_sessions: int
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Targets for every (study, joint), flattened to (2N, ...) in study-major, [left, right] order."""
    readings = reader_tensor(studies, readers, n_sessions)
    soft = snapshot_soft_targets(studies)
    info: dict[str, Any] = {"soft_source": "snapshot"}
    if soft is None:
        soft, summary = fit_soft_targets(readings)
        info = {"soft_source": "ml.consensus.fit(model='full')", "consensus": summary}
    flat: dict[str, np.ndarray] = {
        "majority": majority_targets(readings),
        "soft": soft,
        "reference": reference_targets(studies),
        "readers": readings.astype(np.int64),
    }
    return {k: v.reshape(-1, *v.shape[2:]) for k, v in flat.items()}, info


def crops_of(
    studies: Sequence[StudyRecord],
    config: CropConfig,
    cache_dir: str | os.PathLike[str],
    contours: ContourPredictor | None = None,
    *,
    drawn: bool = True,
    truth: bool | None = None,
) -> F32:
    """Crops (2N, 2, S, H, W) of the studies, [left, right] per study, through the npz cache: at the truth
    joint lines of phantoms (``truth``; by default when there is no ``contours`` model), else at the
    studies' consensus contours where people drew them (``drawn``) and the ``contours`` model's traces
    elsewhere."""
    if not studies:
        return np.zeros((0, 2, config.n_slices, *config.shape), np.float32)
    return np.concatenate(
        [
            cached_crops(
                s.folder, s.study_id, config, cache_dir, contours, s.contours if drawn else (), truth
            )
            for s in studies
        ]
    )


def _evaluate_fn(model: nn.Module, val_data: Any, device: torch.device) -> dict[str, float]:
    """Validation AUC against the majority labels (information only; selection uses the config metric)."""
    assert isinstance(val_data, LesionDataset)
    was = model.training
    model.eval()
    with torch.no_grad():
        probs = [
            torch.sigmoid(model(val_data.crops[i : i + 32].to(device))["logits"].float()).cpu()
            for i in range(0, len(val_data), 32)
        ]
    model.train(was)
    labels = val_data.targets["majority"].numpy()
    labels = np.where(labels == 0.5, np.nan, labels)
    return {"val_mean_auc_majority": lesion_metrics(labels, torch.cat(probs).numpy())["mean_auc"]}


def train(
    data_dir: str | os.PathLike[str],
    checkpoint_dir: str | os.PathLike[str],
    *,
    target: str = "soft",
    model_config: LesionModelConfig | None = None,
    crop_config: CropConfig | None = None,
    train_config: TrainConfig | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    val_fraction: float = 0.2,
    progress: ProgressFn | None = None,
    should_stop: CancelFn | None = None,
    resume: bool = False,
    flip_sides: bool = False,
    contours: str | os.PathLike[str] | None = None,
    confusion_warmup_epochs: float = 0.0,
) -> dict[str, Any]:
    """Train on the MRI studies of ``data_dir`` with one target mode; checkpoints go to ``checkpoint_dir``.

    Joint-mode crops train with the upper/lower flip (:class:`LesionDataset`), and with the iliac/sacral
    flip too when ``flip_sides``. With a ``contours`` checkpoint, each training crop follows either the
    reference lines (phantom truth, or the studies' consensus contours where drawn and the model's traces
    elsewhere) or, half of the time, only the model's traces; validation crops follow the traces, as a
    pre-read does. The contour model is copied into ``checkpoint_dir/contours`` (the pre-reads' tracer).
    ``confusion_warmup_epochs`` > 0 sets the model's ``confusion_warmup_steps`` to that many epochs of this
    training set (the readers target's confusion layers stay frozen at their start meanwhile).

    Raises ValueError for an unknown ``target`` or a folder without MRI studies. Returns the run summary
    with validation metrics against the reference labels (when the folder has them).
    """
    if target not in TARGET_MODES:
        raise ValueError(f"target must be one of {TARGET_MODES}, got {target!r}")
    folder = load_data_folder(data_dir)
    studies = folder.of_kind("mri")
    if not studies:
        raise ValueError(f"{data_dir} holds no MRI studies")
    readers = folder.readers("mri")
    n_sessions = max((r.session for s in studies for r in s.readings), default=1)
    crop = crop_config or CropConfig()
    cache = Path(cache_dir) if cache_dir else Path(checkpoint_dir) / "crops"
    train_s, val_s = split_studies(studies, val_fraction)
    targets, info = build_targets([*train_s, *val_s], readers, n_sessions)
    n_train = 2 * len(train_s)
    traced = None
    if contours is None:
        crops = np.concatenate([crops_of(train_s, crop, cache), crops_of(val_s, crop, cache)])
    else:  # each training crop along the reference lines or, half of the time, the traced ones
        tracer = ContourPredictor.from_checkpoint(
            copy_model(contours, Path(checkpoint_dir) / CONTOURS_DIR),
            device=(train_config or TrainConfig()).device,
        )
        traced = crops_of(train_s, crop, cache, tracer, drawn=False, truth=False)
        crops = np.concatenate(
            [
                crops_of(train_s, crop, cache, tracer, truth=True),
                crops_of(val_s, crop, cache, tracer, drawn=False, truth=False),
            ]
        )
    train_ds = LesionDataset(
        crops[:n_train],
        {k: v[:n_train] for k, v in targets.items()},
        augment=True,
        flip_halves=crop.mode == "joint",
        flip_sides=flip_sides and crop.mode == "joint",
        alternatives=traced,
    )
    val_ds = LesionDataset(crops[n_train:], {k: v[n_train:] for k, v in targets.items()}) if val_s else None
    mc = dataclasses.replace(
        model_config or LesionModelConfig(),
        target=target,
        n_readers=len(readers),
        n_sessions=n_sessions,
        size_px=crop.shape[0],
        width_px=crop.shape[1],
        n_slices=crop.n_slices,
    )
    tc = dataclasses.replace(train_config or TrainConfig(), checkpoint_dir=str(checkpoint_dir))
    if confusion_warmup_epochs > 0:
        steps_per_epoch = math.ceil(len(train_ds) / tc.batch_size)
        mc = dataclasses.replace(mc, confusion_warmup_steps=round(confusion_warmup_epochs * steps_per_epoch))
    torch.manual_seed(tc.seed)
    extra = {
        "model_config": mc.to_dict(),
        "crop_config": crop.to_dict(),
        "readers": readers,
        **info,
        "train_studies": [s.study_id for s in train_s],
        "val_studies": [s.study_id for s in val_s],
    }
    result = fit(
        LesionModel(mc),
        LesionLoss(target, mc.trace_weight),
        train_ds,
        val_ds,
        tc,
        resume=resume,
        evaluate_fn=_evaluate_fn if val_ds is not None else None,
        progress=progress,
        should_stop=should_stop,
        model_kind=MODEL_KIND,
        data_snapshot_id=folder.snapshot_id,
        consensus_run_id=folder.consensus_run_id,
        card_extra=extra,
    )
    summary: dict[str, Any] = {
        "checkpoint_dir": str(checkpoint_dir),
        "stopped": result.stopped,
        "epochs_completed": result.epochs_completed,
        "best_epoch": result.best_epoch,
        "best_metric": result.best_metric,
        "last": result.history[-1] if result.history else {},
    }
    if val_ds is not None and result.stopped != "cancelled":
        predictor = LesionPredictor.from_checkpoint(checkpoint_dir, device=tc.device)
        summary["val"] = lesion_metrics(
            targets["reference"][n_train:], predictor.predict_crops(val_ds.crops.numpy())
        )
    return summary


def evaluate(
    data_dir: str | os.PathLike[str],
    checkpoint_dir: str | os.PathLike[str],
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    split: str | None = None,
    device: str = "auto",
    contours: ContourPredictor | None = None,
    bundled: bool = True,
    scores: bool = False,
) -> dict[str, Any]:
    """Metrics of a checkpoint on the MRI studies of ``data_dir`` (optionally one ``split``) against their
    reference labels (phantom truth or adjudicated gold). Crops follow the joint lines a pre-read traces
    (drawn contours are not used): those of ``contours`` when given, else of the checkpoint's own contour
    model (unless ``bundled`` is off); without either, the truth joint lines when known. ``scores`` adds
    the per-joint ``study_ids``, ``reference`` labels (NaN unknown) and ``probs`` (the bench's intervals)."""
    predictor = LesionPredictor.from_checkpoint(checkpoint_dir, device=device)
    tracer = contours or (predictor.contours if bundled else None)
    studies = [s for s in load_data_folder(data_dir).of_kind("mri") if split is None or s.split == split]
    cache = Path(cache_dir) if cache_dir else Path(checkpoint_dir) / "crops"
    probs = predictor.predict_crops(crops_of(studies, predictor.crop_config, cache, tracer, drawn=False))
    reference = reference_targets(studies).reshape(-1, probs.shape[1])
    out = lesion_metrics(reference, probs)
    out["n_studies"] = len(studies)
    if scores:
        out["scores"] = {
            "study_ids": [s.study_id for s in studies for _ in range(len(reference) // max(len(studies), 1))],
            "reference": np.where(np.isfinite(reference), reference, np.nan).tolist(),
            "probs": np.asarray(probs, dtype=np.float64).round(6).tolist(),
        }
    return out


def train_from_config(
    data_dir: str | os.PathLike[str],
    checkpoint_dir: str | os.PathLike[str],
    config: Mapping[str, Any],
    *,
    progress: ProgressFn | None = None,
    should_stop: CancelFn | None = None,
    resume: bool = False,
) -> dict[str, Any]:
    """:func:`train` with a JSON-style config (what a task queue passes)::

    {"target": "soft", "val_fraction": 0.15, "cache_dir": null, "flip_sides": false,
     "contour_checkpoint": null,                                # train at (and bundle) its traced lines
     "train": {TrainConfig fields}, "model": {LesionModelConfig fields}, "crop": {CropConfig fields}}
    """
    check_keys(
        config,
        (
            "target",
            "train",
            "model",
            "crop",
            "cache_dir",
            "val_fraction",
            "flip_sides",
            "contour_checkpoint",
            "contour_version",
            "confusion_warmup_epochs",
        ),
        "the training configuration",
    )
    return train(
        data_dir,
        checkpoint_dir,
        target=str(config.get("target", "soft")),
        train_config=load_config(TrainConfig, dict(config.get("train", {}))),
        model_config=LesionModelConfig.from_dict(dict(config.get("model", {}))),
        crop_config=CropConfig.from_dict(dict(config.get("crop", {}))),
        cache_dir=config.get("cache_dir"),
        val_fraction=float(config.get("val_fraction", 0.15)),
        progress=progress,
        should_stop=should_stop,
        resume=resume,
        flip_sides=bool(config.get("flip_sides", False)),
        contours=config.get("contour_checkpoint"),
        confusion_warmup_epochs=float(config.get("confusion_warmup_epochs", 0.0)),
    )
