"""Reads shaped for one caller each. Reader-facing selectors only ever return the reader's own rows."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from operator import attrgetter
from typing import Any, NamedTuple

from django.contrib.auth.models import User
from django.db.models import Case as DbCase
from django.db.models import Count, Exists, F, Max, OuterRef, Q, QuerySet, Subquery, Sum, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone

from labeling.exceptions import InvalidInput, NotFound
from labeling.models import (
    Adjudication,
    Assignment,
    AuditEvent,
    Case,
    ConsensusRun,
    Contour,
    ContourAdjudication,
    ContourConsensus,
    ItemPosterior,
    Membership,
    Project,
    ReaderConfusion,
    ReaderContourReliability,
    Reading,
    ReadingValue,
    Study,
)
from labeling.prepared import PreparedQuery
from ml.consensus.explain import explain_reading, percent, tendency

OPEN_STATES = (Assignment.Status.OPEN, Assignment.Status.IN_PROGRESS)


def project_list_for_user(*, user: User) -> QuerySet[Project]:
    """Projects the user holds any role in (every project for staff); deleted ones are hidden."""
    projects = Project.objects.active().select_related("scheme").order_by("id")
    if user.is_staff:
        return projects
    return projects.filter(memberships__user=user).distinct()


def membership_list(*, project: Project) -> QuerySet[Membership]:
    """The project's roles; a reader role carries ``open_assignments``, the assignments (open or in progress)
    that removing it would cancel (0 for other roles)."""
    open_count = (
        Assignment.objects.filter(project=project, reader=OuterRef("user"), status__in=OPEN_STATES)
        .order_by()
        .values("reader")
        .annotate(n=Count("id"))
        .values("n")
    )
    return (
        project.memberships.select_related("user")
        .annotate(
            open_assignments=DbCase(
                When(role=Membership.Role.READER, then=Coalesce(Subquery(open_count), 0)), default=Value(0)
            )
        )
        .order_by("user__username", "role")
    )


def roles_of(*, user: User, project_id: int) -> set[str]:
    return set(Membership.objects.filter(user=user, project_id=project_id).values_list("role", flat=True))


def is_blinded(*, user: User, project_id: int) -> bool:
    """Whether ``user`` still has an unsubmitted assignment (first, aided or repeat) in the project."""
    return Assignment.objects.filter(reader=user, project_id=project_id, status__in=OPEN_STATES).exists()


def blinded_project_ids(*, user: User) -> QuerySet[Assignment, Any]:
    """The ids of the projects in which ``user`` is blinded (a subquery)."""
    return Assignment.objects.filter(reader=user, status__in=OPEN_STATES).values("project_id")


def _available(assignments: QuerySet[Assignment], now: datetime | None = None) -> QuerySet[Assignment]:
    """Keep first sessions, and repeats whose washout (days and other cases read since, as of ``now``, else
    the present) has passed."""
    read_since = (
        Assignment.objects.filter(
            reader=OuterRef("reader"),
            project=OuterRef("project"),
            status=Assignment.Status.SUBMITTED,
            submitted_at__gt=OuterRef("previous__submitted_at"),
        )
        .exclude(case=OuterRef("case"))
        .order_by()
        .values("reader")
        .annotate(n=Count("id"))
        .values("n")
    )
    return assignments.annotate(read_since=Coalesce(Subquery(read_since), 0)).filter(
        Q(previous__isnull=True)
        | Q(
            previous__status=Assignment.Status.SUBMITTED,
            read_since__gte=F("washout_cases"),
            not_before__lte=now or timezone.now(),
        )
    )


def _worklist(reader_id: int, project_id: int, now: datetime | None = None) -> QuerySet[Assignment]:
    mine = Assignment.objects.filter(reader_id=reader_id, project_id=project_id, status__in=OPEN_STATES)
    return _available(mine, now).order_by("order_key", "id")


def worklist_for_reader(*, reader: User, project_id: int) -> QuerySet[Assignment]:
    """The reader's open assignments that can be read now, in their (blinded, random) order."""
    return _worklist(reader.pk, project_id)


class WorklistRow(NamedTuple):
    """One case of a reader's worklist: the columns the worklist page shows, and the id its pseudonym is
    derived from."""

    pk: int
    key: str
    status: str
    aided: bool
    condition: str
    started_at: datetime | None


def _worklist_query(reader_id: int, project_id: int, now: datetime) -> QuerySet[Assignment, Any]:
    return _worklist(reader_id, project_id, now).values_list(*WorklistRow._fields)


