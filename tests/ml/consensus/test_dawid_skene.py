"""Dawid-Skene EM: recovery of simulated readers, crowd-kit parity, clamping, ordinal and one-coin models."""

from __future__ import annotations

import numpy as np
import pytest

from ml.consensus import ConsensusResult, Smoothing, fit
from ml.consensus.simulate import SimulatedReadings, ordinal_confusion, simulate_coverage, simulate_fixed
from tests.ml.consensus._reference import reference_dawid_skene


def majority_vote(items: np.ndarray, labels: np.ndarray, n_items: int, n_classes: int) -> np.ndarray:
    """Plurality label per item, lowest class on ties."""
    votes = np.zeros((n_items, n_classes))
    np.add.at(votes, (items, labels), 1.0)
    return np.argmax(votes, axis=1)


def fit_sim(sim: SimulatedReadings, n_classes: int, **kwargs: object) -> ConsensusResult:
    return fit(sim.items, sim.readers, sim.labels, n_classes, **kwargs)  # type: ignore[arg-type]


def test_full_model_recovers_binary_confusion_within_0_04(binary_readings, binary_readers) -> None:
    result = fit_sim(binary_readings, 2)
    assert result.converged
    assert np.abs(result.confusion - binary_readers).max() < 0.04
    assert abs(result.prior[1] - binary_readings.truth.mean()) < 0.02


def test_ds_accuracy_at_least_majority_vote(binary_readings) -> None:
    sim = binary_readings
    result = fit_sim(sim, 2)
    mv = majority_vote(sim.items, sim.labels, sim.truth.size, 2)
    ds_acc, mv_acc = np.mean(result.labels == sim.truth), np.mean(mv == sim.truth)
    assert ds_acc >= mv_acc
    assert ds_acc > 0.97


def test_confusion_counts_sum_to_each_readers_reads(binary_readings) -> None:
    result = fit_sim(binary_readings, 2)
    reads = np.bincount(binary_readings.readers, minlength=10)
    np.testing.assert_allclose(result.n_reads, reads, rtol=1e-12)
    np.testing.assert_allclose(result.confusion.sum(axis=2), 1.0, rtol=1e-12)


def test_unsmoothed_em_matches_crowd_kit_transcription_per_iteration() -> None:
    truth = (np.random.default_rng(0).random(400) < 0.2).astype(np.int64)
    conf = np.array([[[0.9, 0.1], [0.3, 0.7]], [[0.8, 0.2], [0.1, 0.9]], [[0.6, 0.4], [0.4, 0.6]]])
    sim = simulate_fixed(truth, conf, per_item=2, seed=1)
    for n_iter in (1, 7, 40):
        ours = fit_sim(sim, 2, smoothing=None, max_iter=n_iter, tol=-np.inf)
        post, prior, confusion = reference_dawid_skene(sim.items, sim.readers, sim.labels, 2, n_iter)
        np.testing.assert_allclose(ours.posterior, post, atol=1e-10)
        np.testing.assert_allclose(ours.prior, prior, atol=1e-10)
        np.testing.assert_allclose(ours.confusion, confusion, atol=1e-10)


def test_unsmoothed_em_matches_transcription_with_gold_and_three_classes() -> None:
    rng = np.random.default_rng(3)
    items, readers = np.repeat(np.arange(60), 3), rng.integers(0, 4, 180)
    labels = rng.integers(0, 3, 180)
    gold = {0: 2, 5: 1, 9: 0}
    ours = fit(items, readers, labels, 3, smoothing=0, gold=gold, max_iter=25, tol=-np.inf)
    post, prior, confusion = reference_dawid_skene(items, readers, labels, 3, 25, gold=gold)
    np.testing.assert_allclose(ours.posterior, post, atol=1e-9)
    np.testing.assert_allclose(ours.confusion, confusion, atol=1e-9)
    np.testing.assert_allclose(ours.prior, prior, atol=1e-9)


def test_gold_items_are_clamped_and_still_calibrate_readers() -> None:
    items = np.array([0, 0, 1, 1, 2, 2])
    readers = np.array([0, 1, 0, 1, 0, 1])
    labels = np.array([1, 1, 0, 0, 1, 0])
    free = fit(items, readers, labels, 2, smoothing=None)
    clamped = fit(items, readers, labels, 2, smoothing=None, gold={0: 0, 2: 0})
    np.testing.assert_array_equal(clamped.posterior[0], [1.0, 0.0])
    np.testing.assert_array_equal(clamped.posterior[2], [1.0, 0.0])
    assert clamped.labels[0] == 0 and clamped.entropy[0] == 0.0
    assert not np.allclose(free.confusion, clamped.confusion)


def test_gold_item_without_readings_extends_n_items() -> None:
    result = fit([0, 0], [0, 1], [1, 1], 2, gold={3: 0})
    assert result.posterior.shape == (4, 2)
    np.testing.assert_array_equal(result.posterior[3], [1.0, 0.0])
    np.testing.assert_allclose(result.posterior[1], result.prior)


