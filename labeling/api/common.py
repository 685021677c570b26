"""Helpers shared by the API modules."""

from __future__ import annotations

from typing import Any, cast

from django.contrib.auth.models import User
from rest_framework import status
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

#: The largest value of a PostgreSQL integer column: the bound of an input stored in one.
DB_INT_MAX = 2**31 - 1


def request_user(request: Request) -> User:
    """The authenticated user (every view but login and token requires one)."""
    return cast(User, request.user)


class PaginatedApi(APIView):
    """A list view answered by ``paginated``: declaring its paginator lets the schema document the page
    (``{count, next, previous, results}`` and ``limit``/``offset``), not a bare array."""

    pagination_class = LimitOffsetPagination


def paginated(request: Request, view: PaginatedApi, queryset: Any, serializer: type) -> Response:
    paginator = view.pagination_class()
    page: list[Any] | None = paginator.paginate_queryset(queryset, request, view=view)
    return paginator.get_paginated_response(serializer(page, many=True).data)


def created(data: Any) -> Response:
    return Response(data, status=status.HTTP_201_CREATED)
