"""Who may do what, in one place. Every view asks here before it touches a project's data.

Rules: an outsider (no role in the project) gets 404 for everything in it, so existence is not confirmed;
a member without the needed role gets 403; staff act as admin of every project. Readers only ever reach
their own assignments and readings through the reader selectors — another reader's row is a 404.

Blinding is a rule of the system, not of the screens: while a user has any unsubmitted assignment in a
project (a first read, an aided read or a blinded repeat), whatever of that project reveals other readers,
the consensus, AI output or agreement is a 404 for them, whatever other role they hold
(``project_for_unblinded``). A reader never adjudicates a case they read unless the project allows it.
"""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db.models import QuerySet
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.views import APIView

from labeling.exceptions import Forbidden, NotFound
from labeling.models import Assignment, Membership, Project, Study
from labeling.prepared import PreparedQuery
from labeling.selectors import is_blinded

READER = Membership.Role.READER
ADJUDICATOR = Membership.Role.ADJUDICATOR
ADMIN = Membership.Role.ADMIN


def _memberships_query(user_id: int, project_id: int) -> QuerySet[Membership]:
    memberships = Membership.objects.filter(user_id=user_id, project_id=project_id)
    return memberships.filter(project__deleted_at__isnull=True).select_related("project__scheme")


#: Every project-scoped request asks it first: compiled once per process.
_MEMBERSHIPS = PreparedQuery(_memberships_query, user_id=int, project_id=int)


def project_for(user: User, project_id: int, *roles: str) -> Project:
    """The project, if ``user`` holds one of ``roles`` in it (any role when none are named).

    Raises NotFound for outsiders and Forbidden for members lacking the role. Staff pass as admins, but
    not as readers: reader actions need a reader membership.
    """
    # the user's roles with their project in one query; staff hold roles without a membership row
    memberships = _MEMBERSHIPS.instances(user_id=user.pk, project_id=int(project_id))
    held = {m.role for m in memberships}
    project = memberships[0].project if memberships else None
    if project is None and user.is_staff:
        project = Project.objects.active().select_related("scheme").filter(pk=project_id).first()
    if project is None:  # unknown, deleted (it takes no work and shows nothing), or an outsider's
        raise NotFound("no such project")
    if user.is_staff:
        held |= {ADMIN, ADJUDICATOR}
    if not held:
        raise NotFound("no such project")
    if roles and not held.intersection(roles):
        raise Forbidden(f"this needs the {' or '.join(roles)} role in this project")
    return project


def project_for_unblinded(user: User, project_id: int, *roles: str) -> Project:
    """``project_for``, and NotFound while ``user`` has an unsubmitted assignment in the project (blinding).

    For every view that shows other readers' readings, consensus, AI output (other than the user's own aided
    read), agreement or calibration. Staff are blinded too when they read in the project.
    """
    project = project_for(user, project_id, *roles)
    if is_blinded(user=user, project_id=project.pk):
        raise NotFound("hidden while you have cases to read in this project (blinding)")
    return project


def require_staff(user: User) -> None:
    if not user.is_staff:
        raise Forbidden("only site administrators can do this")


def require_any_admin(user: User) -> None:
    """Staff, or admin of at least one project (studies are shared between projects)."""
    if (
        not user.is_staff
        and not Membership.objects.filter(user=user, role=ADMIN, project__deleted_at__isnull=True).exists()
    ):
        raise Forbidden("only project administrators can do this")


def dicom_visible_studies(user: User) -> QuerySet[Study]:
    """Studies whose images ``user`` may fetch through the DICOM proxy under their stored UIDs.

    Staff: every registered study. Admins and adjudicators: the studies of their projects' cases. A reader
    reaches the study of an assignment only under that assignment's pseudonymous UIDs
    (:func:`dicom_assignments`), never under the stored ones: those would tie a blinded repeat to the first
    read. Everything else is a 404 at the proxy, so existence is not confirmed.
    """
    if user.is_staff:
        return Study.objects.all()
    overseen = Membership.objects.filter(
        user=user, role__in=[ADMIN, ADJUDICATOR], project__deleted_at__isnull=True
    ).values("project_id")
    return Study.objects.filter(cases__project_id__in=overseen).distinct()


def dicom_assignments(user: User) -> QuerySet[Assignment]:
    """The assignments whose study ``user`` reads through the DICOM proxy, each under its own pseudonymous
    UIDs: their own (open, in progress or submitted) in projects where they are still readers."""
    return _dicom_assignments(user.pk)


def _dicom_assignments(user_id: int) -> QuerySet[Assignment]:
    reading = Membership.objects.filter(user_id=user_id, role=READER, project__deleted_at__isnull=True)
    return Assignment.objects.filter(
        reader_id=user_id,
        project_id__in=reading.values("project_id"),
        status__in=[Assignment.Status.OPEN, Assignment.Status.IN_PROGRESS, Assignment.Status.SUBMITTED],
    )


#: (assignment id, stored study UID) of ``dicom_assignments``: a reader's first image request of each case
#: asks it (the answer is then cached briefly), compiled once per process.
DICOM_ASSIGNMENT_STUDIES = PreparedQuery(
    lambda user_id: _dicom_assignments(user_id).values_list("pk", "case__study__study_uid"), user_id=int
)


def dicom_study_for(user: User, study_uid: str) -> Study:
    """The study, if ``user`` may fetch its images; NotFound otherwise (also for unknown UIDs)."""
    study = dicom_visible_studies(user).filter(study_uid=study_uid).first()
    if study is None:
        raise NotFound("no such study")
    return study


class IsAuthenticated(BasePermission):
    """DRF's check, kept here so every rule lives in this module."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        return bool(request.user and request.user.is_authenticated)
