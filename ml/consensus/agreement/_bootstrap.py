"""Agreement result type and the (cluster) percentile bootstrap shared by every statistic (SPEC.md §5)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

IntArray = NDArray[np.int64]
UnitStatistic = Callable[[IntArray], "float | None"]


@dataclass(frozen=True)
class Agreement:
    """One agreement statistic with its percentile bootstrap interval.

    value: the statistic, or None where it is undefined (0/0, e.g. κ when every reading falls in one
      category, so chance agreement is 1). Never NaN: the product API must not emit NaN. Pass
      ``undefined=`` to a statistic to substitute a number (sklearn's ``replace_undefined_by``).
    ci_low, ci_high: percentile bootstrap bounds, None without bootstrap or when no replicate is defined.
    n: number of units the statistic used (items, item pairs, units of alpha).
    n_boot: bootstrap replicates with a defined value (replicates with value None are dropped).
    """

    value: float | None
    ci_low: float | None = None
    ci_high: float | None = None
    n: int = 0
    n_boot: int = 0


def finite_or_none(value: float, undefined: float | None) -> float | None:
    """Map a NaN/inf value (0/0) to ``undefined``; pass finite values through as float."""
    return float(value) if np.isfinite(value) else undefined


def _cluster_index(groups: ArrayLike | None, n_units: int) -> tuple[IntArray, IntArray, IntArray]:
    """Return (order, starts, lengths): units sorted by group, and each group's slice in that order."""
    if groups is None:
        return np.arange(n_units), np.arange(n_units), np.ones(n_units, dtype=np.int64)
    g = np.asarray(groups).ravel()
    if g.size != n_units:
        raise ValueError(f"groups has {g.size} entries for {n_units} units")
    _, codes = np.unique(g, return_inverse=True)
    order = np.argsort(codes, kind="stable")
    lengths = np.bincount(codes).astype(np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    return order.astype(np.int64), starts, lengths


def _draw(rng: np.random.Generator, order: IntArray, starts: IntArray, lengths: IntArray) -> IntArray:
    """Resample whole clusters with replacement; return the unit indices of one replicate."""
    chosen = rng.integers(0, starts.size, size=starts.size)
    sizes = lengths[chosen]
    offsets = np.arange(int(sizes.sum())) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    return np.asarray(order[np.repeat(starts[chosen], sizes) + offsets], dtype=np.int64)


def bootstrap(
    statistic: UnitStatistic,
    n_units: int,
    *,
    n_boot: int = 0,
    confidence: float = 0.95,
    seed: int = 0,
    groups: ArrayLike | None = None,
) -> Agreement:
    """Evaluate ``statistic`` on all units and, if ``n_boot`` > 0, a percentile bootstrap CI.

    statistic: maps an index array of units (repeats allowed) to a value or None. groups: (n_units,)
    cluster labels (e.g. patient) resampled as wholes, since joints and quadrants of one patient are
    correlated (SPEC §5). Returns an ``Agreement``; ``n`` is ``n_units``.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError("confidence must lie in (0, 1)")
    value = statistic(np.arange(n_units))
    if n_boot <= 0 or n_units == 0:
        return Agreement(value, n=n_units)
    order, starts, lengths = _cluster_index(groups, n_units)
    rng = np.random.default_rng(seed)
    draws = [statistic(_draw(rng, order, starts, lengths)) for _ in range(n_boot)]  # loop over replicates
    values = np.array([d for d in draws if d is not None], dtype=np.float64)
    if values.size == 0:
        return Agreement(value, n=n_units)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(values, [tail, 1.0 - tail])
    return Agreement(value, float(low), float(high), n=n_units, n_boot=int(values.size))
