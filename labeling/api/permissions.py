"""Who may do what, in one place. Every view asks here before it touches a project's data.

Rules: an outsider (no role in the project) gets 404 for everything in it, so existence is not confirmed;
a member without the needed role gets 403; staff act as admin of every project. Readers only ever reach
their own assignments and readings through the reader selectors — another reader's row is a 404.
"""

from __future__ import annotations

from django.contrib.auth.models import User
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.views import APIView

from labeling.exceptions import Forbidden, NotFound
from labeling.models import Membership, Project
from labeling.selectors import roles_of

READER = Membership.Role.READER
ADJUDICATOR = Membership.Role.ADJUDICATOR
ADMIN = Membership.Role.ADMIN


def project_for(user: User, project_id: int, *roles: str) -> Project:
    """The project, if ``user`` holds one of ``roles`` in it (any role when none are named).

    Raises NotFound for outsiders and Forbidden for members lacking the role. Staff pass as admins, but
    not as readers: reader actions need a reader membership.
    """
    project = Project.objects.select_related("scheme").filter(pk=project_id).first()
    if project is None:
        raise NotFound("no such project")
    held = roles_of(user=user, project_id=project_id)
    if user.is_staff:
        held |= {ADMIN, ADJUDICATOR}
    if not held:
        raise NotFound("no such project")
    if roles and not held.intersection(roles):
        raise Forbidden(f"this needs the {' or '.join(roles)} role in this project")
    return project


def require_staff(user: User) -> None:
    if not user.is_staff:
        raise Forbidden("only site administrators can do this")


def require_any_admin(user: User) -> None:
    """Staff, or admin of at least one project (studies are shared between projects)."""
    if not user.is_staff and not Membership.objects.filter(user=user, role=ADMIN).exists():
        raise Forbidden("only project administrators can do this")


class IsAuthenticated(BasePermission):
    """DRF's check, kept here so every rule lives in this module."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        return bool(request.user and request.user.is_authenticated)
