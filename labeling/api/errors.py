"""Map domain errors to HTTP once: NotFound 404, Forbidden 403, Conflict 409, InvalidInput 400.

DICOM store failures too: not found 404, a request the store cannot answer 406, a bad request 400, an image
server that cannot be reached or does not answer in time 502 "image server unavailable"
with Retry-After (``IMAGE_SERVER_DOWN_BODY``, in DRF views and through ``server_error`` anywhere else), any
other store failure 502. A URL no route matches and a refused CSRF check are JSON on API paths too
(``page_not_found``, ``csrf_failure``), as the schema documents. A database that is unreachable or dropped
the connection
(OperationalError, InterfaceError: a restart, a failover) is a 503 with Retry-After, in DRF views and, through
``server_error`` (``handler500``), anywhere else; the transaction that was open is rolled back by PostgreSQL,
so nothing is half-written and the client may simply retry. A value its column cannot hold (DataError: an
integer out of range) is the client's 400, never a 500.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from django.db import DataError, InterfaceError, OperationalError
from django.db.models import ProtectedError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import csrf, defaults
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

from labeling.dicom.errors import (
    IMAGE_SERVER_UNAVAILABLE,
    DicomInvalidRequest,
    DicomNotFound,
    DicomOperationUnsupported,
    DicomStoreError,
    DicomStoreUnavailable,
)
from labeling.exceptions import Conflict, DomainError, Forbidden, InvalidInput, NotFound
from labeling.models import ImmutableError
from labeling.schemes import SchemeError

#: Errors of a database that is restarting or unreachable: the request can be retried as it is.
DATABASE_DOWN = (OperationalError, InterfaceError)
#: Not "nothing was saved": the connection may die after PostgreSQL committed and before the answer. What holds
#: is that a change is saved whole or not at all, and that sending it again is safe (a reading sent again is
#: answered with the stored one).
DATABASE_DOWN_BODY = {
    "detail": "the database is unavailable for a moment; try again (a change is saved whole or not at all, "
    "and the same reading sent again is not stored twice)"
}
RETRY_AFTER_S = 5
#: The answer while the image server (Orthanc) is down or does not answer in time: a 502, which the viewer
#: recognises by its ``code`` and shows as "image server unavailable" (not a black viewport).
IMAGE_SERVER_DOWN_BODY = {
    "detail": f"{IMAGE_SERVER_UNAVAILABLE}: the images cannot be reached for a moment, try again",
    "code": "image_server_unavailable",
}
IMAGE_SERVER_RETRY_AFTER_S = 10

STATUS = {
    NotFound: status.HTTP_404_NOT_FOUND,
    Forbidden: status.HTTP_403_FORBIDDEN,
    Conflict: status.HTTP_409_CONFLICT,
    InvalidInput: status.HTTP_400_BAD_REQUEST,
}

logger = logging.getLogger(__name__)


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
    if isinstance(exc, DATABASE_DOWN):
        return Response(DATABASE_DOWN_BODY, status=503, headers={"Retry-After": str(RETRY_AFTER_S)})
    if isinstance(exc, DataError):  # a value its column cannot hold, past a serializer without bounds
        set_rollback()
        return Response({"detail": "a value of the request is out of range or too long"}, status=400)
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
        logger.warning("image server unavailable: %s", exc)  # the caller gets the 502 without the cause
        return Response(
            IMAGE_SERVER_DOWN_BODY,
            status=status.HTTP_502_BAD_GATEWAY,
            headers={"Retry-After": str(IMAGE_SERVER_RETRY_AFTER_S)},
        )
    return Response({"detail": "the image store failed to answer"}, status=status.HTTP_502_BAD_GATEWAY)


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith(("/api/", "/dicomweb/"))


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """``handler404``: a URL no route matches (``/api/projects/-1/``) is a JSON 404 on API paths."""
    if _is_api(request):
        return JsonResponse({"detail": "not found"}, status=404)
    return defaults.page_not_found(request, exception)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """``CSRF_FAILURE_VIEW``: a refused CSRF check is a JSON 403 on API paths, Django's page elsewhere."""
    if _is_api(request):
        return JsonResponse({"detail": f"CSRF failed: {reason}"}, status=403)
    return csrf.csrf_failure(request, reason)


def server_error(request: HttpRequest) -> HttpResponse:
    """``handler500``: a database outage is a 503 with Retry-After; API paths answer JSON, pages HTML.

    Django calls it inside the ``except`` block of the failed request, so the exception is ``sys.exc_info()``;
    it covers what DRF's handler does not see (middleware, the DICOMweb views, the web pages).
    """
    exc = sys.exc_info()[1]
    api = _is_api(request)
    if isinstance(exc, DicomStoreUnavailable):
        logger.warning("image server unavailable: %s", exc)
        return image_server_down_response(api=api)
    if isinstance(exc, DATABASE_DOWN):
        response: HttpResponse
        if api:
            response = JsonResponse(DATABASE_DOWN_BODY, status=503)
        else:
            response = HttpResponse(DATABASE_DOWN_BODY["detail"], status=503, content_type="text/plain")
        response["Retry-After"] = str(RETRY_AFTER_S)
        return response
    if api:
        return JsonResponse({"detail": "server error"}, status=500)
    return defaults.server_error(request)


def image_server_down_response(*, api: bool = True) -> HttpResponse:
    """The 502 "image server unavailable" with Retry-After outside DRF (JSON under /api/ and /dicomweb/)."""
    response: HttpResponse
    if api:
        response = JsonResponse(IMAGE_SERVER_DOWN_BODY, status=502)
    else:
        response = HttpResponse(IMAGE_SERVER_DOWN_BODY["detail"], status=502, content_type="text/plain")
    response["Retry-After"] = str(IMAGE_SERVER_RETRY_AFTER_S)
    return response
