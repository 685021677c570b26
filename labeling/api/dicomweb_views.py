"""Concord as a DICOMweb endpoint (``/dicomweb/``): QIDO-RS, WADO-RS metadata, frames and rendered.

Every request is authorised through ``permissions.dicom_study_for`` / ``dicom_visible_studies``: a reader
reaches only the studies of their own assignments, anything else is a 404, and searches return only what the
caller may see. Token and session authentication both work, so dicomweb-client, OHIF or 3D Slicer can use it
with ``Authorization: Token <key>``.

Backed by the configured store: with a DICOMweb server (``DICOMWEB_URL``) metadata, frames and rendered images
are streamed from it through ``dicomweb_raw_get`` (BulkDataURI and RetrieveURL values rewritten to this
endpoint); with the local folder store they are served from the files.
"""

from __future__ import annotations

import functools
import io
import re
import threading
import time
import uuid
from collections.abc import Hashable, Iterator
from typing import Any

import requests
from django.conf import settings
from django.http import HttpResponse, HttpResponseBase, StreamingHttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from labeling.api.common import request_user
from labeling.api.permissions import dicom_study_for, dicom_visible_studies
from labeling.dicom import (
    DicomNotFound,
    DicomOperationUnsupported,
    DicomStore,
    DicomStoreError,
    DicomStoreUnavailable,
    DicomWebStore,
    LocalFolderStore,
    dicomweb_raw_get,
)
from labeling.dicom.store import DicomJson, json_value, tag_key
from labeling.exceptions import InvalidInput, NotFound
from labeling.models import Series

DICOM_JSON = "application/dicom+json"
FRAMES_ACCEPT = 'multipart/related; type="application/octet-stream"; transfer-syntax=*'
UNCOMPRESSED = "1.2.840.10008.1.2.1"
#: UIDs per QIDO request when a search is narrowed to the studies a user may see (keeps URLs short).
UID_CHUNK = 100
#: Above this many visible studies, search the store unnarrowed and filter the answer instead.
NARROW_LIMIT = 1000
#: The same for servers without UID-list matching, which need one search per visible study.
PER_UID_LIMIT = 20
CACHE_IMMUTABLE = "private, max-age=3600"
_RETRIEVE_URL = tag_key("RetrieveURL")
_STUDY_UID = tag_key("StudyInstanceUID")
_CHUNK_BYTES = 256 * 1024

_session: requests.Session | None = None


def upstream_session() -> requests.Session:
    """One pooled HTTP session per process for proxied requests (urllib3 pools are thread-safe)."""
    global _session
    if _session is None:
        session = requests.Session()
        # trust_env would re-read proxy variables and ~/.netrc on every request (milliseconds each); the
        # DICOMweb server is reached directly, as configured
        session.trust_env = False
        adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=64)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        _session = session
    return _session


@functools.lru_cache(maxsize=4)
def _local_store(folder: str) -> LocalFolderStore:
    """One store per folder and process: it keeps the headers it has read, so a request only stats files."""
    return LocalFolderStore(folder)


def _store() -> DicomStore:
    if settings.DICOMWEB_URL:
        return DicomWebStore(settings.DICOMWEB_URL, session=upstream_session(), max_attempts=1)
    return _local_store(str(settings.DICOM_FOLDER))


class _TtlCache:
    """A small per-process cache of recent decisions; entries live ``DICOMWEB_AUTH_CACHE_S`` seconds.

    A viewer fetches hundreds of frames of one study in a burst: remembering "this user may see this study"
    (and "this token is this user") for a few seconds spares the database on every frame. The price is that
    revoking an assignment or a token takes effect at most that many seconds later; 0 turns caching off.
    """

    def __init__(self, max_entries: int = 20_000) -> None:
        self._entries: dict[Hashable, tuple[float, Any]] = {}
        self._max_entries = max_entries
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Any:
        found = self._entries.get(key)
        if found is None or found[0] < time.monotonic():
            return None
        return found[1]

    def put(self, key: Hashable, value: Any) -> None:
        ttl_s = float(settings.DICOMWEB_AUTH_CACHE_S)
        if ttl_s <= 0:
            return
        with self._lock:
            if len(self._entries) >= self._max_entries:
                self._entries.clear()
            self._entries[key] = (time.monotonic() + ttl_s, value)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


decisions = _TtlCache()


class _CachedTokenAuthentication(TokenAuthentication):
    """DRF's token authentication with the token → user answer remembered briefly (see _TtlCache)."""

    def authenticate_credentials(self, key: str) -> tuple[Any, Any]:
        cached = decisions.get(("token", key))
        if cached is not None:
            return cached
        result = super().authenticate_credentials(key)
        decisions.put(("token", key), result)
        return result


