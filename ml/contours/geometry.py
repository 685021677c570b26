"""Polyline geometry shared by targets, walker and metrics: nearest points, arc length, resampling.

Points are arrays (N, D) with D = 2 (pixel x = column, y = row) or 3 (patient mm); a polyline is an
ordered (M, D) array with M >= 2 (M = 1 is treated as a single point).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]
_CHUNK = 1 << 22  # points x segments per block, bounds the temporary arrays to ~100 MB


def as_polyline(points: ArrayLike) -> FloatArray:
    """Return ``points`` as float64 (M, D) with consecutive duplicates removed; raises ValueError if empty."""
    p = np.asarray(points, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] == 0:
        raise ValueError(f"a polyline must be (M, D) with M >= 1, got shape {p.shape}")
    keep = np.r_[True, np.any(np.diff(p, axis=0) != 0, axis=1)]
    return p[keep]


@dataclass(frozen=True)
class Projection:
    """Nearest polyline point per query point: distance (N,), point (N, D), segment index (N,), t (N,)."""

    distance: FloatArray
    point: FloatArray
    segment: NDArray[np.int64]
    t: FloatArray


def project_to_polyline(points: ArrayLike, polyline: ArrayLike) -> Projection:
    """Project points (N, D) onto the segments of a polyline (M, D); vectorised, chunked over N."""
    q = np.asarray(points, dtype=np.float64)
    line = as_polyline(polyline)
    if line.shape[0] == 1:
        line = np.vstack([line, line])
    a, b = line[:-1], line[1:]
    ab = b - a
    ab2 = np.maximum((ab * ab).sum(1), 1e-12)
    n = q.shape[0]
    dist, point = np.empty(n), np.empty_like(q)
    seg, tt = np.empty(n, dtype=np.int64), np.empty(n)
    step = max(1, _CHUNK // max(len(a), 1))
    for lo in range(0, n, step):
        qc = q[lo : lo + step, None, :]  # (n, 1, D)
        t = np.clip(((qc - a) * ab).sum(-1) / ab2, 0.0, 1.0)  # (n, S)
        near = a + t[..., None] * ab  # (n, S, D)
        d2 = ((qc - near) ** 2).sum(-1)
        best = d2.argmin(1)
        rows = np.arange(len(best))
        dist[lo : lo + step] = np.sqrt(d2[rows, best])
        point[lo : lo + step] = near[rows, best]
        seg[lo : lo + step], tt[lo : lo + step] = best, t[rows, best]
    return Projection(dist, point, seg, tt)


def cumulative_length(polyline: ArrayLike) -> FloatArray:
    """Arc length from the first vertex to each vertex, (M,)."""
    p = np.asarray(polyline, dtype=np.float64)
    out: FloatArray = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(p, axis=0), axis=1))])
    return out


def resample_polyline(polyline: ArrayLike, spacing: float) -> FloatArray:
    """Resample at fixed arc-length ``spacing`` (> 0), keeping both ends: (M, D) -> (K, D), K >= 2.

    The last interval is shorter than ``spacing`` when the length is not a multiple of it.
    """
    if spacing <= 0:
        raise ValueError("spacing must be positive")
    p = as_polyline(polyline)
    if p.shape[0] == 1:
        return np.vstack([p, p])
    s = cumulative_length(p)
    targets = np.arange(0.0, s[-1], spacing)
    if s[-1] - targets[-1] > 1e-9 * max(1.0, s[-1]):
        targets = np.r_[targets, s[-1]]
    if targets.size == 1:
        targets = np.r_[targets, s[-1]]
    return np.stack([np.interp(targets, s, p[:, d]) for d in range(p.shape[1])], axis=1)


def segment_directions(polyline: ArrayLike) -> FloatArray:
    """Unit direction of each segment, (M-1, D); zero-length segments give zero vectors."""
    p = np.asarray(polyline, dtype=np.float64)
    d = np.diff(p, axis=0)
    norm = np.linalg.norm(d, axis=1, keepdims=True)
    out: FloatArray = np.divide(d, norm, out=np.zeros_like(d), where=norm > 0)
    return out
