"""Repair of traced joint lines across slices: a trace that stops short at a gap is rebuilt from its
neighbours (used where lesion crops follow the traces, ``ml.lesions.crops``)."""

from __future__ import annotations

import numpy as np

from ml.contours.geometry import FloatArray, cumulative_length
from ml.contours.metrics import one_sided_distances

#: A short trace is replaced only when it runs along the blend of its neighbours (90% of it within this).
SHORT_TRACE_AGREE_MM = 3.0


def _by_arc(line: FloatArray, n: int) -> FloatArray:
    """``n`` points at equal arc-length steps along a polyline, first and last kept."""
    arc = cumulative_length(line)
    t = np.linspace(0.0, arc[-1], n)
    return np.stack([np.interp(t, arc, line[:, k]) for k in range(line.shape[1])], axis=1)


def repair_short_traces(
    lines: dict[int, FloatArray],
    pixel_mm: float,
    *,
    ratio: float = 0.8,
    agree_mm: float = SHORT_TRACE_AGREE_MM,
) -> dict[int, FloatArray]:
    """Replace traces that stop well short of their slice's share of the joint (the walker ended at a gap,
    as across an ankylosed segment, or started late) by blending the nearest full traces on either side.

    A joint's length changes smoothly from slice to slice, so the expected length on each slice is a
    quadratic in the slice index, fitted to the traced lengths with the short ones left out (three
    rounds); a trace shorter than ``ratio`` times that is short. Its replacement blends the nearest full
    traces above and below (same arc-length fractions, weighted by slice distance), and is taken only
    when the short trace lies along it (90% of its points within ``agree_mm``): a trace that is short
    because the joint is, and so runs elsewhere than the blend, is kept, as are short traces without full
    ones on both sides and joints traced on fewer than five slices. ``lines`` are in pixels of
    ``pixel_mm``.
    """
    ks = sorted(lines)
    if len(ks) < 5:
        return lines
    x = np.asarray(ks, dtype=np.float64)
    lengths = np.array([cumulative_length(lines[k])[-1] for k in ks])
    full = np.ones(len(ks), dtype=bool)
    for _ in range(3):
        expected = np.polyval(np.polyfit(x[full], lengths[full], 2), x)
        full = lengths >= ratio * expected
        if full.sum() < 3:
            return lines
    out = dict(lines)
    for i in np.flatnonzero(~full):
        below = [j for j in range(i - 1, -1, -1) if full[j]]
        above = [j for j in range(i + 1, len(ks)) if full[j]]
        if below and above:
            lo, hi = below[0], above[0]
            w = (x[i] - x[lo]) / (x[hi] - x[lo])
            blend = (1 - w) * _by_arc(lines[ks[lo]], 64) + w * _by_arc(lines[ks[hi]], 64)
            if np.percentile(one_sided_distances(lines[ks[i]], blend, 0.5), 90) * pixel_mm <= agree_mm:
                out[ks[i]] = blend
    return out