class _CachedSessionAuthentication(SessionAuthentication):
    """DRF's session authentication, noting "this session is this user" briefly for the frames fast path."""

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        result = super().authenticate(request)
        session_key = getattr(getattr(request._request, "session", None), "session_key", None)
        if result is not None and session_key:
            decisions.put(("session", session_key), result[0].pk)
        return result


class _AnyAccept(BaseContentNegotiation):
    """Ignore the Accept header in DRF: these views answer DICOM media types themselves."""

    def select_parser(self, request: Request, parsers: Any) -> Any:
        return parsers[0] if parsers else None

    def select_renderer(self, request: Request, renderers: Any, format_suffix: Any = None) -> Any:
        return renderers[0], renderers[0].media_type


class _DicomJsonRenderer(JSONRenderer):
    media_type = DICOM_JSON


def _own_root(request: Request) -> str:
    return request.build_absolute_uri("/dicomweb").rstrip("/")


class DicomWebApi(APIView):
    """Base: authenticated, Accept handled by the view, store failures mapped to HTTP statuses."""

    authentication_classes = [_CachedTokenAuthentication, _CachedSessionAuthentication]
    content_negotiation_class = _AnyAccept
    renderer_classes = [_DicomJsonRenderer]

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, DicomNotFound):
            exc = NotFound("not found")
        elif isinstance(exc, DicomStoreUnavailable):
            return Response({"detail": "the image store is unavailable, try again"}, status=503)
        elif isinstance(exc, DicomOperationUnsupported):
            return Response({"detail": str(exc)}, status=406)
        elif isinstance(exc, DicomStoreError):
            return Response({"detail": "the image store failed to answer"}, status=502)
        elif isinstance(exc, ValueError):
            exc = InvalidInput(str(exc))
        return super().handle_exception(exc)


# --- QIDO-RS ------------------------------------------------------------------------------------------------

_PAGING = {"limit", "offset", "includefield", "fuzzymatching"}


def _qido_params(request: Request) -> tuple[dict[str, str], int | None, int]:
    """Split the query into match filters, limit and offset (other QIDO controls are accepted and ignored)."""
    filters: dict[str, str] = {}
    for key in request.query_params:
        value = str(request.query_params.get(key, ""))
        if key.lower() in _PAGING:
            continue
        try:
            tag_key(key)
        except ValueError:
            raise InvalidInput(f"{key!r} is not a DICOM attribute keyword or tag", field=key) from None
        filters[key] = value
    limit = request.query_params.get("limit")
    offset = request.query_params.get("offset", "0")
    if (limit is not None and not limit.isdigit()) or not offset.isdigit():
        raise InvalidInput("limit and offset must be non-negative integers")
    return filters, int(limit) if limit is not None else None, int(offset)


def _rewrite_urls(items: list[DicomJson], request: Request) -> list[DicomJson]:
    """Point RetrieveURL values at this endpoint (they name the upstream server otherwise)."""
    upstream = settings.DICOMWEB_URL.rstrip("/")
    own = _own_root(request)
    for item in items:
        entry = item.get(_RETRIEVE_URL)
        if entry and entry.get("Value"):
            entry["Value"] = [str(v).replace(upstream, own) if upstream else v for v in entry["Value"]]
    return items


def _json(items: list[DicomJson]) -> Response:
    response = Response(items, content_type=DICOM_JSON)
    response["Cache-Control"] = "private, no-cache"
    response["Vary"] = "Authorization, Cookie"
    return response


def _page(items: list[DicomJson], limit: int | None, offset: int) -> list[DicomJson]:
    return items[offset : offset + limit if limit is not None else None]


class QidoStudiesApi(DicomWebApi):
    @extend_schema(exclude=True)
    def get(self, request: Request) -> Response:
        """Search for studies, among those the caller may see."""
        filters, limit, offset = _qido_params(request)
        found = _search_visible(request, "studies", filters)
        return _json(_rewrite_urls(_page(found, limit, offset), request))


