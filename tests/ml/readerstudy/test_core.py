"""ml.readerstudy on designs and metrics the published examples do not cover, against direct re-implementations."""

from __future__ import annotations

import numpy as np
import pytest

from ml.consensus.agreement import cohen_kappa
from ml.readerstudy import mrmc, roc_points
from ml.readerstudy.metrics import leave_one_out, value
from tests.ml.readerstudy._published import load

VANDYKE = load("vandyke")


def simulated(seed: int = 3, n_readers: int = 4, n_cases: int = 60, drop: float = 0.0):
    """Flat reading arrays: readers × 2 conditions × cases, 5-point ratings, a fraction of reads dropped."""
    rng = np.random.default_rng(seed)
    truth = rng.random(n_cases) < 0.4
    rows = []
    for r in range(n_readers):
        for t in ("unaided", "aided"):
            signal = 1.0 + (0.6 if t == "aided" else 0.0)
            latent = signal * truth + rng.normal(size=n_cases)
            rating = np.clip(np.round(latent * 1.2 + 2.5), 1, 5)
            for c in range(n_cases):
                if rng.random() >= drop:
                    rows.append((f"r{r}", f"c{c}", t, int(truth[c]), float(rating[c])))
    reader, case, cond, tr, rating = (np.array(col) for col in zip(*rows, strict=True))
    return reader, case, cond, tr, rating.astype(float)


@pytest.mark.parametrize("metric", ["auc", "sensitivity", "specificity", "accuracy", "kappa"])
def test_closed_form_jackknife_equals_refitting_without_each_case(metric: str):
    rng = np.random.default_rng(1)
    truth = rng.random(40) < 0.5
    rating = rng.integers(1, 6, size=40).astype(float)
    fast = leave_one_out(metric, truth, rating, 3.0)  # type: ignore[arg-type]
    slow = [value(metric, np.delete(truth, i), np.delete(rating, i), 3.0) for i in range(40)]  # type: ignore[arg-type]
    np.testing.assert_allclose(fast, slow, rtol=0, atol=1e-14)


def test_kappa_against_the_reference_equals_the_consensus_engines_cohen_kappa():
    reader, case, cond, truth, rating = simulated()
    result = mrmc(reader, case, cond, truth, rating, metric="kappa", threshold=4)
    keep = (reader == "r2") & (cond == "aided")
    expected = cohen_kappa(truth[keep], (rating[keep] >= 4).astype(int)).value
    assert expected is not None
    got = result.values[result.readers.index("r2"), result.conditions.index("aided")]
    assert got == pytest.approx(expected, abs=1e-12)


def _mrmcaov_jackknife(reader, case, cond, truth, rating, groups, cases):
    """MRMCaov's jackknife(): per group, the AUC without each case of the study (unchanged if not read)."""
    out = np.empty((len(cases), len(groups)))
    for j, (t, r) in enumerate(groups):
        sel = (cond == t) & (reader == r)
        for i, c in enumerate(cases):
            keep = sel & (case != c)
            out[i, j] = value("auc", truth[keep].astype(bool), rating[keep], None)
    n = len(cases)
    centred = out - out.mean(axis=0)
    return (n - 1) / n * centred.T @ centred


def _mrmcaov_unbiased_default(reader, case, cond, truth, rating, groups):
    """MRMCaov's unbiased_default()/get_cov(): pairwise over groups with intersected case sets."""

    def scores(t, r):
        sel = (cond == t) & (reader == r)
        pos, neg = sel & (truth == 1), sel & (truth == 0)
        s = (np.sign(rating[pos][:, None] - rating[neg][None, :]) + 1) / 2
        return case[pos], case[neg], s

    out = np.empty((len(groups), len(groups)))
    for a, ga in enumerate(groups):
        for b, gb in enumerate(groups):
            px, nx, sx = scores(*ga)
            py, ny, sy = scores(*gb)
            ip, ineg = np.intersect1d(px, py), np.intersect1d(nx, ny)
            nxny = sx.size * sy.size
            delta = nxny / (
                nxny
                - sx.shape[0] * len(ineg) * sy.shape[0]
                - sx.shape[1] * len(ip) * sy.shape[1]
                + len(ip) * len(ineg)
            )
            rx, ry = sx.sum(axis=1), sy.sum(axis=1)
            cx, cy = sx.sum(axis=0), sy.sum(axis=0)
            xi, yi = [list(px).index(c) for c in ip], [list(py).index(c) for c in ip]
            xj, yj = [list(nx).index(c) for c in ineg], [list(ny).index(c) for c in ineg]
            second = (
                np.sum(rx[xi] * ry[yi])
                + np.sum(cx[xj] * cy[yj])
                - np.sum(sx[np.ix_(xi, xj)] * sy[np.ix_(yi, yj)])
            )
            out[a, b] = ((1 - delta) * sx.sum() * sy.sum() + delta * second) / nxny
    return out


