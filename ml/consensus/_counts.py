"""Reading-pattern tables for Dawid-Skene EM: flat readings → distinct patterns with multiplicities.

Every item is described by its *pattern*: the multiset of (reader, label) pairs it received (repeat
sessions count twice) plus its clamp state (gold class or none). Items with identical patterns have
identical posteriors at every EM iteration, so EM runs on distinct patterns weighted by multiplicity and
its cost grows with the number of patterns, not items (DESIGN.md "Consensus").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike, NDArray

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]

_KEY_BITS = 62  # Horner keys must stay below 2**63 in int64
_BINCOUNT_LIMIT = 1 << 24  # dense-table unique below this key range, sort-based above


@dataclass(frozen=True)
class Readings:
    """Validated flat readings; every array has shape (n_readings,)."""

    items: IntArray
    readers: IntArray
    labels: IntArray
    n_items: int
    n_readers: int
    n_classes: int


@dataclass(frozen=True)
class Patterns:
    """Distinct reading patterns.

    counts: sparse (n_patterns, n_readers * n_classes), column ``reader * n_classes + label``.
    weight: (n_patterns,) number of items sharing each pattern.
    clamp: (n_patterns,) gold class of the pattern's items, -1 when not clamped.
    inverse: (n_items,) pattern index of each item.
    has_readings: (n_patterns,) whether the pattern holds at least one reading.
    """

    counts: sp.csr_matrix
    weight: FloatArray
    clamp: IntArray
    inverse: IntArray
    has_readings: NDArray[np.bool_]


def as_readings(
    items: ArrayLike,
    readers: ArrayLike,
    labels: ArrayLike,
    n_classes: int,
    n_items: int | None = None,
    n_readers: int | None = None,
) -> Readings:
    """Validate flat reading arrays; raise ValueError on bad shapes, negatives or out-of-range labels."""
    it, rd, lb = (_as_index(x) for x in (items, readers, labels))
    if not (it.shape == rd.shape == lb.shape):
        raise ValueError(f"items, readers, labels differ in length: {it.size}, {rd.size}, {lb.size}")
    if n_classes < 1:
        raise ValueError(f"n_classes must be >= 1, got {n_classes}")
    if it.size and (it.min() < 0 or rd.min() < 0):
        raise ValueError("item and reader indices must be >= 0")
    if lb.size and (lb.min() < 0 or lb.max() >= n_classes):
        raise ValueError(f"labels must lie in [0, {n_classes})")
    n_i = _extent(it, n_items, "n_items")
    n_r = _extent(rd, n_readers, "n_readers")
    return Readings(it, rd, lb, n_i, n_r, n_classes)


def _as_index(values: ArrayLike) -> IntArray:
    """Return values as a flat int64 array; raise ValueError on non-integral numbers."""
    array = np.asarray(values).ravel()
    as_int = array.astype(np.int64, copy=False)
    if array.dtype.kind not in "iub" and not np.array_equal(as_int, array):
        raise ValueError("items, readers and labels must be integers")
    return as_int


def _extent(index: IntArray, given: int | None, name: str) -> int:
    """Return ``given`` (checked to cover ``index``) or ``max(index) + 1`` (0 when empty)."""
    needed = int(index.max()) + 1 if index.size else 0
    if given is None:
        return needed
    if given < needed:
        raise ValueError(f"{name}={given} but indices go up to {needed - 1}")
    return int(given)


def count_matrix(r: Readings) -> sp.csr_matrix:
    """Return the sparse item x (reader·K + label) count matrix, canonical (sorted, summed) CSR."""
    shape = (r.n_items, r.n_readers * r.n_classes)
    cols = r.readers * r.n_classes + r.labels
    data = np.ones(r.items.size, dtype=np.int64)
    mat = sp.csr_matrix((data, (r.items, cols)), shape=shape)
    mat.sum_duplicates()
    return mat


def group_patterns(counts: sp.csr_matrix, clamp: IntArray) -> Patterns:
    """Deduplicate rows of ``counts`` (n_items, C) jointly with ``clamp`` (n_items,), -1 = free."""
    keys = _row_codes(counts, clamp)
    if keys.ndim == 1:
        first, inverse, weight = _unique_1d(keys)
    else:
        _, first, inverse, weight = np.unique(
            keys, axis=0, return_index=True, return_inverse=True, return_counts=True
        )
        inverse = inverse.ravel()
    rows = counts[first]
    has = np.diff(rows.indptr) > 0
    return Patterns(rows, weight.astype(np.float64), clamp[first], inverse.astype(np.int64), has)


def _row_codes(counts: sp.csr_matrix, clamp: IntArray) -> NDArray[np.int64]:
    """Encode each row's sorted (column, count) entries and clamp as one int64 key, or a padded matrix.

    Entry code ``col * max_count + count`` (0 = padding) is canonical because CSR rows are sorted.
    Returns (n_items,) Horner keys when they fit in 62 bits, else (n_items, width) codes.
    """
    n = counts.shape[0]
    lengths = np.diff(counts.indptr)
    width = int(lengths.max()) if n else 0
    max_count = int(counts.data.max()) if counts.nnz else 1
    codes = counts.indices.astype(np.int64) * max_count + counts.data
    if n and np.all(lengths == width):
        padded = codes.reshape(n, width)
    else:
        padded = np.zeros((n, width), dtype=np.int64)
        row = np.repeat(np.arange(n), lengths)
        pos = np.arange(counts.nnz) - np.repeat(counts.indptr[:-1], lengths)
        padded[row, pos] = codes
    base = counts.shape[1] * max_count + 1
    n_clamp = int(clamp.max()) + 2 if n else 1
    bits = width * np.log2(base) + np.log2(n_clamp)
    if bits > _KEY_BITS:
        return np.column_stack([padded, clamp + 1])
    key = clamp + 1
    for col in range(width):  # loop over entry positions (a handful), never over items
        key = key * base + padded[:, col]
    return key


def _unique_1d(keys: IntArray) -> tuple[IntArray, IntArray, IntArray]:
    """Return (representative index, inverse, multiplicity) of distinct ``keys``; O(n) when keys are small."""
    n = keys.size
    top = int(keys.max()) + 1 if n else 0
    if n == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    if top > min(max(4 * n, 1 << 16), _BINCOUNT_LIMIT):
        _, first, inverse, weight = np.unique(
            keys, return_index=True, return_inverse=True, return_counts=True
        )
        return first, inverse, weight
    present = np.zeros(top, dtype=np.bool_)
    present[keys] = True
    ids = np.cumsum(present, dtype=np.int32) - 1
    inverse = ids[keys].astype(np.int64)
    n_unique = int(ids[-1]) + 1
    first = np.empty(n_unique, dtype=np.int64)
    first[inverse] = np.arange(n)  # any item of a pattern represents it: their rows are identical
    return first, inverse, np.bincount(inverse, minlength=n_unique)


def update_patterns(
    pats: Patterns,
    removed: sp.csr_matrix,
    removed_clamp: IntArray,
    added: sp.csr_matrix,
    added_clamp: IntArray,
) -> tuple[Patterns, IntArray]:
    """The pattern table after some items changed: their old rows ``removed``, their new rows ``added``.

    ``pats`` is a table per pattern (its ``inverse`` is ignored); every row of ``removed`` (with its clamp)
    must be one of its patterns, with enough weight. Patterns no item has any more are dropped. Returns the
    new table (``inverse`` = ``arange(n_patterns)``) and the pattern index of each row of ``added``, so EM
    on the table (``fit_patterns``) gives the changed items' posteriors without the other items' rows.
    Raises ValueError on mismatched widths or a removed row that is not in the table.
    """
    width = pats.counts.shape[1]
    if removed.shape[1] != width or added.shape[1] != width:
        raise ValueError(f"rows have {removed.shape[1]} / {added.shape[1]} columns, the table {width}")
    n_old, n_removed = pats.counts.shape[0], removed.shape[0]
    stacked = sp.vstack([pats.counts, removed, added], format="csr").astype(np.int64)
    stacked.sum_duplicates()
    stacked.eliminate_zeros()
    clamp = np.concatenate([pats.clamp, removed_clamp, added_clamp]).astype(np.int64)
    grouped = group_patterns(stacked, clamp)
    delta = np.concatenate([pats.weight, -np.ones(n_removed), np.ones(added.shape[0])])
    weight = np.bincount(grouped.inverse, weights=delta, minlength=grouped.weight.size)
    if np.any(weight < -0.5):
        raise ValueError("a removed row is not in the pattern table")
    keep = weight > 0.5
    new_index = np.cumsum(keep) - 1
    table = Patterns(
        grouped.counts[np.flatnonzero(keep)],
        np.round(weight[keep]),
        grouped.clamp[keep],
        np.arange(int(keep.sum()), dtype=np.int64),
        grouped.has_readings[keep],
    )
    return table, new_index[grouped.inverse[n_old + n_removed :]].astype(np.int64)