def _search_visible(request: Request, level: str, filters: dict[str, str]) -> list[DicomJson]:
    """Run a study/series/instance search across studies, narrowed to (and filtered by) the visible ones."""
    store = _store()
    visible = set(dicom_visible_studies(request_user(request)).values_list("study_uid", flat=True))
    asked = filters.get("StudyInstanceUID") or filters.get(_STUDY_UID)
    if asked:
        visible &= set(asked.split("\\"))
    if not visible:
        return []
    search = {
        "studies": lambda f: store.search_studies(f),
        "series": lambda f: store.search_series(None, f),
        "instances": lambda f: store.search_instances(None, None, f),
    }[level]
    others = {k: v for k, v in filters.items() if k not in ("StudyInstanceUID", _STUDY_UID)}
    if len(visible) > NARROW_LIMIT:
        return [item for item in search(others) if json_value(item, "StudyInstanceUID") in visible]
    uids = sorted(visible)
    # QIDO UID-list matching (PS3.18 8.3.4.1) is optional and Orthanc lacks it: one search per UID there
    per_request = UID_CHUNK if isinstance(store, LocalFolderStore) else 1
    if per_request == 1 and len(uids) > PER_UID_LIMIT:
        return [item for item in search(others) if json_value(item, "StudyInstanceUID") in visible]
    found: list[DicomJson] = []
    for start in range(0, len(uids), per_request):
        found += search({**others, "StudyInstanceUID": "\\".join(uids[start : start + per_request])})
    return [item for item in found if json_value(item, "StudyInstanceUID") in visible]


class QidoSeriesApi(DicomWebApi):
    @extend_schema(exclude=True)
    def get(self, request: Request, study_uid: str | None = None) -> Response:
        """Search for series, in one study or across the visible ones."""
        filters, limit, offset = _qido_params(request)
        if study_uid is None:
            found = _search_visible(request, "series", filters)
        else:
            dicom_study_for(request_user(request), study_uid)
            found = _store().search_series(study_uid, filters)
        return _json(_rewrite_urls(_page(found, limit, offset), request))


class QidoInstancesApi(DicomWebApi):
    @extend_schema(exclude=True)
    def get(self, request: Request, study_uid: str | None = None, series_uid: str | None = None) -> Response:
        """Search for instances, in one study or series, or across the visible studies."""
        filters, limit, offset = _qido_params(request)
        if study_uid is None:
            found = _search_visible(request, "instances", filters)
        else:
            _check(request, study_uid, series_uid)
            found = _store().search_instances(study_uid, series_uid, filters)
        return _json(_rewrite_urls(_page(found, limit, offset), request))


def _check(request: Request, study_uid: str, series_uid: str | None = None) -> None:
    """404 unless the caller may see the study and (when Concord knows the series) the series is in it."""
    user = request_user(request)
    key = ("study", user.pk, study_uid, series_uid)
    if decisions.get(key):
        return
    study = dicom_study_for(user, study_uid)
    if series_uid is not None:
        owner = Series.objects.filter(series_uid=series_uid).values_list("study_id", flat=True).first()
        if owner is not None and owner != study.pk:
            raise NotFound("not found")
    decisions.put(key, True)


# --- WADO-RS: proxied -----------------------------------------------------------------------------------------


def _replacing(chunks: Iterator[bytes], old: bytes, new: bytes) -> Iterator[bytes]:
    """Yield ``chunks`` with every ``old`` replaced by ``new``, also where ``old`` spans two chunks."""
    keep = len(old) - 1
    tail = b""
    for chunk in chunks:
        buffer, out, pos = tail + chunk, [], 0
        while (found := buffer.find(old, pos)) >= 0:
            out += [buffer[pos:found], new]
            pos = found + len(old)
        rest = buffer[pos:]  # holds no whole match; its last ``keep`` bytes may begin one
        cut = max(len(rest) - keep, 0)
        out.append(rest[:cut])
        tail = rest[cut:]
        if data := b"".join(out):
            yield data
    if tail:
        yield tail


def _proxy(
    request: Request,
    path: str,
    *,
    accept: str,
    rewrite: bool = False,
    query: str | None = None,
) -> HttpResponseBase:
    """Stream ``path`` from the configured DICOMweb server; 404 and errors are answered here, not passed on."""
    upstream = dicomweb_raw_get(
        settings.DICOMWEB_URL, path, query=query, accept=accept, session=upstream_session()
    )
    if upstream.status_code == 404:
        upstream.close()
        raise NotFound("not found")
    if upstream.status_code != 200:
        detail = upstream.text[:300]
        upstream.close()
        status = upstream.status_code if upstream.status_code in (400, 406) else 502
        return HttpResponse(f'{{"detail": "image store: HTTP {upstream.status_code}: {detail!r}"}}',
                            status=status, content_type="application/json")  # fmt: skip

    def body() -> Iterator[bytes]:
        try:
            chunks = upstream.iter_content(_CHUNK_BYTES)
            if rewrite:
                old = settings.DICOMWEB_URL.rstrip("/").encode()
                chunks = _replacing(chunks, old, _own_root(request).encode())
            yield from chunks
        finally:
            upstream.close()

    response = StreamingHttpResponse(body(), content_type=upstream.headers.get("Content-Type"))
    length = upstream.headers.get("Content-Length")
    if length and not rewrite and "Content-Encoding" not in upstream.headers:
        # a known length spares chunked encoding: fewer, larger writes (no Nagle/delayed-ACK stalls)
        response["Content-Length"] = length
    response["Cache-Control"] = CACHE_IMMUTABLE
    response["Vary"] = "Authorization, Cookie, Accept"
    return response


