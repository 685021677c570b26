"""Reader performance metrics and their leave-one-case-out (jackknife) values, numpy only.

Every metric is computed from one reader × condition group: ``truth`` (bool, per read case) and ``rating``
(float). AUC is the empirical (trapezoidal, Wilcoxon–Mann–Whitney) area with ties counted one half. The
binary metrics call a case positive when ``rating >= threshold``.

The jackknife values are closed forms, not refits: removing positive case i from the Mann–Whitney sum removes
its row sum; removing a case from a 2 × 2 table removes one count. That keeps 10 readers × 2 conditions ×
1,000 cases in milliseconds.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

Metric = Literal["auc", "sensitivity", "specificity", "accuracy", "kappa"]
METRICS: tuple[Metric, ...] = ("auc", "sensitivity", "specificity", "accuracy", "kappa")
# Metrics bounded by [0, 1]: their confidence limits are truncated there, as MRMCaov's trunc_ci does.
UNIT_METRICS = frozenset({"auc", "sensitivity", "specificity", "accuracy"})


def placements(truth: BoolArray, rating: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Mann–Whitney row and column sums: for each positive, Σ_j ψ(x_i, y_j); for each negative, Σ_i ψ(x_i, y_j).

    ψ(x, y) = 1 if x > y, ½ if x = y, 0 otherwise. Shapes (n_pos,), (n_neg,).
    """
    pos = rating[truth]
    neg = rating[~truth]
    neg_sorted = np.sort(neg)
    pos_sorted = np.sort(pos)
    below = np.searchsorted(neg_sorted, pos, side="left")
    tied = np.searchsorted(neg_sorted, pos, side="right") - below
    rows = below + 0.5 * tied
    above_lo = np.searchsorted(pos_sorted, neg, side="right")
    tied_cols = above_lo - np.searchsorted(pos_sorted, neg, side="left")
    cols = (len(pos) - above_lo) + 0.5 * tied_cols
    return rows.astype(np.float64), cols.astype(np.float64)


def auc(truth: BoolArray, rating: FloatArray) -> float:
    """Empirical (trapezoidal) area under the ROC curve."""
    rows, _ = placements(truth, rating)
    n_pos, n_neg = int(truth.sum()), int((~truth).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError("AUC needs at least one positive and one negative case in every reader × condition")
    return float(rows.sum() / (n_pos * n_neg))


def _table(truth: BoolArray, called: BoolArray) -> FloatArray:
    """2 × 2 counts as (tp, fn, fp, tn)."""
    return np.array(
        [
            np.sum(truth & called),
            np.sum(truth & ~called),
            np.sum(~truth & called),
            np.sum(~truth & ~called),
        ],
        dtype=np.float64,
    )


def _from_tables(metric: Metric, t: FloatArray) -> FloatArray:
    """Metric of each row of (…, 4) tables (tp, fn, fp, tn); NaN where undefined."""
    tp, fn, fp, tn = t[..., 0], t[..., 1], t[..., 2], t[..., 3]
    n = tp + fn + fp + tn
    with np.errstate(divide="ignore", invalid="ignore"):
        if metric == "sensitivity":
            return np.asarray(tp / (tp + fn), dtype=np.float64)
        if metric == "specificity":
            return np.asarray(tn / (tn + fp), dtype=np.float64)
        if metric == "accuracy":
            return np.asarray((tp + tn) / n, dtype=np.float64)
        observed = (tp + tn) / n
        expected = ((tp + fn) * (tp + fp) + (fp + tn) * (fn + tn)) / (n * n)
        return np.asarray((observed - expected) / (1.0 - expected), dtype=np.float64)


def value(metric: Metric, truth: BoolArray, rating: FloatArray, threshold: float | None) -> float:
    """One group's metric value."""
    if metric == "auc":
        return auc(truth, rating)
    assert threshold is not None
    result = float(_from_tables(metric, _table(truth, rating >= threshold)))
    if not np.isfinite(result):
        raise ValueError(f"{metric} is undefined for a reader × condition (no cases of the kind it needs)")
    return result


def leave_one_out(
    metric: Metric, truth: BoolArray, rating: FloatArray, threshold: float | None
) -> FloatArray:
    """The metric with each case left out in turn, shape (n_cases,), in the order of ``truth``."""
    n = len(truth)
    if metric == "auc":
        rows, cols = placements(truth, rating)
        n_pos, n_neg = len(rows), len(cols)
        total = rows.sum()
        out = np.empty(n, dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            out[truth] = (total - rows) / ((n_pos - 1) * n_neg)
            out[~truth] = (total - cols) / (n_pos * (n_neg - 1))
        return out
    assert threshold is not None
    called = rating >= threshold
    full = _table(truth, called)
    cell = np.where(truth, np.where(called, 0, 1), np.where(called, 2, 3))
    tables = np.broadcast_to(full, (n, 4)).copy()
    tables[np.arange(n), cell] -= 1.0
    return _from_tables(metric, tables)


def roc_points(truth: BoolArray, rating: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Empirical ROC operating points (false-positive rate, true-positive rate), from (0, 0) to (1, 1)."""
    pos = np.sort(rating[truth])
    neg = np.sort(rating[~truth])
    thresholds = np.unique(rating)[::-1]
    tpr = (len(pos) - np.searchsorted(pos, thresholds, side="left")) / max(len(pos), 1)
    fpr = (len(neg) - np.searchsorted(neg, thresholds, side="left")) / max(len(neg), 1)
    return np.concatenate([[0.0], fpr]), np.concatenate([[0.0], tpr])


def average_roc(
    curves: list[tuple[FloatArray, FloatArray]], n_points: int = 101
) -> tuple[FloatArray, FloatArray]:
    """Reader-averaged ROC curve: the mean true-positive rate at each false-positive rate of a grid.

    Each empirical curve is joined by straight lines (the trapezoidal rule's curve), so the area under the
    averaged curve is the mean of the readers' AUCs up to the grid's resolution.
    """
    grid = np.linspace(0.0, 1.0, n_points)
    tprs = []
    for fpr, tpr in curves:
        # at a repeated false-positive rate the curve rises vertically: keep its lowest and highest point
        xs = np.concatenate([fpr, [1.0]])
        ys = np.concatenate([tpr, [1.0]])
        left = np.interp(grid, xs, ys, left=0.0, right=1.0)
        tprs.append(left)
    return grid, np.mean(tprs, axis=0)
