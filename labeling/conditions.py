"""Reader-study conditions: what a read is done with (issue 14). Django-free.

A read carries a *condition*: "unaided" (the images alone), "aided" (the images and the AI's pre-read), or
an imaging condition such as "t1_only" (no STIR series) vs "t1_stir". A condition decides what the reader is
served: the AI pre-read or not, and which of the scheme's sequences (by SeriesDescription); a series outside
them is a 404 to that read. A project's reader study compares its ordered conditions; reads outside a reader
study are "unaided". New conditions are one entry of ``CONDITIONS``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

UNAIDED = "unaided"
AIDED = "aided"
#: The conditions of a project with AI-aided reads that names none (paper (b): unaided, then aided).
DEFAULT_AI_CONDITIONS = (UNAIDED, AIDED)
MAX_CONDITIONS = 6


@dataclass(frozen=True)
class Condition:
    name: str
    label: str  # shown to the reader on the reading screen and the worklist
    ai: bool  # the reader is served the AI pre-read
    sequences: tuple[str, ...] | None  # the scheme's sequences (SeriesDescription) served; None: every series
    description: str  # in words, for the admin and the report

    def shows_series(self, description: str) -> bool:
        """Whether a series described so is served to a read in this condition."""
        return self.sequences is None or description in self.sequences


CONDITIONS: dict[str, Condition] = {
    c.name: c
    for c in (
        Condition(UNAIDED, "Unaided", False, None, "the images alone"),
        Condition(AIDED, "AI-aided", True, None, "the images and the AI's pre-read"),
        Condition("t1_only", "T1 only", False, ("T1",), "the T1 series only (no STIR)"),
        Condition("t1_stir", "T1 + STIR", False, ("T1", "STIR"), "the T1 and STIR series"),
        Condition("t1_only_aided", "T1 only, AI-aided", True, ("T1",), "the T1 series and the AI's pre-read"),
    )
}


class ConditionError(ValueError):
    """A list of conditions that cannot be a project's reader study."""


def condition(name: str) -> Condition:
    """The condition called ``name`` (KeyError naming the known ones when there is none)."""
    try:
        return CONDITIONS[name]
    except KeyError:
        raise KeyError(f"unknown condition {name!r}; known: {', '.join(CONDITIONS)}") from None


def condition_label(name: str) -> str:
    found = CONDITIONS.get(name)
    return found.label if found else name


def validate_conditions(names: Iterable[object], *, sequences: Sequence[str] = ()) -> list[str]:
    """A project's study conditions, checked: known names, no repeats, 2 to MAX_CONDITIONS of them (or none:
    the project's default), and a sequence a condition serves must be one of the scheme's ``sequences``."""
    out = list(names)
    if not out:
        return []
    if not all(isinstance(n, str) for n in out):
        raise ConditionError("conditions are names, e.g. unaided, aided")
    checked = [str(n) for n in out]
    unknown = [n for n in checked if n not in CONDITIONS]
    if unknown:
        raise ConditionError(f"unknown condition {unknown[0]!r}; known: {', '.join(CONDITIONS)}")
    if len(set(checked)) != len(checked):
        raise ConditionError("a condition is named twice")
    if not 2 <= len(checked) <= MAX_CONDITIONS:
        raise ConditionError(f"a reader study compares 2 to {MAX_CONDITIONS} conditions")
    for name in checked:
        wanted = CONDITIONS[name].sequences or ()
        missing = [s for s in wanted if s not in sequences]
        if missing:
            raise ConditionError(f"{name} needs a {missing[0]} series, which the project's scheme has not")
    return checked


def study_conditions(stored: Sequence[str], ai_aided_reads: bool) -> list[str]:
    """A project's conditions in order: those it names, else unaided and aided when AI-aided reads are on,
    else none (no reader study: every read is unaided)."""
    if stored:
        return list(stored)
    return list(DEFAULT_AI_CONDITIONS) if ai_aided_reads else []


def crossover_order(conditions: Sequence[str], rotation: int) -> list[str]:
    """Row ``rotation`` of the cyclic Latin square of ``conditions``: the order one case is read in."""
    k = len(conditions)
    return [conditions[(rotation + i) % k] for i in range(k)]