#: The worklist is the query readers send most, and building it through the ORM took longer than PostgreSQL
#: takes to plan and run it: compiled once per process.
_WORKLIST = PreparedQuery(_worklist_query, reader_id=int, project_id=int, now=datetime)


def worklist_rows_for_reader(*, reader: User, project_id: int) -> list[WorklistRow]:
    """``worklist_for_reader`` as the worklist page shows it: its rows, in order (a reader's worklist holds
    hundreds of rows, and each column and model instance is work per row)."""
    rows = _WORKLIST.rows(reader_id=reader.pk, project_id=project_id, now=timezone.now())
    return [WorklistRow(*row) for row in rows]


def _next_query(reader_id: int, project_id: int, now: datetime) -> QuerySet[Assignment]:
    in_progress_first = DbCase(When(status=Assignment.Status.IN_PROGRESS, then=Value(0)), default=Value(1))
    worklist = _worklist(reader_id, project_id, now).select_related("case__study", "draft")
    return worklist.order_by(in_progress_first, "order_key", "id")[:1]


_NEXT = PreparedQuery(_next_query, reader_id=int, project_id=int, now=datetime)


def worklist_next_for_reader(*, reader: User, project_id: int) -> Assignment | None:
    """The case a reader opens next: the one in progress, else the first of the worklist (None: none left);
    with its study and its draft (None when nothing was saved). The caller has the project."""
    found = _NEXT.instances(reader_id=reader.pk, project_id=project_id, now=timezone.now())
    return found[0] if found else None


def _status_counts_query(reader_id: int, project_id: int) -> QuerySet[Assignment, tuple[str, int]]:
    mine = Assignment.objects.filter(reader_id=reader_id, project_id=project_id)
    return mine.values_list("status").annotate(n=Count("id")).values_list("status", "n")


_STATUS_COUNTS = PreparedQuery(_status_counts_query, reader_id=int, project_id=int)


def worklist_progress(*, reader: User, project_id: int, available: int | None = None) -> dict[str, int]:
    """The reader's counts; ``available``: the length of their worklist when the caller has it."""
    counts = dict(_STATUS_COUNTS.rows(reader_id=reader.pk, project_id=project_id))
    if available is None:
        available = worklist_for_reader(reader=reader, project_id=project_id).count()
    total = sum(n for status, n in counts.items() if status != Assignment.Status.CANCELLED)
    done = counts.get(Assignment.Status.SUBMITTED, 0)
    return {"total": total, "submitted": done, "available": available, "waiting": total - done - available}


def _reader_assignment_query(reader_id: int, key: str) -> QuerySet[Assignment]:
    mine = Assignment.objects.filter(reader_id=reader_id, key=key, project__deleted_at__isnull=True)
    return mine.select_related("case__study", "project__scheme").order_by("pk")[:1]


#: Every draft save, submit and case view asks it first: compiled once per process.
_READER_ASSIGNMENT = PreparedQuery(_reader_assignment_query, reader_id=int, key=str)


def assignment_get_for_reader(*, reader: User, key: str) -> Assignment:
    """The reader's own assignment by its key, if it can be read now or was read; anything else (another
    reader's key, an unknown one, a repeat still in its washout, a cancelled read, one of a deleted project) is
    NotFound. Loaded with the case's study and the project's scheme: one plain query; a second, the washout's,
    only for a repeat not yet submitted (building the washout query costs more than running it)."""
    rows = _READER_ASSIGNMENT.instances(reader_id=reader.pk, key=key)
    found = rows[0] if rows else None
    if found is None or found.status == Assignment.Status.CANCELLED:
        raise NotFound("no such assignment")
    if found.status == Assignment.Status.SUBMITTED or found.previous_id is None:
        return found
    if not _available(Assignment.objects.filter(pk=found.pk)).exists():  # a repeat still in its washout
        raise NotFound("no such assignment")
    return found


def _with_versions(readings: QuerySet[Reading]) -> QuerySet[Reading]:
    """``version``: 1 for the reading submitted, 2 for its first correction, … (per assignment)."""
    earlier = (
        Reading.objects.filter(assignment=OuterRef("assignment"), pk__lte=OuterRef("pk"))
        .order_by()
        .values("assignment")
        .annotate(n=Count("id"))
        .values("n")
    )
    return readings.annotate(version=Subquery(earlier))


