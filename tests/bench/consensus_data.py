"""Synthetic reading sets for ``bench_consensus`` (SPEC.md §6.5 simulated readers, benchmark panel).

Ten readers: three good, three average, two biased (binary: an over- and an under-caller; ordinal: bias
+1 and -1), one near-random and one adversarial; three distinct readers per item. Binary prior
0.85/0.15; five-class ordinal prior (0.35, 0.25, 0.2, 0.12, 0.08). A third set has many readers with few
reads each (about 45), where the two-parameter ordinal model should beat full confusion matrices.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ml.consensus.ordinal import ordinal_log_confusion
from ml.consensus.simulate import SimulatedReadings, ordinal_confusion, simulate_fixed

BINARY_PRIOR = np.array([0.85, 0.15])
ORDINAL_PRIOR = np.array([0.35, 0.25, 0.20, 0.12, 0.08])


@dataclass(frozen=True)
class BenchData:
    """One benchmark data set: readings, the generating confusion (R, K, K) and class count."""

    name: str
    readings: SimulatedReadings
    confusion: NDArray[np.float64]
    n_classes: int


def binary_panel() -> NDArray[np.float64]:
    """(10, 2, 2) confusion of the binary panel, rows = truth (negative, positive)."""
    sens_spec = [
        (0.95, 0.97),
        (0.93, 0.96),
        (0.96, 0.95),  # good
        (0.80, 0.90),
        (0.78, 0.88),
        (0.82, 0.91),  # average
        (0.95, 0.70),
        (0.55, 0.98),  # biased: over-caller, under-caller
        (0.55, 0.50),  # near-random
        (0.25, 0.30),  # adversarial
    ]
    return np.array([[[spec, 1 - spec], [1 - sens, sens]] for sens, spec in sens_spec])


def ordinal_panel() -> NDArray[np.float64]:
    """(10, 5, 5) confusion of the ordinal panel (SPEC §4.6 model; the adversary reverses the scale)."""
    bias = np.array([0, 0, 0, 0, 0, 0, 1, -1, 0, 0], dtype=float)
    spread = np.array([0.35, 0.4, 0.45, 0.7, 0.8, 0.9, 0.5, 0.5, 4.0, 0.5])
    conf = np.exp(ordinal_log_confusion(bias, spread, 5))
    conf[9] = conf[9][:, ::-1]  # adversarial: reports 4 - grade
    return conf


def make_data(kind: str, n_items: int, seed: int = 0) -> BenchData:
    """Draw one data set: kind is "binary", "ordinal" or "ordinal-sparse"."""
    rng = np.random.default_rng(seed)
    if kind == "binary":
        conf, prior, k = binary_panel(), BINARY_PRIOR, 2
    elif kind == "ordinal":
        conf, prior, k = ordinal_panel(), ORDINAL_PRIOR, 5
    elif kind == "ordinal-sparse":
        conf, _, _ = ordinal_confusion(max(20, n_items // 15), 5, rng)
        prior, k = ORDINAL_PRIOR, 5
    else:
        raise ValueError(f"unknown data kind {kind!r}")
    truth = rng.choice(k, size=n_items, p=prior).astype(np.int64)
    return BenchData(kind, simulate_fixed(truth, conf, per_item=3, seed=seed + 1), conf, k)