def frames_accept(accept: str) -> str:
    """The Accept to send upstream: a wildcard part type (dicomweb-client's default) becomes octet-stream.

    ``multipart/related; type="*/*"`` and ``*/*`` are valid requests that some servers (Orthanc) refuse; the
    stored transfer syntax as octet-stream is what they mean.
    """
    offers = [offer.strip() for offer in accept.split(",") if offer.strip()]

    def wildcard(offer: str) -> bool:
        kind = re.search(r'type="?([^";]+)"?', offer)
        return offer.startswith("*/*") or (
            offer.startswith("multipart/related") and (kind is None or kind.group(1) == "*/*")
        )

    if not offers or any(wildcard(offer) for offer in offers):
        return FRAMES_ACCEPT
    return accept


def _frame_numbers(frames: str) -> list[int]:
    if not re.fullmatch(r"\d+(,\d+)*", frames) or "0" in frames.split(","):
        raise InvalidInput("frame numbers are 1-based integers separated by commas", field="frames")
    return [int(n) for n in frames.split(",")]


def _multipart(parts: list[bytes], media_type: str) -> HttpResponse:
    """A multipart/related body (PS3.18 8.7.3.3): one part per frame."""
    boundary = uuid.uuid4().hex
    chunks = []
    for part in parts:
        chunks += [f"--{boundary}\r\nContent-Type: {media_type}\r\n\r\n".encode(), part, b"\r\n"]
    chunks.append(f"--{boundary}--\r\n".encode())
    kind = media_type.split(";")[0]
    response = HttpResponse(
        b"".join(chunks), content_type=f'multipart/related; type="{kind}"; boundary={boundary}'
    )
    response["Cache-Control"] = CACHE_IMMUTABLE
    response["Vary"] = "Authorization, Cookie, Accept"
    return response


def _local_frames_media_type(accept: str, store: LocalFolderStore, uids: tuple[str, str, str]) -> str:
    """The part media type for frames of a local instance, or DicomOperationUnsupported (406)."""
    dataset = store.instance(*uids)
    syntax = dataset.file_meta.get("TransferSyntaxUID")
    stored = UNCOMPRESSED if syntax is None or not syntax.is_compressed else str(syntax)
    for offer in [a.strip() for a in accept.split(",") if a.strip()] or [FRAMES_ACCEPT]:
        if offer.startswith("*/*"):
            return f"application/octet-stream; transfer-syntax={stored}"
        if not offer.startswith("multipart/related"):
            continue
        kind = re.search(r'type="?([^";]+)"?', offer)
        if kind and kind.group(1) not in ("application/octet-stream", "*/*"):
            continue
        wanted = re.search(r'transfer-syntax="?([^";]+)"?', offer)
        if wanted is None or wanted.group(1) in ("*", stored):
            return f"application/octet-stream; transfer-syntax={stored}"
    raise DicomOperationUnsupported(
        f'frames are available as multipart/related; type="application/octet-stream" in transfer syntax '
        f"{stored} (or transfer-syntax=*)"
    )


class FramesApi(DicomWebApi):
    @extend_schema(exclude=True)
    def get(
        self, request: Request, study_uid: str, series_uid: str, sop_uid: str, frames: str
    ) -> HttpResponseBase:
        """Retrieve frames as multipart/related (``transfer-syntax=*`` gives the stored syntax)."""
        numbers = _frame_numbers(frames)
        _check(request, study_uid, series_uid)
        accept = request.META.get("HTTP_ACCEPT") or FRAMES_ACCEPT
        if settings.DICOMWEB_URL:
            path = f"studies/{study_uid}/series/{series_uid}/instances/{sop_uid}/frames/{frames}"
            return _proxy(request, path, accept=frames_accept(accept))
        store = LocalFolderStore(settings.DICOM_FOLDER)
        media_type = _local_frames_media_type(accept, store, (study_uid, series_uid, sop_uid))
        return _multipart(store.frames(study_uid, series_uid, sop_uid, numbers), media_type)


