"""Concord as a DICOMweb endpoint (``/dicomweb/``): QIDO-RS, WADO-RS metadata, frames, rendered and instances.

Every request is authorised through ``permissions.dicom_study_for`` / ``dicom_visible_studies`` (stored UIDs:
site staff, project admins, adjudicators) or ``dicom_assignments`` (a reader reaches the study of each of their
assignments only under that assignment's pseudonymous UIDs, never the stored ones); anything else is a 404, and
searches return only what the caller may see. Token and session authentication both work (``dicomweb_auth``),
so dicomweb-client, OHIF or 3D Slicer can use it with ``Authorization: Token <key>``.

The views only check the request and the caller, then ask the process's one store
(``configured_store``) for the answer. Whoever is not site staff (readers, adjudicators, project admins)
receives QIDO results, metadata and instances through ``labeling.dicom.confidentiality``: only what a viewer
needs, no patient-identifying attribute (PS3.15 Annex E), whatever the store holds; what differs between a DICOMweb server and the local folder lives in
the stores (``labeling.dicom``), and store failures become HTTP statuses in ``errors.exception_handler``.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.http import HttpResponse, HttpResponseBase, StreamingHttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from labeling.api.common import request_user
from labeling.api.dicomweb_auth import CachedSessionAuthentication, CachedTokenAuthentication, decisions
from labeling.api.permissions import DICOM_ASSIGNMENT_STUDIES, dicom_study_for, dicom_visible_studies
from labeling.dicom import DicomJson, DicomOperationUnsupported, DicomStore
from labeling.dicom.confidentiality import reader_dataset, reader_jsons
from labeling.dicom.dicomweb import DicomWebStore
from labeling.dicom.frame_cache import FrameCache, metadata_key
from labeling.dicom.proxy import (
    FRAMES_ACCEPT,
    Served,
    multipart_stream,
    rebase_links,
    search_visible,
    without_part_locations,
)
from labeling.dicom.pseudonyms import UidMap
from labeling.dicom.store import json_value, tag_key
from labeling.exceptions import InvalidInput, NotFound
from labeling.models import Series
from labeling.services.identity import (
    assignment_uid_map,
    clean_series_descriptions,
    pseudonymous_studies,
    sees_identity,
)
from labeling.services.ingest import configured_store

DICOM_JSON = "application/dicom+json"
_STUDY_UID = tag_key("StudyInstanceUID")
CACHE_IMMUTABLE = "private, max-age=3600"
_VARY = "Authorization, Cookie, Accept"


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
    """Base: authenticated (token or session, briefly cached), Accept handled by the view."""

    authentication_classes = [CachedTokenAuthentication, CachedSessionAuthentication]
    content_negotiation_class = _AnyAccept
    renderer_classes = [_DicomJsonRenderer]


def _check(request: Request, study_uid: str, series_uid: str | None = None) -> None:
    """404 unless the caller may see the study and (when Concord knows the series) the series is in it."""
    user = request_user(request)
    key = ("study", user.pk, study_uid, series_uid)
    if decisions.get(key):
        return
    since = decisions.begin()
    study = dicom_study_for(user, study_uid)
    if series_uid is not None:
        owner = Series.objects.filter(series_uid=series_uid).values_list("study_id", flat=True).first()
        if owner is not None and owner != study.pk:
            raise NotFound("not found")
    decisions.put(key, True, since=since)


@dataclass(frozen=True)
class _Target:
    """What a request names, in the store's real UIDs; ``uids``: the reader's assignment map, when addressed
    through its pseudonymous UIDs (answers then carry those)."""

    study: str
    series: str | None
    sop: str | None
    uids: UidMap | None


def _reader_pseudonyms(user: User) -> dict[str, tuple[int, str]]:
    """Pseudonymous study UID → (assignment id, real study UID) for the reader's own assignments."""
    key = ("pseudonyms", user.pk)
    cached = decisions.get(key)
    if cached is None:
        since = decisions.begin()
        pairs = DICOM_ASSIGNMENT_STUDIES.rows(user_id=user.pk)
        cached = pseudonymous_studies(pairs)
        decisions.put(key, cached, since=since)
    return cached  # type: ignore[no-any-return]


def _uid_map(assignment_id: int, study_uid: str) -> UidMap:
    key = ("uid-map", assignment_id)
    cached = decisions.get(key)
    if cached is None:
        cached = assignment_uid_map(assignment_id, study_uid)
        decisions.put(key, cached)
    return cached  # type: ignore[no-any-return]


