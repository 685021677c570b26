"""Train and evaluate the CT grader (segmenter + per-joint DenseNet-121) with the shared loop.

Public entry points (called by the product's retraining task)::

    train(data_dir, checkpoint_dir, train_config=..., seg_train_config=..., progress=..., should_stop=...)
        -> {"seg": summary, "grader": summary, "val": grading_metrics}
    evaluate(data_dir, checkpoint_dir) -> {"mny5": ..., "<grouping>": ..., "seg_dice": ...}

Checkpoints: ``<checkpoint_dir>/seg`` and ``<checkpoint_dir>/grader`` (each safetensors + card.json).
Grader targets: ``reference`` (adjudicated grade / phantom truth, one-hot; paper (b) trained on the
senior adjudicator's grade), ``soft`` (ordinal Dawid-Skene posterior over the readings, SPEC §4.6) or
``majority`` (share of readings per grade); ``auto`` = reference when every study has one, else soft.
Training crops are centred from the studies' SEG masks; evaluation centres come from the segmenter.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.losses.dice import DiceCELoss
from torch.utils.data import Dataset

from ml.config import check_keys, load_config
from ml.consensus import fit as consensus_fit
from ml.ctgrade.data import CtCropConfig, cached_inputs
from ml.ctgrade.infer import GRADER_KIND, SEG_KIND, CtPredictor
from ml.ctgrade.metrics import grading_metrics
from ml.ctgrade.model import N_GRADES, GraderConfig, build_grader, build_segmenter, soft_cross_entropy
from ml.data.snapshot import StudyRecord, load_data_folder
from ml.lesions.train import split_studies
from ml.training import TrainConfig, fit
from ml.training.loop import CancelFn, ProgressFn
from ml.vocab import JOINTS

KEY = "mny_grade"


class TensorDataset(Dataset[dict[str, torch.Tensor]]):
    """Dict-of-arrays dataset (first axis = item). ``augment`` (grading crops only): random z flip and a
    shift of up to 2 voxels per axis (torch's seeded global RNG)."""

    def __init__(self, arrays: dict[str, np.ndarray], *, augment: bool = False) -> None:
        self.arrays = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in arrays.items()}
        self.augment = augment

    def __len__(self) -> int:
        return int(next(iter(self.arrays.values())).shape[0])

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        item = {k: v[index] for k, v in self.arrays.items()}
        if self.augment:
            x = item["input"]
            if bool(torch.rand(()) < 0.5):
                x = x.flip(1)
            shifts = tuple(int(s) for s in torch.randint(-2, 3, (3,)))
            item["input"] = torch.roll(x, shifts=shifts, dims=(1, 2, 3))
        return item


def frozen_grade_posteriors(studies: Sequence[StudyRecord]) -> np.ndarray | None:
    """The snapshot's frozen ordinal consensus posteriors (2N, 5) in study-major [left, right] order, or None
    when a joint has none (a phantom folder: ``grade_targets`` then fits the readings itself)."""
    rows = [(s.soft or {}).get((j, "joint", KEY)) for s in studies for j in JOINTS]
    if not rows or any(r is None or len(r) != N_GRADES for r in rows):
        return None
    return np.asarray(rows, dtype=np.float32)


def grade_targets(studies: Sequence[StudyRecord], target: str) -> tuple[np.ndarray, np.ndarray, str]:
    """Targets (2N, 5) for the chosen mode and reference grades (2N,) (-1 where unknown); resolves ``auto``."""
    ref = np.array(
        [(s.reference or {}).get((j, "joint", KEY), -1) for s in studies for j in JOINTS], dtype=np.int64
    )
    if target == "auto":
        target = "reference" if (ref >= 0).all() else "soft"
    if target == "reference":
        if (ref < 0).any():
            raise ValueError("target 'reference' needs a reference grade for every joint")
        return np.eye(N_GRADES, dtype=np.float32)[ref], ref, target
    items, readers, labels = [], [], []
    names = sorted({r.reader for s in studies for r in s.readings})
    for n, study in enumerate(studies):
        for reading in study.readings:
            for j, joint in enumerate(JOINTS):
                if (value := reading.values.get((joint, "joint", KEY))) is not None:
                    items.append(2 * n + j)
                    readers.append(names.index(reading.reader))
                    labels.append(value)
    if target == "majority":
        counts = np.zeros((2 * len(studies), N_GRADES), np.float32)
        np.add.at(counts, (np.array(items), np.array(labels)), 1.0)
        soft = counts / np.maximum(counts.sum(1, keepdims=True), 1.0)
    elif target == "soft":
        frozen = frozen_grade_posteriors(studies)
        if frozen is not None:
            return frozen, ref, target
        result = consensus_fit(items, readers, labels, N_GRADES, model="ordinal", n_items=2 * len(studies))
        soft = result.posterior.astype(np.float32)
    else:
        raise ValueError(f"unknown target {target!r}")
    return soft, ref, target