def test_identical_patterns_are_grouped(binary_readers) -> None:
    truth = (np.random.default_rng(4).random(5000) < 0.3).astype(np.int64)
    sim = simulate_fixed(truth, binary_readers, per_item=3, seed=5)
    result = fit_sim(sim, 2)
    assert result.n_patterns <= 120 * 8  # (10 choose 3) reader sets x 2**3 label patterns
    np.testing.assert_allclose(result.n_reads.sum(), 15000)


def test_repeat_sessions_pool_as_independent_readings() -> None:
    once = fit([0, 0, 1, 1], [0, 1, 0, 1], [1, 0, 0, 0], 2, smoothing=None, max_iter=5, tol=-np.inf)
    twice = fit([0, 0, 0, 1, 1], [0, 0, 1, 0, 1], [1, 1, 0, 0, 0], 2, smoothing=None, max_iter=5, tol=-np.inf)
    assert twice.n_reads[0] == 3 and once.n_reads[0] == 2
    assert twice.posterior[0, 1] > once.posterior[0, 1]


def test_smoothing_pins_label_identity_with_adversarial_majority() -> None:
    truth = np.repeat([0, 1], 200)
    conf = np.array([[[0.95, 0.05], [0.05, 0.95]]] * 3 + [[[0.3, 0.7], [0.7, 0.3]]] * 2)
    sim = simulate_fixed(truth, conf, per_item=5, seed=2)
    result = fit_sim(sim, 2, smoothing=Smoothing(2.0, 0.5))
    assert np.mean(result.labels == truth) > 0.95
    assert np.all(result.confusion[3:, 0, 1] > 0.5)  # adversaries recognised as such


def test_one_coin_model_reports_skills(binary_readings, binary_readers) -> None:
    result = fit_sim(binary_readings, 2, model="one_coin")
    assert result.skill is not None and result.skill.shape == (10,)
    np.testing.assert_allclose(result.confusion[:, 0, 0], result.skill)
    true_accuracy = (1 - binary_readings.truth.mean()) * binary_readers[
        :, 0, 0
    ] + binary_readings.truth.mean() * binary_readers[:, 1, 1]
    assert np.abs(result.skill - true_accuracy).max() < 0.05


def test_ordinal_model_recovers_bias_and_spread() -> None:
    rng = np.random.default_rng(11)
    conf, bias, spread = ordinal_confusion(8, 5, rng)
    truth = rng.integers(0, 5, 3000)
    sim = simulate_coverage(truth, conf, seed=12)
    result = fit_sim(sim, 5, model="ordinal", smoothing=Smoothing(0.5, 0.05))
    assert result.bias is not None and result.spread is not None
    assert np.abs(result.bias - bias).max() < 0.15
    assert np.abs(result.spread - spread).max() < 0.15
    assert np.mean(result.labels == truth) > 0.9


def test_ordinal_beats_full_with_few_reads_per_reader() -> None:
    rng = np.random.default_rng(5)
    conf, _, _ = ordinal_confusion(30, 5, rng)
    truth = rng.choice(5, size=300, p=[0.4, 0.2, 0.15, 0.15, 0.1])
    sim = simulate_fixed(truth, conf, per_item=3, seed=6)  # about 30 reads per reader
    scores = {}
    for model in ("full", "ordinal"):
        r = fit_sim(sim, 5, model=model)
        log_loss = -np.mean(np.log(np.maximum(r.posterior[np.arange(truth.size), truth], 1e-15)))
        scores[model] = (np.mean(r.labels == truth), log_loss)
    assert scores["ordinal"][0] > scores["full"][0]
    assert scores["ordinal"][1] < scores["full"][1]


@pytest.mark.parametrize("model", ["full", "one_coin", "ordinal"])
def test_converges_on_objective_before_the_iteration_cap(binary_readings, model) -> None:
    result = fit_sim(binary_readings, 2, model=model)
    assert result.converged and result.n_iter < 500
    assert np.isfinite(result.log_likelihood) and result.log_likelihood < 0


def test_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="labels must lie"):
        fit([0], [0], [2], 2)
    with pytest.raises(ValueError, match="differ in length"):
        fit([0, 1], [0], [1], 2)
    with pytest.raises(ValueError, match="model"):
        fit([0], [0], [1], 2, model="glad")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="n_items"):
        fit([5], [0], [1], 2, n_items=3)
    with pytest.raises(ValueError, match="gold"):
        fit([0], [0], [1], 2, gold={0: 4})
    with pytest.raises(ValueError, match="integers"):
        fit([0.5], [0], [1], 2)


def test_result_arrays_are_read_only(binary_readings) -> None:
    result = fit_sim(binary_readings, 2)
    with pytest.raises(ValueError):
        result.posterior[0, 0] = 0.5
