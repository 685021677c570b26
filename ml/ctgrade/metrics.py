"""CT grading metrics (SPEC §7.3): accuracy, one-vs-rest AUC per class, macro AUC, QWK, confusion matrix,
for the 5 mNY grades and every SPEC §2.4 grouping (grouped probabilities = sums of grade probabilities)."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from ml.consensus.agreement import cohen_kappa
from ml.ctgrade.model import N_GRADES, grouped_labels, grouped_probabilities
from ml.training.metrics import roc_auc
from ml.vocab import GROUPINGS


def quadratic_weighted_kappa(y_true: ArrayLike, y_pred: ArrayLike, n_classes: int) -> float:
    """QWK over the grades 0..K-1 (SPEC §5) by ``ml.consensus.agreement.cohen_kappa``; NaN when undefined
    (every true and predicted grade the same), which the table prints and promotion treats as the worst."""
    labels = np.arange(n_classes)
    value = cohen_kappa(y_true, y_pred, weights="quadratic", labels=labels).value
    return float("nan") if value is None else value


def class_metrics(y_true: ArrayLike, probs: ArrayLike) -> dict[str, Any]:
    """Metrics of probabilities (N, K) against class indices (N,): accuracy, auc per class (one vs rest),
    macro_auc (mean of the finite ones), min_auc, qwk, confusion (K x K, rows = truth)."""
    y = np.asarray(y_true, dtype=np.int64)
    p = np.asarray(probs, dtype=np.float64)
    k = p.shape[1]
    pred = p.argmax(1)
    aucs = [roc_auc(y == c, p[:, c]) for c in range(k)]
    finite = [a for a in aucs if np.isfinite(a)]
    confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, (y, pred), 1)
    return {
        "n": int(y.size),
        "accuracy": float((pred == y).mean()) if y.size else float("nan"),
        "auc": aucs,
        "macro_auc": float(np.mean(finite)) if finite else float("nan"),
        "min_auc": float(np.min(finite)) if finite else float("nan"),
        "qwk": quadratic_weighted_kappa(y, pred, k),
        "confusion": confusion.tolist(),
    }


def grading_metrics(grades: ArrayLike, probs: ArrayLike) -> dict[str, Any]:
    """``{"mny5": class_metrics, <grouping>: class_metrics, ...}`` for grades (N,) and 5-class probs (N, 5)."""
    grades = np.asarray(grades, dtype=np.int64)
    probs = np.asarray(probs, dtype=np.float64).reshape(-1, N_GRADES)
    out = {"mny5": class_metrics(grades, probs)}
    for name in GROUPINGS:
        out[name] = class_metrics(grouped_labels(grades, name), grouped_probabilities(probs, name))
    return out
