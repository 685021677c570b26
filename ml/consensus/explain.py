"""Plain-language readings of a Dawid-Skene reader model, for adjudicators and for the reader themselves.

A reader's confusion matrix ``m[j][l] = P(reader says l | truth j)`` is what the consensus believes about
that reader. Three questions are answered here, each as numbers and as a sentence:

* ``describe_row``: one row — "when the truth is 1, says 2 85% of the time (one grade high)";
* ``tendency``: the whole matrix weighted by the class prior — "reads one grade high 85% of the time";
* ``meaning``: Bayes' rule the other way — "a 2 from this reader most likely means 1 (80%)".

Grades are the positions of ``values`` (ordinal: the position difference is the number of grades). numpy only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: a tendency is named only when it covers at least this share of the reader's reads
MIN_SHARE = 0.05
#: "agrees" when the reader matches the truth at least this often
AGREES = 0.8

_WORDS = {1: "one", 2: "two", 3: "three", 4: "four"}


def grades(offset: int) -> str:
    """``+1`` → "one grade high", ``-2`` → "two grades low", ``0`` → "the same grade"."""
    if offset == 0:
        return "the same grade"
    n = abs(offset)
    word = _WORDS.get(n, str(n))
    return f"{word} grade{'s' if n > 1 else ''} {'high' if offset > 0 else 'low'}"


def percent(p: float) -> str:
    return f"{round(100 * p)}%"  # Python rounds halves to even: 0.765 → 76%


def _matrix(matrix: Sequence[Sequence[float]]) -> np.ndarray:
    m = np.asarray(matrix, dtype=float)
    if m.ndim != 2 or m.shape[0] != m.shape[1] or m.shape[0] < 2:
        raise ValueError(f"a confusion matrix is square with at least 2 classes, got shape {m.shape}")
    if not np.all(np.isfinite(m)) or np.any(m < 0):
        raise ValueError("a confusion matrix holds finite probabilities >= 0")
    sums = m.sum(axis=1, keepdims=True)
    return np.divide(m, sums, out=np.full_like(m, 1.0 / m.shape[1]), where=sums > 0)


def _prior(prior: Sequence[float] | None, k: int) -> np.ndarray:
    if prior is None:
        return np.full(k, 1.0 / k)
    p = np.asarray(prior, dtype=float)
    if p.shape != (k,) or not np.all(np.isfinite(p)) or np.any(p < 0) or p.sum() <= 0:
        raise ValueError(f"the prior needs {k} finite probabilities >= 0")
    return p / p.sum()


@dataclass(frozen=True)
class Row:
    truth: int  # the value (not the index) of the row
    said: int  # the value the reader gives most often for this truth
    share: float
    offset: int  # said - truth, in grades
    sentence: str


def describe_row(row: Sequence[float], truth_index: int, values: Sequence[int]) -> Row:
    """One row of a reader's confusion matrix (the truth is ``values[truth_index]``) as a sentence."""
    r = np.asarray(row, dtype=float)
    if r.shape != (len(values),) or not np.all(np.isfinite(r)) or np.any(r < 0):
        raise ValueError(f"a row holds {len(values)} finite probabilities >= 0")
    if not 0 <= truth_index < len(values):
        raise ValueError(f"truth_index {truth_index} is outside 0..{len(values) - 1}")
    total = r.sum()
    r = r / total if total > 0 else np.full(len(values), 1.0 / len(values))
    said = int(np.argmax(r))
    offset = said - truth_index
    share = float(r[said])
    truth = values[truth_index]
    if offset == 0:
        sentence = f"when the truth is {truth}, says {truth} {percent(share)} of the time"
    else:
        sentence = (
            f"when the truth is {truth}, says {values[said]} {percent(share)} of the time ({grades(offset)})"
        )
    return Row(truth=truth, said=values[said], share=share, offset=offset, sentence=sentence)


@dataclass(frozen=True)
class Tendency:
    agree: float  # P(says the truth)
    offsets: dict[int, float]  # grades off → probability, over the prior
    offset: int  # the most likely offset other than 0 (0 when the reader hardly ever errs)
    share: float  # its probability
    sentence: str


def tendency(matrix: Sequence[Sequence[float]], prior: Sequence[float] | None = None) -> Tendency:
    """How a reader errs overall: the distribution of (said − truth) in grades, weighted by the prior."""
    m = _matrix(matrix)
    k = m.shape[0]
    p = _prior(prior, k)
    offsets: dict[int, float] = {}
    for j in range(k):
        for col in range(k):
            offsets[col - j] = offsets.get(col - j, 0.0) + float(p[j] * m[j, col])
    agree = offsets.get(0, 0.0)
    errors = sorted(((v, d) for d, v in offsets.items() if d != 0), key=lambda x: (-x[0], abs(x[1])))
    share, offset = errors[0] if errors and errors[0][0] >= MIN_SHARE else (0.0, 0)
    if offset == 0:
        sentence = f"agrees with the consensus {percent(agree)} of the time"
    elif agree >= AGREES:
        sentence = (
            f"agrees with the consensus {percent(agree)} of the time; otherwise mostly {grades(offset)}"
        )
    else:
        sentence = f"reads {grades(offset)} {percent(share)} of the time"
    return Tendency(agree=agree, offsets=offsets, offset=offset, share=share, sentence=sentence)


@dataclass(frozen=True)
class Meaning:
    said: int
    believed: list[float]  # P(truth = values[j] | the reader said ``said``)
    likely: int  # the most likely truth
    share: float
    sentence: str


def meaning(
    matrix: Sequence[Sequence[float]],
    said: int,
    values: Sequence[int],
    prior: Sequence[float] | None = None,
) -> Meaning:
    """What the model believes a reader means when they say ``said``: P(truth | said) by Bayes' rule."""
    m = _matrix(matrix)
    if m.shape[0] != len(values):
        raise ValueError(f"the matrix has {m.shape[0]} classes, the values {len(values)}")
    if said not in values:
        raise ValueError(f"{said!r} is not one of {list(values)}")
    col = list(values).index(said)
    joint = _prior(prior, len(values)) * m[:, col]
    total = joint.sum()
    believed = joint / total if total > 0 else np.full(len(values), 1.0 / len(values))
    likely = int(np.argmax(believed))
    share = float(believed[likely])
    truth = values[likely]
    if truth == said:
        sentence = f"a {said} from this reader most likely is a {truth} ({percent(share)})"
    else:
        sentence = f"a {said} from this reader most likely means {truth} ({percent(share)})"
    return Meaning(
        said=said, believed=[float(x) for x in believed], likely=truth, share=share, sentence=sentence
    )


def explain_reading(
    matrix: Sequence[Sequence[float]],
    said: int,
    values: Sequence[int],
    prior: Sequence[float] | None = None,
    truth: int | None = None,
) -> dict[str, object]:
    """Everything shown beside one reader's value: the meaning of the value, the reader's tendency and (when
    the consensus ``truth`` is known) their row for that truth; ``sentence`` joins the first two."""
    said_means = meaning(matrix, said, values, prior)
    overall = tendency(matrix, prior)
    row = (
        describe_row(_matrix(matrix)[list(values).index(truth)], list(values).index(truth), values)
        if truth is not None and truth in values
        else None
    )
    return {
        "sentence": f"{said_means.sentence}; this reader {overall.sentence}",
        "meaning": said_means.sentence,
        "believed": said_means.believed,
        "tendency": overall.sentence,
        "row": row.sentence if row else None,
    }
