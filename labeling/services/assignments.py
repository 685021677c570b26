"""The assignment generator and handing out work.

Generation is deterministic for a seed and idempotent: it tops up what is missing (readers per case, gold
cases, repeat sessions, the other conditions of a crossover reader study) and creates nothing when re-run on
unchanged data. A reader study's first reads are in its first condition; a sequential design opens the next
condition of a case when its read is submitted (``labeling.services.readings``), a crossover design plans
every condition here, in sessions apart by the washout (``_assign_crossover``). Loads stay balanced: a case takes
its readers from the least-loaded eligible readers, repeats go to the least-loaded reader, so the total load
per reader differs by at most one whenever every reader is eligible.
"""

from __future__ import annotations

import hashlib
import heapq
import random
from collections import defaultdict
from dataclasses import dataclass, field

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from labeling.conditions import UNAIDED, condition, crossover_order
from labeling.exceptions import Conflict, InvalidInput
from labeling.models import Assignment, Case, Membership, Project
from labeling.services.audit import audit_record
from labeling.services.projects import require_active

ACTIVE = (Assignment.Status.OPEN, Assignment.Status.IN_PROGRESS, Assignment.Status.SUBMITTED)


@dataclass(frozen=True)
class GenerationResult:
    created: int
    created_repeats: int
    gold_cases: int
    created_crossover: int = 0
    loads: dict[int, int] = field(default_factory=dict)

    @property
    def spread(self) -> int:
        return max(self.loads.values()) - min(self.loads.values()) if self.loads else 0


