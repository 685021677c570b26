"""Lesion metrics (SPEC §7.2): AUC per output and per lesion type (quadrants pooled), balanced accuracy,
sensitivity and specificity at a 0.5 threshold. AUC is ``ml.training.metrics.roc_auc`` (Mann-Whitney)."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from ml.lesions.labels import LESION_TYPES, OUTPUT_LESION
from ml.training.metrics import roc_auc
from ml.vocab import OUTPUT_NAMES


def _binary_stats(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, float]:
    pred = p >= threshold
    pos, neg = y == 1, y == 0
    sens = float(pred[pos].mean()) if pos.any() else float("nan")
    spec = float((~pred[neg]).mean()) if neg.any() else float("nan")
    return {"sensitivity": sens, "specificity": spec, "balanced_accuracy": float(np.nanmean([sens, spec]))}


def lesion_metrics(truth: ArrayLike, prob: ArrayLike, *, threshold: float = 0.5) -> dict[str, Any]:
    """Metrics of probabilities (N, 14) against binary reference labels (N, 14) (NaN = unlabelled).

    Returns ``{"per_output": {name: {auc, sensitivity, specificity, balanced_accuracy, n_pos, n}},
    "per_lesion": {type: {...}}, "mean_auc": float, "min_auc": float}``; AUC is NaN where an output
    has only one class among its labelled items (then left out of mean/min).
    """
    y_all = np.asarray(truth, dtype=np.float64)
    p_all = np.asarray(prob, dtype=np.float64)
    per_output: dict[str, dict[str, float]] = {}
    for o, name in enumerate(OUTPUT_NAMES):
        keep = np.isfinite(y_all[:, o])
        y, p = y_all[keep, o].astype(int), p_all[keep, o]
        per_output[name] = {
            "auc": roc_auc(y, p),
            **_binary_stats(y, p, threshold),
            "n_pos": int(y.sum()),
            "n": int(y.size),
        }
    per_lesion: dict[str, dict[str, float]] = {}
    for t, lesion in enumerate(LESION_TYPES):
        cols = np.flatnonzero(t == OUTPUT_LESION)
        y_block, p_block = y_all[:, cols].ravel(), p_all[:, cols].ravel()
        keep = np.isfinite(y_block)
        y, p = y_block[keep].astype(int), p_block[keep]
        per_lesion[lesion] = {
            "auc": roc_auc(y, p),
            **_binary_stats(y, p, threshold),
            "n_pos": int(y.sum()),
            "n": int(y.size),
        }
    aucs = np.array([v["auc"] for v in per_output.values()], dtype=np.float64)
    finite = aucs[np.isfinite(aucs)]
    return {
        "per_output": per_output,
        "per_lesion": per_lesion,
        "mean_auc": float(finite.mean()) if finite.size else float("nan"),
        "min_auc": float(finite.min()) if finite.size else float("nan"),
    }
