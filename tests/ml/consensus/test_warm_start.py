"""Warm-started EM (``fit(..., init=...)``, ``fit_patterns``): the same answer as a cold fit, in fewer steps.

This is what the product's incremental refit relies on: the previous run's parameters, a few readings
more, and EM that stops within a few iterations at the cold fit's fixed point.
"""

from __future__ import annotations

import numpy as np
import pytest

from ml.consensus import ConsensusResult, Smoothing, WarmStart, fit, fit_patterns, patterns
from ml.consensus.result import ModelName
from ml.consensus.simulate import SimulatedReadings, ordinal_confusion, simulate_fixed

SMOOTH = Smoothing(diagonal=1.0, off_diagonal=0.1, prior=1.0)


def _fit(r: SimulatedReadings, k: int, model: ModelName, init: WarmStart | None = None) -> ConsensusResult:
    return fit(r.items, r.readers, r.labels, k, model=model, smoothing=SMOOTH, tol=1e-9, init=init)


@pytest.mark.parametrize("model", ["full", "one_coin"])
def test_warm_start_from_the_converged_parameters_gives_the_cold_answer_at_once(binary_readings, model):
    cold = _fit(binary_readings, 2, model)
    warm = _fit(binary_readings, 2, model, init=cold.warm_start())
    assert cold.converged and warm.converged
    assert warm.n_iter <= 3 < cold.n_iter
    # EM's stop rule leaves the cold fit ~1e-5 short of its fixed point; the warm fit is as close
    np.testing.assert_allclose(warm.posterior, cold.posterior, atol=1e-4)
    np.testing.assert_allclose(warm.confusion, cold.confusion, atol=1e-4)
    assert np.array_equal(warm.labels, cold.labels)


def test_warm_start_after_more_readings_converges_to_the_cold_fit_in_fewer_iterations(binary_readers):
    truth = (np.random.default_rng(21).random(4000) < 0.3).astype(np.int64)
    full = simulate_fixed(truth, binary_readers, per_item=3, seed=22)
    cut = full.items < 3900  # the last 100 items (300 readings) arrive after the first fit
    first = fit(full.items[cut], full.readers[cut], full.labels[cut], 2, smoothing=SMOOTH, tol=1e-9)
    cold = fit(full.items, full.readers, full.labels, 2, smoothing=SMOOTH, tol=1e-9)
    warm = fit(full.items, full.readers, full.labels, 2, smoothing=SMOOTH, tol=1e-9, init=first)
    assert warm.n_iter < cold.n_iter
    np.testing.assert_allclose(warm.posterior, cold.posterior, atol=1e-4)
    np.testing.assert_allclose(warm.confusion, cold.confusion, atol=1e-4)
    assert np.array_equal(warm.labels, cold.labels)


def test_ordinal_warm_start_and_a_new_reader_start_as_the_mean_reader():
    rng = np.random.default_rng(31)
    confusion, _, _ = ordinal_confusion(6, 5, rng)
    truth = rng.integers(0, 5, 1500)
    r = simulate_fixed(truth, confusion, per_item=3, seed=32)
    keep = (r.readers < 5) | (r.items >= 1450)  # reader 5 joins late and reads the last 50 cases
    r = SimulatedReadings(r.items[keep], r.readers[keep], r.sessions[keep], r.labels[keep], r.truth)
    old = r.readers < 5
    first = fit(r.items[old], r.readers[old], r.labels[old], 5, model="ordinal", n_readers=5, tol=1e-11)
    # the ordinal model's EM creeps: both fits end ~3e-4 from the shared fixed point at tol=1e-11
    cold = fit(r.items, r.readers, r.labels, 5, model="ordinal", tol=1e-11)
    warm = fit(r.items, r.readers, r.labels, 5, model="ordinal", tol=1e-11, init=first.warm_start())
    assert warm.n_iter < cold.n_iter
    np.testing.assert_allclose(warm.posterior, cold.posterior, atol=1e-3)
    assert np.array_equal(warm.labels, cold.labels)


def test_fit_patterns_on_the_pattern_table_equals_fit_on_items(binary_readings):
    r = binary_readings
    gold = {0: int(r.truth[0]), 5: int(r.truth[5])}
    pats = patterns(r.items, r.readers, r.labels, 2, gold=gold)
    by_item = fit(r.items, r.readers, r.labels, 2, gold=gold, smoothing=SMOOTH)
    by_pattern = fit_patterns(pats, int(r.readers.max()) + 1, 2, smoothing=SMOOTH)
    np.testing.assert_allclose(by_pattern.posterior, by_item.posterior, atol=1e-12)
    assert by_pattern.n_iter == by_item.n_iter


def test_a_warm_start_of_the_wrong_shape_is_refused(binary_readings):
    r = binary_readings
    three = WarmStart(np.full((10, 3, 3), 1 / 3), np.full(3, 1 / 3))
    with pytest.raises(ValueError, match="classes"):
        fit(r.items, r.readers, r.labels, 2, init=three)
    many = WarmStart(np.full((11, 2, 2), 0.5), np.full(2, 0.5))
    with pytest.raises(ValueError, match="readers"):
        fit(r.items, r.readers, r.labels, 2, init=many)
    with pytest.raises(ValueError, match="bias and spread"):
        fit(
            r.items,
            r.readers,
            r.labels,
            2,
            model="ordinal",
            init=WarmStart(np.full((10, 2, 2), 0.5), np.full(2, 0.5)),
        )
