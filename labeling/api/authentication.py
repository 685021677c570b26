"""Accounts: tokens with a lifetime, failed-login throttling on every login and token path.

Tokens are DRF's own (``rest_framework.authtoken``: 40 hex characters from ``os.urandom``), valid for
``TOKEN_TTL_S`` after they were issued and deleted on logout, password change and membership removal
(``labeling.signals``). Throttling uses DRF's ``SimpleRateThrottle`` on failed attempts only: a user who
types the right password is never slowed down, while ``LOGIN_FAILURES_PER_USER`` wrong passwords for one
username (or ``LOGIN_FAILURES_PER_IP`` from one address) within the window make every further attempt a 429
with ``Retry-After`` — on ``/api/auth/login/``, ``/api/auth/token/`` and ``/admin/login/`` alike. The
counts live in Django's cache: give several web processes a shared one (``CACHE_URL``) in production.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any, cast

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_out, user_login_failed
from django.db.models import QuerySet
from django.db.models.signals import post_delete, pre_save
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from rest_framework.authentication import TokenAuthentication
from rest_framework.authtoken.models import Token
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.throttling import SimpleRateThrottle

from labeling.models import Membership
from labeling.prepared import PreparedQuery


def token_expired(token: Token) -> bool:
    return token.created < timezone.now() - timedelta(seconds=settings.TOKEN_TTL_S)


def token_issue(user: Any) -> Token:
    """The user's token, a fresh one when the current one has expired."""
    token = Token.objects.filter(user=user).first()
    if token is not None and token_expired(token):
        token.delete()
        token = None
    return token or Token.objects.create(user=user)


def _token_query(key: str) -> QuerySet[Token]:
    return Token.objects.select_related("user").filter(key=key)


#: Every request of the API and the browser app's image requests ask it first: compiled once per process.
_TOKEN = PreparedQuery(_token_query, key=str)


class ExpiringTokenAuthentication(TokenAuthentication):
    """DRF's token authentication; a token older than ``TOKEN_TTL_S`` is deleted and refused (401)."""

    def authenticate_credentials(self, key: str) -> tuple[Any, Any]:
        # DRF's own, with the token's query compiled once
        found = _TOKEN.instances(key=key)
        if not found:
            raise AuthenticationFailed(_("Invalid token."))
        token = found[0]
        if not token.user.is_active:
            raise AuthenticationFailed(_("User inactive or deleted."))
        if token_expired(token):
            token.delete()
            raise AuthenticationFailed("token expired: ask /api/auth/token/ for a new one")
        return token.user, token


class _FailedLoginThrottle(SimpleRateThrottle):
    """Counts failed logins only (``record_failure``); refuses once the rate's count is reached."""

    def get_rate(self) -> str:
        return str(settings.LOGIN_THROTTLE_RATES[str(self.scope)])

    def ident_key(self, request: HttpRequest, username: str | None) -> str | None:
        raise NotImplementedError

    def get_cache_key(self, request: Any, view: Any) -> str | None:
        return self.ident_key(getattr(request, "_request", request), _username(request))

    def throttle_success(self) -> bool:
        return True  # a request that may try is not counted: only failures are (record_failure)

    def record_failure(self, request: HttpRequest, username: str | None) -> None:
        key = self.ident_key(request, username)
        if key is None:
            return
        now, window = self.timer(), self.parse_rate(self.rate)[1] or 60
        history = [t for t in self.cache.get(key, []) if t > now - window]
        self.cache.set(key, [now, *history], window)


class FailedLoginPerUserThrottle(_FailedLoginThrottle):
    scope = "login_user"

    def ident_key(self, request: HttpRequest, username: str | None) -> str | None:
        if not username:
            return None
        # hashed: a username may hold anything (spaces, control characters) that a cache key must not
        ident = hashlib.sha256(username.lower().encode("utf-8", "surrogatepass")).hexdigest()
        return self.cache_format % {"scope": self.scope, "ident": ident}


class FailedLoginPerIpThrottle(_FailedLoginThrottle):
    scope = "login_ip"

    def ident_key(self, request: HttpRequest, username: str | None) -> str | None:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(cast(Any, request))}


LOGIN_THROTTLES: list[type[_FailedLoginThrottle]] = [FailedLoginPerUserThrottle, FailedLoginPerIpThrottle]


def _username(request: Any) -> str | None:
    data = getattr(request, "data", None)  # a DRF request
    if data is None:
        data = request.POST
    value = data.get("username") if hasattr(data, "get") else None
    return value if isinstance(value, str) and value else None


def _failed(sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None, **_: Any) -> None:
    if request is None:
        return
    for throttle in LOGIN_THROTTLES:
        throttle().record_failure(request, credentials.get("username"))


def _revoke_token(sender: Any, user: Any = None, **_: Any) -> None:
    if user is not None:
        Token.objects.filter(user=user).delete()


def _password_changing(sender: Any, instance: Any, **_: Any) -> None:
    if instance.pk is None:
        return
    stored = sender.objects.filter(pk=instance.pk).values_list("password", flat=True).first()
    if stored is not None and stored != instance.password:
        Token.objects.filter(user_id=instance.pk).delete()


def _membership_removed(sender: Any, instance: Membership, **_: Any) -> None:
    Token.objects.filter(user_id=instance.user_id).delete()


user_login_failed.connect(_failed, dispatch_uid="accounts-login-failed")
user_logged_out.connect(_revoke_token, dispatch_uid="accounts-logout-revokes-token")
pre_save.connect(_password_changing, sender=get_user_model(), dispatch_uid="accounts-password-revokes-token")
post_delete.connect(_membership_removed, sender=Membership, dispatch_uid="accounts-membership-revokes-token")


class AdminLoginThrottleMiddleware:
    """The same failed-login throttles in front of the admin site's login form (a 429 with Retry-After)."""

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method == "POST" and request.path == "/admin/login/":
            waits = [
                throttle.wait()
                for throttle in (cls() for cls in LOGIN_THROTTLES)
                if not throttle.allow_request(cast(Any, request), cast(Any, None))
            ]
            if waits:
                wait = max(int(w or 1) + 1 for w in waits)
                response = JsonResponse(
                    {"detail": f"too many failed logins: try again in {wait} s"}, status=429
                )
                response["Retry-After"] = str(wait)
                return response
        return self.get_response(request)
