"""Agreement statistics: textbook examples, equality with the reference libraries, degenerate cases."""

from __future__ import annotations

import krippendorff
import numpy as np
import pandas as pd
import pingouin
import pytest
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import aggregate_raters
from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss_kappa

from ml.consensus.agreement import (
    ICC_FORMS,
    cohen_kappa,
    fleiss_kappa,
    icc,
    intra_reader_kappa,
    krippendorff_alpha,
    reader_accuracy,
)

# Fleiss (1971): 30 patients, 6 psychiatrists, 5 diagnoses (R irr::diagnoses); kappa = 0.430.
FLEISS_1971 = np.array(
    [
        [4, 4, 4, 4, 4, 4],
        [2, 2, 2, 5, 5, 5],
        [2, 3, 3, 3, 3, 5],
        [5, 5, 5, 5, 5, 5],
        [2, 2, 2, 4, 4, 4],
        [1, 1, 3, 3, 3, 3],
        [3, 3, 3, 3, 5, 5],
        [1, 1, 3, 3, 3, 4],
        [1, 1, 4, 4, 4, 4],
        [5, 5, 5, 5, 5, 5],
        [1, 4, 4, 4, 4, 4],
        [1, 2, 4, 4, 4, 4],
        [2, 2, 2, 3, 3, 3],
        [1, 4, 4, 4, 4, 4],
        [2, 2, 4, 4, 4, 5],
        [3, 3, 3, 3, 3, 5],
        [1, 1, 1, 4, 5, 5],
        [1, 1, 1, 1, 1, 2],
        [2, 2, 4, 4, 4, 4],
        [1, 3, 3, 5, 5, 5],
        [5, 5, 5, 5, 5, 5],
        [2, 4, 4, 4, 4, 4],
        [2, 2, 4, 5, 5, 5],
        [1, 1, 4, 4, 4, 4],
        [1, 4, 4, 4, 4, 5],
        [2, 2, 2, 2, 2, 4],
        [1, 1, 1, 1, 5, 5],
        [2, 2, 4, 4, 4, 4],
        [1, 3, 3, 3, 3, 3],
        [5, 5, 5, 5, 5, 5],
    ]
)

# Shrout & Fleiss (1979), Table 2: 6 targets x 4 judges.
SHROUT_FLEISS = np.array(
    [[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]], dtype=float
)
SHROUT_FLEISS_ICC = {
    "ICC1": 0.166,
    "ICC2": 0.290,
    "ICC3": 0.715,
    "ICC1k": 0.443,
    "ICC2k": 0.620,
    "ICC3k": 0.909,
}


def _random_pairs(seed: int, n: int = 150, k: int = 5) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = rng.integers(0, k, n)
    b = np.where(rng.random(n) < 0.6, a, rng.integers(0, k, n))
    return a, b


def test_cohen_kappa_textbook_two_by_two() -> None:
    # 50 items: yes/yes 20, yes/no 5, no/yes 10, no/no 15 -> p_o = 0.7, p_e = 0.5, kappa = 0.4.
    a = np.array([1] * 25 + [0] * 25)
    b = np.array([1] * 20 + [0] * 5 + [1] * 10 + [0] * 15)
    assert cohen_kappa(a, b).value == pytest.approx(0.4, abs=1e-12)


@pytest.mark.parametrize("weights", [None, "linear", "quadratic"])
@pytest.mark.parametrize("seed", range(5))
def test_cohen_kappa_equals_sklearn(weights, seed) -> None:
    a, b = _random_pairs(seed)
    assert cohen_kappa(a, b, weights=weights).value == pytest.approx(
        cohen_kappa_score(a, b, weights=weights), abs=1e-9
    )


def test_weighted_kappa_uses_given_label_order_like_sklearn() -> None:
    a, b = np.array([0, 1, 4, 4, 1]), np.array([0, 4, 4, 1, 1])
    labels = [0, 1, 2, 3, 4]
    ours = cohen_kappa(a, b, weights="quadratic", labels=labels).value
    assert ours == pytest.approx(cohen_kappa_score(a, b, weights="quadratic", labels=labels), abs=1e-12)


def test_cohen_kappa_undefined_when_both_readers_use_one_class() -> None:
    same = np.zeros(10, dtype=int)
    assert cohen_kappa(same, same).value is None
    assert cohen_kappa(same, same, undefined=1.0).value == 1.0
    assert cohen_kappa([], []).value is None


