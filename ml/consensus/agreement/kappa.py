"""Cohen's κ (plain, linear and quadratic weighted) and Fleiss' κ with bootstrap CIs (SPEC.md §5).

Cohen J, Educ Psychol Meas 20:37 (1960); weighted κ, Cohen, Psychol Bull 70:213 (1968); Fleiss JL,
Psychol Bull 76:378 (1971). Values equal scikit-learn ``cohen_kappa_score`` and statsmodels
``fleiss_kappa`` to 1e-12; where those return NaN (0/0) these return ``value=None`` (or ``undefined``).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ml.consensus.agreement._bootstrap import Agreement, IntArray, bootstrap

FloatArray = NDArray[np.float64]
Weights = Literal["linear", "quadratic"] | None


def _weight_matrix(n_classes: int, weights: Weights) -> FloatArray:
    """(K, K) disagreement weights on class ranks: 1 - I, |i - j| or (i - j)² (scale cancels in κ)."""
    rank = np.arange(n_classes, dtype=np.float64)
    diff = rank[:, None] - rank[None, :]
    if weights is None:
        return np.asarray(diff != 0, dtype=np.float64)
    if weights == "linear":
        return np.abs(diff)
    if weights == "quadratic":
        return diff**2
    raise ValueError(f"weights must be None, 'linear' or 'quadratic', got {weights!r}")


def _kappa_from_codes(a: IntArray, b: IntArray, n_classes: int, w: FloatArray) -> float | None:
    """κ_w = 1 - Σ w O / Σ w E for class codes a, b (n,); None when Σ w E = 0 or n = 0."""
    if a.size == 0:
        return None
    observed = np.bincount(a * n_classes + b, minlength=n_classes * n_classes).reshape(n_classes, -1)
    observed = observed.astype(np.float64)
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0)) / a.size
    denominator = float(np.sum(w * expected))
    if denominator == 0.0:  # sum of non-negative terms: exact test, as scikit-learn
        return None
    return 1.0 - float(np.sum(w * observed)) / denominator


def cohen_kappa(
    a: ArrayLike,
    b: ArrayLike,
    *,
    weights: Weights = None,
    labels: ArrayLike | None = None,
    undefined: float | None = None,
    n_boot: int = 0,
    confidence: float = 0.95,
    seed: int = 0,
    groups: ArrayLike | None = None,
) -> Agreement:
    """Cohen's κ between two readers' labels a, b (n,) on the same n items; QWK with weights="quadratic".

    labels: ordered class list (default: sorted union of a and b, as scikit-learn); weights use class
    ranks in that order. Undefined (chance agreement covers every weighted cell, e.g. both readers always
    give one class): ``value = undefined`` (default None). Bootstrap resamples items, or ``groups``.
    """
    x, y = np.asarray(a).ravel(), np.asarray(b).ravel()
    if x.shape != y.shape:
        raise ValueError(f"a and b differ in length: {x.size} vs {y.size}")
    classes = np.unique(np.concatenate([x, y])) if labels is None else np.asarray(labels).ravel()
    keep = np.isin(x, classes) & np.isin(y, classes)  # scikit-learn ignores pairs outside `labels`
    x, y = x[keep], y[keep]
    order = np.argsort(classes, kind="stable")
    codes_x = order[np.searchsorted(classes, x, sorter=order)]
    codes_y = order[np.searchsorted(classes, y, sorter=order)]
    w = _weight_matrix(classes.size, weights)
    g = None if groups is None else np.asarray(groups).ravel()[keep]

    def statistic(idx: IntArray) -> float | None:
        value = _kappa_from_codes(codes_x[idx], codes_y[idx], classes.size, w)
        return undefined if value is None else value

    return bootstrap(statistic, x.size, n_boot=n_boot, confidence=confidence, seed=seed, groups=g)


def _fleiss_from_counts(table: FloatArray) -> float | None:
    """Fleiss κ of an (n_items, K) count table with equal row sums m ≥ 2; None when p_e = 1."""
    if table.shape[0] == 0:
        return None
    m = float(table[0].sum())
    p_class = table.sum(axis=0) / table.sum()
    p_item = (np.sum(table * table, axis=1) - m) / (m * (m - 1.0))
    p_e = float(np.sum(p_class * p_class))
    if p_e >= 1.0:
        return None
    return (float(p_item.mean()) - p_e) / (1.0 - p_e)


def fleiss_kappa(
    counts: ArrayLike,
    *,
    undefined: float | None = None,
    n_boot: int = 0,
    confidence: float = 0.95,
    seed: int = 0,
    groups: ArrayLike | None = None,
) -> Agreement:
    """Fleiss' κ from counts (n_items, K): readers per item and class; every row sums to the same m ≥ 2.

    Raises ValueError on unequal row sums or m < 2. Undefined when every reading has one class
    (p_e = 1): ``value = undefined``. Bootstrap resamples items, or ``groups``.
    """
    table = np.asarray(counts, dtype=np.float64)
    if table.ndim != 2:
        raise ValueError("counts must be a 2-D (items x categories) table")
    totals = table.sum(axis=1)
    if totals.size and (np.any(totals != totals[0]) or totals[0] < 2):
        raise ValueError("Fleiss' κ needs the same number (>= 2) of readings per item")

    def statistic(idx: IntArray) -> float | None:
        value = _fleiss_from_counts(table[idx])
        return undefined if value is None else value

    return bootstrap(
        statistic, table.shape[0], n_boot=n_boot, confidence=confidence, seed=seed, groups=groups
    )
