"""Who is asking, for the DICOMweb endpoint: DRF's token and session authentication, remembered briefly.

``decisions`` is the per-process cache of recent answers ("this token is this user", "this session is this
user", "this user may see this series"); entries live ``DICOMWEB_AUTH_CACHE_S`` seconds (0: no cache). The
frames fast path (``dicomweb_fastpath``) serves only what these decisions allow.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.request import Request

from labeling.dicom.cache import DecisionCache

decisions = DecisionCache(lambda: float(settings.DICOMWEB_AUTH_CACHE_S))


class CachedTokenAuthentication(TokenAuthentication):
    """DRF's token authentication with the token → user answer remembered briefly."""

    def authenticate_credentials(self, key: str) -> tuple[Any, Any]:
        cached = decisions.get(("token", key))
        if cached is not None:
            return cached
        result = super().authenticate_credentials(key)
        decisions.put(("token", key), result)
        return result


class CachedSessionAuthentication(SessionAuthentication):
    """DRF's session authentication, noting "this session is this user" briefly for the frames fast path."""

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        result = super().authenticate(request)
        session_key = getattr(getattr(request._request, "session", None), "session_key", None)
        if result is not None and session_key:
            decisions.put(("session", session_key), result[0].pk)
        return result
