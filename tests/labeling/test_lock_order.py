"""Lock order between row locks and the audit chain (PostgreSQL, two connections at once).

Every audited write takes the audit chain's advisory lock near its end, and its foreign keys are checked at
COMMIT (Django's PostgreSQL constraints are DEFERRABLE INITIALLY DEFERRED), i.e. after the chain lock: the checks
take KEY SHARE locks on the referenced rows (the project, its case, the reader). A reading submit locked its
assignment with ``select_related`` and no ``of``, so ``FOR UPDATE`` locked the joined project, scheme and case
rows as well; assignment generation and project deletion locked the project ``FOR UPDATE`` too. So a consensus
refit (or any audited write of the project) that committed while a submit was under way held the chain lock and
waited for the project row; the submit then waited for the chain lock: ``deadlock detected``, one of them failed,
and until PostgreSQL noticed, every audited write of every project queued behind the chain lock. A stress run
(3 submitting readers, 3 refits, one generation, 40 s) saw 54 deadlocks.

Now row locks lock only their own row, ``FOR NO KEY UPDATE`` (they still serialise the writers that take them,
but no longer block foreign-key checks), and ``audit_record`` runs the pending foreign-key checks before it
takes the chain lock, so the chain lock is the last lock of a transaction.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from labeling.models import AuditEvent, ConsensusRun, Reading
from labeling.services import assignments as assignments_service
from labeling.services import readings as readings_service
from labeling.services.assignments import assignments_generate
from labeling.services.audit import audit_chain_breaks
from labeling.services.consensus import consensus_refit_project
from labeling.services.readings import reading_submit
from tests.labeling.factories import full_values
from tests.services import missing_service

WAIT_S = 20.0
#: how long the second write may take while the first holds its locks (it needs well under a second)
UNDER_THE_LOCK_S = 5.0


def _in_thread(fn: Callable[[], object], errors: list[BaseException]) -> threading.Thread:
    def run() -> None:
        try:
            fn()
        except BaseException as exc:  # reported by the test
            errors.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _pause(monkeypatch, module: Any, name: str) -> tuple[threading.Event, threading.Event]:
    """Patch ``module.name`` so that its first call stops (its caller holding what it has locked so far) until
    ``go`` is set; later calls run at once."""
    reached, go = threading.Event(), threading.Event()
    original = getattr(module, name)
    first = threading.Lock()

    def paused(*args: Any, **kwargs: Any) -> Any:
        if first.acquire(blocking=False):
            reached.set()
            assert go.wait(WAIT_S), "the test never let the paused write go on"
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, paused)
    return reached, go


def _submit(assignment) -> Callable[[], object]:
    return lambda: reading_submit(
        actor=assignment.reader, assignment=assignment, values=full_values(assignment.project.scheme.parsed)
    )


def _generate(world) -> Callable[[], object]:
    return lambda: assignments_generate(
        actor=world.admin, project=world.project, readers_per_case=2, gold_fraction=0, repeat_fraction=0
    )


def _refit(world) -> Callable[[], object]:
    return lambda: consensus_refit_project(project_id=world.project.pk)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("holder", "write"),
    [
        ("reading submit", "consensus refit"),  # the deadlock the e2e run met
        ("reading submit", "another reader's submit"),
        ("assignment generation", "consensus refit"),
        ("assignment generation", "reading submit"),
    ],
)
def test_an_audited_write_goes_through_while_another_holds_its_row_locks(world, monkeypatch, holder, write):
    if connection.vendor != "postgresql":
        missing_service("row and advisory lock order needs PostgreSQL")
    if holder == "reading submit":
        if write == "consensus refit":  # a reading for the refit to fit (a first, full fit)
            _submit(world.other_assignment)()
        first, second = (
            _submit(world.assignment),
            (_refit(world) if write == "consensus refit" else _submit(world.other_assignment)),
        )
        reached, go = _pause(monkeypatch, readings_service, "_write_reading")  # after the assignment's lock
    else:
        _submit(world.other_assignment)()
        first, second = (
            _generate(world),
            (_refit(world) if write == "consensus refit" else _submit(world.assignment)),
        )
        reached, go = _pause(monkeypatch, assignments_service, "_mark_gold")  # after the project's lock
    errors: list[BaseException] = []
    holding = _in_thread(first, errors)
    try:
        assert reached.wait(WAIT_S), f"the {holder} never reached its pause"
        writer = _in_thread(second, errors)
        writer.join(timeout=UNDER_THE_LOCK_S)
        through_under_the_lock = not writer.is_alive()
    finally:
        go.set()
    holding.join(timeout=WAIT_S)
    writer.join(timeout=WAIT_S)
    assert not holding.is_alive() and not writer.is_alive(), "still waiting after the pause ended"
    assert not errors, f"failed: {errors!r}"
    assert through_under_the_lock, f"the {write} waited for the {holder}'s locks"
    actions = list(AuditEvent.objects.order_by("seq").values_list("action", flat=True))
    assert ("consensus.refit" in actions) == (write == "consensus refit")
    if write == "consensus refit":
        assert ConsensusRun.objects.filter(project=world.project, is_current=True).exists()
    submits = 1 if (holder, write) == ("assignment generation", "consensus refit") else 2
    assert Reading.objects.filter(project=world.project).count() == submits
    assert list(audit_chain_breaks()) == []


ROOT = Path(__file__).resolve().parents[2]
#: row locks that may stay FOR UPDATE: rows no audited write references by a foreign key, or SQLite only
FOR_UPDATE_ALLOWED = {
    ("labeling/services/locks.py", "Project"),  # SQLite's stand-in for the advisory lock
    ("labeling/services/deidentification.py", "StudyDeidentification"),
    ("labeling/services/ingest.py", "ImportJob"),
    ("labeling/services/outbox.py", "OutboxMessage"),
    ("ml/services/training.py", "TrainingRun"),  # the worker's skip_locked claim, of self
}


def test_row_locks_take_no_key_update_and_only_their_own_row():
    """The lock order above holds only while row locks are FOR NO KEY UPDATE on their own row: a plain
    ``select_for_update()`` (FOR UPDATE) blocks every foreign-key check of the row, and with
    ``select_related`` and no ``of`` it locks the joined rows too (how a submit came to lock its project)."""
    offenders = []
    for path in [*ROOT.glob("labeling/**/*.py"), *ROOT.glob("ml/**/*.py")]:
        rel = path.relative_to(ROOT).as_posix()
        if "/migrations/" in rel:
            continue
        text = path.read_text()
        for m in re.finditer(r"(\w+)\.objects\.select_for_update\(", text):
            model, end, depth = m.group(1), m.end(), 1
            while depth:  # the call's arguments, to their closing parenthesis
                depth += {"(": 1, ")": -1}.get(text[end], 0)
                end += 1
            args = text[m.end() : end - 1]
            rest = re.split(r"\.get\(|\.filter\(|\.first\(|\n\n", text[end:], maxsplit=1)[0]
            if ".select_related(" in rest and "of=" not in args:
                offenders.append(f"{rel}: {model} locks its select_related rows too (no of=)")
            if "no_key=True" not in args and (rel, model) not in FOR_UPDATE_ALLOWED:
                offenders.append(f"{rel}: {model} FOR UPDATE (no_key=True missing)")
    assert offenders == []
