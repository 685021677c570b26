"""Authentication: CSRF cookie, session login/logout, the current user, tokens for scripts."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import authenticate, login, logout
from django.utils.decorators import method_decorator
from django.views.decorators.csrf import csrf_protect, ensure_csrf_cookie
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.authtoken.models import Token
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from labeling.api.authentication import LOGIN_THROTTLES, token_issue
from labeling.api.common import request_user

# --- authentication -------------------------------------------------------------------------------------


class CsrfApi(APIView):
    permission_classes = [AllowAny]

    @method_decorator(ensure_csrf_cookie)
    @extend_schema(responses=inline_serializer("Csrf", {"detail": serializers.CharField()}))
    def get(self, request: Request) -> Response:
        """Set the CSRF cookie a browser needs before it logs in."""
        return Response({"detail": "CSRF cookie set"})


class Credentials(serializers.Serializer):
    username = serializers.CharField()
    password = serializers.CharField(style={"input_type": "password"})


class MeOutput(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    is_staff = serializers.BooleanField()
    roles = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))


def _me(user: Any) -> dict[str, Any]:
    roles: dict[str, list[str]] = {}
    for membership in user.memberships.filter(project__deleted_at__isnull=True).order_by(
        "project_id", "role"
    ):
        roles.setdefault(str(membership.project_id), []).append(membership.role)
    return {"id": user.pk, "username": user.username, "is_staff": user.is_staff, "roles": roles}


class LoginApi(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list[type] = []
    throttle_classes = LOGIN_THROTTLES  # failed logins per username and per address: then 429

    @method_decorator(csrf_protect)
    @extend_schema(request=Credentials, responses=MeOutput)
    def post(self, request: Request) -> Response:
        """Start a browser session (needs the CSRF cookie and X-CSRFToken header)."""
        payload = Credentials(data=request.data)
        payload.is_valid(raise_exception=True)
        user = authenticate(request._request, **payload.validated_data)
        if user is None:
            return Response({"detail": "wrong username or password"}, status=status.HTTP_400_BAD_REQUEST)
        login(request._request, user)
        return Response(_me(user))


class LogoutApi(APIView):
    @extend_schema(request=None, responses={204: None})
    def post(self, request: Request) -> Response:
        """End the session and revoke the user's API token (scripts log out with their token)."""
        Token.objects.filter(user=request_user(request)).delete()
        logout(request._request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeApi(APIView):
    @extend_schema(responses=MeOutput)
    def get(self, request: Request) -> Response:
        """The logged-in user and their roles per project."""
        return Response(_me(request_user(request)))


class TokenApi(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list[type] = []
    throttle_classes = LOGIN_THROTTLES

    @extend_schema(
        request=Credentials,
        responses=inline_serializer(
            "TokenOut", {"token": serializers.CharField(), "expires_at": serializers.DateTimeField()}
        ),
    )
    def post(self, request: Request) -> Response:
        """Exchange username and password for a key, sent as ``Authorization: Token <key>``.

        The key is valid until ``expires_at`` (``TOKEN_TTL_S``), and revoked by logout, a password change and
        the removal of a membership. Repeated wrong passwords are a 429 with Retry-After."""
        payload = Credentials(data=request.data)
        payload.is_valid(raise_exception=True)
        user = authenticate(request._request, **payload.validated_data)
        if user is None:
            return Response({"detail": "wrong username or password"}, status=status.HTTP_400_BAD_REQUEST)
        token = token_issue(user)
        return Response(
            {"token": token.key, "expires_at": token.created + timedelta(seconds=settings.TOKEN_TTL_S)}
        )
