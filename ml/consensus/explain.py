"""Plain-language readings of a Dawid-Skene reader model, for adjudicators and for the reader themselves.

A reader's confusion matrix ``m[j][l] = P(reader says l | truth j)`` is what the consensus believes about
that reader. Three questions are answered here, each as numbers and as a sentence:

* ``describe_row``: one row — "when the truth is 1, says 2 85% of the time (one grade high)";
* ``tendency``: the whole matrix weighted by the class prior — "reads one grade high 85% of the time";
* ``meaning``: Bayes' rule the other way — "a 2 from this reader most likely means 1 (80%)".

Grades are the positions of ``values`` (ordinal: the position difference is the number of grades). A binary
finding (values 0 absent, 1 present) named by ``finding`` is described by what the reader misses and what they
report that is not there ("misses BME 30% of the time it is present"), not in grades. Every sentence reads
correctly at 0% and 100% ("always", "never"; a share that merely rounds to 0 or 100 is "<1%" or ">99%"), for
ties ("one grade high or low, 10% of the time each"), and for rows without any reads (a reader's observed counts
may have none for a class). Sentences are about "this reader" (third person); ``Tendency.you`` is the same for
the reader themselves ("you read one grade high ..."). numpy only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: a tendency is named only when it covers at least this share of the reader's reads
MIN_SHARE = 0.05
#: "agrees" when the reader matches the truth at least this often
AGREES = 0.8
#: shares this close count as a tie
TIE = 1e-9
#: a row of a fitted matrix whose (expected) reads number fewer than this is the smoothing prior, not evidence
MIN_EVIDENCE = 1.0

_WORDS = {1: "one", 2: "two", 3: "three", 4: "four"}
_THIRD = {
    "read": "reads",
    "agree": "agrees",
    "miss": "misses",
    "report": "reports",
    "say": "says",
    "call": "calls",
}


def grades(offset: int) -> str:
    """``+1`` → "one grade high", ``-2`` → "two grades low", ``0`` → "the same grade"."""
    if offset == 0:
        return "the same grade"
    n = abs(offset)
    word = _WORDS.get(n, str(n))
    return f"{word} grade{'s' if n > 1 else ''} {'high' if offset > 0 else 'low'}"


def _grades_tied(offsets: Sequence[int]) -> str:
    """Several offsets as often as each other: ``[1, -1]`` → "one grade high or low"."""
    if len(offsets) == 2 and offsets[0] == -offsets[1]:
        return grades(abs(offsets[0])).removesuffix(" high") + " high or low"
    return _or([grades(o) for o in sorted(offsets, key=lambda o: (abs(o), -o))])


def _or(words: Sequence[str]) -> str:
    """ "a", "a or b", "a, b or c"."""
    words = list(words)
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"


def percent(p: float) -> str:
    """A share as shown: "0%" and "100%" only when exact, "<1%" and ">99%" when it merely rounds there."""
    if p >= 1 - TIE:
        return "100%"
    if p <= TIE:
        return "0%"
    r = round(100 * p)  # Python rounds halves to even: 0.765 → 76%
    return ">99%" if r >= 100 else "<1%" if r <= 0 else f"{r}%"


def _always(p: float) -> bool:
    return p >= 1 - TIE


def _never(p: float) -> bool:
    return p <= TIE


def _verb(base: str, person: int) -> str:
    return _THIRD[base] if person == 3 else base


def _how_often(base: str, rest: str, p: float, person: int) -> str:
    """ "reads one grade high 76% of the time"; "always agrees with the consensus"; "never agrees ..."."""
    verb = _verb(base, person)
    if _always(p):
        return f"always {verb} {rest}"
    if _never(p):
        return f"never {verb} {rest}"
    return f"{verb} {rest} {percent(p)} of the time"


def _matrix(matrix: Sequence[Sequence[float]]) -> tuple[np.ndarray, np.ndarray]:
    """The row-normalised matrix and which rows hold anything (a row of zeros is a class never seen)."""
    m = np.asarray(matrix, dtype=float)
    if m.ndim != 2 or m.shape[0] != m.shape[1] or m.shape[0] < 2:
        raise ValueError(f"a confusion matrix is square with at least 2 classes, got shape {m.shape}")
    if not np.all(np.isfinite(m)) or np.any(m < 0):
        raise ValueError("a confusion matrix holds finite probabilities >= 0")
    sums = m.sum(axis=1, keepdims=True)
    known = sums[:, 0] > 0
    return np.divide(m, sums, out=np.full_like(m, 1.0 / m.shape[1]), where=sums > 0), known


def _with_evidence(known: np.ndarray, evidence: Sequence[Sequence[float]] | None) -> np.ndarray:
    """Rows with reads: ``evidence`` (the fit's expected counts) drops rows the smoothing alone filled."""
    if evidence is None:
        return known
    e = np.asarray(evidence, dtype=float)
    if e.shape != (known.size, known.size):
        raise ValueError(f"the evidence is a {known.size}x{known.size} count matrix, got shape {e.shape}")
    return known & (e.sum(axis=1) >= MIN_EVIDENCE)


def _prior(prior: Sequence[float] | None, k: int) -> np.ndarray:
    if prior is None:
        return np.full(k, 1.0 / k)
    p = np.asarray(prior, dtype=float)
    if p.shape != (k,) or not np.all(np.isfinite(p)) or np.any(p < 0) or p.sum() <= 0:
        raise ValueError(f"the prior needs {k} finite probabilities >= 0")
    return p / p.sum()


def _binary(values: Sequence[int], finding: str | None) -> bool:
    return finding is not None and list(values) == [0, 1]


@dataclass(frozen=True)
class Row:
    truth: int  # the value (not the index) of the row
    said: int | None  # the value the reader gives most often for this truth (None: no reads with this truth)
    share: float
    offset: int  # said - truth, in grades
    sentence: str


def describe_row(
    row: Sequence[float], truth_index: int, values: Sequence[int], finding: str | None = None
) -> Row:
    """One row of a reader's confusion matrix (the truth is ``values[truth_index]``) as a sentence; a binary
    ``finding`` is described by what the reader reports and misses."""
    r = np.asarray(row, dtype=float)
    if r.shape != (len(values),) or not np.all(np.isfinite(r)) or np.any(r < 0):
        raise ValueError(f"a row holds {len(values)} finite probabilities >= 0")
    if not 0 <= truth_index < len(values):
        raise ValueError(f"truth_index {truth_index} is outside 0..{len(values) - 1}")
    truth = values[truth_index]
    binary = _binary(values, finding)
    when = f"when {finding} is {'present' if truth else 'absent'}" if binary else f"when the truth is {truth}"
    total = r.sum()
    if total <= 0:
        return Row(truth=truth, said=None, share=0.0, offset=0, sentence=f"{when}: no reads yet")
    r = r / total
    share = float(r.max())
    tied = [i for i in range(len(values)) if r[i] >= share - TIE]
    said = tied[0] if truth_index not in tied else truth_index
    offset = said - truth_index
    if binary:
        reports = r[1]  # how often the reader calls it present
        if truth:
            sentence = (
                f"{when}, reports it as often as it misses it (50% each)"
                if len(tied) > 1
                else f"{when}, {_how_often('report', 'it', reports, 3)}"
                if said == 1
                else f"{when}, {_how_often('miss', 'it', 1 - reports, 3)}"
            )
        else:
            sentence = (
                f"{when}, reports it as often as not (50% each)"
                if len(tied) > 1
                else f"{when}, {_how_often('report', 'it', reports, 3)}"
                if said == 1
                else f"{when}, {_how_often('call', 'it absent', 1 - reports, 3)}"
            )
    elif len(tied) > 1:
        said_words = _or([str(values[i]) for i in tied])
        sentence = f"{when}, says {said_words}, {percent(share)} of the time each"
    else:
        sentence = f"{when}, {_how_often('say', str(values[said]), share, 3)}"
        if offset:
            sentence += f" ({grades(offset)})"
    return Row(truth=truth, said=values[said], share=share, offset=offset, sentence=sentence)


@dataclass(frozen=True)
class Tendency:
    agree: float  # P(says the truth), over the prior of the rows with reads
    offsets: dict[int, float]  # grades off → probability, over the prior
    offset: int  # the most likely offset other than 0 (0 when the reader hardly ever errs); binary: -1 misses
    share: float  # its probability (binary: the share of present findings missed, or absent ones reported)
    sentence: str  # about "this reader": "reads one grade high 76% of the time"
    you: str  # the same, to the reader: "read one grade high 76% of the time"


def tendency(
    matrix: Sequence[Sequence[float]],
    prior: Sequence[float] | None = None,
    *,
    values: Sequence[int] | None = None,
    finding: str | None = None,
    evidence: Sequence[Sequence[float]] | None = None,
) -> Tendency:
    """How a reader errs overall: the distribution of (said − truth) in grades, weighted by the prior; rows
    without reads count for nothing (``evidence``: the fit's expected counts, for a fitted matrix whose empty rows
    hold the smoothing prior). A binary ``finding`` (``values`` 0, 1) is described by the share of present
    findings the reader misses and of absent ones they report."""
    m, known = _matrix(matrix)
    known = _with_evidence(known, evidence)
    k = m.shape[0]
    p = _prior(prior, k) * known
    values = list(range(k)) if values is None else list(values)
    if p.sum() <= 0:
        return Tendency(0.0, {}, 0, 0.0, "has no reads to judge yet", "have no reads to judge yet")
    p = p / p.sum()
    offsets: dict[int, float] = {}
    for j in range(k):
        for col in range(k):
            offsets[col - j] = offsets.get(col - j, 0.0) + float(p[j] * m[j, col])
    agree = offsets.get(0, 0.0)
    if _binary(values, finding) and k == 2:
        return _binary_tendency(m, known, agree, offsets, str(finding))
    errors = sorted(((v, d) for d, v in offsets.items() if d != 0), key=lambda x: (-x[0], abs(x[1]), -x[1]))
    share, offset = errors[0] if errors and errors[0][0] >= MIN_SHARE else (0.0, 0)
    tied = [d for v, d in errors if offset and v >= share - TIE]

    def say(person: int) -> str:
        if offset == 0:
            return _how_often("agree", "with the consensus", agree, person)
        if agree >= AGREES:
            mostly = _grades_tied(tied) if len(tied) > 1 else grades(offset)
            return f"{_how_often('agree', 'with the consensus', agree, person)}; otherwise mostly {mostly}"
        if len(tied) > 1:
            return f"{_verb('read', person)} {_grades_tied(tied)}, {percent(share)} of the time each"
        return _how_often("read", grades(offset), share, person)

    return Tendency(agree=agree, offsets=offsets, offset=offset, share=share, sentence=say(3), you=say(2))


def _binary_tendency(
    m: np.ndarray, known: np.ndarray, agree: float, offsets: dict[int, float], finding: str
) -> Tendency:
    missed = float(m[1, 0]) if known[1] else 0.0
    reported = float(m[0, 1]) if known[0] else 0.0

    def rate(base: str, what: str, p: float, when: str, person: int) -> str:
        verb = _verb(base, person)
        if _always(p):
            return f"{verb} {what} every time it is {when}"
        return f"{verb} {what} {percent(p)} of the time it is {when}"

    def say(person: int) -> str:
        parts = []
        if missed >= MIN_SHARE:
            parts.append(rate("miss", finding, missed, "present", person))
        if reported >= MIN_SHARE:
            parts.append(rate("report", "it" if parts else finding, reported, "absent", person))
        return " and ".join(parts) if parts else _how_often("agree", "with the consensus", agree, person)

    offset, share = (-1, missed) if missed >= reported else (1, reported)
    if share < MIN_SHARE:
        offset, share = 0, 0.0
    return Tendency(agree=agree, offsets=offsets, offset=offset, share=share, sentence=say(3), you=say(2))


@dataclass(frozen=True)
class Meaning:
    said: int
    believed: list[float]  # P(truth = values[j] | the reader said ``said``)
    likely: int  # the most likely truth (the reader's own value when it ties for most likely)
    share: float
    sentence: str


def meaning(
    matrix: Sequence[Sequence[float]],
    said: int,
    values: Sequence[int],
    prior: Sequence[float] | None = None,
    finding: str | None = None,
) -> Meaning:
    """What the model believes a reader means when they say ``said``: P(truth | said) by Bayes' rule."""
    m, _ = _matrix(matrix)
    if m.shape[0] != len(values):
        raise ValueError(f"the matrix has {m.shape[0]} classes, the values {len(values)}")
    if said not in values:
        raise ValueError(f"{said!r} is not one of {list(values)}")
    col = list(values).index(said)
    joint = _prior(prior, len(values)) * m[:, col]
    total = joint.sum()
    believed = joint / total if total > 0 else np.full(len(values), 1.0 / len(values))
    share = float(believed.max())
    tied = [i for i in range(len(values)) if believed[i] >= share - TIE]
    likely = col if col in tied else tied[0]
    truth = values[likely]
    if _binary(values, finding):
        state = "present" if said else "absent"
        subject = f"a {said} ({finding} {state}) from this reader"
        if len(tied) > 1:
            sentence = f"{subject} is as likely right as wrong (50% each)"
        elif truth == said:
            sentence = f"{subject} most likely is right ({percent(share)})"
        else:
            sentence = f"{subject} most likely means {finding} is {'present' if truth else 'absent'} ({percent(share)})"
    elif len(tied) > 1:
        truths = _or([str(values[i]) for i in tied])
        sentence = f"a {said} from this reader is equally likely to mean {truths} ({percent(share)} each)"
    elif truth == said:
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
    finding: str | None = None,
    evidence: Sequence[Sequence[float]] | None = None,
) -> dict[str, object]:
    """Everything shown beside one reader's value: the meaning of the value, the reader's tendency and (when
    the consensus ``truth`` is known) their row for that truth; ``sentence`` joins the first two. ``finding``
    names a binary finding (values 0, 1), so that the sentences speak of it rather than of grades; ``evidence``: the
    fit's expected counts (rows without reads are said to have none)."""
    said_means = meaning(matrix, said, values, prior, finding=finding)
    overall = tendency(matrix, prior, values=values, finding=finding, evidence=evidence)
    row = None
    if truth is not None and truth in values:
        m, known = _matrix(matrix)
        known = _with_evidence(known, evidence)
        j = list(values).index(truth)
        row = describe_row((m[j] if known[j] else np.zeros(len(values))).tolist(), j, values, finding)
    return {
        "sentence": f"{said_means.sentence}; this reader {overall.sentence}",
        "meaning": said_means.sentence,
        "believed": said_means.believed,
        "tendency": overall.sentence,
        "row": row.sentence if row else None,
    }
