"""Find the two sacroiliac joints on a full coronal slice without manual input (intensity-based).

A joint is a dark line (joint space, cortices) between bright marrow on both sides, running roughly
cranio-caudally. The valley response ``min(I(x - d), I(x + d)) - I(x)`` along image rows, for a few
half-widths d, is high on such lines; smoothed along the joint direction its two strongest separated
peaks are the joints. Side comes from patient x (LPS, +x = patient left), never from screen side.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import ndimage

SIDES = ("left", "right")


def valley_response(
    image: ArrayLike, pixel_spacing: ArrayLike, half_widths_mm: tuple[float, ...] = (2.5, 3.5, 5.0)
) -> NDArray[np.float64]:
    """Dark-between-bright response (H, W) of a slice (H, W), intensity scaled to its 1-99th percentiles."""
    img = np.asarray(image, dtype=np.float64)
    dr, dc = np.asarray(pixel_spacing, dtype=np.float64).reshape(2)
    lo, hi = np.percentile(img, [1, 99])
    img = (img - lo) / max(hi - lo, 1e-6)
    img = ndimage.gaussian_filter(img, (0.7 / dr, 0.7 / dc))
    best: NDArray[np.float64] = np.zeros_like(img)
    for d_mm in half_widths_mm:
        d = max(1, round(d_mm / dc))
        best = np.maximum(best, np.minimum(_shift_columns(img, d), _shift_columns(img, -d)) - img)
    return best


def _shift_columns(img: NDArray[np.float64], d: int) -> NDArray[np.float64]:
    """``img`` (H, W) moved ``d`` columns toward larger column indices (negative: smaller), the edge
    column repeated: what ``ndimage.shift(img, (0, d), order=0, mode="nearest")`` gives, by indexing
    (0.14 ms against the interpolating shift's 0.63 ms on a 320 x 320 slice, six calls a slice)."""
    w = img.shape[1]
    index = np.clip(np.arange(w) - d, 0, w - 1)
    return img[:, index]


def locate_joints(
    image: ArrayLike,
    pixel_spacing: ArrayLike,
    image_orientation: ArrayLike = (1, 0, 0, 0, 0, -1),
    *,
    min_separation_mm: float = 40.0,
    smooth_mm: tuple[float, float] = (12.0, 3.0),
) -> dict[str, NDArray[np.float64]]:
    """Return ``{"left": (x, y), "right": (x, y)}`` pixel centres of the two joints on a slice (H, W).

    ``pixel_spacing`` is (row, column) mm; ``image_orientation`` the DICOM row/column cosines (6,).
    ``smooth_mm`` (along rows, along columns) integrates the response along the near-vertical joint.
    The second joint is the strongest peak at least ``min_separation_mm`` from the first along x.
    """
    dr, dc = np.asarray(pixel_spacing, dtype=np.float64).reshape(2)
    score = ndimage.gaussian_filter(
        valley_response(image, pixel_spacing), (smooth_mm[0] / dr, smooth_mm[1] / dc)
    )
    r1, c1 = np.unravel_index(int(np.argmax(score)), score.shape)
    suppressed = score.copy()
    sep = round(min_separation_mm / dc)
    suppressed[:, max(c1 - sep, 0) : c1 + sep + 1] = -np.inf
    r2, c2 = np.unravel_index(int(np.argmax(suppressed)), score.shape)
    peaks = [_refine(score, int(r1), int(c1)), _refine(score, int(r2), int(c2))]
    iop = np.asarray(image_orientation, dtype=np.float64).reshape(6)
    patient_x = [p[0] * dc * iop[0] + p[1] * dr * iop[3] for p in peaks]
    left = int(np.argmax(patient_x))
    return {"left": peaks[left], "right": peaks[1 - left]}


def _refine(score: NDArray[np.float64], row: int, col: int) -> NDArray[np.float64]:
    """Weighted centroid (x, y) of the above-half-peak region around a peak: the middle of the joint."""
    labels, _ = ndimage.label(score >= 0.5 * score[row, col])
    region = labels == labels[row, col]
    weights = np.where(region, score, 0.0)
    yy, xx = np.indices(score.shape)
    total = weights.sum()
    return np.array([(xx * weights).sum() / total, (yy * weights).sum() / total])
