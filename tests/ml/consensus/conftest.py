"""Fixtures for consensus tests: small simulated reading sets (SPEC.md §6.5), Django-free."""

from __future__ import annotations

import numpy as np
import pytest

from ml.consensus.simulate import SimulatedReadings, binary_confusion, simulate_coverage


@pytest.fixture(scope="session")
def binary_readers() -> np.ndarray:
    """(10, 2, 2) generating confusion matrices of ten binary readers."""
    return binary_confusion(10, np.random.default_rng(7))


@pytest.fixture(scope="session")
def binary_readings(binary_readers: np.ndarray) -> SimulatedReadings:
    """5000 items, prior 0.3 positive, each reader reads 30-100% of items in 1-3 sessions."""
    truth = (np.random.default_rng(8).random(5000) < 0.3).astype(np.int64)
    return simulate_coverage(truth, binary_readers, seed=9)
