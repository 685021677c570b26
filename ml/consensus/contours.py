"""Consensus of several readers' open joint contours on one slice, weighted by estimated precision.

Each reader's polyline (n_i, 3) in mm, ordered start (superior) → end (inferior), SPEC.md §6.3/§7.1, is
resampled to M points at equal arc-length spacing; the consensus is the pointwise precision-weighted mean,
each reader's weight 1 / (mean squared symmetric distance to the consensus of the *other* readers + ε),
re-estimated until the weights are stable. Leaving the reader out matters: with self-inclusive weights the
fixed point at equal weights is unstable and the consensus collapses onto one reader. Spirit of STAPLE
(Warfield et al., IEEE TMI 23:903, 2004) for curves; distances are symmetric point-to-polyline, in mm.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]

EPS_MM2 = 1e-6  # (1 µm)²: floor on mean squared distance so identical contours get finite, equal weights


@dataclass(frozen=True)
class ContourConsensus:
    """Consensus polyline of one joint on one slice.

    polyline: (M, 3) consensus points in mm, start → end. weights: (R,) reader weights, sum 1.
    mean_distance_mm, p95_distance_mm: (R,) symmetric point-to-polyline distance of each reader's
    contour to the consensus (mean, 95th percentile). reversed: (R,) readers whose contour was drawn end →
    start and was flipped. disagreement_mm: mean of ``mean_distance_mm`` over readers (0 for one reader);
    callers flag the slice when it exceeds their threshold (``flagged``).
    """

    polyline: FloatArray
    weights: FloatArray
    mean_distance_mm: FloatArray
    p95_distance_mm: FloatArray
    reversed: NDArray[np.bool_]
    disagreement_mm: float
    n_iter: int
    converged: bool

    def flagged(self, threshold_mm: float) -> bool:
        """True when readers disagree by more than ``threshold_mm`` on average."""
        return self.disagreement_mm > threshold_mm


def resample_polyline(polyline: ArrayLike, n_points: int) -> FloatArray:
    """Resample (n, D) points to (n_points, D) at equal arc-length spacing; a point or zero length repeats."""
    p = np.asarray(polyline, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] == 0:
        raise ValueError("a polyline must be a non-empty (n, D) array")
    arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(p, axis=0), axis=1))])
    if arc[-1] == 0.0:
        return np.repeat(p[:1], n_points, axis=0)
    keep = np.concatenate([[True], np.diff(arc) > 0])  # drop duplicate points, np.interp needs increasing x
    target = np.linspace(0.0, arc[-1], n_points)
    return np.stack([np.interp(target, arc[keep], p[keep, d]) for d in range(p.shape[1])], axis=1)


def point_to_polyline(points: ArrayLike, polyline: ArrayLike) -> FloatArray:
    """(P,) Euclidean distance of each of points (P, D) to the nearest segment of polyline (S + 1, D)."""
    q = np.asarray(points, dtype=np.float64)
    line = np.asarray(polyline, dtype=np.float64)
    if line.shape[0] == 1:
        return np.asarray(np.linalg.norm(q - line[0], axis=1))
    a, seg = line[:-1], np.diff(line, axis=0)  # (S, D)
    length2 = np.einsum("sd,sd->s", seg, seg)
    # one (P, S) array per coordinate, not one (P, S, D) array: the same sums, 4-5x faster for D = 3
    rel = [q[:, d, None] - a[None, :, d] for d in range(q.shape[1])]  # point minus segment start
    t = rel[0] * seg[:, 0]
    for d in range(1, len(rel)):
        t += rel[d] * seg[:, d]
    t /= np.where(length2 > 0, length2, 1.0)
    np.clip(t, 0.0, 1.0, out=t)  # the nearest point's position along each segment
    squared = np.zeros_like(t)
    for d, r in enumerate(rel):
        r -= t * seg[:, d]
        r *= r
        squared += r
    return np.asarray(np.sqrt(squared.min(axis=1)))


def symmetric_distances(a: ArrayLike, b: ArrayLike) -> FloatArray:
    """Distances of a's points to polyline b and of b's points to polyline a, concatenated, in mm."""
    return np.concatenate([point_to_polyline(a, b), point_to_polyline(b, a)])


def _orient(curves: FloatArray) -> NDArray[np.bool_]:
    """Flip, in place, contours (R, M, D) drawn against the majority direction; return the flipped mask."""

    def closer_reversed(curve: FloatArray, ref: FloatArray) -> bool:
        forward = np.sum((curve - ref) ** 2)
        return bool(np.sum((curve[::-1] - ref) ** 2) < forward)

    flip = np.array([closer_reversed(c, curves[0]) for c in curves])  # loop over readers
    if flip.sum() * 2 > flip.size:  # the majority drew against reader 0: keep the majority's direction
        flip = ~flip
    curves[flip] = curves[flip, ::-1]
    return flip


def _leave_one_out_msd(curves: FloatArray, weights: FloatArray) -> FloatArray:
    """(R,) mean squared symmetric distance of each reader to the weighted consensus of the others."""
    n_readers = curves.shape[0]
    if n_readers == 1:
        return np.zeros(1)
    msd = np.empty(n_readers)
    for r in range(n_readers):  # loop over readers (a handful)
        others = weights.copy()
        others[r] = 0.0
        total = others.sum()
        others = (
            others / total if total > 0 else np.where(np.arange(n_readers) == r, 0.0, 1.0 / (n_readers - 1))
        )
        msd[r] = float(np.mean(symmetric_distances(curves[r], np.tensordot(others, curves, axes=1)) ** 2))
    return msd


def contour_consensus(
    polylines: Sequence[ArrayLike],
    *,
    n_points: int = 100,
    max_iter: int = 50,
    tol: float = 1e-6,
    eps_mm2: float = EPS_MM2,
) -> ContourConsensus:
    """Combine R readers' open polylines (each (n_i, 3) mm, start → end) into one consensus.

    n_points: M, arc-length samples per contour. Weights are re-estimated until their largest change is
    below ``tol`` or ``max_iter`` is reached. Readers drawn end → start are flipped (``reversed``).
    One reader: the consensus is that contour, weight 1, distance 0. Raises ValueError without readers.
    """
    if len(polylines) == 0:
        raise ValueError("contour consensus needs at least one polyline")
    if n_points < 2:
        raise ValueError("n_points must be >= 2")
    curves = np.stack([resample_polyline(p, n_points) for p in polylines])  # (R, M, D)
    flipped = _orient(curves)
    weights = np.full(curves.shape[0], 1.0 / curves.shape[0])
    converged, n_iter = False, 0
    for n_iter in range(1, max_iter + 1):  # noqa: B007 (n_iter is reported)
        precision = 1.0 / (_leave_one_out_msd(curves, weights) + eps_mm2)
        updated = precision / precision.sum()
        change = float(np.max(np.abs(updated - weights)))
        weights = updated
        if change < tol:
            converged = True
            break
    consensus = np.tensordot(weights, curves, axes=1)
    dists = [symmetric_distances(c, consensus) for c in curves]
    mean_d = np.array([d.mean() for d in dists])
    p95_d = np.array([np.percentile(d, 95) for d in dists])
    return ContourConsensus(
        consensus, weights, mean_d, p95_d, flipped, float(mean_d.mean()), n_iter, converged
    )
