"""ml.readerstudy.agreement: Fleiss' kappa per condition and its paired, case-clustered bootstrap change."""

from __future__ import annotations

import numpy as np
import pytest

from ml.consensus.agreement import fleiss_kappa, krippendorff_alpha
from ml.readerstudy.agreement import agreement_change
from ml.readerstudy.metrics import auc, average_roc, roc_points


def calls(seed: int, n_cases: int, noise: dict[str, float]):
    rng = np.random.default_rng(seed)
    truth = rng.random(n_cases) < 0.5
    rows = []
    for cond, p in noise.items():
        for r in range(3):
            flip = rng.random(n_cases) < p
            for c in range(n_cases):
                rows.append((f"r{r}", f"c{c}", cond, int(truth[c] ^ flip[c])))
    return (np.array(col) for col in zip(*rows, strict=True))


def test_kappas_equal_fleiss_on_the_same_tables_and_the_ci_brackets_the_change():
    reader, case, cond, call = calls(1, 80, {"unaided": 0.3, "aided": 0.05})
    res = agreement_change(reader, case, cond, call.astype(int), n_boot=400, seed=2)
    for name, value in (("unaided", res.kappa_first), ("aided", res.kappa_second)):
        sel = cond == name
        table = np.zeros((80, 2), int)
        for c, v in zip(case[sel], call[sel].astype(int), strict=True):
            table[int(c[1:]), v] += 1
        assert value == pytest.approx(fleiss_kappa(table).value, abs=1e-12)
    assert (res.n_cases, res.n_raters) == (80, 3)
    assert res.difference is not None and res.difference > 0.3  # less noise aided: agreement rises
    assert res.ci_lower is not None and res.ci_upper is not None
    assert res.ci_lower < res.difference < res.ci_upper and res.ci_lower > 0
    for name, value in (("unaided", res.alpha_first), ("aided", res.alpha_second)):
        sel = cond == name
        matrix = np.full((3, 80), np.nan)
        for r, c, v in zip(reader[sel], case[sel], call[sel].astype(int), strict=True):
            matrix[int(r[1:]), int(c[1:])] = v
        assert value == pytest.approx(krippendorff_alpha(matrix, level="nominal").value, abs=1e-12)
    assert (
        res.alpha_difference is not None and res.alpha_ci_lower is not None and res.alpha_ci_upper is not None
    )
    assert res.alpha_ci_lower < res.alpha_difference < res.alpha_ci_upper and res.alpha_ci_lower > 0


def test_identical_conditions_change_by_exactly_nothing():
    reader, case, cond, call = calls(4, 40, {"unaided": 0.2})
    both = (
        np.r_[reader, reader],
        np.r_[case, case],
        np.r_[cond, np.full(len(cond), "aided")],
        np.r_[call, call],
    )
    res = agreement_change(*both, n_boot=200)
    assert res.difference == 0 and res.ci_lower == 0 and res.ci_upper == 0
    assert res.alpha_difference == 0 and res.alpha_ci_lower == 0 and res.alpha_ci_upper == 0


def test_too_few_shared_cases_give_none_not_nan():
    res = agreement_change(["a", "b"], ["c1", "c1"], ["unaided", "aided"], [1, 0])
    assert res.kappa_first is None and res.difference is None and (res.n_cases, res.n_raters) == (1, 1)


def test_the_reader_averaged_roc_curve_has_the_mean_auc():
    rng = np.random.default_rng(9)
    truth = rng.random(200) < 0.4
    curves, aucs = [], []
    for shift in (0.5, 1.0, 1.5):
        rating = np.round(truth * shift + rng.normal(size=200), 1)
        curves.append(roc_points(truth, rating))
        aucs.append(auc(truth, rating))
    grid, tpr = average_roc(curves, n_points=1001)
    assert tpr[0] >= 0 and tpr[-1] == 1 and np.all(np.diff(tpr) >= -1e-12)
    assert np.trapezoid(tpr, grid) == pytest.approx(np.mean(aucs), abs=2e-3)