def reading_list_for_reader(*, reader: User, project_id: int | None = None) -> QuerySet[Reading]:
    """The reader's own readings, less those of a case the reader is still to read again.

    Blinding: while any other session of the same case (an AI-aided read, the second read of a crossover
    pair, a blinded repeat) is open, the earlier reading of that case stays hidden. (The answer to a
    submission, the reading just written, is ``reading_submitted_for_reader``.) Each reading carries its ``version`` within its assignment (readers address readings by assignment key and
    version).
    """
    pending = Assignment.objects.filter(reader=reader, status__in=OPEN_STATES).values("case_id")
    readings = Reading.objects.filter(reader=reader, project__deleted_at__isnull=True).exclude(
        case_id__in=pending
    )
    readings = readings.select_related("assignment__case__study", "superseded_by").prefetch_related(
        "values", "contours"
    )
    if project_id is not None:
        readings = readings.filter(project_id=project_id)
    return _with_versions(readings).order_by("id")


def reading_get_for_reader(*, reader: User, key: str, version: int) -> Reading:
    """Version ``version`` of the reader's reading of their assignment ``key``; anything else is NotFound,
    never Forbidden (blinding)."""
    readings = list(reading_list_for_reader(reader=reader).filter(assignment__key=key))
    if not 1 <= version <= len(readings):  # a chain per assignment: versions 1..n in id order
        raise NotFound("no such reading")
    return readings[version - 1]


def _answered_as_written(reading: Reading) -> bool:
    """Give a reading this request wrote (``rows_written``, from ``services.readings``) its values and
    contours as ``prefetch_related`` does, and no correction (nothing supersedes a reading just written):
    serialising it then reads nothing back. False for any other reading."""
    written = getattr(reading, "rows_written", None)
    if written is None:
        return False
    cache = reading.__dict__.setdefault("_prefetched_objects_cache", {})
    for name, rows in zip(("values", "contours"), written, strict=True):
        rows_qs = getattr(reading, name).all()  # unevaluated; filled as Django's prefetch fills it
        # in the order its model's Meta.ordering reads them back (all of one reading: its own id aside)
        fields = [f for f in rows_qs.model._meta.ordering if f != "reading_id"]
        rows_qs._result_cache = sorted(rows, key=attrgetter(*fields))
        rows_qs._prefetch_done = True
        cache[name] = rows_qs
    Reading.superseded_by.related.set_cached_value(reading, None)
    return True


def reading_submitted_for_reader(*, reader: User, reading: Reading) -> Reading:
    """What ``reading_submit`` returned, as its reader receives it: the first version of the assignment's
    reading (the one just written, or the stored one a retry is answered with), with what ReadingOutput shows.
    ``reading_get_for_reader(version=1)`` without its blinding (the reader has just written it) and its
    per-version subquery: the ORM spent longer building that than the database running it. A reading this
    request wrote is answered as written (``_answered_as_written``), without reading it back."""
    if reading.reader_id == reader.pk and reading.supersedes_id is None and _answered_as_written(reading):
        reading.version = 1  # type: ignore[attr-defined]
        return reading
    found = (
        Reading.objects.filter(pk=reading.pk, reader=reader, supersedes__isnull=True)
        .select_related("assignment__case__study", "superseded_by")
        .prefetch_related("values", "contours")
        .first()
    )
    if found is None:
        raise NotFound("no such reading")
    found.version = 1  # type: ignore[attr-defined]  # the reading a submission wrote is its assignment's first
    return found


def study_list_for_user(*, user: User) -> QuerySet[Study]:
    """Studies ``user`` may list and add as cases: every one for staff; for a project admin, the studies of
    their projects' cases and those they registered or imported themselves (nobody else's, so a project
    admin can neither browse the site's studies nor pull another project's study into theirs)."""
    if user.is_staff:
        return Study.objects.all()
    admin_of = Membership.objects.filter(
        user=user, role=Membership.Role.ADMIN, project__deleted_at__isnull=True
    ).values("project_id")
    return Study.objects.filter(
        Q(pk__in=Case.objects.filter(project_id__in=admin_of).values("study_id")) | Q(registered_by=user)
    )


def case_list(*, project: Project) -> QuerySet[Case]:
    return (
        project.cases.select_related("study")
        .annotate(
            n_assignments=Count(
                "assignments", filter=~Q(assignments__status=Assignment.Status.CANCELLED), distinct=True
            ),
            n_readings=Count("readings", distinct=True),
        )
        .order_by("id")
    )


def assignment_list(*, project: Project) -> QuerySet[Assignment]:
    return project.assignments.select_related("reader", "case").order_by("id")


