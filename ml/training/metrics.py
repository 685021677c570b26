"""Classification metrics in plain numpy: ROC AUC (rank formula), accuracy, confusion matrix (kappa, weighted
or not, is ``ml.consensus.agreement.cohen_kappa``)."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray


def average_ranks(values: ArrayLike) -> NDArray[np.float64]:
    """Return 1-based ranks of ``values`` (N,), ties sharing their average rank."""
    x = np.asarray(values, dtype=np.float64).ravel()
    order = np.argsort(x, kind="mergesort")
    sorted_x = x[order]
    # start index of each run of equal values
    starts = np.flatnonzero(np.r_[True, sorted_x[1:] != sorted_x[:-1]])
    ends = np.r_[starts[1:], x.size]
    run_rank = (starts + ends + 1) / 2.0  # mean of ranks starts+1 .. ends
    ranks = np.empty(x.size, dtype=np.float64)
    ranks[order] = np.repeat(run_rank, ends - starts)
    return ranks


def roc_auc(y_true: ArrayLike, scores: ArrayLike) -> float:
    """Area under the ROC curve via the Mann-Whitney U statistic; NaN when one class is absent.

    ``y_true`` (N,) binary (0/1 or bool), ``scores`` (N,) higher = more positive; ties count one half.
    """
    y = np.asarray(y_true).ravel().astype(bool)
    s = np.asarray(scores, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise ValueError(f"y_true {y.shape} and scores {s.shape} differ in shape")
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    rank_sum = average_ranks(s)[y].sum()
    return float((rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def one_vs_rest_auc(y_true: ArrayLike, probs: ArrayLike) -> NDArray[np.float64]:
    """Per-class one-vs-rest AUC: ``y_true`` (N,) int labels, ``probs`` (N, K) -> (K,) (NaN if absent)."""
    y = np.asarray(y_true).ravel()
    p = np.asarray(probs, dtype=np.float64)
    return np.array([roc_auc(y == k, p[:, k]) for k in range(p.shape[1])])


def macro_auc(y_true: ArrayLike, probs: ArrayLike) -> float:
    """Mean of the defined one-vs-rest AUCs (classes absent from ``y_true`` are skipped)."""
    aucs = one_vs_rest_auc(y_true, probs)
    return float(np.nanmean(aucs)) if np.isfinite(aucs).any() else float("nan")


def accuracy(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Fraction of equal labels, (N,) vs (N,); NaN for empty input."""
    a, b = np.asarray(y_true).ravel(), np.asarray(y_pred).ravel()
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    return float(np.mean(a == b)) if a.size else float("nan")


def confusion_matrix(y_true: ArrayLike, y_pred: ArrayLike, n_classes: int) -> NDArray[np.int64]:
    """Counts (K, K): rows true class, columns predicted class; labels must lie in 0..K-1."""
    a, b = np.asarray(y_true, dtype=np.int64).ravel(), np.asarray(y_pred, dtype=np.int64).ravel()
    if a.size and (min(a.min(), b.min()) < 0 or max(a.max(), b.max()) >= n_classes):
        raise ValueError(f"labels must lie in 0..{n_classes - 1}")
    return np.bincount(a * n_classes + b, minlength=n_classes * n_classes).reshape(n_classes, n_classes)
