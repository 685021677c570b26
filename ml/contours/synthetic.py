"""Toy two-joint coronal slices for tests and smoke runs (the realistic DICOM phantoms are the phantom generator's).

Each joint is a gently S-bent curve running superolateral -> inferomedial, drawn as a dark band
(joint space and cortices) on bright noisy "marrow"; the patient's left joint lies at larger column
index (row direction +x, DICOM LPS). Pixel coordinates are (x = column, y = row).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from ml.contours.files import ScanArrays
from ml.contours.geometry import project_to_polyline

F64 = NDArray[np.float64]
CORONAL_IOP = (1.0, 0.0, 0.0, 0.0, 0.0, -1.0)


def joint_curve(rng: np.random.Generator, top: F64, bottom: F64, bend_px: float, n: int = 64) -> F64:
    """Polyline (n, 2) from ``top`` to ``bottom`` with a sinusoidal S-bend of amplitude ``bend_px``."""
    t = np.linspace(0.0, 1.0, n)[:, None]
    line = top + t * (bottom - top)
    d = bottom - top
    normal = np.array([-d[1], d[0]]) / np.linalg.norm(d)
    phase = rng.uniform(0, np.pi)
    out: F64 = line + bend_px * np.sin(2 * np.pi * t + phase) * np.sin(np.pi * t) * normal
    return out


def draw_curves(
    shape: tuple[int, int],
    curves: list[F64],
    rng: np.random.Generator,
    *,
    width_px: float = 2.5,
    noise: float = 0.08,
) -> NDArray[np.float32]:
    """Bright noisy background (~0.7) with each curve drawn as a dark band: (H, W) float32."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w]
    grid = np.stack([xx.ravel(), yy.ravel()], axis=1).astype(np.float64)
    img = np.full(h * w, rng.uniform(0.6, 0.8))
    for curve in curves:
        d = project_to_polyline(grid, curve).distance
        dark = np.exp(-0.5 * (d / (0.5 * width_px)) ** 4)  # flat-bottomed dark band
        img = img * (1 - 0.85 * dark)
    img = img + noise * rng.standard_normal(h * w)
    return img.reshape(h, w).astype(np.float32)


def toy_scan(
    seed: int,
    *,
    n_slices: int = 2,
    shape: tuple[int, int] = (160, 200),
    pixel_mm: float = 0.9,
    length_mm: tuple[float, float] | None = None,
) -> ScanArrays:
    """A reproducible toy scan with both joints on every slice.

    Joint ends lie at fixed fractions of the image height, or, with ``length_mm`` = (low, high), the
    vertical extent is drawn uniformly from that range in mm (SPEC §6.3: 40-65 mm on mid slices).
    """
    rng = np.random.default_rng(seed)
    h, w = shape
    images, polylines = [], {}
    for s in range(n_slices):
        curves = {}
        for side, sign in (("left", 1.0), ("right", -1.0)):
            cx = w / 2 + sign * rng.uniform(0.22, 0.3) * w
            if length_mm is None:
                top_y, bottom_y = rng.uniform(0.15, 0.3) * h, rng.uniform(0.7, 0.85) * h
            else:
                half, cy = rng.uniform(*length_mm) / pixel_mm / 2, h / 2 + rng.uniform(-0.05, 0.05) * h
                top_y, bottom_y = cy - half, cy + half
            top = np.array([cx + sign * rng.uniform(6, 12), top_y])
            bottom = np.array([cx - sign * rng.uniform(6, 12), bottom_y])
            curves[side] = joint_curve(rng, top, bottom, rng.uniform(2, 5))
            polylines[(s, side)] = curves[side]
        images.append(draw_curves(shape, list(curves.values()), rng)[None])
    ipp = np.array([[-w * pixel_mm / 2, 10.0 + 4.0 * s, h * pixel_mm / 2] for s in range(n_slices)])
    return ScanArrays(
        f"toy-{seed}", np.stack(images), np.array([pixel_mm, pixel_mm]), ipp, np.array(CORONAL_IOP), polylines
    )
