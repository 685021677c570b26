"""Projects and memberships."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import timezone

from labeling.conditions import UNAIDED, ConditionError, study_conditions, validate_conditions
from labeling.exceptions import Conflict, InvalidInput, NotFound
from labeling.models import GradingScheme, Membership, Project
from labeling.services.audit import audit_record
from labeling.services.contour_consensus import contour_flags_refresh

PROJECT_SETTINGS = (
    "description",
    "readers_per_case",
    "gold_fraction",
    "repeat_fraction",
    "washout_days",
    "washout_cases",
    "adjudication_threshold",
    "contour_disagreement_mm",
    "ai_aided_reads",
    "reader_study_design",
    "reader_study_conditions",
    "readers_may_adjudicate_own_cases",
    "deidentify",
    "deidentify_dates",
    "deidentify_clean_descriptors",
)


def _check_conditions(values: dict[str, Any], scheme: GradingScheme) -> None:
    """Reader-study conditions: known, distinct, 2 to 6, and served by the scheme's sequences (InvalidInput)."""
    if "reader_study_conditions" in values:
        try:
            values["reader_study_conditions"] = validate_conditions(
                values["reader_study_conditions"] or (), sequences=scheme.parsed.sequences
            )
        except ConditionError as exc:
            raise InvalidInput(str(exc), field="reader_study_conditions") from None


def _check_first_condition_kept(project: Project, changes: dict[str, Any]) -> None:
    """Refuse (409) a change of the reader study's first condition once the project has assignments: their
    first reads are in it, and new cases would start in another (adding or reordering later ones is fine)."""
    if not {"reader_study_conditions", "ai_aided_reads"} & set(changes):
        return
    before = study_conditions(project.reader_study_conditions or (), project.ai_aided_reads)
    after = study_conditions(
        changes.get("reader_study_conditions", project.reader_study_conditions) or (),
        changes.get("ai_aided_reads", project.ai_aided_reads),
    )
    first_before = before[0] if len(before) >= 2 else UNAIDED
    first_after = after[0] if len(after) >= 2 else UNAIDED
    if first_before != first_after and project.assignments.exists():
        raise Conflict(
            f"the project's reads start in {first_before!r}: its first condition cannot become {first_after!r} "
            "once assignments exist (a new project can)",
            field="reader_study_conditions",
        )


def _check_settings(values: dict[str, Any]) -> None:
    for name in ("gold_fraction", "repeat_fraction"):
        if name in values and not 0 <= values[name] <= 1:
            raise InvalidInput("must lie between 0 and 1", field=name)
    if "adjudication_threshold" in values and not 0 < values["adjudication_threshold"] <= 1:
        raise InvalidInput("must lie in (0, 1]", field="adjudication_threshold")
    if "readers_per_case" in values and values["readers_per_case"] < 1:
        raise InvalidInput("must be at least 1", field="readers_per_case")


def _check_name_free(name: str, exclude: Project | None = None) -> None:
    others = Project.objects.filter(name=name)
    taken = (others.exclude(pk=exclude.pk) if exclude else others).first()
    if taken is not None:
        deleted = " (deleted, kept for its records)" if taken.deleted_at else ""
        raise Conflict(f"a project named {name!r} exists already{deleted}", field="name")


def _audit_blinding_relaxed(actor: User, project: Project, settings: dict[str, Any]) -> None:
    """Record a ``project.blinding_relaxed`` event when ``settings`` let readers adjudicate their own cases:
    lifting a blinding rule gets its own event, easy to find in the log."""
    if settings.get("readers_may_adjudicate_own_cases"):
        audit_record(
            actor=actor,
            action="project.blinding_relaxed",
            target=project,
            project=project,
            data={"readers_may_adjudicate_own_cases": True},
        )


