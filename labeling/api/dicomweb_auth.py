"""Who is asking, for the DICOMweb endpoint: DRF's token and session authentication, remembered briefly.

``decisions`` is the per-process cache of recent answers ("this token is this user", "this session is this
user", "this user may see this series"); entries live ``DICOMWEB_AUTH_CACHE_S`` seconds (0: no cache). The
frames fast path (``dicomweb_fastpath``) serves only what these decisions allow, so every change that can take
a right away drops them at once, in every web process (``DecisionCache.revoke``, through a file in VAR_DIR):
a logout, a deleted token, a changed or removed membership, an assignment cancelled or deleted, a user
deactivated. ``revoke_decisions`` is the hook for any other such change.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.contrib.auth.signals import user_logged_out
from django.db.models.signals import post_delete, post_save
from rest_framework.authentication import SessionAuthentication
from rest_framework.authtoken.models import Token
from rest_framework.request import Request

from labeling.api.authentication import ExpiringTokenAuthentication
from labeling.dicom.cache import DecisionCache
from labeling.models import Assignment, Membership


def _epoch() -> Path:
    return Path(settings.DICOMWEB_DECISIONS_EPOCH)


decisions = DecisionCache(lambda: float(settings.DICOMWEB_AUTH_CACHE_S), _epoch)


def revoke_decisions(**_: Any) -> None:
    """Forget every cached DICOMweb decision in every web process (a signal receiver as well)."""
    decisions.revoke()


class CachedTokenAuthentication(ExpiringTokenAuthentication):
    """Concord's token authentication (DRF's token with a lifetime) with the answer remembered briefly."""

    def authenticate_credentials(self, key: str) -> tuple[Any, Any]:
        cached = decisions.get(("token", key))
        if cached is not None:
            return cached
        since = decisions.begin()
        result = super().authenticate_credentials(key)
        decisions.put(("token", key), result, since=since)
        return result


class CachedSessionAuthentication(SessionAuthentication):
    """DRF's session authentication, noting "this session is this user" briefly for the frames fast path."""

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        since = decisions.begin()
        result = super().authenticate(request)
        session_key = getattr(getattr(request._request, "session", None), "session_key", None)
        if result is not None and session_key:
            decisions.put(("session", session_key), result[0].pk, since=since)
        return result


def _assignment_saved(instance: Assignment, created: bool = False, **_: Any) -> None:
    if created:
        decisions.revoke()  # a new read: the reader's list of pseudonymous studies changes
    elif instance.status not in (
        Assignment.Status.OPEN,
        Assignment.Status.IN_PROGRESS,
        Assignment.Status.SUBMITTED,
    ):
        decisions.revoke()  # cancelled (or any state that no longer shows the study)


def _user_saved(instance: User, **_: Any) -> None:
    if not instance.is_active:
        decisions.revoke()


user_logged_out.connect(revoke_decisions, dispatch_uid="dicomweb-logout")
post_delete.connect(revoke_decisions, sender=Token, dispatch_uid="dicomweb-token-deleted")
post_save.connect(revoke_decisions, sender=Membership, dispatch_uid="dicomweb-membership-saved")
post_delete.connect(revoke_decisions, sender=Membership, dispatch_uid="dicomweb-membership-deleted")
post_save.connect(_assignment_saved, sender=Assignment, dispatch_uid="dicomweb-assignment-saved")
post_delete.connect(revoke_decisions, sender=Assignment, dispatch_uid="dicomweb-assignment-deleted")
post_delete.connect(revoke_decisions, sender=User, dispatch_uid="dicomweb-user-deleted")
post_save.connect(_user_saved, sender=User, dispatch_uid="dicomweb-user-saved")