def _target(
    request: Request, study_uid: str, series_uid: str | None = None, sop_uid: str | None = None
) -> _Target:
    """Resolve and authorise the UIDs of a request: the pseudonymous UIDs of one of the caller's assignments,
    or the stored UIDs of a study ``dicom_visible_studies`` grants (staff, project admins, adjudicators); 404
    else.

    A series reached through a reader's pseudonyms leaves the decision "these pseudonyms are this stored
    series, with this map" in the cache, so that the frames fast path serves the reader's following frames
    of it as it serves stored UIDs (``pseudonymous_series``)."""
    user = request_user(request)
    since = decisions.begin()
    found = _reader_pseudonyms(user).get(study_uid)
    if found is None:
        _check(request, study_uid, series_uid)
        return _Target(study_uid, series_uid, sop_uid, None)
    uids = _uid_map(*found)
    series = uids.real(series_uid) if series_uid is not None else None
    sop = uids.real(sop_uid) if sop_uid is not None else None
    if (series_uid is not None and series is None) or (sop_uid is not None and sop is None):
        raise NotFound("not found")
    if series_uid is not None and series is not None:
        decisions.put(
            pseudonymous_series_key(user.pk, study_uid, series_uid), (found[1], series, uids), since=since
        )
    return _Target(found[1], series, sop, uids)


def pseudonymous_series_key(user_pk: int, study_uid: str, series_uid: str) -> tuple[Any, ...]:
    """The cache key of "``user_pk`` reads this pseudonymous series as (stored study, stored series, map)"."""
    return ("pseudonymous-series", user_pk, study_uid, series_uid)


def pseudonymous_series(user_pk: int, study_uid: str, series_uid: str) -> tuple[str, str, UidMap] | None:
    """The cached decision of ``pseudonymous_series_key`` (None: not decided within the cache lifetime)."""
    return decisions.get(pseudonymous_series_key(user_pk, study_uid, series_uid))  # type: ignore[no-any-return]


def _send(served: Served, *, cache: str = CACHE_IMMUTABLE) -> HttpResponseBase:
    """The HTTP response for a store's body: whole bodies as they are, others streamed (closed at the end)."""
    chunks = served.chunks
    if isinstance(chunks, list) and len(chunks) == 1:
        response: HttpResponseBase = HttpResponse(chunks[0], content_type=served.content_type)
        served.close()
    else:

        def body() -> Any:
            try:
                yield from chunks
            finally:
                served.close()

        response = StreamingHttpResponse(body(), content_type=served.content_type)
        if served.length is not None:
            response["Content-Length"] = str(served.length)
    response["Cache-Control"] = cache
    response["Vary"] = _VARY
    return response


def _json(items: list[DicomJson], request: Request, *, cache: str, uids: UidMap | None = None) -> Response:
    if uids is not None:  # a series the read's condition hides is not there (a T1-only read has no STIR)
        items = [item for item in items if uids.shows(item)]
    items = rebase_links(items, configured_store().link_root, _own_root(request))
    if not sees_identity(request_user(request)):
        items = reader_jsons(items, clean_series_descriptions())
    if uids is not None:
        items = [uids.json(item) for item in items]
    response = Response(items)
    response["Content-Type"] = DICOM_JSON
    response["Cache-Control"] = cache
    response["Vary"] = "Authorization, Cookie"
    return response


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


def _search(request: Request, level: str, study_uid: str | None, series_uid: str | None) -> Response:
    """One QIDO search: across the visible studies, or within one study (and series) the caller may see."""
    filters, limit, offset = _qido_params(request)
    store = configured_store()
    if study_uid is None:
        return _search_everywhere(request, level, filters, limit, offset)
    target = _target(request, study_uid, series_uid)
    if level == "series":
        found = store.search_series(target.study, filters)
    else:
        found = store.search_instances(target.study, target.series, filters)
    page = found[offset : offset + limit if limit is not None else None]
    return _json(page, request, cache="private, no-cache", uids=target.uids)


