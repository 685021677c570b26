"""Request context for the audit log: which request, from where, by whom."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass

from django.http import HttpRequest, HttpResponse


@dataclass(frozen=True)
class RequestContext:
    request_id: str = ""
    ip: str | None = None


current_request: ContextVar[RequestContext] = ContextVar(
    "current_request",
    default=RequestContext(),  # noqa: B039 - frozen dataclass, never mutated
)


class RequestContextMiddleware:
    """Give every request an id (or keep the client's ``X-Request-ID``) and remember its address."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = request.headers.get("X-Request-ID", "")[:64] or uuid.uuid4().hex
        token = current_request.set(RequestContext(request_id, request.META.get("REMOTE_ADDR")))
        try:
            response = self.get_response(request)
        finally:
            current_request.reset(token)
        response["X-Request-ID"] = request_id
        return response
