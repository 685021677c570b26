"""A reader's confusion matrix in words (ml.consensus.explain): the sentences an adjudicator and a reader see."""

from __future__ import annotations

import numpy as np
import pytest

from ml.consensus import fit
from ml.consensus.explain import describe_row, explain_reading, grades, meaning, percent, tendency

# A reader who reads one grade high 85% of the time (the issue's "reader 1"), on grades 0..3.
HIGH = [
    [0.15, 0.85, 0.0, 0.0],
    [0.0, 0.15, 0.85, 0.0],
    [0.0, 0.0, 0.15, 0.85],
    [0.0, 0.0, 0.0, 1.0],
]
VALUES = [0, 1, 2, 3]
PRIOR = [0.3, 0.3, 0.3, 0.1]


def test_grades_name_the_direction_and_size():
    assert grades(1) == "one grade high"
    assert grades(-2) == "two grades low"
    assert grades(0) == "the same grade"


def test_a_row_says_what_the_reader_answers_for_that_truth():
    row = describe_row(HIGH[1], 1, VALUES)
    assert (row.said, row.offset) == (2, 1)
    assert row.sentence == "when the truth is 1, says 2 85% of the time (one grade high)"
    assert describe_row([0.9, 0.1], 0, [0, 1]).sentence == "when the truth is 0, says 0 90% of the time"
    assert describe_row([0.0, 1.0], 1, [0, 1]).sentence == "when the truth is 1, always says 1"


def test_the_tendency_of_a_reader_who_reads_one_grade_high():
    t = tendency(HIGH, PRIOR)
    assert t.offset == 1
    assert t.share == pytest.approx(0.9 * 0.85)
    assert t.sentence == "reads one grade high 76% of the time"
    # with a flat prior over the three rows that can go higher, 85% × 3/4
    assert tendency(HIGH).sentence == "reads one grade high 64% of the time"


def test_a_good_reader_agrees_and_a_rare_error_is_named_after():
    good = np.eye(3) * 0.9 + np.roll(np.eye(3), -1, axis=1) * 0.1
    good[0] = [0.9, 0.0, 0.1]  # bottom row's error lies low, two grades
    assert tendency(np.eye(3)).sentence == "always agrees with the consensus"
    t = tendency(good)
    assert t.agree == pytest.approx(0.9)
    assert t.sentence.startswith("agrees with the consensus 90% of the time; otherwise mostly")


def test_meaning_is_bayes_rule_the_other_way():
    m = meaning(HIGH, 2, VALUES, PRIOR)
    # P(truth=1 | says 2) = .3×.85 / (.3×.85 + .3×.15)
    assert m.likely == 1
    assert m.share == pytest.approx(0.85)
    assert m.sentence == "a 2 from this reader most likely means 1 (85%)"
    assert sum(m.believed) == pytest.approx(1.0)
    assert meaning(np.eye(2), 1, [0, 1]).sentence == "a 1 from this reader most likely is a 1 (100%)"


def test_explain_reading_joins_meaning_tendency_and_the_consensus_row():
    out = explain_reading(HIGH, 2, VALUES, PRIOR, truth=1)
    assert out["sentence"] == (
        "a 2 from this reader most likely means 1 (85%); this reader reads one grade high 76% of the time"
    )
    assert out["row"] == "when the truth is 1, says 2 85% of the time (one grade high)"
    assert explain_reading(HIGH, 2, VALUES, PRIOR)["row"] is None


def test_the_issue_example_two_two_zero_is_explained_by_the_fitted_model():
    """A reader who grades one higher 85% of the time: the fit learns it, and the sentence beside their 1 says
    that it most likely means 0 (a 2 is ambiguous: the top grade cannot go higher)."""
    rng = np.random.default_rng(3)
    truth = rng.integers(0, 3, 600)
    items, readers, labels = [], [], []
    for i, t in enumerate(truth):
        for r in range(3):
            if r == 0:  # one grade high 85% of the time
                said = min(t + 1, 2) if rng.random() < 0.85 else t
            else:
                said = t if rng.random() < 0.9 else rng.integers(0, 3)
            items.append(i)
            readers.append(r)
            labels.append(int(said))
    result = fit(np.array(items), np.array(readers), np.array(labels), n_classes=3, model="full")
    matrix = result.confusion[0]
    out = explain_reading(matrix, 1, [0, 1, 2], result.prior)
    assert "one grade high" in str(out["tendency"])
    assert str(out["meaning"]).startswith("a 1 from this reader most likely means 0")


