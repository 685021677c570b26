"""Training targets of the contour model built from truth polylines (SPEC §7.1).

Pixel convention: points are ``(col, row)`` = ``(x, y)`` with pixel centres on integers (as ``points_px`` in
``truth.json``); field channels are ``(vx, vy)`` = (d col, d row).

* Off the curve, pixel p: the unit vector (c(p) - p) / |c(p) - p| toward the nearest curve point c(p).
* In the band |p - c(p)| <= w (w = 2 px): the unit tangent at c(p), oriented start -> end.
* Heatmaps: Gaussians exp(-|p - q|^2 / (2 sigma^2)) with peak 1 at each start/end point q.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.spatial import cKDTree

from ml.data.geometry import BoolArray, FloatArray, resample_by_spacing, unit_tangents
from ml.data.truth import MriTruth
from ml.phantoms.schema import JOINTS

DENSE_SPACING_PX = 0.05


def nearest_on_polylines(
    shape: tuple[int, int], polylines: Sequence[FloatArray]
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """For each pixel of an (H, W) grid, find the nearest point over all polylines (each (N, 2) (col, row)).

    Returns (nearest (H, W, 2), unit tangent there (H, W, 2), distance (H, W)); the polylines are densely
    resampled (0.05 px), so positions are exact to within 0.025 px.
    """
    dense = [resample_by_spacing(np.asarray(p, float), DENSE_SPACING_PX) for p in polylines]
    points = np.concatenate(dense)
    tangents = np.concatenate([unit_tangents(d) for d in dense])
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]]
    grid = np.stack([cols.ravel(), rows.ravel()], axis=1).astype(float)
    dist, idx = cKDTree(points).query(grid)
    return points[idx].reshape(*shape, 2), tangents[idx].reshape(*shape, 2), dist.reshape(shape)


def vector_field_target(
    shape: tuple[int, int], polylines: Sequence[FloatArray], band_px: float = 2.0
) -> tuple[FloatArray, BoolArray]:
    """Build the unit vector field (2, H, W) float32 and the on-curve band mask (H, W) bool.

    ``polylines``: one (N, 2) (col, row) array per joint, ordered start -> end.
    """
    nearest, tangent, dist = nearest_on_polylines(shape, polylines)
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]]
    toward = nearest - np.stack([cols, rows], axis=-1)
    toward /= np.maximum(np.linalg.norm(toward, axis=-1, keepdims=True), 1e-9)
    band = dist <= band_px
    field = np.where(band[..., None], tangent, toward)
    return np.moveaxis(field, -1, 0).astype(np.float32), band


def heatmap_targets(
    shape: tuple[int, int], points: Sequence[Sequence[float]], sigma_px: float = 2.0
) -> FloatArray:
    """Gaussian heatmaps (K, H, W) float32 with peak 1 at each of K points ``(col, row)``."""
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]]
    maps = [np.exp(-((cols - c) ** 2 + (rows - r) ** 2) / (2 * sigma_px**2)) for c, r in points]
    return np.stack(maps).astype(np.float32)


def slice_targets(
    truth: MriTruth, slice_index: int, band_px: float = 2.0, sigma_px: float = 2.0
) -> dict[str, np.ndarray]:
    """Targets of one MRI slice at native resolution.

    Returns ``field`` (2, H, W), ``band`` (H, W) bool and ``heatmaps`` (4, H, W) in the order left start, left
    end, right start, right end.
    """
    geometry = truth.slice_geometry()
    shape = (geometry.rows, geometry.cols)
    records = [truth.contour(j, slice_index) for j in JOINTS]
    field, band = vector_field_target(shape, [r.polyline_px() for r in records], band_px)
    points = [p for r in records for p in (r.start_px, r.end_px)]
    return {"field": field, "band": band, "heatmaps": heatmap_targets(shape, points, sigma_px)}
