"""Simulated readers for consensus tests and benchmarks (SPEC.md §6.5).

Binary readers: sensitivity U(0.6, 0.95), specificity U(0.8, 0.98). Ordinal readers: bias b ∈ {-1, 0, +1},
spread sigma ~ U(0.3, 1.0), confusion from the §4.6 model. Coverage: each reader reads a random 30-100% of
items, 1-3 sessions each; or a fixed number of distinct readers per item (benchmark design).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ml.consensus.ordinal import ordinal_log_confusion

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


@dataclass(frozen=True)
class SimulatedReadings:
    """Flat readings (n_readings,) and the truth (n_items,) they were drawn from."""

    items: IntArray
    readers: IntArray
    sessions: IntArray
    labels: IntArray
    truth: IntArray


def binary_confusion(n_readers: int, rng: np.random.Generator) -> FloatArray:
    """(R, 2, 2) confusion matrices with sensitivity U(0.6, 0.95) and specificity U(0.8, 0.98)."""
    sens = rng.uniform(0.6, 0.95, n_readers)
    spec = rng.uniform(0.8, 0.98, n_readers)
    return np.stack([np.stack([spec, 1 - spec], 1), np.stack([1 - sens, sens], 1)], axis=1)


def ordinal_confusion(
    n_readers: int, n_classes: int, rng: np.random.Generator
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Return (confusion (R, K, K), bias (R,), spread (R,)) with b ∈ {-1, 0, 1}, sigma ~ U(0.3, 1.0)."""
    bias = rng.choice([-1.0, 0.0, 1.0], size=n_readers)
    spread = rng.uniform(0.3, 1.0, n_readers)
    return np.exp(ordinal_log_confusion(bias, spread, n_classes)), bias, spread


def draw_labels(
    truth: IntArray, items: IntArray, readers: IntArray, confusion: FloatArray, rng: np.random.Generator
) -> IntArray:
    """(n,) labels drawn from confusion[reader, truth[item], :] by inverse CDF."""
    cdf = np.cumsum(confusion[readers, truth[items]], axis=1)
    u = rng.random(items.size)
    drawn = np.minimum((u[:, None] > cdf).sum(axis=1), confusion.shape[2] - 1)
    return np.asarray(drawn, dtype=np.int64)


def simulate_coverage(
    truth: ArrayLike,
    confusion: FloatArray,
    *,
    coverage: tuple[float, float] = (0.3, 1.0),
    sessions: tuple[int, int] = (1, 3),
    seed: int = 0,
) -> SimulatedReadings:
    """Each reader reads a random share U(coverage) of items in 1..3 sessions (SPEC §6.5)."""
    z = np.asarray(truth, dtype=np.int64)
    rng = np.random.default_rng(seed)
    n_readers = confusion.shape[0]
    share = np.asarray(rng.uniform(coverage[0], coverage[1], size=n_readers))
    n_sess = np.asarray(rng.integers(sessions[0], sessions[1] + 1, size=n_readers))
    reader, item = np.nonzero(rng.random((n_readers, z.size)) < share[:, None])
    reps = n_sess[reader]
    items = np.repeat(item, reps).astype(np.int64)
    readers = np.repeat(reader, reps).astype(np.int64)
    session = (np.arange(reps.sum()) - np.repeat(np.cumsum(reps) - reps, reps)).astype(np.int64)
    labels = draw_labels(z, items, readers, confusion, rng)
    return SimulatedReadings(items, readers, session, labels, z)


def simulate_fixed(
    truth: ArrayLike, confusion: FloatArray, *, per_item: int = 3, seed: int = 0
) -> SimulatedReadings:
    """Each item is read once by ``per_item`` distinct random readers (benchmark design)."""
    z = np.asarray(truth, dtype=np.int64)
    rng = np.random.default_rng(seed)
    n_readers = confusion.shape[0]
    if per_item > n_readers:
        raise ValueError("per_item exceeds the number of readers")
    keys = rng.random((z.size, n_readers), dtype=np.float32)
    readers = np.argpartition(keys, per_item - 1, axis=1)[:, :per_item].ravel().astype(np.int64)
    items = np.repeat(np.arange(z.size, dtype=np.int64), per_item)
    labels = draw_labels(z, items, readers, confusion, rng)
    return SimulatedReadings(items, readers, np.zeros_like(items), labels, z)
