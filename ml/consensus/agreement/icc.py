"""Intraclass correlation, the six Shrout & Fleiss (1979) forms, with bootstrap CIs (SPEC.md §5).

Shrout PE, Fleiss JL, Psychol Bull 86:420 (1979); McGraw & Wong (1996) naming. Values equal pingouin
``intraclass_corr`` (ICC1 … ICC3k) to 1e-12. The product default is ICC(2,1): two-way random,
absolute agreement, single rater [SPEC §5].
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ml.consensus.agreement._bootstrap import Agreement, IntArray, bootstrap

FloatArray = NDArray[np.float64]
IccForm = Literal["ICC1", "ICC2", "ICC3", "ICC1k", "ICC2k", "ICC3k"]
ICC_FORMS: tuple[IccForm, ...] = ("ICC1", "ICC2", "ICC3", "ICC1k", "ICC2k", "ICC3k")


def _mean_squares(x: FloatArray) -> tuple[float, float, float, float]:
    """Return (MSR, MSC, MSE, MSW) of an (n targets x k raters) table, two-way ANOVA without replication."""
    n, k = x.shape
    grand = x.mean()
    ss_rows = k * float(np.sum((x.mean(axis=1) - grand) ** 2))
    ss_cols = n * float(np.sum((x.mean(axis=0) - grand) ** 2))
    ss_total = float(np.sum((x - grand) ** 2))
    ss_error = ss_total - ss_rows - ss_cols
    msr = ss_rows / (n - 1)
    msc = ss_cols / (k - 1)
    mse = ss_error / ((n - 1) * (k - 1))
    msw = (ss_cols + ss_error) / (n * (k - 1))
    return msr, msc, mse, msw


def _icc_value(x: FloatArray, form: IccForm) -> float | None:
    """ICC of one form for x (n, k), n ≥ 2, k ≥ 2; None when the denominator is 0."""
    n, k = x.shape
    if n < 2:
        return None
    msr, msc, mse, msw = _mean_squares(x)
    num, den = {
        "ICC1": (msr - msw, msr + (k - 1) * msw),
        "ICC2": (msr - mse, msr + (k - 1) * mse + k * (msc - mse) / n),
        "ICC3": (msr - mse, msr + (k - 1) * mse),
        "ICC1k": (msr - msw, msr),
        "ICC2k": (msr - mse, msr + (msc - mse) / n),
        "ICC3k": (msr - mse, msr),
    }[form]
    if not np.isfinite(den) or abs(den) <= 1e-12 * max(abs(msr), abs(msw), abs(mse), 1e-300):
        return None
    return float(num / den)


def icc(
    data: ArrayLike,
    *,
    form: IccForm = "ICC2",
    undefined: float | None = None,
    n_boot: int = 0,
    confidence: float = 0.95,
    seed: int = 0,
    groups: ArrayLike | None = None,
) -> Agreement:
    """ICC of data (n_items, n_readers) in one Shrout-Fleiss form.

    Items with a missing (NaN) reading are dropped, as pingouin's ``nan_policy="omit"``; ``n`` counts
    the complete items. Undefined (fewer than 2 complete items, or zero variance): ``value = undefined``.
    Bootstrap resamples items, or ``groups`` (n_items,). Raises ValueError on < 2 readers or bad form.
    """
    if form not in ICC_FORMS:
        raise ValueError(f"form must be one of {ICC_FORMS}, got {form!r}")
    x = np.asarray(data, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] < 2:
        raise ValueError("data must be 2-D (items x readers) with at least 2 readers")
    complete = ~np.any(np.isnan(x), axis=1)
    x = x[complete]
    g = None if groups is None else np.asarray(groups).ravel()[complete]

    def statistic(idx: IntArray) -> float | None:
        value = _icc_value(x[idx], form)
        return undefined if value is None else value

    return bootstrap(statistic, x.shape[0], n_boot=n_boot, confidence=confidence, seed=seed, groups=g)
