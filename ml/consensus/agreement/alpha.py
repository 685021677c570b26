"""Krippendorff's alpha for nominal, ordinal and interval data with missing readings (SPEC.md §5).

Krippendorff K, *Content Analysis* (1980; 4th ed. 2019), coincidence-matrix form; equals the
``krippendorff`` package (0.9) to 1e-12. Interpretation (SPEC §5): alpha ≥ 0.8 reliable, ≥ 0.667 tentative.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ml.consensus.agreement._bootstrap import Agreement, IntArray, bootstrap

FloatArray = NDArray[np.float64]
Level = Literal["nominal", "ordinal", "interval"]


def _value_counts(data: FloatArray, domain: FloatArray) -> FloatArray:
    """(n_units, V) readers per unit and value, from (n_readers, n_units) data with NaN = missing."""
    present = ~np.isnan(data)
    codes = np.searchsorted(domain, np.where(present, data, domain[0]))
    unit = np.broadcast_to(np.arange(data.shape[1]), data.shape)
    flat = unit[present] * domain.size + codes[present]
    return np.bincount(flat, minlength=data.shape[1] * domain.size).reshape(-1, domain.size).astype(float)


def _distance(level: Level, domain: FloatArray, n_v: FloatArray) -> FloatArray:
    """(V, V) squared distances δ²(c, k) of the given level of measurement."""
    if level == "nominal":
        return np.asarray(domain[:, None] != domain[None, :], dtype=np.float64)
    if level == "interval":
        return np.asarray((domain[:, None] - domain[None, :]) ** 2, dtype=np.float64)
    if level == "ordinal":
        cum = np.concatenate([[0.0], np.cumsum(n_v)])
        lo = np.minimum.outer(np.arange(n_v.size), np.arange(n_v.size))
        hi = np.maximum.outer(np.arange(n_v.size), np.arange(n_v.size))
        between = cum[hi + 1] - cum[lo]  # Σ_{g=c}^{k} n_g
        return np.asarray((between - (n_v[lo] + n_v[hi]) / 2.0) ** 2, dtype=np.float64)
    raise ValueError(f"level must be 'nominal', 'ordinal' or 'interval', got {level!r}")


def _alpha_from_counts(counts: FloatArray, level: Level, domain: FloatArray) -> float | None:
    """alpha = 1 - D_o / D_e from (n_units, V) value counts; None when undefined."""
    m_u = counts.sum(axis=1)
    pairable = m_u >= 2
    if counts.shape[1] < 2 or not np.any(pairable):
        return None
    c = counts[pairable]
    o = np.einsum("uc,uk,u->ck", c, c, 1.0 / (m_u[pairable] - 1.0))
    o -= np.diag(np.sum(c / (m_u[pairable, None] - 1.0), axis=0))
    n_v = o.sum(axis=0)
    e = (np.outer(n_v, n_v) - np.diag(n_v)) / (n_v.sum() - 1.0)
    d = _distance(level, domain, n_v)
    expected = float(np.sum(e * d))
    if expected == 0.0:
        return None
    return 1.0 - float(np.sum(o * d)) / expected


def krippendorff_alpha(
    data: ArrayLike,
    *,
    level: Level = "nominal",
    value_domain: ArrayLike | None = None,
    undefined: float | None = None,
    n_boot: int = 0,
    confidence: float = 0.95,
    seed: int = 0,
    groups: ArrayLike | None = None,
) -> Agreement:
    """Krippendorff's alpha of data (n_readers, n_units), NaN = missing reading.

    level: "nominal" (binary lesions), "ordinal" (mNY, Berlin) or "interval" (scores). value_domain:
    ordered possible values (default: values present, as the ``krippendorff`` package). Undefined (fewer
    than two values, no unit with two readings, or no expected disagreement): ``value = undefined``.
    Bootstrap resamples units (columns), or ``groups`` (n_units,); ``n`` counts pairable units.
    """
    x = np.asarray(data, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError("data must be 2-D (readers x units)")
    present = x[~np.isnan(x)]
    domain = np.unique(present) if value_domain is None else np.asarray(value_domain, dtype=np.float64)
    if present.size and not np.all(np.isin(present, domain)):
        raise ValueError("data contain values outside value_domain")
    if domain.size == 0:
        return Agreement(undefined, n=0)
    counts = _value_counts(x, domain)

    def statistic(idx: IntArray) -> float | None:
        value = _alpha_from_counts(counts[idx], level, domain)
        return undefined if value is None else value

    result = bootstrap(
        statistic, counts.shape[0], n_boot=n_boot, confidence=confidence, seed=seed, groups=groups
    )
    n_pairable = int(np.sum(counts.sum(axis=1) >= 2))
    return Agreement(result.value, result.ci_low, result.ci_high, n=n_pairable, n_boot=result.n_boot)