def test_fleiss_1971_example() -> None:
    table, _ = aggregate_raters(FLEISS_1971)
    result = fleiss_kappa(table)
    assert round(result.value, 3) == 0.430
    assert result.value == pytest.approx(sm_fleiss_kappa(table), abs=1e-9)
    assert result.n == 30


def test_fleiss_kappa_equals_statsmodels_on_random_tables() -> None:
    rng = np.random.default_rng(2)
    for _ in range(5):
        table, _ = aggregate_raters(rng.integers(0, 4, (40, 5)))
        assert fleiss_kappa(table).value == pytest.approx(sm_fleiss_kappa(table), abs=1e-9)


def test_fleiss_kappa_degenerate_and_invalid() -> None:
    assert fleiss_kappa([[3, 0], [3, 0]]).value is None
    with pytest.raises(ValueError, match="same number"):
        fleiss_kappa([[3, 0], [1, 1]])


def test_krippendorff_alpha_crowd_kit_fixture() -> None:
    # Readers A, B: X (Yes, Yes), Y (No, No) -> 1.0; adding Z (Yes, No) -> 4/9 (SPEC section 5).
    assert krippendorff_alpha([[1, 0], [1, 0]]).value == pytest.approx(1.0)
    assert krippendorff_alpha([[1, 0, 1], [1, 0, 0]]).value == pytest.approx(4 / 9, abs=1e-12)


def test_krippendorff_alpha_textbook_example_with_missing() -> None:
    nan = np.nan
    data = [
        [nan, nan, nan, nan, nan, 3, 4, 1, 2, 1, 1, 3, 3, nan, 3],
        [1, nan, 2, 1, 3, 3, 4, 3, nan, nan, nan, nan, nan, nan, nan],
        [nan, nan, 2, 1, 3, 4, 4, nan, 2, 1, 1, 3, 3, nan, 4],
    ]
    assert round(krippendorff_alpha(data, level="nominal").value, 6) == 0.691358
    assert round(krippendorff_alpha(data, level="interval").value, 6) == 0.810845


@pytest.mark.parametrize("level", ["nominal", "ordinal", "interval"])
@pytest.mark.parametrize("seed", range(4))
def test_krippendorff_alpha_equals_package(level, seed) -> None:
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 5, 40)
    data = np.clip(truth + rng.integers(-1, 2, (4, 40)), 0, 4).astype(float)
    data[rng.random(data.shape) < 0.3] = np.nan
    expected = krippendorff.alpha(data, level_of_measurement=level)
    assert krippendorff_alpha(data, level=level).value == pytest.approx(expected, abs=1e-9)


def test_krippendorff_alpha_undefined_cases() -> None:
    assert krippendorff_alpha([[1, 1], [1, 1]]).value is None  # one value in the domain
    assert krippendorff_alpha([[1, np.nan], [np.nan, 0]]).value is None  # no pairable unit
    assert krippendorff_alpha(np.full((2, 3), np.nan)).value is None


def test_icc_shrout_fleiss_table() -> None:
    for form, expected in SHROUT_FLEISS_ICC.items():
        assert round(icc(SHROUT_FLEISS, form=form).value, 3) == expected


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning", "ignore:.*inplace.*")
def test_icc_equals_pingouin(seed) -> None:
    rng = np.random.default_rng(seed)
    scores = rng.normal(10, 3, (25, 1)) + rng.normal(0, 1, (1, 4)) + rng.normal(0, 1.5, (25, 4))
    long = pd.DataFrame(
        {"target": np.repeat(np.arange(25), 4), "rater": np.tile(np.arange(4), 25), "score": scores.ravel()}
    )
    table = pingouin.intraclass_corr(long, targets="target", raters="rater", ratings="score")
    # pingouin 0.7 names the forms ICC(1,1), ICC(A,1), ICC(C,1), ICC(1,k), ICC(A,k), ICC(C,k), in this order
    reference = dict(zip(ICC_FORMS, table["ICC"], strict=True))
    for form in ICC_FORMS:
        assert icc(scores, form=form).value == pytest.approx(reference[form], abs=1e-9)


def test_icc_drops_incomplete_items_and_handles_zero_variance() -> None:
    data = SHROUT_FLEISS.copy()
    data[0, 1] = np.nan
    assert icc(data).n == 5
    assert icc(np.ones((4, 3))).value is None
    with pytest.raises(ValueError, match="form"):
        icc(SHROUT_FLEISS, form="ICC4")  # type: ignore[arg-type]


def test_bootstrap_interval_brackets_value_and_is_reproducible() -> None:
    a, b = _random_pairs(9, n=300)
    first = cohen_kappa(a, b, n_boot=300, seed=4)
    again = cohen_kappa(a, b, n_boot=300, seed=4)
    assert first == again
    assert first.ci_low < first.value < first.ci_high
    assert first.n_boot == 300