def test_partially_paired_design_matches_mrmcaovs_algorithms():
    """Readers skipped 15% of reads: jackknife and unbiased equal loop transcriptions of MRMCaov's R code."""
    reader, case, cond, truth, rating = simulated(seed=5, n_cases=50, drop=0.15)
    groups = [(t, r) for t in ("aided", "unaided") for r in ("r0", "r1", "r2", "r3")]
    cases = np.unique(case)
    jk = mrmc(reader, case, cond, truth, rating, cov="jackknife")
    assert jk.design == "partially paired"
    assert jk.covariance is not None
    np.testing.assert_allclose(
        jk.covariance,
        _mrmcaov_jackknife(reader, case, cond, truth, rating, groups, cases),
        rtol=1e-10,
        atol=1e-15,
    )
    ub = mrmc(reader, case, cond, truth, rating, cov="unbiased")
    assert ub.covariance is not None
    np.testing.assert_allclose(
        ub.covariance,
        _mrmcaov_unbiased_default(reader, case, cond, truth, rating, groups),
        rtol=1e-10,
        atol=1e-15,
    )
    assert 0 < jk.global_test.p_value < 1 and jk.global_test.df2 > 0


def test_conditions_order_sets_the_direction_of_the_difference():
    reader, case, cond, truth, rating = simulated(seed=11, n_readers=5, n_cases=120)
    result = mrmc(reader, case, cond, truth, rating, conditions=["aided", "unaided"])
    diff = result.differences[0]
    assert (diff.first, diff.second) == ("aided", "unaided")
    assert diff.estimate == pytest.approx(result.values[:, 0].mean() - result.values[:, 1].mean())
    assert diff.estimate > 0  # the simulated aid adds signal
    json_ready = result.to_dict()
    assert json_ready["global_test"]["df2"] == pytest.approx(result.global_test.df2)
    assert json_ready["components"]["correlations"][0] == pytest.approx(result.components.correlations[0])  # type: ignore[union-attr]


def test_roc_points_run_from_origin_to_one_and_integrate_to_the_auc():
    truth = VANDYKE["truth"].astype(int).astype(bool)
    keep = (VANDYKE["reader"] == "1") & (VANDYKE["treatment"] == "1")
    fpr, tpr = roc_points(truth[keep], VANDYKE["rating"][keep].astype(float))
    assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0.0, 0.0, 1.0, 1.0)
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0)
    assert np.trapezoid(tpr, fpr) == pytest.approx(0.91964573, abs=5e-9)  # IOWA_VANDYKE reader 1, treatment 1


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: {**d, "rating": d["rating"][:-1]}, "equal length"),
        (
            lambda d: {**d, "rating": np.where(np.arange(len(d["rating"])) == 3, np.nan, d["rating"])},
            "missing",
        ),
        (
            lambda d: {**d, "truth": np.where(np.arange(len(d["truth"])) == 0, 2, d["truth"])},
            "truth must be 0/1",
        ),
        (
            lambda d: {**d, "truth": np.where(np.arange(len(d["truth"])) == 0, 1 - d["truth"], d["truth"])},
            "truth differs between readings of the same case",
        ),
        (lambda d: {k: np.concatenate([v, v[:1]]) for k, v in d.items()}, "rated a case twice"),
        (
            lambda d: {k: v[~((d["reader"] == "r1") & (d["cond"] == "aided"))] for k, v in d.items()},
            "every reader must read under every condition",
        ),
        (lambda d: {k: v[d["cond"] == "aided"] for k, v in d.items()}, "at least two conditions"),
    ],
)
def test_bad_input_gets_an_error_that_names_the_problem(change, message):
    reader, case, cond, truth, rating = simulated()
    d = change({"reader": reader, "case": case, "cond": cond, "truth": truth, "rating": rating})
    with pytest.raises(ValueError, match=message):
        mrmc(d["reader"], d["case"], d["cond"], d["truth"], d["rating"])


