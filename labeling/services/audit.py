"""The audit trail: one AuditEvent per write, with the request it came from."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AnonymousUser, User
from django.db import models

from labeling.middleware import current_request
from labeling.models import AuditEvent, Project


def audit_record(
    *,
    actor: User | AnonymousUser | None,
    action: str,
    target: models.Model,
    project: Project | None = None,
    data: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append an audit event for ``action`` on ``target``; call inside the write's transaction."""
    context = current_request.get()
    return AuditEvent.objects.create(
        actor=actor if actor is not None and actor.is_authenticated else None,
        action=action,
        project=project,
        object_type=target._meta.label_lower,
        object_id=str(target.pk),
        data=data or {},
        request_id=context.request_id,
        ip=context.ip,
    )
