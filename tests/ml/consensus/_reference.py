"""Plain transcription of crowd-kit 1.4.2 ``DawidSkene.fit`` (pandas removed), the SPEC §6.5 reference.

Same initialisation (majority-vote shares), same loop order (E-step, gold correction, prior = mean
posterior, M-step with 1e-10 clipping), run for a fixed number of iterations. Reading-level code with
``np.add.at``: slow but independent of the pattern grouping in ``ml.consensus``.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

EPS = 1e-10


def _m_step(
    items: NDArray[np.int64],
    readers: NDArray[np.int64],
    labels: NDArray[np.int64],
    probas: NDArray[np.float64],
    n_readers: int,
) -> NDArray[np.float64]:
    k = probas.shape[1]
    errors = np.zeros((n_readers, k, k))  # [reader, observed label, true class]
    np.add.at(errors, (readers, labels), probas[items])
    errors = np.maximum(errors, EPS)
    return errors / errors.sum(axis=1, keepdims=True)


def reference_dawid_skene(
    items: NDArray[np.int64],
    readers: NDArray[np.int64],
    labels: NDArray[np.int64],
    n_classes: int,
    n_iter: int,
    gold: dict[int, int] | None = None,
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Return (posterior (I, K), prior (K,), confusion (R, K, K) indexed [reader, truth, said])."""
    n_items, n_readers = int(items.max()) + 1, int(readers.max()) + 1
    votes = np.zeros((n_items, n_classes))
    np.add.at(votes, (items, labels), 1.0)
    probas = votes / votes.sum(axis=1, keepdims=True)

    def correct(p: NDArray[np.float64]) -> NDArray[np.float64]:
        for item, cls in (gold or {}).items():
            p[item] = 0.0
            p[item, cls] = 1.0
        return p

    probas = correct(probas)
    priors = probas.mean(axis=0)
    errors = _m_step(items, readers, labels, probas, n_readers)
    for _ in range(n_iter):
        log_lik = np.tile(np.log2(np.maximum(priors, EPS)), (n_items, 1))
        np.add.at(log_lik, items, np.log2(errors[readers, labels]))
        scaled = np.exp2(log_lik - log_lik.max(axis=1, keepdims=True))
        probas = correct(scaled / scaled.sum(axis=1, keepdims=True))
        priors = probas.mean(axis=0)
        errors = _m_step(items, readers, labels, probas, n_readers)
    return probas, priors, errors.transpose(0, 2, 1)
