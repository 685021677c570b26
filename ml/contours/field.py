"""Training targets of the contour model (SPEC §7.1): unit vector field + start/end heatmaps.

Pixel coordinates are (x, y) = (column, row); the field's two channels are (vx, vy) in that order.
Off the curve (distance > band) pixel p gets ``(c(p) - p) / |c(p) - p|`` with c(p) the nearest point of
the polyline; inside the band it gets the unit tangent at c(p), oriented start -> end.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ml.contours.geometry import as_polyline, project_to_polyline, segment_directions

F32 = NDArray[np.float32]


@dataclass(frozen=True)
class FieldTargets:
    """Targets on an H x W grid: field (2, H, W) unit vectors, heatmaps (2, H, W) in [0, 1] (start, end),
    distance (H, W) px to the polyline, mask (H, W) 1 where the field is supervised."""

    field: F32
    heatmaps: F32
    distance: F32
    mask: F32


def pixel_grid(shape: tuple[int, int]) -> NDArray[np.float64]:
    """Pixel centres of an (H, W) grid as (H*W, 2) (x, y) points, row-major."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w]
    return np.stack([xx.ravel(), yy.ravel()], axis=1).astype(np.float64)


def gaussian_heatmap(shape: tuple[int, int], centre_xy: ArrayLike, sigma_px: float) -> F32:
    """Unnormalised Gaussian (peak 1) centred at (x, y) on an (H, W) grid."""
    h, w = shape
    cx, cy = np.asarray(centre_xy, dtype=np.float64)
    gx = np.exp(-((np.arange(w) - cx) ** 2) / (2 * sigma_px**2))
    gy = np.exp(-((np.arange(h) - cy) ** 2) / (2 * sigma_px**2))
    return np.outer(gy, gx).astype(np.float32)


def field_targets(
    polyline_xy: ArrayLike,
    shape: tuple[int, int],
    *,
    band_px: float = 2.0,
    sigma_px: float = 2.0,
    mask_radius_px: float | None = None,
    band_pull: float = 0.0,
) -> FieldTargets:
    """Build vector-field, heatmap, distance and mask targets for one polyline (M, 2) on an (H, W) grid.

    ``mask_radius_px`` None supervises every pixel; otherwise only pixels within that distance.
    ``band_pull`` > 0 (not in SPEC §7.1, which uses 0) tilts the in-band vectors towards the curve,
    ``normalise(tangent + band_pull * (c(p) - p) / band_px)``: pure tangent on the curve, and a
    restoring component that stops a walker from drifting anywhere inside the band.
    Raises ValueError for a polyline with fewer than two distinct points.
    """
    line = as_polyline(polyline_xy)
    if line.shape[0] < 2:
        raise ValueError("the polyline needs at least two distinct points")
    h, w = shape
    grid = pixel_grid(shape)
    proj = project_to_polyline(grid, line)
    to_curve = proj.point - grid
    with np.errstate(invalid="ignore", divide="ignore"):
        towards = to_curve / proj.distance[:, None]
    tangent = segment_directions(line)[proj.segment]
    on_band = proj.distance <= band_px
    in_band = tangent
    if band_pull > 0:
        in_band = tangent + band_pull * to_curve / band_px
        in_band /= np.maximum(np.linalg.norm(in_band, axis=1, keepdims=True), 1e-12)
    vec = np.where(on_band[:, None], in_band, towards)
    field = vec.T.reshape(2, h, w).astype(np.float32)
    heat = np.stack([gaussian_heatmap(shape, line[0], sigma_px), gaussian_heatmap(shape, line[-1], sigma_px)])
    distance = proj.distance.reshape(h, w).astype(np.float32)
    mask = np.ones((h, w), np.float32) if mask_radius_px is None else (distance <= mask_radius_px)
    return FieldTargets(field, heat, distance, np.asarray(mask, dtype=np.float32))