def test_options_are_checked():
    reader, case, cond, truth, rating = simulated(drop=0.1)
    with pytest.raises(ValueError, match="DeLong covariance needs every reader"):
        mrmc(reader, case, cond, truth, rating, cov="delong")
    with pytest.raises(ValueError, match="needs a threshold"):
        mrmc(reader, case, cond, truth, rating, metric="sensitivity")
    with pytest.raises(ValueError, match="empirical AUC only"):
        mrmc(reader, case, cond, truth, rating, metric="accuracy", threshold=3, cov="unbiased")
    with pytest.raises(ValueError, match="only one of readers or cases"):
        mrmc(reader, case, cond, truth, rating, readers="fixed", cases="fixed")
    with pytest.raises(ValueError, match="metric must be one of"):
        mrmc(reader, case, cond, truth, rating, metric="youden")  # type: ignore[arg-type]


def test_readers_who_all_score_the_same_give_infinite_df_not_a_crash():
    """Regression: every reader perfect when aided made MS(R) = 0 and the Hillis df a division by zero."""
    reader, case, cond, truth, rating = simulated(seed=2, n_readers=3, n_cases=40)
    aided = cond == "aided"
    rating = np.where(aided, 1.0 + 4.0 * truth, rating)  # AUC = 1 for every aided reader
    result = mrmc(reader, case, cond, truth, rating, conditions=["aided", "unaided"])
    perfect = result.condition_estimates[0]
    assert perfect.estimate == 1.0 and perfect.ms_reader == 0.0 and perfect.std_err == 0.0
    assert np.isnan(perfect.df) or np.isinf(perfect.df)
    assert result.differences[0].estimate > 0 and 0 <= result.global_test.p_value <= 1
    document = result.to_dict()
    assert document["condition_estimates"][0]["df"] is None  # JSON-ready: no NaN or inf


def test_a_metric_without_case_variance_reports_undefined_correlations_not_a_crash():
    """Regression (make demo): every reader's sensitivity 1 in both conditions made Var(error) = 0 and the
    correlations a division by zero."""
    reader, case, cond, truth, rating = simulated(seed=6, n_readers=3, n_cases=30)
    rating = np.where(truth == 1, 5.0, rating)  # every positive called positive by everyone
    result = mrmc(reader, case, cond, truth, rating, metric="sensitivity", threshold=3)
    assert result.components is not None and result.components.error == 0
    document = result.to_dict()
    assert document["components"]["correlations"] == [None, None, None]
    assert result.differences[0].estimate == 0


def test_truth_by_reader_scores_each_reader_against_their_own_reference():
    """A reference per reader (e.g. the consensus of the others): AUCs and the jackknife covariance equal a
    loop that scores each reader × condition against that reader's truth; a common truth changes nothing."""
    reader, case, cond, truth, rating = simulated(seed=8, n_readers=3, n_cases=50)
    common = mrmc(reader, case, cond, truth, rating)
    same = mrmc(reader, case, cond, truth, rating, truth_by_reader=True)
    np.testing.assert_array_equal(common.values, same.values)
    np.testing.assert_allclose(common.covariance, same.covariance, rtol=0, atol=0)  # type: ignore[arg-type]

    rng = np.random.default_rng(1)
    flips = {r: set(rng.choice(50, 6, replace=False).tolist()) for r in ("r0", "r1", "r2")}
    own = np.array([t ^ (int(c[1:]) in flips[r]) for r, c, t in zip(reader, case, truth, strict=True)])
    result = mrmc(reader, case, cond, own, rating, truth_by_reader=True, conditions=["aided", "unaided"])
    groups = [(t, r) for t in ("aided", "unaided") for r in ("r0", "r1", "r2")]
    cases = np.unique(case)
    pseudo = np.empty((len(cases), len(groups)))
    for j, (t, r) in enumerate(groups):
        sel = (cond == t) & (reader == r)
        assert result.values[("r0", "r1", "r2").index(r), ("aided", "unaided").index(t)] == pytest.approx(
            value("auc", own[sel].astype(bool), rating[sel], None), abs=1e-15
        )
        for i, c in enumerate(cases):
            keep = sel & (case != c)
            pseudo[i, j] = value("auc", own[keep].astype(bool), rating[keep], None)
    centred = pseudo - pseudo.mean(axis=0)
    expected = (len(cases) - 1) / len(cases) * centred.T @ centred
    np.testing.assert_allclose(result.covariance, expected, rtol=1e-10, atol=1e-15)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="truth differs between readings of the same case"):
        mrmc(reader, case, cond, own, rating)
    with pytest.raises(ValueError, match="truth_by_reader needs cov='jackknife'"):
        mrmc(reader, case, cond, own, rating, truth_by_reader=True, cov="delong")
    with pytest.raises(ValueError, match="differs between conditions"):
        mrmc(reader, case, cond, np.where(cond == "aided", own, 1 - own), rating, truth_by_reader=True)