def audit_list_for_user(*, user: User, project_id: int | None = None) -> QuerySet[AuditEvent]:
    """Staff see every event; a project admin the events of the projects they administer.

    Events of projects in which the user still has cases to read are left out (they carry adjudicated
    values and reading counts: blinding).
    """
    events = AuditEvent.objects.select_related("actor").order_by("-id")
    if not user.is_staff:
        admin_of = Membership.objects.filter(user=user, role=Membership.Role.ADMIN).values("project_id")
        events = events.filter(project_id__in=admin_of)
    events = events.exclude(project_id__in=blinded_project_ids(user=user))
    if project_id is not None:
        events = events.filter(project_id=project_id)
    return events


# --- consensus and adjudication -------------------------------------------------------------------------


def consensus_current_runs(*, project: Project) -> QuerySet[ConsensusRun]:
    return project.consensus_runs.filter(is_current=True).order_by("lesion")


def reader_numbers(*, project: Project) -> dict[int, int]:
    """Stable per-project reader numbers (1, 2, …) by user id: the project's readers, then anyone else who
    read in it; the pseudonym shown to adjudicators and the reader id a dataset snapshot carries."""
    ids = sorted(project.memberships.filter(role=Membership.Role.READER).values_list("user_id", flat=True))
    ids += sorted(set(project.readings.values_list("reader_id", flat=True)) - set(ids))
    return {user_id: i + 1 for i, user_id in enumerate(ids)}


def reader_pseudonyms(*, project: Project) -> dict[int, str]:
    """Stable per-project names for readers, shown to adjudicators instead of usernames."""
    return {user_id: f"Reader {n}" for user_id, n in reader_numbers(project=project).items()}


def cases_read_by(*, user: User, project: Project) -> QuerySet[Reading, Any]:
    """The ids of the cases ``user`` read in the project (a subquery)."""
    return Reading.objects.filter(project=project, reader=user).values("case_id")


def item_posterior_open(project: Project) -> QuerySet[ItemPosterior]:
    """Items of the current consensus runs that neither the run clamped nor a current adjudication decided."""
    decided = Adjudication.objects.filter(
        project=project,
        case=OuterRef("case"),
        joint=OuterRef("joint"),
        region=OuterRef("region"),
        lesion=OuterRef("run__lesion"),
        superseded_by__isnull=True,
    )
    return ItemPosterior.objects.filter(run__project=project, run__is_current=True, clamped=False).exclude(
        Exists(decided)
    )


def adjudication_queue(*, project: Project, adjudicator: User | None = None) -> QuerySet[ItemPosterior]:
    """Uncertain items of the current runs (max posterior below the project's threshold), least sure first.

    Items already adjudicated (since the run, or clamped in it) are left out, and so are the cases the
    ``adjudicator`` read themselves unless the project allows them to decide those.
    """
    items = item_posterior_open(project).filter(max_posterior__lt=project.adjudication_threshold)
    if adjudicator is not None and not project.readers_may_adjudicate_own_cases:
        items = items.exclude(case_id__in=cases_read_by(user=adjudicator, project=project))
    return items.select_related("run", "case").order_by("max_posterior", "-entropy", "id")


QUEUE_REASONS = ("low_posterior", "disagreement", "contour")


def _values_text(values: list[int]) -> str:
    return ", ".join(str(v) for v in values)