def _search_everywhere(
    request: Request, level: str, filters: dict[str, str], limit: int | None, offset: int
) -> Response:
    """QIDO across the visible studies: a study the caller reads appears once per assignment, pseudonymous."""
    user = request_user(request)
    store = configured_store()
    pseudonyms = _reader_pseudonyms(user)
    asked = filters.get("StudyInstanceUID") or filters.get(_STUDY_UID)
    wanted = set(asked.split("\\")) if asked else None
    if wanted is not None:  # names of the caller's own pseudonymous studies stand for the real ones
        real = {pseudonyms[uid][1] if uid in pseudonyms else uid for uid in wanted}
        filters = {k: v for k, v in filters.items() if k not in ("StudyInstanceUID", _STUDY_UID)}
        filters["StudyInstanceUID"] = "\\".join(sorted(real))
    visible = set(dicom_visible_studies(user).values_list("study_uid", flat=True))
    visible |= {real_uid for _, real_uid in pseudonyms.values()}  # searched for, answered pseudonymous
    found = search_visible(store, level, filters, visible, uid_lists=store.uid_lists)
    read: dict[str, list[tuple[str, int]]] = {}
    for pseudo, (assignment_id, real_uid) in sorted(pseudonyms.items()):
        if wanted is None or pseudo in wanted:  # the stored UID finds none of the caller's reads
            read.setdefault(real_uid, []).append((pseudo, assignment_id))
    assigned = {real_uid for _, real_uid in pseudonyms.values()}
    answers: list[tuple[DicomJson, UidMap | None]] = []
    for item in found:
        uid = str(json_value(item, "StudyInstanceUID"))
        if uid not in assigned:
            answers.append((item, None))
        for _, assignment_id in read.get(uid, []):
            uids = _uid_map(assignment_id, uid)
            if uids.shows(item):
                answers.append((item, uids))
    page = answers[offset : offset + limit if limit is not None else None]
    shown = [item for item, _ in page]
    if not sees_identity(user):
        shown = reader_jsons(shown, clean_series_descriptions())
    items = [uids.json(item) if uids else item for item, (_, uids) in zip(shown, page, strict=True)]
    return _json(items, request, cache="private, no-cache")


class QidoStudiesApi(DicomWebApi):
    @extend_schema(exclude=True)
    def get(self, request: Request) -> Response:
        """Search for studies, among those the caller may see."""
        return _search(request, "studies", None, None)


class QidoSeriesApi(DicomWebApi):
    @extend_schema(exclude=True)
    def get(self, request: Request, study_uid: str | None = None) -> Response:
        """Search for series, in one study or across the visible ones."""
        return _search(request, "series", study_uid, None)


class QidoInstancesApi(DicomWebApi):
    @extend_schema(exclude=True)
    def get(self, request: Request, study_uid: str | None = None, series_uid: str | None = None) -> Response:
        """Search for instances, in one study or series, or across the visible studies."""
        return _search(request, "instances", study_uid, series_uid)


# --- WADO-RS --------------------------------------------------------------------------------------------------


def frame_numbers(frames: str) -> list[int]:
    if not re.fullmatch(r"\d+(,\d+)*", frames) or "0" in frames.split(","):
        raise InvalidInput("frame numbers are 1-based integers separated by commas", field="frames")
    return [int(n) for n in frames.split(",")]


class FramesApi(DicomWebApi):
    @extend_schema(exclude=True)
    def get(
        self, request: Request, study_uid: str, series_uid: str, sop_uid: str, frames: str
    ) -> HttpResponseBase:
        """Retrieve frames as multipart/related (``transfer-syntax=*`` gives the stored syntax)."""
        numbers = frame_numbers(frames)
        t = _target(request, study_uid, series_uid, sop_uid)
        accept = request.META.get("HTTP_ACCEPT") or FRAMES_ACCEPT
        served = configured_store().serve_frames(t.study, t.series or "", t.sop or "", numbers, accept)
        if t.uids is None:
            return _send(served)
        # a reader's assignment: no part may name the stored UIDs (or the server behind the proxy)
        return _send(
            Served.whole(served.content_type, without_part_locations(served.read(), served.content_type))
        )


class RenderedApi(DicomWebApi):
    @extend_schema(exclude=True)
    def get(
        self, request: Request, study_uid: str, series_uid: str, sop_uid: str, frames: str | None = None
    ) -> HttpResponseBase:
        """Retrieve an instance (or frame) rendered as PNG (JPEG too when the upstream server offers it)."""
        numbers = frame_numbers(frames) if frames is not None else None
        t = _target(request, study_uid, series_uid, sop_uid)
        accept = request.META.get("HTTP_ACCEPT") or "image/png"
        query = request.META.get("QUERY_STRING") or None
        store = configured_store()
        return _send(store.serve_rendered(t.study, t.series or "", t.sop or "", numbers, accept, query))