def _order_key(seed: int, case_id: int, reader_id: int, session: int) -> int:
    """A fresh, reproducible random position in the reader's worklist."""
    digest = hashlib.blake2b(f"{seed}:{case_id}:{reader_id}:{session}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1  # fits a signed 64-bit column


def _mark_gold(project: Project, fraction: float, rng: random.Random) -> int:
    cases = list(project.cases.order_by("id").values_list("id", "is_gold", "reference"))
    target = round(fraction * len(cases))
    gold = sum(1 for _, is_gold, _ in cases if is_gold)
    if gold >= target:
        return gold
    candidates = [cid for cid, is_gold, ref in cases if not is_gold and ref is not None]
    if len(candidates) < target - gold:
        raise InvalidInput(
            f"a gold fraction of {fraction} needs {target} gold cases, but only "
            f"{gold + len(candidates)} cases have reference values",
            field="gold_fraction",
        )
    rng.shuffle(candidates)
    Case.objects.filter(pk__in=candidates[: target - gold]).update(is_gold=True)
    return target


def _assign_first_reads(
    project: Project, readers: list[int], k: int, seed: int, loads: dict[int, int], first: str
) -> list[Assignment]:
    """k distinct readers per case, each with a first-session read in condition ``first``."""
    taken: dict[int, set[int]] = defaultdict(set)  # case -> readers with any first-session row on it
    active: dict[int, set[int]] = defaultdict(set)  # case -> readers on session 1 who still count
    for case_id, reader_id, status in project.assignments.filter(session=1).values_list(
        "case_id", "reader_id", "status"
    ):
        taken[case_id].add(reader_id)
        if status in ACTIVE:
            active[case_id].add(reader_id)
    case_ids = list(project.cases.order_by("id").values_list("id", flat=True))
    random.Random(f"{seed}:cases").shuffle(case_ids)
    rank = {r: i for i, r in enumerate(random.Random(f"{seed}:readers").sample(readers, len(readers)))}
    new: list[Assignment] = []
    for case_id in case_ids:
        need = k - len(active[case_id])
        if need <= 0:
            continue
        eligible = sorted((r for r in readers if r not in taken[case_id]), key=lambda r: (loads[r], rank[r]))
        for reader_id in eligible[:need]:
            loads[reader_id] += 1
            new.append(
                Assignment(
                    project=project,
                    case_id=case_id,
                    reader_id=reader_id,
                    session=1,
                    condition=first,
                    aided=condition(first).ai,
                    order_key=_order_key(seed, case_id, reader_id, 1),
                )
            )
    return new


def _assign_repeats(
    project: Project,
    readers: list[int],
    fraction: float,
    seed: int,
    loads: dict[int, int],
    washout_days: int,
    washout_cases: int,
    first: str,
) -> list[Assignment]:
    """Blinded repeats (session 2) of a fraction of the first-session reads in condition ``first``; in a
    sequential reader study the repeat's other conditions follow it at once, as the first session's did."""
    firsts = list(
        project.assignments.filter(session=1, condition=first, status__in=ACTIVE)
        .order_by("id")
        .values_list("id", "case_id", "reader_id")
    )
    repeated = set(
        project.assignments.filter(session=2, condition=first).values_list("previous_id", flat=True)
    )
    need = round(fraction * len(firsts)) - len(repeated)
    if need <= 0:
        return []
    pool: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for first_id, case_id, reader_id in firsts:
        if first_id not in repeated and reader_id in loads:
            pool[reader_id].append((first_id, case_id))
    for reader_id, items in pool.items():
        salt = "" if first == UNAIDED else f":{first}"  # plans of before the conditions stay as they were
        random.Random(f"{seed}:repeats:{reader_id}{salt}").shuffle(items)
    rank = {r: i for i, r in enumerate(random.Random(f"{seed}:repeat-readers").sample(readers, len(readers)))}
    heap = [(loads[r], rank[r], r) for r in readers if pool[r]]
    heapq.heapify(heap)
    new: list[Assignment] = []
    while heap and len(new) < need:
        load, _, reader_id = heapq.heappop(heap)
        first_id, case_id = pool[reader_id].pop()
        loads[reader_id] = load + 1
        new.append(
            Assignment(
                project=project,
                case_id=case_id,
                reader_id=reader_id,
                session=2,
                condition=first,
                aided=condition(first).ai,
                previous_id=first_id,
                washout_days=washout_days,
                washout_cases=washout_cases,
                order_key=_order_key(seed, case_id, reader_id, 2),
            )
        )
        if pool[reader_id]:
            heapq.heappush(heap, (load + 1, rank[reader_id], reader_id))
    return new


def _assign_crossover(
    project: Project,
    conditions: list[str],
    seed: int,
    washout_days: int,
    washout_cases: int,
    readers: list[int] | None = None,
) -> int:
    """Read every first-session case of a reader in each of the study's conditions, one session apart.

    The order of a case's conditions is a row of the cyclic Latin square of ``conditions``; each reader's
    cases take the rows in turn, in a seeded shuffle of their cases, so the rows are balanced per reader (with
    two conditions, half of each reader's cases, rounded down, are read with the AI first). Each later read
    waits for the earlier one, like a blinded repeat (the washout's days and other cases). A case whose first
    read has started keeps it first. Re-running tops up: a case missing a condition gets it last. A case
    with a cancelled read (its reader was removed) is left as it is, and so are readers no longer in
    ``readers``.
    """
    first = conditions[0]
    k = len(conditions)
    rows: dict[tuple[int, int], dict[str, tuple[int, int | None, str]]] = defaultdict(dict)
    cancelled: set[tuple[int, int]] = set()
    for pk, case_id, reader_id, cond, previous_id, status in project.assignments.filter(
        session=1
    ).values_list("id", "case_id", "reader_id", "condition", "previous_id", "status"):
        if status not in ACTIVE:
            cancelled.add((case_id, reader_id))
        rows[(case_id, reader_id)][cond] = (pk, previous_id, status)
    for pair in cancelled:
        rows.pop(pair)
    if readers is not None:
        current = set(readers)
        rows = defaultdict(dict, {pair: have for pair, have in rows.items() if pair[1] in current})
    used: dict[int, list[int]] = defaultdict(lambda: [0] * k)  # reader -> cases per Latin-square row
    todo: dict[int, list[int]] = defaultdict(list)  # reader -> cases read in the first condition only
    extend: list[tuple[int, int]] = []  # (case, reader) pairs with some but not all conditions
    for (case_id, reader_id), have in rows.items():
        if first not in have:
            continue
        if len(have) == 1:
            todo[reader_id].append(case_id)
            continue
        head = next((c for c, (_, prev, _) in have.items() if prev is None), first)
        if head in conditions:
            used[reader_id][conditions.index(head)] += 1
        if not set(conditions) <= set(have):
            extend.append((case_id, reader_id))
    created = 0

    def chain(case_id: int, reader_id: int, order: list[str], have: dict[str, tuple[int, int | None, str]]):
        nonlocal created
        previous: int | None = None
        for i, cond in enumerate(order):
            if cond in have:
                pk = have[cond][0]
                if i == 0 or have[cond][1] is not None:
                    previous = pk
                    continue
                Assignment.objects.filter(pk=pk).update(  # the first read waits for an earlier condition
                    previous_id=previous,
                    washout_days=washout_days,
                    washout_cases=washout_cases,
                    order_key=_order_key(seed, case_id, reader_id, 2 + i),
                )
                previous = pk
                continue
            made = Assignment.objects.create(
                project=project,
                case_id=case_id,
                reader_id=reader_id,
                session=1,
                condition=cond,
                previous_id=previous,
                washout_days=washout_days if previous else 0,
                washout_cases=washout_cases if previous else 0,
                order_key=_order_key(seed, case_id, reader_id, 1 if i == 0 else 2 + i),
            )
            previous = made.pk
            created += 1

    for reader_id, cases in sorted(todo.items()):
        cases.sort()
        random.Random(f"{seed}:crossover:{reader_id}").shuffle(cases)
        for case_id in cases:
            have = rows[(case_id, reader_id)]
            started = have[first][2] != Assignment.Status.OPEN
            rotation = 0 if started else min(range(k), key=lambda r: (used[reader_id][r], r))
            used[reader_id][rotation] += 1
            chain(case_id, reader_id, crossover_order(conditions, rotation), have)
    for case_id, reader_id in sorted(extend):
        have = rows[(case_id, reader_id)]
        done = [c for c in _chain_order(have) if c in have]
        chain(case_id, reader_id, done + [c for c in conditions if c not in have], have)
    return created


def _chain_order(have: dict[str, tuple[int, int | None, str]]) -> list[str]:
    """The conditions of one case and reader in the order their reads wait for each other."""
    by_pk = {pk: cond for cond, (pk, _, _) in have.items()}
    after = {prev: cond for cond, (_, prev, _) in have.items() if prev is not None}
    head = next((c for c, (_, prev, _) in have.items() if prev is None or prev not in by_pk), None)
    out: list[str] = []
    while head is not None and head not in out:
        out.append(head)
        head = after.get(have[head][0])
    return out + [c for c in have if c not in out]


def assignments_generate(
    *,
    actor: User | None,
    project: Project,
    seed: int = 0,
    readers_per_case: int | None = None,
    gold_fraction: float | None = None,
    repeat_fraction: float | None = None,
    washout_days: int | None = None,
    washout_cases: int | None = None,
) -> GenerationResult:
    """Top up the project's assignments: k distinct readers per case, gold cases, blinded repeats.

    Options default to the project's settings. Runs under a row lock on the project, so two concurrent
    calls serialise. Raises InvalidInput when there are fewer readers than k or too few reference cases.
    """
    k = project.readers_per_case if readers_per_case is None else readers_per_case
    gold_fraction = project.gold_fraction if gold_fraction is None else gold_fraction
    repeat_fraction = project.repeat_fraction if repeat_fraction is None else repeat_fraction
    if not 0 <= gold_fraction <= 1 or not 0 <= repeat_fraction <= 1:
        raise InvalidInput("fractions must lie between 0 and 1", field="gold_fraction")
    with transaction.atomic():
        project = Project.objects.select_for_update(no_key=True).get(pk=project.pk)
        require_active(project)
        readers = sorted(
            project.memberships.filter(role=Membership.Role.READER, user__is_active=True).values_list(
                "user_id", flat=True
            )
        )
        if k < 1 or len(readers) < k:
            raise InvalidInput(
                f"{k} readers per case needs at least {k} readers; the project has {len(readers)}",
                field="readers_per_case",
            )
        gold = _mark_gold(project, gold_fraction, random.Random(f"{seed}:gold"))
        loads = dict.fromkeys(readers, 0)
        for reader_id in project.assignments.filter(status__in=ACTIVE).values_list("reader_id", flat=True):
            if reader_id in loads:
                loads[reader_id] += 1
        conditions = project.study_conditions if len(project.study_conditions) >= 2 else [UNAIDED]
        firsts = _assign_first_reads(project, readers, k, seed, loads, conditions[0])
        Assignment.objects.bulk_create(firsts, batch_size=5000)
        # intra-reader agreement per condition: a crossover study repeats reads of every condition, a
        # sequential one those of its first (the others follow each repeat at once)
        crossing = len(conditions) >= 2 and project.reader_study_design == Project.ReaderStudyDesign.CROSSOVER
        crossover = 0  # the other conditions first: their reads are repeated too
        if crossing:
            crossover = _assign_crossover(
                project,
                conditions,
                seed,
                project.washout_days if washout_days is None else washout_days,
                project.washout_cases if washout_cases is None else washout_cases,
                readers,
            )
        repeats = []
        for repeated in conditions if crossing else conditions[:1]:
            repeats += _assign_repeats(
                project,
                readers,
                repeat_fraction,
                seed,
                loads,
                project.washout_days if washout_days is None else washout_days,
                project.washout_cases if washout_cases is None else washout_cases,
                repeated,
            )
        Assignment.objects.bulk_create(repeats, batch_size=5000)
        result = GenerationResult(len(firsts), len(repeats), gold, created_crossover=crossover, loads=loads)
        audit_record(
            actor=actor,
            action="assignments.generate",
            target=project,
            project=project,
            data={
                "seed": seed,
                "readers_per_case": k,
                "gold_fraction": gold_fraction,
                "repeat_fraction": repeat_fraction,
                "created": len(firsts),
                "created_repeats": len(repeats),
                "gold_cases": gold,
                "created_crossover": crossover,
                "conditions": conditions if len(conditions) >= 2 else [],
                "design": project.reader_study_design,
            },
        )
    return result


def assignment_start(*, assignment: Assignment) -> Assignment:
    """Mark an open assignment as being read (idempotent for one already in progress); returns ``assignment``
    with its status and start as stored (what the caller loaded with it, its case and project, is kept).

    One query: a status-guarded UPDATE of an open one (it locks the row, as a select-for-update would), a read
    of one in progress. Raises Conflict when the assignment is neither open nor in progress any more
    (submitted or cancelled meanwhile)."""
    now = timezone.now()
    open_ = Assignment.objects.filter(pk=assignment.pk, status=Assignment.Status.OPEN)
    if assignment.status == Assignment.Status.OPEN and open_.update(
        status=Assignment.Status.IN_PROGRESS, started_at=now
    ):
        assignment.status, assignment.started_at = Assignment.Status.IN_PROGRESS, now
        return assignment
    # in progress as the caller loaded it, or no longer open: as stored now
    stored = Assignment.objects.filter(pk=assignment.pk).values_list("status", "started_at").first()
    if stored is None or stored[0] != Assignment.Status.IN_PROGRESS:
        raise Conflict(f"the assignment is {stored[0] if stored else 'gone'}")
    assignment.status, assignment.started_at = stored
    return assignment