@transaction.atomic
def project_create(*, actor: User, name: str, scheme: GradingScheme, **settings: Any) -> Project:
    """Create a project; its creator becomes its first admin."""
    _check_settings(settings)
    _check_conditions(settings, scheme)
    _check_name_free(name)
    project = Project.objects.create(name=name, scheme=scheme, created_by=actor, **settings)
    Membership.objects.create(project=project, user=actor, role=Membership.Role.ADMIN)
    audit_record(
        actor=actor,
        action="project.create",
        target=project,
        project=project,
        data={"name": name, "scheme": str(scheme), **settings},
    )
    _audit_blinding_relaxed(actor, project, settings)
    return project


@transaction.atomic
def project_update(*, actor: User, project: Project, **changes: Any) -> Project:
    """Change a project's settings (not its scheme: readings refer to it)."""
    _check_settings(changes)
    unknown = set(changes) - set(PROJECT_SETTINGS) - {"name"}
    if unknown:
        raise InvalidInput("cannot be changed", field=sorted(unknown)[0])
    require_active(project)
    _check_conditions(changes, project.scheme)
    _check_first_condition_kept(project, changes)
    if "name" in changes:
        _check_name_free(changes["name"], exclude=project)
    for key, value in changes.items():
        setattr(project, key, value)
    project.save(update_fields=list(changes) or None)
    if "contour_disagreement_mm" in changes:
        contour_flags_refresh(project=project)  # the adjudicators' slice queue follows at once
    audit_record(actor=actor, action="project.update", target=project, project=project, data=changes)
    _audit_blinding_relaxed(actor, project, changes)
    return project


def require_active(project: Project) -> None:
    """Refuse new work in a deleted project (409)."""
    if project.deleted_at is not None:
        raise Conflict(f"project {project.name!r} was deleted: it takes no new work")


@transaction.atomic
def project_delete(*, actor: User, project: Project) -> None:
    """Delete a project softly: it is hidden from every list and refuses new work; its cases, readings,
    adjudications and audit trail stay. Deleting it again is a 404 (it is no longer found)."""
    project = Project.objects.select_for_update(no_key=True).get(pk=project.pk)
    if project.deleted_at is not None:
        raise NotFound("no such project")
    open_assignments = project.assignments.filter(status__in=["open", "in_progress"]).count()
    project.deleted_at, project.deleted_by = timezone.now(), actor
    project.save(update_fields=["deleted_at", "deleted_by"])
    audit_record(
        actor=actor,
        action="project.delete",
        target=project,
        project=project,
        data={
            "name": project.name,
            "soft": True,
            "readings": project.readings.count(),
            "open_assignments": open_assignments,
        },
    )


@transaction.atomic
def membership_add(*, actor: User, project: Project, username: str, role: str) -> Membership:
    """Give ``username`` a role in the project; adding an existing role is a 409."""
    require_active(project)
    if role not in Membership.Role.values:
        raise InvalidInput(f"{role!r} is not one of {Membership.Role.values}", field="role")
    user = get_user_model().objects.filter(username=username, is_active=True).first()
    if user is None:
        raise InvalidInput(f"no active user named {username!r}", field="username")
    try:
        with transaction.atomic():
            membership = Membership.objects.create(project=project, user=user, role=role)
    except IntegrityError as exc:
        raise Conflict(f"{username} is already {role} in this project") from exc
    audit_record(
        actor=actor,
        action="membership.add",
        target=membership,
        project=project,
        data={"username": username, "role": role},
    )
    return membership


@transaction.atomic
def membership_remove(*, actor: User, project: Project, membership_id: int) -> int:
    """Remove a role; when it is the reader role, the reader's open assignments (open or in progress) are
    cancelled and their submitted readings stay. Returns how many assignments were cancelled."""
    membership = Membership.objects.filter(project=project, pk=membership_id).first()
    if membership is None:
        raise NotFound("no such membership")
    cancelled = 0
    if membership.role == Membership.Role.READER:
        cancelled = project.assignments.filter(
            reader=membership.user, status__in=["open", "in_progress"]
        ).update(status="cancelled")
    audit_record(
        actor=actor,
        action="membership.remove",
        target=membership,
        project=project,
        data={
            "username": membership.user.get_username(),
            "role": membership.role,
            "cancelled_assignments": cancelled,
        },
    )
    membership.delete()
    return cancelled
