"""Helpers shared by the API modules."""

from __future__ import annotations

from typing import Any, cast

from django.contrib.auth.models import User
from rest_framework import status
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView


def request_user(request: Request) -> User:
    """The authenticated user (every view but login and token requires one)."""
    return cast(User, request.user)


def paginated(request: Request, view: APIView, queryset: Any, serializer: type) -> Response:
    paginator = LimitOffsetPagination()
    page: list[Any] | None = paginator.paginate_queryset(queryset, request, view=view)
    return paginator.get_paginated_response(serializer(page, many=True).data)


def created(data: Any) -> Response:
    return Response(data, status=status.HTTP_201_CREATED)
