"""Covariance of reader × condition metric estimates over the case population.

Input is the study laid out as (G, C) arrays: G = conditions × readers groups, C = cases; ``read[g, c]`` says
whether group g rated case c. Output is the (G, G) covariance matrix the Obuchowski–Rockette model averages
into Var(error), Cov1, Cov2 and Cov3.

- DeLong, DeLong & Clarke-Pearson (1988): structural components; every group reads every case; empirical AUC.
- Jackknife, Efron (1982): leave one case out; any design, any metric. A case a group did not read leaves its
  estimate unchanged, which is how MRMCaov's ``jackknife()`` treats partially paired and nested designs.
- Unbiased, Gallas, Pennello & Myers (2007): the U-statistic estimator; any design; empirical AUC.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from ml.readerstudy.metrics import Metric, leave_one_out, placements

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]


def jackknife(
    metric: Metric,
    truth: BoolArray,
    ratings: FloatArray,
    read: BoolArray,
    estimates: FloatArray,
    threshold: float | None,
) -> FloatArray:
    """(n - 1) / n Σ_c (θ_(c) - θ̄)(θ_(c) - θ̄)ᵀ over the n cases of the study.

    ``truth`` is (C,), or (G, C) when each group is scored against its own reference.
    """
    n_groups, n_cases = read.shape
    truth_g = np.broadcast_to(truth, (n_groups, n_cases))
    pseudo = np.broadcast_to(estimates[:, None], (n_groups, n_cases)).copy()
    for g in range(n_groups):
        mask = read[g]
        pseudo[g, mask] = leave_one_out(metric, truth_g[g, mask], ratings[g, mask], threshold)
    if not np.all(np.isfinite(pseudo)):
        raise ValueError(f"{metric} is undefined with one case left out (too few cases of one kind)")
    centred = pseudo - pseudo.mean(axis=1, keepdims=True)
    return np.asarray((n_cases - 1) / n_cases * (centred @ centred.T), dtype=np.float64)


def delong(truth: BoolArray, ratings: FloatArray, read: BoolArray) -> FloatArray:
    """DeLong's structural-component covariance of empirical AUCs; needs a fully crossed design."""
    if not read.all():
        raise ValueError("DeLong covariance needs every reader to rate every case in every condition")
    n_pos, n_neg = int(truth.sum()), int((~truth).sum())
    v10 = np.empty((ratings.shape[0], n_pos))
    v01 = np.empty((ratings.shape[0], n_neg))
    for g in range(ratings.shape[0]):
        rows, cols = placements(truth, ratings[g])
        auc = rows.sum() / (n_pos * n_neg)
        v10[g] = rows / n_neg - auc
        v01[g] = cols / n_pos - auc
    s10 = v10 @ v10.T / (n_pos - 1)
    s01 = v01 @ v01.T / (n_neg - 1)
    return np.asarray(s10 / n_pos + s01 / n_neg, dtype=np.float64)


def unbiased(truth: BoolArray, ratings: FloatArray, read: BoolArray) -> FloatArray:
    """Gallas's unbiased (U-statistic) covariance of empirical AUCs, for any pattern of reads."""
    pos, neg = truth, ~truth
    n_groups = ratings.shape[0]
    read_pos = read[:, pos].astype(np.float64)  # (G, P)
    read_neg = read[:, neg].astype(np.float64)  # (G, N)
    x = np.where(read[:, pos], ratings[:, pos], 0.0)
    y = np.where(read[:, neg], ratings[:, neg], 0.0)
    # ψ(x_i, y_j), zero where the group did not read i or j: (G, P, N)
    psi = (np.sign(x[:, :, None] - y[:, None, :]) + 1.0) / 2.0
    psi *= read_pos[:, :, None] * read_neg[:, None, :]
    rows = psi.sum(axis=2)  # (G, P)
    cols = psi.sum(axis=1)  # (G, N)
    total = rows.sum(axis=1)  # (G,)
    n_p = read_pos.sum(axis=1)
    n_n = read_neg.sum(axis=1)
    both_pos = read_pos @ read_pos.T  # positives read by both groups
    both_neg = read_neg @ read_neg.T
    size = n_p * n_n
    nxny = np.outer(size, size)
    delta = nxny / (
        nxny - np.outer(n_p, n_p) * both_neg - np.outer(n_n, n_n) * both_pos + both_pos * both_neg
    )
    flat = psi.reshape(n_groups, -1)
    second = rows @ rows.T + cols @ cols.T - flat @ flat.T
    return np.asarray(((1.0 - delta) * np.outer(total, total) + delta * second) / nxny, dtype=np.float64)
