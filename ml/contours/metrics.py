"""Contour accuracy: symmetric RMSE between two open polylines (SPEC §7.1 metric)."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from ml.contours.geometry import FloatArray, as_polyline, project_to_polyline, resample_polyline

PAPER_RMSE_MM = 2.76  # paper (a) abstract: RMSE below this for >= 95% of test images


def one_sided_distances(traced: ArrayLike, reference: ArrayLike, spacing: float) -> FloatArray:
    """Distances (K,) from points sampled every ``spacing`` along ``traced`` to the ``reference`` segments."""
    samples = resample_polyline(as_polyline(traced), spacing)
    return project_to_polyline(samples, reference).distance


def symmetric_rmse(a: ArrayLike, b: ArrayLike, *, spacing: float = 0.25) -> float:
    """sqrt(mean d^2) over samples of ``a`` against ``b`` pooled with samples of ``b`` against ``a``.

    ``a`` (N, D) and ``b`` (M, D) share units (mm in patient space, or px); ``spacing`` in those units.
    """
    d = np.concatenate([one_sided_distances(a, b, spacing), one_sided_distances(b, a, spacing)])
    return float(np.sqrt(np.mean(d**2)))


def summarise_rmse(values_mm: ArrayLike, threshold_mm: float = PAPER_RMSE_MM) -> dict[str, float]:
    """Acceptance summary: count, mean, median, 95th percentile and fraction below ``threshold_mm``."""
    v = np.asarray(values_mm, dtype=np.float64)
    if v.size == 0:
        return {
            "n": 0.0,
            "mean": float("nan"),
            "median": float("nan"),
            "p95": float("nan"),
            "frac_below": float("nan"),
        }
    return {
        "n": float(v.size),
        "mean": float(v.mean()),
        "median": float(np.median(v)),
        "p95": float(np.percentile(v, 95)),
        "frac_below": float(np.mean(v < threshold_mm)),
    }
