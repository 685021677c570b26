"""Repeat sessions in the consensus fit (SPEC §4.4): pooled, session-as-annotator, mean of repeats."""

from __future__ import annotations

import numpy as np
import pytest

from ml.consensus import fit
from ml.consensus.simulate import binary_confusion, draw_labels


def _design(n_items: int, n_readers: int, n_sessions: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    items = np.tile(np.arange(n_items), n_readers * n_sessions)
    readers = np.repeat(np.arange(n_readers), n_items * n_sessions)
    sessions = np.tile(np.repeat(np.arange(n_sessions), n_items), n_readers)
    return items, readers, sessions


def test_session_as_annotator_estimates_each_sessions_drift() -> None:
    rng = np.random.default_rng(0)
    truth = (rng.random(4000) < 0.3).astype(np.int64)
    items, readers, sessions = _design(4000, 3, 2)
    conf = np.array([[[0.95, 0.05], [0.1, 0.9]]] * 3)
    labels = draw_labels(truth, items, readers, conf, rng)
    drift = (readers == 0) & (sessions == 1)  # reader 0's second session: sensitivity 0.9 -> ~0.5
    pos = truth[items] == 1
    labels[drift & pos & (rng.random(items.size) < 0.45)] = 0
    res = fit(items, readers, labels, 2, sessions=sessions, repeats="session", session_tie=0.5)
    assert res.confusion.shape == (6, 2, 2)
    assert res.annotator_reader is not None and res.annotator_session is not None
    assert res.annotator_reader.tolist() == [0, 0, 1, 1, 2, 2]
    assert res.annotator_session.tolist() == [0, 1, 0, 1, 0, 1]
    assert res.sensitivity[0] == pytest.approx(0.9, abs=0.04)
    assert res.sensitivity[1] == pytest.approx(0.5, abs=0.06)
    assert res.sensitivity[3] == pytest.approx(0.9, abs=0.04)
    pooled = fit(items, readers, labels, 2, sessions=sessions, repeats="pool")
    assert pooled.confusion.shape == (3, 2, 2)
    assert 0.6 < pooled.sensitivity[0] < 0.8  # the two sessions averaged


def test_a_strong_tie_pulls_sessions_to_their_reader() -> None:
    rng = np.random.default_rng(1)
    truth = (rng.random(2000) < 0.4).astype(np.int64)
    items, readers, sessions = _design(2000, 3, 2)
    labels = draw_labels(truth, items, readers, binary_confusion(3, rng), rng)
    loose = fit(items, readers, labels, 2, sessions=sessions, repeats="session", session_tie=0.0)
    tight = fit(items, readers, labels, 2, sessions=sessions, repeats="session", session_tie=1e5)
    gap = lambda r: np.abs(r.confusion[0::2] - r.confusion[1::2]).max()  # noqa: E731
    assert gap(tight) < 1e-3 < gap(loose)


def test_mean_of_repeats_equals_pooling_with_one_session_and_tempers_repeats() -> None:
    rng = np.random.default_rng(2)
    truth = (rng.random(1500) < 0.3).astype(np.int64)
    items, readers, sessions = _design(1500, 3, 1)
    labels = draw_labels(truth, items, readers, binary_confusion(3, rng), rng)
    one = fit(items, readers, labels, 2, sessions=sessions, repeats="mean")
    pool = fit(items, readers, labels, 2)
    np.testing.assert_allclose(one.posterior, pool.posterior, atol=1e-12)
    # three identical copies of every reading: pooling triples the evidence, the mean does not
    triple = [np.tile(x, 3) for x in (items, readers, labels)]
    sess3 = np.repeat(np.arange(3), items.size)
    mean3 = fit(*triple, 2, sessions=sess3, repeats="mean")
    pool3 = fit(*triple, 2, sessions=sess3)
    np.testing.assert_allclose(mean3.posterior, pool.posterior, atol=1e-6)
    assert np.mean(pool3.entropy) < 0.5 * np.mean(mean3.entropy)


def test_bad_repeat_options_raise() -> None:
    with pytest.raises(ValueError, match="needs sessions"):
        fit([0, 1], [0, 0], [0, 1], 2, repeats="session")
    with pytest.raises(ValueError, match="repeats must be"):
        fit([0, 1], [0, 0], [0, 1], 2, repeats="twice")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="differ in length"):
        fit([0, 1], [0, 0], [0, 1], 2, sessions=[0], repeats="session")
