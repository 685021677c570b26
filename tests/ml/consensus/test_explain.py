"""A reader's confusion matrix in words (ml.consensus.explain): the sentences an adjudicator and a reader see."""

from __future__ import annotations

import numpy as np
import pytest

from ml.consensus import fit
from ml.consensus.explain import describe_row, explain_reading, grades, meaning, tendency

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
    assert tendency(np.eye(3)).sentence == "agrees with the consensus 100% of the time"
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
