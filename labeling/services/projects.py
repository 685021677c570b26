"""Projects and memberships."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction

from labeling.exceptions import Conflict, InvalidInput, NotFound
from labeling.models import GradingScheme, Membership, Project
from labeling.services.audit import audit_record

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
    "readers_may_adjudicate_own_cases",
    "deidentify",
    "deidentify_dates",
    "deidentify_clean_descriptors",
)


def _check_settings(values: dict[str, Any]) -> None:
    for name in ("gold_fraction", "repeat_fraction"):
        if name in values and not 0 <= values[name] <= 1:
            raise InvalidInput("must lie between 0 and 1", field=name)
    if "adjudication_threshold" in values and not 0 < values["adjudication_threshold"] <= 1:
        raise InvalidInput("must lie in (0, 1]", field="adjudication_threshold")
    if "readers_per_case" in values and values["readers_per_case"] < 1:
        raise InvalidInput("must be at least 1", field="readers_per_case")


@transaction.atomic
def project_create(*, actor: User, name: str, scheme: GradingScheme, **settings: Any) -> Project:
    """Create a project; its creator becomes its first admin."""
    _check_settings(settings)
    if Project.objects.filter(name=name).exists():
        raise Conflict(f"a project named {name!r} exists already", field="name")
    project = Project.objects.create(name=name, scheme=scheme, created_by=actor, **settings)
    Membership.objects.create(project=project, user=actor, role=Membership.Role.ADMIN)
    audit_record(
        actor=actor,
        action="project.create",
        target=project,
        project=project,
        data={"name": name, "scheme": str(scheme), **settings},
    )
    if settings.get("readers_may_adjudicate_own_cases"):
        audit_record(
            actor=actor,
            action="project.blinding_relaxed",
            target=project,
            project=project,
            data={"readers_may_adjudicate_own_cases": True},
        )
    return project


@transaction.atomic
def project_update(*, actor: User, project: Project, **changes: Any) -> Project:
    """Change a project's settings (not its scheme: readings refer to it)."""
    _check_settings(changes)
    unknown = set(changes) - set(PROJECT_SETTINGS) - {"name"}
    if unknown:
        raise InvalidInput("cannot be changed", field=sorted(unknown)[0])
    if "name" in changes and Project.objects.exclude(pk=project.pk).filter(name=changes["name"]).exists():
        raise Conflict(f"a project named {changes['name']!r} exists already", field="name")
    for key, value in changes.items():
        setattr(project, key, value)
    project.save(update_fields=list(changes) or None)
    audit_record(actor=actor, action="project.update", target=project, project=project, data=changes)
    if changes.get("readers_may_adjudicate_own_cases"):
        audit_record(  # lifts a blinding rule: its own event, easy to find in the log
            actor=actor,
            action="project.blinding_relaxed",
            target=project,
            project=project,
            data={"readers_may_adjudicate_own_cases": True},
        )
    return project


@transaction.atomic
def project_delete(*, actor: User, project: Project) -> None:
    """Delete a project that holds no readings; one with readings is kept (409)."""
    if project.readings.exists():
        raise Conflict("the project holds readings and cannot be deleted")
    audit_record(actor=actor, action="project.delete", target=project, data={"name": project.name})
    project.delete()


@transaction.atomic
def membership_add(*, actor: User, project: Project, username: str, role: str) -> Membership:
    """Give ``username`` a role in the project; adding an existing role is a 409."""
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
def membership_remove(*, actor: User, project: Project, membership_id: int) -> None:
    """Remove a role; the reader's open assignments are cancelled, submitted readings stay."""
    membership = Membership.objects.filter(project=project, pk=membership_id).first()
    if membership is None:
        raise NotFound("no such membership")
    if membership.role == Membership.Role.READER:
        project.assignments.filter(reader=membership.user, status__in=["open", "in_progress"]).update(
            status="cancelled"
        )
    audit_record(
        actor=actor,
        action="membership.remove",
        target=membership,
        project=project,
        data={"username": membership.user.get_username(), "role": membership.role},
    )
    membership.delete()
