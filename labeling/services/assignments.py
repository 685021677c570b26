"""The assignment generator and handing out work.

Generation is deterministic for a seed and idempotent: it tops up what is missing (readers per case, gold
cases, repeat sessions, the aided half of a crossover reader study) and creates nothing when re-run on
unchanged data. Loads stay balanced: a case takes
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
    project: Project, readers: list[int], k: int, seed: int, loads: dict[int, int]
) -> list[Assignment]:
    taken: dict[int, set[int]] = defaultdict(set)  # case -> readers with any assignment row on it
    active: dict[int, int] = defaultdict(int)  # case -> readers on session 1 who still count
    for case_id, reader_id, status in project.assignments.filter(session=1, aided=False).values_list(
        "case_id", "reader_id", "status"
    ):
        taken[case_id].add(reader_id)
        if status in ACTIVE:
            active[case_id] += 1
    case_ids = list(project.cases.order_by("id").values_list("id", flat=True))
    random.Random(f"{seed}:cases").shuffle(case_ids)
    rank = {r: i for i, r in enumerate(random.Random(f"{seed}:readers").sample(readers, len(readers)))}
    new: list[Assignment] = []
    for case_id in case_ids:
        need = k - active[case_id]
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
) -> list[Assignment]:
    firsts = list(
        project.assignments.filter(session=1, aided=False, status__in=ACTIVE)
        .order_by("id")
        .values_list("id", "case_id", "reader_id")
    )
    repeated = set(project.assignments.filter(session=2, aided=False).values_list("previous_id", flat=True))
    need = round(fraction * len(firsts)) - len(repeated)
    if need <= 0:
        return []
    pool: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for first_id, case_id, reader_id in firsts:
        if first_id not in repeated and reader_id in loads:
            pool[reader_id].append((first_id, case_id))
    for reader_id, items in pool.items():
        random.Random(f"{seed}:repeats:{reader_id}").shuffle(items)
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
                previous_id=first_id,
                washout_days=washout_days,
                washout_cases=washout_cases,
                order_key=_order_key(seed, case_id, reader_id, 2),
            )
        )
        if pool[reader_id]:
            heapq.heappush(heap, (load + 1, rank[reader_id], reader_id))
    return new


def _assign_crossover(project: Project, seed: int, washout_days: int, washout_cases: int) -> int:
    """Pair every unaided first read with an aided read of the same case by the same reader.

    Half of each reader's pairs (rounded down) read the case with the AI first: their aided assignment is
    the first session and the unaided one waits for it, like a blinded repeat (days and other cases). Which
    cases go AI-first is a seeded shuffle per reader. A pair whose unaided read has started is unaided-first.
    """
    firsts = list(
        project.assignments.filter(session=1, aided=False, status__in=ACTIVE)
        .order_by("id")
        .values_list("id", "case_id", "reader_id", "status", "previous_id")
    )
    aided = {
        (case_id, reader_id): previous_id
        for case_id, reader_id, previous_id in project.assignments.filter(session=1, aided=True).values_list(
            "case_id", "reader_id", "previous_id"
        )
    }
    per_reader: dict[int, list[tuple[int, int, str]]] = defaultdict(list)
    ai_first_done: dict[int, int] = defaultdict(int)
    pairs: dict[int, int] = defaultdict(int)
    for first_id, case_id, reader_id, status, previous_id in firsts:
        if (case_id, reader_id) in aided:
            pairs[reader_id] += 1
            ai_first_done[reader_id] += aided[(case_id, reader_id)] is None
        elif previous_id is None:
            per_reader[reader_id].append((first_id, case_id, status))
    created = 0
    for reader_id, todo in sorted(per_reader.items()):
        random.Random(f"{seed}:crossover:{reader_id}").shuffle(todo)
        want_ai_first = (pairs[reader_id] + len(todo)) // 2 - ai_first_done[reader_id]
        for first_id, case_id, status in todo:
            ai_first = want_ai_first > 0 and status == Assignment.Status.OPEN
            twin = Assignment.objects.create(
                project=project,
                case_id=case_id,
                reader_id=reader_id,
                session=1,
                aided=True,
                previous_id=None if ai_first else first_id,
                washout_days=0 if ai_first else washout_days,
                washout_cases=0 if ai_first else washout_cases,
                order_key=_order_key(seed, case_id, reader_id, 1)
                if ai_first
                else _order_key(seed, case_id, reader_id, 3),
            )
            if ai_first:
                want_ai_first -= 1
                Assignment.objects.filter(pk=first_id).update(
                    previous=twin,
                    washout_days=washout_days,
                    washout_cases=washout_cases,
                    order_key=_order_key(seed, case_id, reader_id, 3),
                )
            created += 1
    return created


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
        firsts = _assign_first_reads(project, readers, k, seed, loads)
        Assignment.objects.bulk_create(firsts, batch_size=5000)
        repeats = _assign_repeats(
            project,
            readers,
            repeat_fraction,
            seed,
            loads,
            project.washout_days if washout_days is None else washout_days,
            project.washout_cases if washout_cases is None else washout_cases,
        )
        Assignment.objects.bulk_create(repeats, batch_size=5000)
        crossover = 0
        if project.ai_aided_reads and project.reader_study_design == Project.ReaderStudyDesign.CROSSOVER:
            crossover = _assign_crossover(
                project,
                seed,
                project.washout_days if washout_days is None else washout_days,
                project.washout_cases if washout_cases is None else washout_cases,
            )
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
            },
        )
    return result


@transaction.atomic
def assignment_start(*, assignment: Assignment) -> Assignment:
    """Mark an open assignment as being read (idempotent for one already in progress)."""
    assignment = Assignment.objects.select_for_update(no_key=True).get(pk=assignment.pk)
    if assignment.status == Assignment.Status.OPEN:
        assignment.status = Assignment.Status.IN_PROGRESS
        assignment.started_at = timezone.now()
        assignment.save(update_fields=["status", "started_at"])
    elif assignment.status != Assignment.Status.IN_PROGRESS:
        raise Conflict(f"the assignment is {assignment.status}")
    return assignment
