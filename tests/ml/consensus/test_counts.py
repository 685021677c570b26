"""Pattern grouping: distinct reading patterns are found exactly on every code path."""

from __future__ import annotations

import numpy as np
import pytest

from ml.consensus._counts import _row_codes, as_readings, count_matrix, group_patterns


def _brute_force_groups(items, readers, labels, n_items, clamp) -> int:
    patterns = {}
    for i in range(n_items):
        mine = items == i
        pattern = tuple(sorted(zip(readers[mine].tolist(), labels[mine].tolist(), strict=True)))
        patterns.setdefault((pattern, int(clamp[i])), []).append(i)
    return len(patterns)


@pytest.mark.parametrize(
    ("n_readers", "n_classes", "per_item"),
    [(3, 2, 2), (10, 5, 3), (400, 5, 12)],  # small keys (bincount), medium, > 62 bits (row-wise unique)
)
def test_patterns_match_brute_force(n_readers, n_classes, per_item) -> None:
    rng = np.random.default_rng(n_readers)
    n_items = 300
    items = np.repeat(np.arange(n_items), rng.integers(0, per_item + 1, n_items))
    readers = rng.integers(0, min(n_readers, 6), items.size)  # few active readers: patterns repeat
    labels = rng.integers(0, n_classes, items.size)
    r = as_readings(items, readers, labels, n_classes, n_items=n_items, n_readers=n_readers)
    clamp = np.where(rng.random(n_items) < 0.1, rng.integers(0, n_classes, n_items), -1)
    pats = group_patterns(count_matrix(r), clamp)
    assert _row_codes(count_matrix(r), clamp).ndim == (2 if n_readers == 400 else 1)
    assert pats.weight.size == _brute_force_groups(items, readers, labels, n_items, clamp)
    assert pats.weight.sum() == n_items
    np.testing.assert_array_equal(pats.clamp[pats.inverse], clamp)
    # every item's row equals its pattern's row
    dense_items = count_matrix(r).toarray()
    np.testing.assert_array_equal(pats.counts.toarray()[pats.inverse], dense_items)


def test_large_key_range_falls_back_to_sorting() -> None:
    items = np.array([0, 1, 2, 3])
    readers = np.array([0, 999_999, 0, 999_999])
    labels = np.array([1, 1, 1, 1])
    r = as_readings(items, readers, labels, 2)
    pats = group_patterns(count_matrix(r), np.full(4, -1))
    assert pats.weight.tolist() == [2.0, 2.0]
