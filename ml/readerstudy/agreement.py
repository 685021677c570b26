"""Inter-reader agreement with and without a condition (e.g. AI aid), with a paired, case-clustered bootstrap.

Fleiss' κ and Krippendorff's α (nominal) among the readers' binary calls on each case, per condition, on the
cases every condition rated with the same number of readers; each difference (second − first) gets a
percentile CI from resampling cases (the same resampled cases for both conditions and both statistics, so
the pairing is kept). Uses ``ml.consensus.agreement``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from ml.consensus.agreement import fleiss_kappa, krippendorff_alpha


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
    alpha_first: float | None = None
    alpha_second: float | None = None
    alpha_difference: float | None = None
    alpha_ci_lower: float | None = None
    alpha_ci_upper: float | None = None


def _counts(reader: np.ndarray, case: np.ndarray, call: np.ndarray, cases: np.ndarray) -> np.ndarray:
    """(n_cases, 2) numbers of readers calling each case negative / positive (one call per reader and case)."""
    index = {c: i for i, c in enumerate(cases.tolist())}
    table = np.zeros((len(cases), 2), dtype=np.int64)
    for c, v in zip(case.tolist(), call.tolist(), strict=True):
        if c in index:
            table[index[c], int(v)] += 1
    return table


def _matrix(reader: np.ndarray, case: np.ndarray, call: np.ndarray, cases: np.ndarray) -> np.ndarray:
    """(n_readers, n_cases) binary calls, NaN where a reader did not read a case."""
    readers = np.unique(reader)
    ri = {r: i for i, r in enumerate(readers.tolist())}
    ci = {c: i for i, c in enumerate(cases.tolist())}
    out = np.full((len(readers), len(cases)), np.nan)
    for r, c, v in zip(reader.tolist(), case.tolist(), call.tolist(), strict=True):
        if c in ci:
            out[ri[r], ci[c]] = v
    return out


def _alpha(matrix: np.ndarray) -> float | None:
    return krippendorff_alpha(matrix, level="nominal", value_domain=(0, 1)).value


def _diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else b - a


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
    """Fleiss' κ and Krippendorff's α of binary ``call`` (0/1) per condition and their changes (one entry per
    reading)."""
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
    matrices = [_matrix(r[t == c], k[t == c], v[t == c], keep) for c in conditions]
    first, second = fleiss_kappa(tables[0]).value, fleiss_kappa(tables[1]).value
    a_first, a_second = _alpha(matrices[0]), _alpha(matrices[1])
    diff, a_diff = _diff(first, second), _diff(a_first, a_second)
    kappa_boots: list[float] = []
    alpha_boots: list[float] = []
    rng = np.random.default_rng(seed)
    for _ in range(n_boot if (diff is not None or a_diff is not None) else 0):
        idx = rng.integers(0, len(keep), len(keep))
        d = _diff(fleiss_kappa(tables[0][idx]).value, fleiss_kappa(tables[1][idx]).value)
        if d is not None:
            kappa_boots.append(d)
        d = _diff(_alpha(matrices[0][:, idx]), _alpha(matrices[1][:, idx]))
        if d is not None:
            alpha_boots.append(d)
    q = [(1 - conf_level) / 2, (1 + conf_level) / 2]
    lo, hi = (
        (float(x) for x in np.quantile(kappa_boots, q)) if kappa_boots and diff is not None else (None, None)
    )
    a_lo, a_hi = (
        (float(x) for x in np.quantile(alpha_boots, q))
        if alpha_boots and a_diff is not None
        else (None, None)
    )
    return AgreementChange(
        *conditions,
        first,
        second,
        diff,
        lo,
        hi,
        len(keep),
        m,
        n_boot,
        conf_level,
        a_first,
        a_second,
        a_diff,
        a_lo,
        a_hi,
    )
