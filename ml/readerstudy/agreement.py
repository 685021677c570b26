"""Inter-reader agreement with and without a condition (e.g. AI aid), with a paired, case-clustered bootstrap.

Fleiss' κ among the readers' binary calls on each case, per condition, on the cases every condition rated with
the same number of readers; the difference (second − first) gets a percentile CI from resampling cases (the
same resampled cases for both conditions, so the pairing is kept). Uses ``ml.consensus.agreement``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from ml.consensus.agreement import fleiss_kappa


@dataclass(frozen=True)
class AgreementChange:
    """Fleiss' κ per condition and the difference ``second − first`` with its bootstrap CI (None: undefined)."""

    first: str
    second: str
    kappa_first: float | None
    kappa_second: float | None
    difference: float | None
    ci_lower: float | None
    ci_upper: float | None
    n_cases: int
    n_raters: int
    n_boot: int
    conf_level: float


def _counts(reader: np.ndarray, case: np.ndarray, call: np.ndarray, cases: np.ndarray) -> np.ndarray:
    """(n_cases, 2) numbers of readers calling each case negative / positive (one call per reader and case)."""
    index = {c: i for i, c in enumerate(cases.tolist())}
    table = np.zeros((len(cases), 2), dtype=np.int64)
    for c, v in zip(case.tolist(), call.tolist(), strict=True):
        if c in index:
            table[index[c], int(v)] += 1
    return table


def agreement_change(
    reader: ArrayLike,
    case: ArrayLike,
    condition: ArrayLike,
    call: ArrayLike,
    *,
    conditions: tuple[str, str] = ("unaided", "aided"),
    n_boot: int = 1000,
    seed: int = 0,
    conf_level: float = 0.95,
) -> AgreementChange:
    """Fleiss' κ of binary ``call`` (0/1) per condition and its change; one entry per reading."""
    r, k, t = (np.asarray(x).astype(str) for x in (reader, case, condition))
    v = np.asarray(call).astype(np.int64)
    if not (len(r) == len(k) == len(t) == len(v)):
        raise ValueError("reader, case, condition and call must have equal length")
    if not set(np.unique(v).tolist()) <= {0, 1}:
        raise ValueError("call must be 0/1")
    per = {}
    for name in conditions:
        sel = t == name
        cases, n = np.unique(k[sel], return_counts=True)
        per[name] = dict(zip(cases.tolist(), n.tolist(), strict=True))
    common = sorted(set(per[conditions[0]]) & set(per[conditions[1]]))
    raters = [per[conditions[0]][c] for c in common if per[conditions[0]][c] == per[conditions[1]][c]]
    m = int(np.bincount(raters).argmax()) if raters else 0
    keep = np.array([c for c in common if per[conditions[0]][c] == per[conditions[1]][c] == m])
    if m < 2 or len(keep) < 2:
        return AgreementChange(*conditions, None, None, None, None, None, len(keep), m, 0, conf_level)
    tables = [_counts(r[t == c], k[t == c], v[t == c], keep) for c in conditions]
    first = fleiss_kappa(tables[0]).value
    second = fleiss_kappa(tables[1]).value
    diff = None if first is None or second is None else second - first
    lo = hi = None
    if diff is not None and n_boot > 0:
        rng = np.random.default_rng(seed)
        boots = []
        for _ in range(n_boot):
            idx = rng.integers(0, len(keep), len(keep))
            a, b = fleiss_kappa(tables[0][idx]).value, fleiss_kappa(tables[1][idx]).value
            if a is not None and b is not None:
                boots.append(b - a)
        if boots:
            alpha = (1 - conf_level) / 2
            lo, hi = (float(q) for q in np.quantile(boots, [alpha, 1 - alpha]))
    return AgreementChange(*conditions, first, second, diff, lo, hi, len(keep), m, n_boot, conf_level)
