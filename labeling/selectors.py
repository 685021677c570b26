"""Reads shaped for one caller each. Reader-facing selectors only ever return the reader's own rows."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db.models import Count, F, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from labeling.exceptions import NotFound
from labeling.models import Assignment, AuditEvent, Case, Membership, Project, Reading

OPEN_STATES = (Assignment.Status.OPEN, Assignment.Status.IN_PROGRESS)


def project_list_for_user(*, user: User) -> QuerySet[Project]:
    """Projects the user holds any role in (every project for staff)."""
    projects = Project.objects.select_related("scheme").order_by("id")
    if user.is_staff:
        return projects
    return projects.filter(memberships__user=user).distinct()


def roles_of(*, user: User, project_id: int) -> set[str]:
    return set(Membership.objects.filter(user=user, project_id=project_id).values_list("role", flat=True))


def _available(assignments: QuerySet[Assignment]) -> QuerySet[Assignment]:
    """Keep first sessions, and repeats whose washout (days and other cases read since) has passed."""
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
            not_before__lte=timezone.now(),
        )
    )


def worklist_for_reader(*, reader: User, project_id: int) -> QuerySet[Assignment]:
    """The reader's open assignments that can be read now, in their (blinded, random) order."""
    mine = Assignment.objects.filter(reader=reader, project_id=project_id, status__in=OPEN_STATES)
    return _available(mine).select_related("case").order_by("order_key", "id")


def worklist_progress(*, reader: User, project_id: int) -> dict[str, int]:
    counts = dict(
        Assignment.objects.filter(reader=reader, project_id=project_id)
        .values_list("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    available = worklist_for_reader(reader=reader, project_id=project_id).count()
    total = sum(n for status, n in counts.items() if status != Assignment.Status.CANCELLED)
    done = counts.get(Assignment.Status.SUBMITTED, 0)
    return {"total": total, "submitted": done, "available": available, "waiting": total - done - available}


def assignment_get_for_reader(*, reader: User, assignment_id: int) -> Assignment:
    """The reader's own assignment, if it can be read now or was read; anything else is NotFound."""
    mine = Assignment.objects.filter(reader=reader, pk=assignment_id).select_related(
        "case__study", "project__scheme"
    )
    found = mine.filter(status=Assignment.Status.SUBMITTED).first() or _available(mine).first()
    if found is None or found.status == Assignment.Status.CANCELLED:
        raise NotFound("no such assignment")
    return found


def reading_list_for_reader(*, reader: User, project_id: int | None = None) -> QuerySet[Reading]:
    readings = (
        Reading.objects.filter(reader=reader).select_related("case").prefetch_related("values", "contours")
    )
    if project_id is not None:
        readings = readings.filter(project_id=project_id)
    return readings.order_by("id")


def reading_get_for_reader(*, reader: User, reading_id: int) -> Reading:
    """The reader's own reading; another reader's is NotFound, never Forbidden (blinding)."""
    reading = reading_list_for_reader(reader=reader).filter(pk=reading_id).first()
    if reading is None:
        raise NotFound("no such reading")
    return reading


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
    """Staff see every event; a project admin the events of the projects they administer."""
    events = AuditEvent.objects.select_related("actor").order_by("-id")
    if not user.is_staff:
        admin_of = Membership.objects.filter(user=user, role=Membership.Role.ADMIN).values("project_id")
        events = events.filter(project_id__in=admin_of)
    if project_id is not None:
        events = events.filter(project_id=project_id)
    return events
