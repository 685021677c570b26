"""Map domain errors to HTTP once: NotFound 404, Forbidden 403, Conflict 409, InvalidInput 400.

DICOM store failures too: not found 404, a request the store cannot answer 406, a bad request 400, an
unreachable store 503, any other store failure 502.
"""

from __future__ import annotations

from typing import Any

from django.db.models import ProtectedError
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from labeling.dicom.errors import (
    DicomInvalidRequest,
    DicomNotFound,
    DicomOperationUnsupported,
    DicomStoreError,
    DicomStoreUnavailable,
)
from labeling.exceptions import Conflict, DomainError, Forbidden, InvalidInput, NotFound
from labeling.models import ImmutableError
from labeling.schemes import SchemeError

STATUS = {
    NotFound: status.HTTP_404_NOT_FOUND,
    Forbidden: status.HTTP_403_FORBIDDEN,
    Conflict: status.HTTP_409_CONFLICT,
    InvalidInput: status.HTTP_400_BAD_REQUEST,
}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, plus our domain errors: ``{"detail": message, "field": name}``."""
    if isinstance(exc, SchemeError):
        return Response({"detail": exc.message, "field": exc.field, exc.field: [exc.message]}, status=400)
    if isinstance(exc, DomainError):
        body: dict[str, Any] = {"detail": exc.message}
        if exc.field:
            body["field"] = exc.field
            body[exc.field] = [exc.message]
        code = next((c for cls, c in STATUS.items() if isinstance(exc, cls)), status.HTTP_400_BAD_REQUEST)
        return Response(body, status=code)
    if isinstance(exc, DicomStoreError):
        return _store_error(exc)
    if isinstance(exc, ImmutableError | ProtectedError):
        return Response({"detail": str(exc.args[0])}, status=status.HTTP_409_CONFLICT)
    return drf_exception_handler(exc, context)


def _store_error(exc: DicomStoreError) -> Response:
    """The answer to a store failure; the store's own words only where they help the caller fix the request."""
    if isinstance(exc, DicomNotFound):
        return Response({"detail": "not found"}, status=status.HTTP_404_NOT_FOUND)
    if isinstance(exc, DicomOperationUnsupported):
        return Response({"detail": str(exc)}, status=status.HTTP_406_NOT_ACCEPTABLE)
    if isinstance(exc, DicomInvalidRequest):
        return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, DicomStoreUnavailable):
        return Response({"detail": "the image store is unavailable, try again"}, status=503)
    return Response({"detail": "the image store failed to answer"}, status=status.HTTP_502_BAD_GATEWAY)