def _focus_slices(project: Project, case_ids: set[int]) -> dict[tuple[int, str], int]:
    """Per case and joint, the slice an adjudicator should see first: the median slice on which the readers
    traced that joint's line (the slices that show the joint best). Missing when nobody traced it."""
    traced: dict[tuple[int, str], list[int]] = {}
    for case_id, joint, slice_index in Contour.objects.filter(
        reading__project=project, reading__superseded_by__isnull=True, reading__case_id__in=case_ids
    ).values_list("reading__case_id", "joint", "slice_index"):
        traced.setdefault((case_id, joint), []).append(slice_index)
    return {key: sorted(slices)[(len(slices) - 1) // 2] for key, slices in traced.items()}


def contour_dispute_open(project: Project) -> QuerySet[ContourConsensus]:
    """Flagged contour slices no current contour adjudication has settled."""
    decided = ContourAdjudication.objects.filter(
        project=project,
        case=OuterRef("case"),
        joint=OuterRef("joint"),
        slice_index=OuterRef("slice_index"),
    )
    return ContourConsensus.objects.filter(project=project, flagged=True).exclude(Exists(decided))


def adjudication_cases(
    *,
    project: Project,
    adjudicator: User | None = None,
    lesion: str | None = None,
    joint: str | None = None,
    reason: str | None = None,
    single_read: bool = True,
) -> dict[str, Any]:
    """The adjudication queue by case: each case with its items in dispute and why.

    A grade item is in dispute when it is not yet decided (adjudicated or clamped) and its consensus is
    below the project's certainty threshold (``low_posterior``) or its readers gave different values
    (``disagreement``); a contour slice when the readers' lines lie further apart than the project's
    threshold (``contour``). Items read by one reader only are marked ``single_read`` and come last in their
    case; cases with nothing but such items come last (``single_read=False`` leaves them out). Cases in
    order: lowest consensus certainty first. Filters: ``lesion``, ``joint``, ``reason``.
    """
    if reason is not None and reason not in QUEUE_REASONS:
        raise InvalidInput(f"reason must be one of {', '.join(QUEUE_REASONS)}", field="reason")
    threshold = project.adjudication_threshold
    posteriors = item_posterior_open(project).select_related("run")
    contours = contour_dispute_open(project)
    own: set[int] = set()
    if adjudicator is not None and not project.readers_may_adjudicate_own_cases:
        own = set(cases_read_by(user=adjudicator, project=project).values_list("case_id", flat=True))
    if lesion:
        posteriors = posteriors.filter(run__lesion=lesion)
        contours = contours.none()
    if joint:
        posteriors = posteriors.filter(joint=joint)
        contours = contours.filter(joint=joint)
    read: dict[tuple[int, str, str, str], dict[int, int]] = {}
    for case_id, reader_id, j, region, les, value in (
        ReadingValue.objects.filter(reading__project=project, reading__superseded_by__isnull=True)
        .order_by("reading__reader_id", "reading__session")
        .values_list("reading__case_id", "reading__reader_id", "joint", "region", "lesion", "value")
    ):
        read.setdefault((case_id, j, region, les), {})[reader_id] = value  # the reader's latest session
    items: dict[int, list[dict[str, Any]]] = {}
    for p in posteriors:
        if p.case_id in own:
            continue
        values = sorted(read.get((p.case_id, p.joint, p.region, p.run.lesion), {}).values())
        reasons = []
        if p.max_posterior < threshold:
            reasons.append(
                {
                    "code": "low_posterior",
                    "text": f"consensus {p.label} at {p.max_posterior:.2f}, below the threshold {threshold:.2f}",
                }
            )
        if len(set(values)) > 1:
            reasons.append({"code": "disagreement", "text": f"readers disagree: {_values_text(values)}"})
        if not reasons or (reason and reason not in {r["code"] for r in reasons}):
            continue
        single = len(values) < 2
        if single and not single_read:
            continue
        items.setdefault(p.case_id, []).append(
            {
                "kind": "grade",
                "joint": p.joint,
                "region": p.region,
                "lesion": p.run.lesion,
                "consensus": p.label,
                "max_posterior": p.max_posterior,
                "values_read": values,
                "n_readers": len(values),
                "single_read": single,
                "reasons": reasons,
                "slice_index": None,
                "disagreement_mm": None,
            }
        )
    if reason in (None, "contour"):
        limit = project.contour_disagreement_mm
        for c in contours.order_by("-disagreement_mm", "id"):
            if c.case_id in own:
                continue
            items.setdefault(c.case_id, []).append(
                {
                    "kind": "contour",
                    "joint": c.joint,
                    "region": None,
                    "lesion": None,
                    "consensus": None,
                    "max_posterior": None,
                    "values_read": [],
                    "n_readers": c.n_contours,
                    "single_read": False,
                    "reasons": [
                        {
                            "code": "contour",
                            "text": f"{c.n_contours} lines up to {c.disagreement_mm:.1f} mm from the consensus,"
                            f" above the threshold {limit:.1f} mm",
                        }
                    ],
                    "slice_index": c.slice_index,
                    "disagreement_mm": c.disagreement_mm,
                }
            )
    focus = _focus_slices(project, set(items))
    labels = dict(project.cases.filter(pk__in=items).values_list("id", "label"))
    cases: list[dict[str, Any]] = []
    for case_id, rows in items.items():
        for row in rows:
            if row["kind"] == "grade":
                row["slice_index"] = focus.get((case_id, row["joint"]))
        rows.sort(
            key=lambda r: (
                r["single_read"],
                r["kind"] == "contour",
                r["max_posterior"] if r["max_posterior"] is not None else -(r["disagreement_mm"] or 0.0),
                r["joint"],
                r["region"] or "",
                r["lesion"] or "",
            )
        )
        disputed = [r for r in rows if not r["single_read"]]
        certainties = [r["max_posterior"] for r in disputed if r["max_posterior"] is not None]
        cases.append(
            {
                "case_id": case_id,
                "case_label": labels.get(case_id, str(case_id)),
                "n_items": len(rows),
                "n_single_read": len(rows) - len(disputed),
                "lowest_posterior": min(certainties) if certainties else None,
                "reasons": sorted(
                    {r["code"] for row in rows for r in row["reasons"]}, key=QUEUE_REASONS.index
                ),
                "items": rows,
            }
        )
    cases.sort(
        key=lambda c: (
            c["n_single_read"] == c["n_items"],
            c["lowest_posterior"] if c["lowest_posterior"] is not None else 1.0,
            -c["n_items"],
            c["case_id"],
        )
    )
    return {"threshold": threshold, "contour_threshold_mm": project.contour_disagreement_mm, "cases": cases}


#: how a lesion is named inside a sentence ("misses BME 30% of the time it is present"); others: its id in words
_FINDING_NAMES = {"bme": "BME", "fat": "fat metaplasia"}


def finding_name(project: Project, lesion: str) -> str | None:
    """The name of a binary finding as the explanations use it; None for an ordinal grade (told in grades)."""
    if project.scheme.parsed.lesion_is_ordinal(lesion):
        return None
    return _FINDING_NAMES.get(lesion, lesion.replace("_", " "))


def _case_to_adjudicate(project: Project, case_id: int, adjudicator: User | None) -> Case:
    """The project's case ``case_id`` as an adjudicator may open it: NotFound for no such case, and for one the
    ``adjudicator`` read themselves unless the project allows them to decide it."""
    case = project.cases.select_related("study").filter(pk=case_id).first()
    if case is None:
        raise NotFound("no such case")
    if (
        adjudicator is not None
        and not project.readers_may_adjudicate_own_cases
        and case.readings.filter(reader=adjudicator).exists()
    ):
        raise NotFound("you read this case yourself; another adjudicator decides it")
    return case


def adjudication_item(
    *, project: Project, case_id: int, joint: str, region: str, lesion: str, adjudicator: User | None = None
) -> dict[str, Any]:
    """Everything an adjudicator needs for one item: each (pseudonymised) reading, posterior, confusions.

    A case the ``adjudicator`` read themselves is NotFound unless the project allows them to decide it.
    """
    case = _case_to_adjudicate(project, case_id, adjudicator)
    if (joint, region, lesion) not in {item.key for item in project.scheme.parsed.form_items}:
        raise NotFound(f"no item {joint}/{region}/{lesion} in the project's scheme")
    names = reader_pseudonyms(project=project)
    run = project.consensus_runs.filter(is_current=True, lesion=lesion).first()
    posterior = (
        run.posteriors.filter(case=case, joint=joint, region=region).first() if run is not None else None
    )
    confusions = {c.reader_id: c for c in run.confusions.all()} if run is not None else {}
    readings = (
        ReadingValue.objects.filter(
            reading__case=case, reading__superseded_by__isnull=True, joint=joint, region=region, lesion=lesion
        )
        .select_related("reading")
        .order_by("reading__reader_id", "reading__session")
    )
    contours = Contour.objects.filter(
        reading__case=case, reading__superseded_by__isnull=True, joint=joint
    ).select_related("reading")
    decisions = Adjudication.objects.filter(
        project=project, case=case, joint=joint, region=region, lesion=lesion
    ).order_by("-id")
    values = list(project.scheme.parsed.lesion_values(lesion))
    prior = run.prior if run is not None else None
    truth = posterior.label if posterior else None

    def explained(reader_id: int, value: int) -> dict[str, Any] | None:
        """What the consensus believes this reader means by ``value`` (their confusion matrix in words)."""
        confusion = confusions.get(reader_id)
        if confusion is None or value not in values or len(confusion.matrix) != len(values):
            return None
        return explain_reading(
            confusion.matrix,
            value,
            values,
            prior=prior,
            truth=truth,
            finding=finding_name(project, lesion),
            evidence=confusion.counts if len(confusion.counts or ()) == len(values) else None,
        )

    traced = sorted(c.slice_index for c in contours)
    return {
        "case_id": case.pk,
        "case_label": case.label,
        "study_uid": case.study.study_uid,
        "joint": joint,
        "region": region,
        "lesion": lesion,
        "values": values,
        "threshold": project.adjudication_threshold,
        "focus_slice": traced[(len(traced) - 1) // 2] if traced else None,
        "posterior": posterior.posterior if posterior else None,
        "consensus_label": posterior.label if posterior else None,
        "run_id": run.pk if run else None,
        "readings": [
            {
                "reader": names.get(v.reading.reader_id, "Reader ?"),
                "session": v.reading.session,
                "value": v.value,
                "reader_confusion": confusions[v.reading.reader_id].matrix
                if v.reading.reader_id in confusions
                else None,
                "explanation": explained(v.reading.reader_id, v.value),
            }
            for v in readings
        ],
        "contours": [
            {
                "reader": names.get(c.reading.reader_id, "Reader ?"),
                "session": c.reading.session,
                "series_uid": c.series_uid,
                "slice_index": c.slice_index,
                "points_mm": c.points_mm,
            }
            for c in contours
        ],
        "ai": ai_output_for_case(case_id=case.pk),
        "adjudications": [
            {
                "value": d.value,
                "reason": d.reason,
                "created_at": d.created_at.isoformat(),
                "current": not hasattr(d, "superseded_by"),
            }
            for d in decisions
        ],
    }


def reader_calibration(*, reader: User, project: Project) -> list[dict[str, Any]]:
    """The reader's own readings against the consensus, on cases whose reading window has closed.

    A case's window closes when none of its assignments is still open: only then can the consensus no
    longer bias anyone's reading. Per lesion: counts[consensus class][reader's class], and agreement.
    """
    return calibration_report_and_cases(reader=reader, project=project)[0]


def calibration_report_and_cases(*, reader: User, project: Project) -> tuple[list[dict[str, Any]], set[int]]:
    """The calibration report, and the cases whose consensus it shows."""
    still_open = Assignment.objects.filter(case=OuterRef("reading__case"), status__in=OPEN_STATES)
    mine = (
        ReadingValue.objects.filter(
            reading__project=project, reading__reader=reader, reading__superseded_by__isnull=True
        )
        .annotate(open_case=Exists(still_open.values("id")))
        .filter(open_case=False)
        .values_list("reading__case_id", "joint", "region", "lesion", "value")
    )
    runs = {run.lesion: run for run in consensus_current_runs(project=project)}
    consensus = {
        (p.case_id, p.joint, p.region, lesion): p.label
        for lesion, run in runs.items()
        for p in run.posteriors.only("case_id", "joint", "region", "label")
    }
    out: dict[str, dict[str, Any]] = {}
    shown: set[int] = set()
    for case_id, joint, region, lesion, value in mine:
        truth = consensus.get((case_id, joint, region, lesion))
        if truth is None:
            continue
        shown.add(case_id)
        values = list(project.scheme.parsed.lesion_values(lesion))
        entry = out.setdefault(
            lesion,
            {
                "lesion": lesion,
                "values": values,
                "n": 0,
                "agree": 0,
                "counts": [[0] * len(values) for _ in values],
            },
        )
        entry["counts"][values.index(truth)][values.index(value)] += 1
        entry["n"] += 1
        entry["agree"] += int(truth == value)
    own = {
        c.run.lesion: c
        for c in ReaderConfusion.objects.filter(run__in=runs.values(), reader=reader).select_related("run")
    }
    return [
        _calibration_explained(e, own.get(e["lesion"]), finding_name(project, e["lesion"]))
        for e in out.values()
    ], shown


def _calibration_explained(
    entry: dict[str, Any], confusion: ReaderConfusion | None, finding: str | None = None
) -> dict[str, Any]:
    """A calibration entry with its agreement in words: what the counts say, and what the consensus model
    believes about the reader (their confusion matrix), so a low agreement figure explains itself. Without a
    row for the reader in the consensus run (too new to it), the counts speak alone. ``observed`` and
    ``model`` are about "this reader"; ``explanation`` speaks to the reader."""
    n, agree, values = entry["n"], entry["agree"], entry["values"]
    totals = [sum(row) for row in entry["counts"]]
    observed = tendency(entry["counts"], prior=totals, values=values, finding=finding) if n else None
    model = None
    if confusion is not None and len(confusion.matrix) == len(values):
        model = tendency(
            confusion.matrix,
            prior=confusion.run.prior,
            values=values,
            finding=finding,
            evidence=confusion.counts if len(confusion.counts or ()) == len(values) else None,
        )
    explanation = None
    if n and observed is not None:
        explanation = (
            f"You gave the consensus value on {agree} of {n} item{'' if n == 1 else 's'} ({percent(agree / n)})"
            + (f"; the consensus model believes you {model.you}" if model else f"; you {observed.you}")
            + "."
        )
    return {
        **entry,
        "agreement": agree / n if n else None,
        "observed": observed.sentence if observed else None,
        "model": model.sentence if model else None,
        "explanation": explanation,
    }


def contour_queue(*, project: Project) -> QuerySet[ContourConsensus]:
    """Slices whose readers' contours disagree beyond the project's threshold and that no adjudicator has
    settled, worst first."""
    return contour_dispute_open(project).select_related("case").order_by("-disagreement_mm", "id")


def contour_dispute(
    *, project: Project, case_id: int, joint: str, slice_index: int, adjudicator: User | None = None
) -> dict[str, Any]:
    """One contour disagreement: every reader's line on the slice (pseudonymised, with its distance to the
    consensus), the consensus line, and the decisions so far. A case the ``adjudicator`` read is NotFound
    unless the project allows them to decide it."""
    case = _case_to_adjudicate(project, case_id, adjudicator)
    consensus = ContourConsensus.objects.filter(
        project=project, case=case, joint=joint, slice_index=slice_index
    ).first()
    lines = Contour.objects.filter(
        reading__case=case, reading__superseded_by__isnull=True, joint=joint, slice_index=slice_index
    ).select_related("reading")
    if consensus is None and not lines:
        raise NotFound("no contours of this joint on this slice")
    names = reader_pseudonyms(project=project)
    distance = {
        (int(reader), int(session)): (mean, p95)
        for reader, session, mean, p95 in (consensus.reader_distances if consensus else [])
    }
    decisions = ContourAdjudication.objects.filter(
        project=project, case=case, joint=joint, slice_index=slice_index
    ).order_by("-id")
    return {
        "case_id": case.pk,
        "case_label": case.label,
        "study_uid": case.study.study_uid,
        "joint": joint,
        "slice_index": slice_index,
        "series_uid": consensus.series_uid if consensus else lines[0].series_uid,
        "threshold_mm": project.contour_disagreement_mm,
        "disagreement_mm": consensus.disagreement_mm if consensus else None,
        "flagged": bool(consensus and consensus.flagged),
        "consensus": consensus.points_mm if consensus else None,
        "readers": [
            {
                "reader": names.get(c.reading.reader_id, "Reader ?"),
                "session": c.reading.session,
                "points_mm": c.points_mm,
                "mean_mm": distance.get((c.reading.reader_id, c.reading.session), (None, None))[0],
                "p95_mm": distance.get((c.reading.reader_id, c.reading.session), (None, None))[1],
            }
            for c in sorted(lines, key=lambda c: (c.reading.reader_id, c.reading.session))
        ],
        "decisions": [
            {
                "choice": d.source,
                "reader": names.get(d.source_reader_id, "Reader ?") if d.source_reader_id else None,
                "points_mm": d.points_mm,
                "reason": d.reason,
                "created_at": d.created_at.isoformat(),
                "current": not hasattr(d, "superseded_by"),
            }
            for d in decisions
        ],
    }


def contour_reliability(*, project: Project) -> list[dict[str, Any]]:
    names = reader_pseudonyms(project=project)
    return [
        {
            "reader": names.get(r.reader_id, "Reader ?"),
            "n_contours": r.n_contours,
            "mean_mm": r.mean_mm,
            "p95_mm": r.p95_mm,
        }
        for r in ReaderContourReliability.objects.filter(project=project).order_by("reader_id")
    ]


#: Who answers "the AI pre-reads of a case": the ml app registers its selector here when it is ready
#: (``ml.apps``), so that labeling does not import the app that builds on it.
AI_OUTPUT_PROVIDERS: list[Callable[..., list[dict[str, Any]]]] = []


def ai_output_for_case(*, case_id: int) -> list[dict[str, Any]]:
    """The promoted models' pre-reads of a case (empty when none exists yet, or without the ml app)."""
    return [output for provider in AI_OUTPUT_PROVIDERS for output in provider(case_id=case_id)]


def top_reading(project: Project) -> int:
    """The highest reading id of the project (0 without readings)."""
    return int(Reading.objects.filter(project=project).aggregate(top=Max("id"))["top"] or 0)


def readings_fingerprint(project: Project, watermark: int) -> list[int]:
    """(count, Σ id, Σ id²) of the project's current readings up to ``watermark``: order-free and additive,
    so a refit can extend it by the readings it added; a correction, deletion or late commit below the
    watermark changes it."""
    totals = Reading.objects.filter(project=project, pk__lte=watermark, superseded_by__isnull=True).aggregate(
        n=Count("id"), s=Sum("id"), s2=Sum(F("id") * F("id"))
    )
    return [int(totals["n"] or 0), int(totals["s"] or 0), int(totals["s2"] or 0)]
