"""Per-reader agreement: intra-reader κ from repeat sessions, sensitivity/specificity vs consensus.

SPEC.md §5 ("Intra-reader: κ, QWK if ordinal, for each pair of one reader's sessions") and §4.5.
Loops run over readers and session pairs (a handful), never over items or readings.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ml.consensus.agreement._bootstrap import Agreement, IntArray, bootstrap
from ml.consensus.agreement.alpha import krippendorff_alpha
from ml.consensus.agreement.kappa import Weights, cohen_kappa


@dataclass(frozen=True)
class IntraReader:
    """Intra-reader agreement of one reader across its repeat sessions (SPEC §5).

    kappa: κ (or weighted κ) pooled over every pair of the reader's sessions. alpha: Krippendorff's α
    with sessions as coders (nominal, or ordinal when κ is weighted).
    """

    reader: int
    kappa: Agreement
    alpha: Agreement
    n_sessions: int


@dataclass(frozen=True)
class ReaderAccuracy:
    """Sensitivity and specificity of one reader against reference (consensus) labels."""

    reader: int
    sensitivity: Agreement
    specificity: Agreement


def _session_table(item: IntArray, session: IntArray, label: IntArray) -> tuple[IntArray, IntArray]:
    """Return (items (n,), labels (n, n_sessions), -1 = not read in that session)."""
    _, s_code = np.unique(session, return_inverse=True)
    u_items, i_code = np.unique(item, return_inverse=True)
    n_sess = int(s_code.max()) + 1 if s_code.size else 0
    table = np.full((u_items.size, max(n_sess, 1)), -1, dtype=np.int64)
    table[i_code, s_code] = label  # a repeated (item, session) keeps its last reading
    return u_items, table


def _session_pairs(u_items: IntArray, table: IntArray) -> tuple[IntArray, IntArray, IntArray]:
    """Return (first labels, second labels, items) of every session pair (s < t) on the same item."""
    n_sess = table.shape[1]
    firsts, seconds, pair_items = [], [], []
    for s in range(n_sess):
        for t in range(s + 1, n_sess):
            both = (table[:, s] >= 0) & (table[:, t] >= 0)
            firsts.append(table[both, s])
            seconds.append(table[both, t])
            pair_items.append(u_items[both])
    if not firsts:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    return np.concatenate(firsts), np.concatenate(seconds), np.concatenate(pair_items)


def intra_reader_kappa(
    items: ArrayLike,
    readers: ArrayLike,
    sessions: ArrayLike,
    labels: ArrayLike,
    *,
    weights: Weights = None,
    undefined: float | None = None,
    n_boot: int = 0,
    confidence: float = 0.95,
    seed: int = 0,
    groups: ArrayLike | None = None,
    alpha_ci: bool = True,
) -> list[IntraReader]:
    """Per reader, κ (QWK with weights="quadratic") between its own sessions on the same items.

    items, readers, sessions, labels: (n_readings,) ints, labels >= 0. All session pairs of a reader are
    pooled into one κ; class ranks come from all labels, so weighted κ is comparable across readers.
    groups: (n_items,) cluster of each item index for the bootstrap (default: the item itself).
    alpha_ci=False skips α's bootstrap (two thirds of the time) for callers that report κ only.
    Returns one ``IntraReader`` per reader with readings, sorted by reader; value None without pairs.
    """
    it, rd, ss, lb = (np.asarray(x, dtype=np.int64).ravel() for x in (items, readers, sessions, labels))
    classes = np.unique(lb)
    out = []
    for reader in np.unique(rd):
        mine = rd == reader
        u_items, table = _session_table(it[mine], ss[mine], lb[mine])
        first, second, pair_items = _session_pairs(u_items, table)
        cluster = pair_items if groups is None else np.asarray(groups).ravel()[pair_items]
        kappa = cohen_kappa(
            first,
            second,
            weights=weights,
            labels=classes,
            undefined=undefined,
            n_boot=n_boot,
            confidence=confidence,
            seed=seed,
            groups=cluster,
        )
        alpha = krippendorff_alpha(
            np.where(table.T >= 0, table.T, np.nan),
            level="nominal" if weights is None else "ordinal",
            value_domain=classes,
            undefined=undefined,
            n_boot=n_boot if alpha_ci else 0,
            confidence=confidence,
            seed=seed,
            groups=u_items if groups is None else np.asarray(groups).ravel()[u_items],
        )
        out.append(IntraReader(int(reader), kappa, alpha, int(np.unique(ss[mine]).size)))
    return out


def _rate(
    hit: NDArray[np.bool_], unit_groups: IntArray, undefined: float | None, **boot: object
) -> Agreement:
    """Share of True in ``hit`` with a bootstrap over ``unit_groups``; None when empty."""

    def statistic(idx: IntArray) -> float | None:
        return float(hit[idx].mean()) if idx.size else undefined

    return bootstrap(statistic, hit.size, groups=unit_groups, **boot)  # type: ignore[arg-type]


def reader_accuracy(
    items: ArrayLike,
    readers: ArrayLike,
    labels: ArrayLike,
    reference: ArrayLike,
    *,
    positive: int = 1,
    undefined: float | None = None,
    n_boot: int = 0,
    confidence: float = 0.95,
    seed: int = 0,
    groups: ArrayLike | None = None,
) -> list[ReaderAccuracy]:
    """Per reader sensitivity P(says positive | reference positive) and specificity, SPEC §4.5.

    reference: (n_items,) consensus (e.g. ``ConsensusResult.labels``) or gold class per item, -1 = none.
    For K > 2 classes, "positive" is ``label == positive``. groups: (n_items,) bootstrap clusters.
    Returns one ``ReaderAccuracy`` per reader with readings; a rate without reference cases is None.
    """
    it, rd, lb = (np.asarray(x, dtype=np.int64).ravel() for x in (items, readers, labels))
    ref = np.asarray(reference, dtype=np.int64).ravel()[it]
    cluster_of_item = np.arange(int(it.max()) + 1 if it.size else 0) if groups is None else np.asarray(groups)
    boot = {"n_boot": n_boot, "confidence": confidence, "seed": seed}
    out = []
    for reader in np.unique(rd):
        mine = (rd == reader) & (ref >= 0)
        pos, neg = mine & (ref == positive), mine & (ref != positive)
        sens = _rate(lb[pos] == positive, cluster_of_item[it[pos]], undefined, **boot)
        spec = _rate(lb[neg] != positive, cluster_of_item[it[neg]], undefined, **boot)
        out.append(ReaderAccuracy(int(reader), sens, spec))
    return out