class MetadataApi(DicomWebApi):
    @extend_schema(exclude=True)
    def get(
        self, request: Request, study_uid: str, series_uid: str | None = None, sop_uid: str | None = None
    ) -> HttpResponseBase:
        """Retrieve the metadata of a study, series or instance (DICOM JSON, bulk data by URI)."""
        t = _target(request, study_uid, series_uid, sop_uid)
        store = configured_store()
        if t.sop is not None and t.series is not None:
            items = [store.instance_metadata(t.study, t.series, t.sop)]
        elif t.series is not None:
            items = _series_metadata(store, t.study, t.series, t.uids)
        else:
            items = store.study_metadata(t.study)
        return _json(items, request, cache=CACHE_IMMUTABLE, uids=t.uids)


_frame_caches: dict[tuple[str, int, float], FrameCache] = {}


def frame_cache() -> FrameCache | None:
    """This process's frame cache as the settings ``FRAME_CACHE_*`` configure it; None when it is off."""
    size = int(settings.FRAME_CACHE_MB * 1024 * 1024)
    if size <= 0:
        return None
    config = (str(settings.FRAME_CACHE_DIR), size, float(settings.FRAME_CACHE_TTL_S))
    if (cache := _frame_caches.get(config)) is None:
        cache = _frame_caches[config] = FrameCache(config[0], size_limit=size, ttl_s=config[2])
    return cache


def _series_metadata(store: DicomStore, study: str, series: str, uids: UidMap | None) -> list[DicomJson]:
    """The metadata of a stored series; a reader's (``uids``) from the frame cache when it holds it, else from
    the image server, and kept for the series' next reader (the cache is on: the image server is DICOMweb)."""
    if uids is None or not isinstance(store, DicomWebStore) or (cache := frame_cache()) is None:
        return store.series_metadata(study, series)
    key = metadata_key(store.url, study, series, uids.version)
    if (hit := cache.open(key)) is not None:
        handle, _ = hit
        with handle:
            return json.loads(handle.read())  # type: ignore[no-any-return]
    items = store.series_metadata(study, series)
    cache.put(key, json.dumps(items).encode(), DICOM_JSON)
    return items


class RetrieveApi(DicomWebApi):
    @extend_schema(exclude=True)
    def get(
        self, request: Request, study_uid: str, series_uid: str | None = None, sop_uid: str | None = None
    ) -> HttpResponseBase:
        """Retrieve a study, series or instance as multipart/related; type="application/dicom" (Part 10)."""
        t = _target(request, study_uid, series_uid, sop_uid)
        accept = request.META.get("HTTP_ACCEPT") or 'multipart/related; type="application/dicom"'
        if "application/dicom" not in accept and "*/*" not in accept and "multipart/related" not in accept:
            raise DicomOperationUnsupported(
                'instances are available as multipart/related; type="application/dicom"'
            )
        store = configured_store()
        if sees_identity(request_user(request)) and t.uids is None:
            return _send(store.serve_instances(t.study, t.series, t.sop))
        return _send(_reader_instances(store, t.study, t.series, t.sop, t.uids))


def _reader_instances(
    store: DicomStore, study_uid: str, series_uid: str | None, sop_uid: str | None, uids: UidMap | None
) -> Served:
    """Instances as Part 10 holding only what a reader may see (parsed and rewritten, one at a time)."""
    if series_uid is not None and sop_uid is not None:
        targets = [(series_uid, sop_uid)]
    else:
        targets = [
            (str(json_value(i, "SeriesInstanceUID")), str(json_value(i, "SOPInstanceUID")))
            for i in store.search_instances(study_uid, series_uid)
        ]
    if uids is not None:
        targets = [(se, sop) for se, sop in targets if se not in uids.hidden_series]
    if not targets:
        raise NotFound("not found")
    clean = clean_series_descriptions()

    def parts() -> Iterator[bytes]:
        for se, sop in targets:
            buffer = io.BytesIO()
            dataset = reader_dataset(store.instance(study_uid, se, sop), clean)
            (uids.dataset(dataset) if uids else dataset).save_as(buffer, enforce_file_format=True)
            yield buffer.getvalue()

    return multipart_stream(parts(), "application/dicom")
