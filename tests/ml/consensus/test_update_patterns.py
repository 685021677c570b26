"""``update_patterns``: the pattern table after some items changed equals the table built from scratch."""

import numpy as np
import pytest
import scipy.sparse as sp

from ml.consensus import Smoothing, fit, fit_patterns, patterns, update_patterns
from ml.consensus._counts import Patterns

SMOOTH = Smoothing(diagonal=1.0, off_diagonal=0.1, prior=1.0)


def _per_pattern(p: Patterns) -> Patterns:
    return Patterns(p.counts, p.weight, p.clamp, np.arange(p.weight.size), p.has_readings)


def _item_rows(items, readers, labels, n_items, width, k):
    ones = np.ones(items.size, dtype=np.int64)
    matrix = sp.csr_matrix((ones, (items, readers * k + labels)), shape=(n_items, width))
    matrix.sum_duplicates()
    return matrix


def _as_set(p: Patterns) -> dict[tuple, float]:
    dense = p.counts.toarray()
    return {(tuple(row), int(c)): float(w) for row, c, w in zip(dense, p.clamp, p.weight, strict=True)}


def test_moving_items_to_new_patterns_gives_the_table_and_fit_of_the_new_data():
    rng = np.random.default_rng(1)
    n_items, n_readers, k = 300, 4, 2
    items = np.repeat(np.arange(n_items), 3)
    readers = np.concatenate([rng.choice(n_readers, 3, replace=False) for _ in range(n_items)])
    labels = rng.integers(0, k, items.size)
    gold = {5: 1, 17: 0}
    before = patterns(items, readers, labels, k, gold=gold, n_readers=n_readers)
    # items 0..9 get one more reading each; item 300 is new
    extra_items = np.concatenate([np.arange(10), [n_items, n_items]])
    extra_readers = np.concatenate([rng.integers(0, n_readers, 10), [0, 1]])
    extra_labels = rng.integers(0, k, 12)
    all_items = np.concatenate([items, extra_items])
    all_readers = np.concatenate([readers, extra_readers])
    all_labels = np.concatenate([labels, extra_labels])
    after = patterns(all_items, all_readers, all_labels, k, gold=gold, n_readers=n_readers)
    changed = np.arange(11)  # items 0..9 and the new one (index 300 → row 10)
    rows = np.concatenate([np.arange(10), [n_items]])
    old = _item_rows(items, readers, labels, n_items + 1, n_readers * k, k)[np.arange(10)]
    new = _item_rows(all_items, all_readers, all_labels, n_items + 1, n_readers * k, k)[rows]
    clamp = np.array([gold.get(int(i), -1) for i in rows])
    table, where = update_patterns(_per_pattern(before), old, clamp[:10], new, clamp)
    assert _as_set(table) == _as_set(after) and where.shape == changed.shape
    cold = fit(all_items, all_readers, all_labels, k, gold=gold, smoothing=SMOOTH, tol=1e-10)
    warm = fit_patterns(table, n_readers, k, smoothing=SMOOTH, tol=1e-10)
    np.testing.assert_allclose(warm.posterior[where], cold.posterior[rows], atol=1e-6)


def test_removing_a_pattern_the_table_does_not_hold_is_refused():
    before = patterns([0, 1], [0, 0], [0, 0], 2, n_readers=1)
    table = _per_pattern(before)
    alien = sp.csr_matrix(np.array([[0, 2]], dtype=np.int64))
    with pytest.raises(ValueError, match="not in the pattern table"):
        update_patterns(table, alien, np.array([-1]), before.counts[:1], np.array([-1]))