@pytest.mark.parametrize(
    ("matrix", "message"),
    [([[1.0]], "square"), ([[0.5, np.nan], [0.5, 0.5]], "finite"), ([[1, 0], [0, 1], [0, 0]], "square")],
)
def test_bad_matrices_are_refused_with_a_clear_error(matrix, message):
    with pytest.raises(ValueError, match=message):
        tendency(matrix)


def test_a_value_the_scale_lacks_is_refused():
    with pytest.raises(ValueError, match="not one of"):
        meaning(HIGH, 7, VALUES)


# --- grammar: every sentence reads correctly (issue 15, finding 5) -------------------------------------------

BME = {"values": [0, 1], "finding": "BME"}


@pytest.mark.parametrize(
    ("p", "shown"),
    [
        (0.0, "0%"),
        (1.0, "100%"),
        (0.996, ">99%"),
        (0.004, "<1%"),
        (0.5, "50%"),
        (0.0049, "<1%"),
        (0.42, "42%"),
    ],
)
def test_a_share_is_0_or_100_percent_only_when_it_is(p, shown):
    assert percent(p) == shown


@pytest.mark.parametrize(
    ("matrix", "kwargs", "sentence", "you"),
    [
        # never wrong / always wrong
        (np.eye(3), {}, "always agrees with the consensus", "always agree with the consensus"),
        ([[0.0, 1.0], [1.0, 0.0]], {}, "reads one grade high or low, 50% of the time each", None),
        # a tie between two errors is named as one, with "each"
        (
            [[0.6, 0.4, 0.0], [0.2, 0.6, 0.2], [0.0, 0.4, 0.6]],
            {},
            "reads one grade high or low, 20% of the time each",
            "read one grade high or low, 20% of the time each",
        ),
        (
            [[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8]],
            {},
            "agrees with the consensus 80% of the time; otherwise mostly one grade high or low",
            "agree with the consensus 80% of the time; otherwise mostly one grade high or low",
        ),
        # plural grades
        (
            [[0.2, 0.0, 0.8], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
            {},
            "reads two grades high 27% of the time",
            None,
        ),
        # binary: what the reader misses and reports, not grades
        (
            [[0.9, 0.1], [0.3, 0.7]],
            BME,
            "misses BME 30% of the time it is present and reports it 10% of the time it is absent",
            "miss BME 30% of the time it is present and report it 10% of the time it is absent",
        ),
        ([[1.0, 0.0], [0.3, 0.7]], BME, "misses BME 30% of the time it is present", None),
        ([[0.7, 0.3], [0.0, 1.0]], BME, "reports BME 30% of the time it is absent", None),
        (
            [[1.0, 0.0], [1.0, 0.0]],
            BME,
            "misses BME every time it is present",
            "miss BME every time it is present",
        ),
        ([[0.98, 0.02], [0.01, 0.99]], BME, "agrees with the consensus 98% of the time", None),
        # counts without a row for a class: that class says nothing (not a uniform 50%)
        ([[5, 1], [0, 0]], BME, "reports BME 17% of the time it is absent", None),
        ([[0, 0], [0, 0]], {}, "has no reads to judge yet", "have no reads to judge yet"),
    ],
)
def test_the_tendency_reads_correctly(matrix, kwargs, sentence, you):
    t = tendency(matrix, **kwargs)
    assert t.sentence == sentence
    if you is not None:
        assert t.you == you


def test_a_rare_finding_missed_half_the_time_is_not_hidden_by_the_prior():
    """Weighted by a 5% prevalence, misses are 2.5% of all reads (below MIN_SHARE): as a grade tendency this reader
    "agrees 97% of the time"; as a finding, the misses are named."""
    matrix, prior = [[1.0, 0.0], [0.5, 0.5]], [0.95, 0.05]
    assert tendency(matrix, prior).sentence == "agrees with the consensus 98% of the time"
    assert tendency(matrix, prior, **BME).sentence == "misses BME 50% of the time it is present"


@pytest.mark.parametrize(
    ("row", "truth_index", "values", "finding", "sentence"),
    [
        ([0.9, 0.1], 0, [0, 1], "BME", "when BME is absent, calls it absent 90% of the time"),
        ([0.45, 0.55], 0, [0, 1], "BME", "when BME is absent, reports it 55% of the time"),
        ([0.3, 0.7], 1, [0, 1], "BME", "when BME is present, reports it 70% of the time"),
        ([0.6, 0.4], 1, [0, 1], "BME", "when BME is present, misses it 60% of the time"),
        ([0.0, 1.0], 1, [0, 1], "BME", "when BME is present, always reports it"),
        ([0.5, 0.5], 1, [0, 1], "BME", "when BME is present, reports it as often as it misses it (50% each)"),
        ([0.5, 0.5, 0, 0], 1, [0, 1, 2, 3], None, "when the truth is 1, says 0 or 1, 50% of the time each"),
        ([0, 0, 0, 1.0], 2, [0, 1, 2, 3], None, "when the truth is 2, always says 3 (one grade high)"),
        ([0, 0], 0, [0, 1], "BME", "when BME is absent: no reads yet"),
        ([0, 0, 0], 1, [0, 1, 2], None, "when the truth is 1: no reads yet"),
    ],
)
def test_a_row_reads_correctly(row, truth_index, values, finding, sentence):
    assert describe_row(row, truth_index, values, finding).sentence == sentence


@pytest.mark.parametrize(
    ("matrix", "said", "values", "prior", "finding", "sentence"),
    [
        (np.eye(2), 1, [0, 1], None, "BME", "a 1 (BME present) from this reader most likely is right (100%)"),
        (
            [[0.9, 0.1], [0.3, 0.7]],
            0,
            [0, 1],
            [0.2, 0.8],
            "BME",
            "a 0 (BME absent) from this reader most likely means BME is present (57%)",
        ),
        (
            [[0.5, 0.5], [0.5, 0.5]],
            1,
            [0, 1],
            None,
            "BME",
            "a 1 (BME present) from this reader is as likely right as wrong (50% each)",
        ),
        (
            [[0.5, 0.5, 0], [0.5, 0.5, 0], [0, 0, 1]],
            1,
            [0, 1, 2],
            None,
            None,
            "a 1 from this reader is equally likely to mean 0 or 1 (50% each)",
        ),
        (
            [[0.999, 0.001], [0.001, 0.999]],
            1,
            [0, 1],
            None,
            None,
            "a 1 from this reader most likely is a 1 (>99%)",
        ),
    ],
)
def test_the_meaning_of_a_value_reads_correctly(matrix, said, values, prior, finding, sentence):
    assert meaning(matrix, said, values, prior, finding=finding).sentence == sentence


def test_explain_reading_of_a_binary_finding_and_a_truth_row_without_reads():
    out = explain_reading([[0.9, 0.1], [0.3, 0.7]], 1, [0, 1], [0.5, 0.5], truth=1, finding="BME")
    assert out["sentence"] == (
        "a 1 (BME present) from this reader most likely is right (88%); this reader misses BME 30% of the time"
        " it is present and reports it 10% of the time it is absent"
    )
    assert out["row"] == "when BME is present, reports it 70% of the time"
    counts = [[3, 1, 0], [0, 0, 0], [0, 1, 2]]
    assert explain_reading(counts, 1, [0, 1, 2], truth=1)["row"] == "when the truth is 1: no reads yet"


def test_a_fitted_row_without_evidence_is_the_smoothing_prior_not_a_tendency():
    """A reader who never met a present finding: the fit's row for "present" is its smoothing prior (here 15%
    missed); with the fit's expected counts it is left out instead of reported as "misses 15%"."""
    matrix, counts = [[0.97, 0.03], [0.15, 0.85]], [[40.0, 1.2], [0.1, 0.2]]
    assert tendency(matrix, **BME).sentence.startswith("misses BME 15%")
    assert tendency(matrix, **BME, evidence=counts).sentence == "agrees with the consensus 97% of the time"
    out = explain_reading(matrix, 0, [0, 1], truth=1, finding="BME", evidence=counts)
    assert out["row"] == "when BME is present: no reads yet"
    with pytest.raises(ValueError, match="count matrix"):
        tendency(matrix, evidence=[[1.0]])
