"""CT grading metrics (SPEC §7.3): accuracy, one-vs-rest AUC per class, macro AUC, QWK, confusion matrix,
for the 5 mNY grades and every SPEC §2.4 grouping (grouped probabilities = sums of grade probabilities)."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from ml.ctgrade.model import N_GRADES, grouped_labels, grouped_probabilities
from ml.training.metrics import roc_auc
from ml.vocab import GROUPINGS


def quadratic_weighted_kappa(y_true: ArrayLike, y_pred: ArrayLike, n_classes: int) -> float:
    """QWK = 1 - sum(w O) / sum(w E), w_ij = (i - j)^2 / (K - 1)^2 (SPEC §5); NaN when undefined."""
    t, p = np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)
    observed = np.zeros((n_classes, n_classes))
    np.add.at(observed, (t, p), 1.0)
    observed /= max(observed.sum(), 1.0)
    expected = np.outer(observed.sum(1), observed.sum(0))
    i, j = np.indices((n_classes, n_classes))
    w = (i - j) ** 2 / max(n_classes - 1, 1) ** 2
    denom = float((w * expected).sum())
    return float("nan") if denom == 0 else 1.0 - float((w * observed).sum()) / denom


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
