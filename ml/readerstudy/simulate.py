"""Roe & Metz (1997) simulation of MRMC rating studies, for type I error checks, benchmarks and the demo.

The latent decision variable of reader j reading case k (truth d_k) under condition i is

    X_ijk = μ_i d_k + R_j + (τR)_ij + C_k + (τC)_ik + (RC)_jk + E_ijk,

every random effect an independent zero-mean normal with its own variance (the same for diseased and
non-diseased cases: Roe & Metz's equal-variance model). ``mu`` holds the per-condition separations; equal
separations give a null study. Ratings are the latent values themselves (continuous) or binned to 1..5.
Roe CA, Metz CE (1997). Dorfman-Berbaum-Metz method for statistical analysis of multireader, multimodality
receiver operating characteristic data: validation with computer simulation. Acad Radiol 4:298-303.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class RoeMetz:
    """Variance components of the Roe–Metz model (defaults: strongly case-correlated readings, σ²_R = σ²_TR = 0.011)."""

    reader: float = 0.011
    condition_reader: float = 0.011
    case: float = 0.3
    condition_case: float = 0.3
    reader_case: float = 0.2
    error: float = 0.2


@dataclass(frozen=True)
class SimulatedStudy:
    """Flat reading arrays (n_readings,), one per reader × condition × case."""

    reader: NDArray[np.int64]
    case: NDArray[np.int64]
    condition: NDArray[np.int64]
    truth: NDArray[np.int64]
    rating: FloatArray


def roe_metz(
    n_readers: int,
    n_negative: int,
    n_positive: int,
    mu: tuple[float, ...],
    rng: np.random.Generator,
    *,
    components: RoeMetz = RoeMetz(),
    bins: int | None = None,
) -> SimulatedStudy:
    """Draw one study. ``bins`` (e.g. 5) cuts the latent scale at equally spaced thresholds into 1..bins."""
    n_t, n_r, n_c = len(mu), n_readers, n_negative + n_positive
    truth = np.r_[np.zeros(n_negative, np.int64), np.ones(n_positive, np.int64)]
    v = components
    x = (
        np.asarray(mu)[:, None, None] * truth[None, None, :]
        + rng.normal(0, np.sqrt(v.reader), (1, n_r, 1))
        + rng.normal(0, np.sqrt(v.condition_reader), (n_t, n_r, 1))
        + rng.normal(0, np.sqrt(v.case), (1, 1, n_c))
        + rng.normal(0, np.sqrt(v.condition_case), (n_t, 1, n_c))
        + rng.normal(0, np.sqrt(v.reader_case), (1, n_r, n_c))
        + rng.normal(0, np.sqrt(v.error), (n_t, n_r, n_c))
    )
    if bins is not None:
        edges = np.linspace(-0.5, max(mu) + 0.5, bins - 1)
        x = 1.0 + np.searchsorted(edges, x).astype(np.float64)
    t, r, c = np.meshgrid(np.arange(n_t), np.arange(n_r), np.arange(n_c), indexing="ij")
    return SimulatedStudy(r.ravel(), c.ravel(), t.ravel(), truth[c.ravel()], x.ravel().astype(np.float64))
