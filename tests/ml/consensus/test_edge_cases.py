"""Degenerate inputs: empty, one reader, one reading per reader, unanimous readers, unread items."""

from __future__ import annotations

import numpy as np
import pytest

from ml.consensus import MODELS, ConsensusResult, fit


def _assert_clean(result: ConsensusResult) -> None:
    for array in (result.posterior, result.confusion, result.confusion_counts, result.prior, result.entropy):
        assert np.all(np.isfinite(array))
    if result.posterior.size:
        np.testing.assert_allclose(result.posterior.sum(axis=1), 1.0)
    np.testing.assert_allclose(result.confusion.sum(axis=2), 1.0)
    assert np.isfinite(result.log_likelihood) and np.isfinite(result.objective)


@pytest.mark.parametrize("model", MODELS)
def test_empty_input(model) -> None:
    result = fit([], [], [], 2, model=model)
    assert result.posterior.shape == (0, 2) and result.confusion.shape == (0, 2, 2)
    np.testing.assert_allclose(result.prior, [0.5, 0.5])
    _assert_clean(result)


@pytest.mark.parametrize("model", MODELS)
def test_declared_items_and_readers_without_readings_get_the_prior(model) -> None:
    result = fit([], [], [], 3, model=model, n_items=4, n_readers=2)
    np.testing.assert_allclose(result.posterior, np.full((4, 3), 1 / 3))
    assert result.confusion.shape == (2, 3, 3)
    _assert_clean(result)


@pytest.mark.parametrize("model", MODELS)
def test_single_reader(model) -> None:
    result = fit([0, 1, 2, 3], [0, 0, 0, 0], [1, 0, 1, 1], 2, model=model)
    _assert_clean(result)
    np.testing.assert_array_equal(result.labels, [1, 0, 1, 1])


@pytest.mark.parametrize("model", MODELS)
def test_one_reading_per_reader(model) -> None:
    result = fit([0, 1, 2], [0, 1, 2], [1, 0, 2], 3, model=model)
    _assert_clean(result)


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("smoothing", [None, (1.0, 0.1)])
def test_all_readers_agree_on_one_class(model, smoothing) -> None:
    items, readers = np.repeat(np.arange(20), 3), np.tile(np.arange(3), 20)
    result = fit(items, readers, np.zeros(60, dtype=int), 2, model=model, smoothing=smoothing)
    _assert_clean(result)
    assert np.all(result.labels == 0)


def test_unread_items_in_between_get_the_prior() -> None:
    result = fit([0, 0, 3, 3], [0, 1, 0, 1], [1, 1, 0, 0], 2)
    np.testing.assert_allclose(result.posterior[1], result.prior)
    np.testing.assert_allclose(result.posterior[2], result.prior)
    assert result.entropy[1] == pytest.approx(-np.sum(result.prior * np.log(result.prior)))


def test_single_class_problem() -> None:
    result = fit([0, 1], [0, 1], [0, 0], 1)
    np.testing.assert_allclose(result.posterior, 1.0)
    _assert_clean(result)


def test_uncertain_items_flagged_for_adjudication() -> None:
    result = fit([0, 0, 1, 1], [0, 1, 0, 1], [1, 1, 0, 1], 2, smoothing=(1.0, 0.1))
    flagged = result.uncertain(0.99)
    assert flagged.dtype == bool and flagged.shape == (2,)
