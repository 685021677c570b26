"""Property tests (hypothesis): invariances of the consensus fit on small random reading sets."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from ml.consensus import MODELS, ConsensusResult, Smoothing, fit

FIXED = {"max_iter": 30, "tol": -np.inf}  # fixed iteration count: invariances hold to rounding
SETTINGS = settings(max_examples=30, deadline=None, derandomize=True)


@st.composite
def readings(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Random flat readings: up to 12 items, 4 readers, 2-4 classes, repeats allowed."""
    n_classes = draw(st.integers(2, 4))
    n = draw(st.integers(1, 40))
    items = np.array(draw(st.lists(st.integers(0, 11), min_size=n, max_size=n)))
    readers = np.array(draw(st.lists(st.integers(0, 3), min_size=n, max_size=n)))
    labels = np.array(draw(st.lists(st.integers(0, n_classes - 1), min_size=n, max_size=n)))
    return items, readers, labels, n_classes


def _check_valid(result: ConsensusResult) -> None:
    for array in (result.posterior, result.confusion, result.prior, result.entropy, result.confusion_counts):
        assert np.all(np.isfinite(array))
    np.testing.assert_allclose(result.posterior.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(result.confusion.sum(axis=2), 1.0, atol=1e-12)
    np.testing.assert_allclose(result.prior.sum(), 1.0, atol=1e-12)
    assert np.all(result.posterior >= 0) and np.all(result.entropy >= 0)
    assert np.isfinite(result.log_likelihood)


@SETTINGS
@given(readings(), st.sampled_from(MODELS), st.sampled_from([None, (1.0, 0.1)]))
def test_posteriors_are_distributions(data, model, smoothing) -> None:
    items, readers, labels, k = data
    _check_valid(fit(items, readers, labels, k, model=model, smoothing=smoothing))


@SETTINGS
@given(readings(), st.randoms(use_true_random=False), st.sampled_from(MODELS))
def test_relabelling_readers_permutes_confusion(data, rnd, model) -> None:
    items, readers, labels, k = data
    perm = np.array(rnd.sample(range(4), 4))
    base = fit(items, readers, labels, k, model=model, n_readers=4, **FIXED)
    moved = fit(items, perm[readers], labels, k, model=model, n_readers=4, **FIXED)
    np.testing.assert_allclose(moved.posterior, base.posterior, atol=1e-8)
    np.testing.assert_allclose(moved.confusion[perm], base.confusion, atol=1e-8)
    np.testing.assert_allclose(moved.confusion_counts[perm], base.confusion_counts, atol=1e-8)


@SETTINGS
@given(readings(), st.randoms(use_true_random=False), st.sampled_from(MODELS))
def test_relabelling_items_permutes_posterior(data, rnd, model) -> None:
    items, readers, labels, k = data
    perm = np.array(rnd.sample(range(12), 12))
    base = fit(items, readers, labels, k, model=model, n_items=12, **FIXED)
    moved = fit(perm[items], readers, labels, k, model=model, n_items=12, **FIXED)
    np.testing.assert_allclose(moved.posterior[perm], base.posterior, atol=1e-8)
    np.testing.assert_allclose(moved.confusion, base.confusion, atol=1e-8)


@SETTINGS
@given(readings(), st.data())
def test_clamped_items_keep_their_class(data, draw) -> None:
    items, readers, labels, k = data
    gold_items = draw.draw(st.lists(st.integers(0, 11), max_size=5, unique=True))
    gold = {i: draw.draw(st.integers(0, k - 1)) for i in gold_items}
    result = fit(items, readers, labels, k, gold=gold, n_items=12)
    for item, cls in gold.items():
        assert result.labels[item] == cls
        assert result.posterior[item, cls] == 1.0
    _check_valid(result)


@SETTINGS
@given(readings(), st.sampled_from(MODELS))
def test_duplicating_all_data_changes_counts_only(data, model) -> None:
    # Doubling the data and the Dirichlet pseudo-counts leaves every MAP estimate unchanged. (Unsmoothed,
    # crowd-kit's 1e-10 clip on expected *counts* is not scale-invariant once a posterior underflows.)
    items, readers, labels, k = data
    smoothing, doubled_smoothing = Smoothing(1.0, 0.1, 0.5), Smoothing(2.0, 0.2, 1.0)
    base = fit(items, readers, labels, k, model=model, smoothing=smoothing, n_items=12, n_readers=4, **FIXED)
    doubled = fit(
        np.concatenate([items, items + 12]),
        np.tile(readers, 2),
        np.tile(labels, 2),
        k,
        model=model,
        smoothing=doubled_smoothing,
        n_items=24,
        n_readers=4,
        **FIXED,
    )
    np.testing.assert_allclose(doubled.confusion, base.confusion, atol=1e-7)
    np.testing.assert_allclose(doubled.prior, base.prior, atol=1e-7)
    np.testing.assert_allclose(doubled.posterior[:12], base.posterior, atol=1e-7)
    np.testing.assert_allclose(doubled.posterior[12:], base.posterior, atol=1e-7)
    np.testing.assert_allclose(doubled.confusion_counts, 2 * base.confusion_counts, atol=1e-7)