class RenderedApi(DicomWebApi):
    @extend_schema(exclude=True)
    def get(
        self, request: Request, study_uid: str, series_uid: str, sop_uid: str, frames: str | None = None
    ) -> HttpResponseBase:
        """Retrieve an instance (or frame) rendered as PNG (JPEG too when the upstream server offers it)."""
        _check(request, study_uid, series_uid)
        accept = request.META.get("HTTP_ACCEPT") or "image/png"
        if settings.DICOMWEB_URL:
            path = f"studies/{study_uid}/series/{series_uid}/instances/{sop_uid}"
            path += f"/frames/{frames}/rendered" if frames else "/rendered"
            return _proxy(request, path, accept=accept, query=request.META.get("QUERY_STRING") or None)
        if frames is not None and _frame_numbers(frames) != [1]:
            raise DicomOperationUnsupported("the local store renders the first frame only")
        if "image/png" not in accept and "image/*" not in accept and "*/*" not in accept:
            raise DicomOperationUnsupported("the local store renders image/png only")
        png = LocalFolderStore(settings.DICOM_FOLDER).rendered(study_uid, series_uid, sop_uid)
        response = HttpResponse(png, content_type="image/png")
        response["Cache-Control"] = CACHE_IMMUTABLE
        return response


class MetadataApi(DicomWebApi):
    @extend_schema(exclude=True)
    def get(
        self, request: Request, study_uid: str, series_uid: str | None = None, sop_uid: str | None = None
    ) -> HttpResponseBase:
        """Retrieve the metadata of a study, series or instance (DICOM JSON, bulk data by URI)."""
        _check(request, study_uid, series_uid)
        if settings.DICOMWEB_URL:
            path = f"studies/{study_uid}"
            path += f"/series/{series_uid}" if series_uid else ""
            path += f"/instances/{sop_uid}" if sop_uid else ""
            return _proxy(request, f"{path}/metadata", accept=DICOM_JSON, rewrite=True)
        store = LocalFolderStore(settings.DICOM_FOLDER)
        if sop_uid is not None and series_uid is not None:
            items = [store.instance_metadata(study_uid, series_uid, sop_uid)]
        elif series_uid is not None:
            items = store.series_metadata(study_uid, series_uid)
        else:
            series = [str(json_value(s, "SeriesInstanceUID")) for s in store.search_series(study_uid)]
            if not series:
                raise NotFound("not found")
            items = [item for uid in series for item in store.series_metadata(study_uid, uid)]
        response = _json(items)
        response["Cache-Control"] = CACHE_IMMUTABLE
        return response


def _part10(dataset: Any) -> bytes:
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


class RetrieveApi(DicomWebApi):
    @extend_schema(exclude=True)
    def get(
        self, request: Request, study_uid: str, series_uid: str | None = None, sop_uid: str | None = None
    ) -> HttpResponseBase:
        """Retrieve a study, series or instance as multipart/related; type="application/dicom" (Part 10)."""
        _check(request, study_uid, series_uid)
        accept = request.META.get("HTTP_ACCEPT") or 'multipart/related; type="application/dicom"'
        if "application/dicom" not in accept and "*/*" not in accept and "multipart/related" not in accept:
            raise DicomOperationUnsupported(
                'instances are available as multipart/related; type="application/dicom"'
            )
        path = f"studies/{study_uid}"
        path += f"/series/{series_uid}" if series_uid else ""
        path += f"/instances/{sop_uid}" if sop_uid else ""
        if settings.DICOMWEB_URL:
            upstream_accept = 'multipart/related; type="application/dicom"; transfer-syntax=*'
            return _proxy(request, path, accept=upstream_accept)
        store = LocalFolderStore(settings.DICOM_FOLDER)
        if sop_uid is not None and series_uid is not None:
            targets = [(series_uid, sop_uid)]
        else:
            found = store.search_instances(study_uid, series_uid)
            targets = [
                (str(json_value(i, "SeriesInstanceUID")), str(json_value(i, "SOPInstanceUID"))) for i in found
            ]
        if not targets:
            raise NotFound("not found")
        boundary = uuid.uuid4().hex

        def body() -> Iterator[bytes]:  # one instance in memory at a time
            for se, sop in targets:
                yield f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode()
                yield _part10(store.instance(study_uid, se, sop))
                yield b"\r\n"
            yield f"--{boundary}--\r\n".encode()

        response = StreamingHttpResponse(
            body(), content_type=f'multipart/related; type="application/dicom"; boundary={boundary}'
        )
        response["Cache-Control"] = CACHE_IMMUTABLE
        return response