def test_cluster_bootstrap_widens_interval_for_correlated_units() -> None:
    rng = np.random.default_rng(1)
    a_patient = rng.integers(0, 2, 60)
    b_patient = np.where(rng.random(60) < 0.7, a_patient, 1 - a_patient)
    a, b = np.repeat(a_patient, 8), np.repeat(b_patient, 8)  # 8 quadrants copy their patient
    groups = np.repeat(np.arange(60), 8)
    naive = cohen_kappa(a, b, n_boot=400, seed=0)
    clustered = cohen_kappa(a, b, n_boot=400, seed=0, groups=groups)
    assert (clustered.ci_high - clustered.ci_low) > 2 * (naive.ci_high - naive.ci_low)


def test_statistics_with_bootstrap_never_emit_nan() -> None:
    same = np.zeros(20, dtype=int)
    result = cohen_kappa(same, same, n_boot=50)
    assert result.value is None and result.ci_low is None and result.n_boot == 0
    assert krippendorff_alpha(np.ones((3, 5)), n_boot=20).ci_low is None
    assert icc(np.ones((5, 3)), n_boot=20).value is None


def test_intra_reader_kappa_from_repeat_sessions() -> None:
    rng = np.random.default_rng(3)
    truth = rng.integers(0, 5, 200)
    items = np.tile(np.arange(200), 4)
    readers = np.repeat([0, 0, 1, 1], 200)
    sessions = np.repeat([0, 1, 0, 1], 200)
    noise = np.where(np.repeat([0, 0, 1, 1], 200) == 0, 0.05, 0.6)
    labels = np.where(rng.random(800) < noise, rng.integers(0, 5, 800), np.tile(truth, 4))
    result = intra_reader_kappa(items, readers, sessions, labels, weights="quadratic")
    assert [r.reader for r in result] == [0, 1]
    assert result[0].kappa.value > result[1].kappa.value
    expected = cohen_kappa_score(labels[:200], labels[200:400], weights="quadratic")
    assert result[0].kappa.value == pytest.approx(expected, abs=1e-9)
    assert result[0].n_sessions == 2 and result[0].kappa.n == 200
    sessions_as_coders = np.stack([labels[:200], labels[200:400]]).astype(float)
    alpha = krippendorff.alpha(
        sessions_as_coders, level_of_measurement="ordinal", value_domain=np.unique(labels)
    )
    assert result[0].alpha.value == pytest.approx(alpha, abs=1e-9)


def test_intra_reader_kappa_ci_clusters_items_by_case_and_can_skip_alphas_bootstrap() -> None:
    rng = np.random.default_rng(5)
    truth = rng.integers(0, 2, 120)
    items = np.tile(np.arange(120), 2)
    labels = np.where(rng.random(240) < 0.2, 1 - np.tile(truth, 2), np.tile(truth, 2))
    cases = np.arange(120) // 6  # six items (joints x regions) a case, resampled together
    args = (items, np.zeros(240, dtype=int), np.repeat([1, 2], 120), labels)
    [r] = intra_reader_kappa(*args, n_boot=200, seed=1, groups=cases, alpha_ci=False)
    assert r.kappa.ci_low is not None and r.kappa.ci_low < r.kappa.value < r.kappa.ci_high
    assert r.alpha.value is not None and r.alpha.ci_low is None
    [full] = intra_reader_kappa(*args, n_boot=200, seed=1, groups=cases)
    assert full.kappa == r.kappa and full.alpha.ci_low is not None


def test_intra_reader_kappa_without_repeats_is_none() -> None:
    result = intra_reader_kappa([0, 1], [0, 0], [0, 0], [1, 0])
    assert result[0].kappa.value is None and result[0].kappa.n == 0
    assert result[0].alpha.value is None


def test_reader_accuracy_against_consensus() -> None:
    reference = np.array([1, 1, 1, 1, 0, 0, 0, 0])
    items = np.tile(np.arange(8), 2)
    readers = np.repeat([0, 1], 8)
    labels = np.array([1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1])
    acc = reader_accuracy(items, readers, labels, reference, n_boot=50)
    assert acc[0].sensitivity.value == pytest.approx(0.75)
    assert acc[0].specificity.value == pytest.approx(0.75)
    assert acc[1].sensitivity.value == 1.0 and acc[1].specificity.value == 0.0
    assert acc[0].sensitivity.n == 4