def _seg_loss() -> Any:
    dice_ce = DiceCELoss(to_onehot_y=True, softmax=True)
    return lambda out, batch: dice_ce(out.float(), batch["labels"][:, None])


def _grader_loss(out: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    return soft_cross_entropy(out, batch["target"])


def train(
    data_dir: str | os.PathLike[str],
    checkpoint_dir: str | os.PathLike[str],
    *,
    target: str = "auto",
    grader_config: GraderConfig | None = None,
    crop_config: CtCropConfig | None = None,
    train_config: TrainConfig | None = None,
    seg_train_config: TrainConfig | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    val_fraction: float = 0.2,
    progress: ProgressFn | None = None,
    should_stop: CancelFn | None = None,
    resume: bool = False,
) -> dict[str, Any]:
    """Train the segmenter (studies with SEG) then the grader on the CT studies of ``data_dir``.

    Raises ValueError without CT studies. Returns ``{"seg", "grader"}`` run summaries and ``val``
    grading metrics (full pipeline, centres from the trained segmenter) when a validation split exists.
    """
    folder = load_data_folder(data_dir)
    studies = folder.of_kind("ct")
    if not studies:
        raise ValueError(f"{data_dir} holds no CT studies")
    gc, cc = grader_config or GraderConfig(), crop_config or CtCropConfig()
    root = Path(checkpoint_dir)
    cache = Path(cache_dir) if cache_dir else root / "cache"
    train_s, val_s = split_studies(studies, val_fraction)
    inputs = [cached_inputs(s.folder, s.study_id, cc, cache) for s in [*train_s, *val_s]]
    n = len(train_s)
    extra = {
        "grader_config": gc.to_dict(),
        "crop_config": cc.to_dict(),
        "train_studies": [s.study_id for s in train_s],
        "val_studies": [s.study_id for s in val_s],
    }
    common = {
        "progress": progress,
        "should_stop": should_stop,
        "data_snapshot_id": folder.snapshot_id,
        "consensus_run_id": folder.consensus_run_id,
    }
    out: dict[str, Any] = {"checkpoint_dir": str(root)}

    def seg_set(part: list[dict[str, np.ndarray]]) -> TensorDataset:
        return TensorDataset(
            {"input": np.stack([p["image"] for p in part]), "labels": np.stack([p["labels"] for p in part])}
        )

    stc = dataclasses.replace(
        seg_train_config or TrainConfig(epochs=10, batch_size=4), checkpoint_dir=str(root / "seg")
    )
    seg = fit(
        build_segmenter(gc),
        _seg_loss(),
        seg_set(inputs[:n]),
        seg_set(inputs[n:]) if val_s else None,
        stc,
        resume=resume,
        model_kind=SEG_KIND,
        card_extra=extra,
        **common,
    )
    out["seg"] = {
        "stopped": seg.stopped,
        "epochs_completed": seg.epochs_completed,
        "best_metric": seg.best_metric,
    }
    if seg.stopped == "cancelled":
        return out
    soft, ref, mode = grade_targets([*train_s, *val_s], target)
    soft_source = (
        (
            "snapshot"
            if frozen_grade_posteriors([*train_s, *val_s]) is not None
            else "ml.consensus.fit(model='ordinal')"
        )
        if mode == "soft"
        else mode
    )
    crops = np.concatenate([p["crops"] for p in inputs])
    train_ds = TensorDataset({"input": crops[: 2 * n], "target": soft[: 2 * n]}, augment=True)
    val_ds = TensorDataset({"input": crops[2 * n :], "target": soft[2 * n :]}) if val_s else None
    tc = dataclasses.replace(train_config or TrainConfig(), checkpoint_dir=str(root / "grader"))
    torch.manual_seed(tc.seed)
    grader = fit(
        build_grader(gc),
        _grader_loss,
        train_ds,
        val_ds,
        tc,
        resume=resume,
        model_kind=GRADER_KIND,
        card_extra={**extra, "target": mode, "soft_source": soft_source},
        **common,
    )
    out["grader"] = {
        "stopped": grader.stopped,
        "epochs_completed": grader.epochs_completed,
        "best_epoch": grader.best_epoch,
        "best_metric": grader.best_metric,
        "target": mode,
    }
    if val_s and grader.stopped != "cancelled" and (ref[2 * n :] >= 0).all():
        out["val"] = evaluate_studies(CtPredictor.from_checkpoint(root, device=tc.device), val_s)
    return out


def evaluate_studies(
    predictor: CtPredictor,
    studies: Sequence[StudyRecord],
    *,
    use_truth_seg: bool = False,
    scores: bool = False,
) -> dict[str, Any]:
    """Grading metrics of the full pipeline on studies with reference grades, plus mean seg Dice; ``scores``
    adds the per-joint ``study_ids``, reference ``grades`` and ``probs`` (the bench's intervals)."""
    probs, grades, dice = [], [], []
    for study in studies:
        crops, info = predictor.study_crops(study.folder, use_truth_seg=use_truth_seg)
        probs.append(predictor.grade_crops(crops))
        grades += [(study.reference or {})[(j, "joint", KEY)] for j in JOINTS]
        if not use_truth_seg and predictor.segmenter is not None:
            dice.append(_seg_dice(study, predictor, info["seg_labels"]))
    out = grading_metrics(np.array(grades), np.concatenate(probs))
    out["seg_dice"] = float(np.nanmean(dice)) if dice else float("nan")
    out["n_joints"] = len(grades)
    if scores:
        out["scores"] = {
            "study_ids": [s.study_id for s in studies for _ in JOINTS],
            "grades": [int(g) for g in grades],
            "probs": np.concatenate(probs).astype(np.float64).round(6).tolist() if probs else [],
        }
    return out


def _seg_dice(study: StudyRecord, predictor: CtPredictor, predicted: np.ndarray) -> float:
    """Mean Dice of sacrum and ilium on the seg grid against the study's SEG (NaN without one)."""
    from ml.ctgrade.data import load_ct_scan, to_seg_grid

    scan = load_ct_scan(study.folder)
    if scan.labels is None:
        return float("nan")
    truth = to_seg_grid(scan.labels, predictor.crop_config.seg_shape, order=0)
    scores = [
        2 * ((truth == c) & (predicted == c)).sum() / max((truth == c).sum() + (predicted == c).sum(), 1)
        for c in (1, 2)
    ]
    return float(np.mean(scores))


def evaluate(
    data_dir: str | os.PathLike[str],
    checkpoint_dir: str | os.PathLike[str],
    *,
    split: str | None = None,
    device: str = "auto",
    use_truth_seg: bool = False,
    scores: bool = False,
) -> dict[str, Any]:
    """Grading metrics of a checkpoint on the CT studies of ``data_dir`` (optionally one ``split``);
    ``scores`` as in :func:`evaluate_studies`."""
    studies = [s for s in load_data_folder(data_dir).of_kind("ct") if split is None or s.split == split]
    return evaluate_studies(
        CtPredictor.from_checkpoint(checkpoint_dir, device=device),
        studies,
        use_truth_seg=use_truth_seg,
        scores=scores,
    )


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

    {"target": "auto", "val_fraction": 0.1, "cache_dir": null, "train": {TrainConfig fields},
     "seg_train": {TrainConfig fields}, "grader": {GraderConfig fields}, "crop": {CtCropConfig fields}}
    """
    check_keys(
        config,
        ("target", "grader", "crop", "train", "seg_train", "cache_dir", "val_fraction"),
        "the training configuration",
    )
    return train(
        data_dir,
        checkpoint_dir,
        target=str(config.get("target", "auto")),
        grader_config=GraderConfig.from_dict(dict(config.get("grader", {}))),
        crop_config=CtCropConfig.from_dict(dict(config.get("crop", {}))),
        train_config=load_config(TrainConfig, dict(config.get("train", {}))),
        seg_train_config=load_config(
            TrainConfig, dict(config.get("seg_train", {"epochs": 10, "batch_size": 4}))
        ),
        cache_dir=config.get("cache_dir"),
        val_fraction=float(config.get("val_fraction", 0.1)),
        progress=progress,
        should_stop=should_stop,
        resume=resume,
    )
