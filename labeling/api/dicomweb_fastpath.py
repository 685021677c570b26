"""The hot path of the DICOMweb proxy: frame requests already authorised, streamed past the Django stack.

A viewer opening a case fetches every frame of its series in a burst. The first request of a burst goes
through Django as any other (``FramesApi``: authentication, the study check, errors); it leaves two brief
decisions in the per-process cache of ``dicomweb_auth`` — "this token or session is this user" and "this
user may see this series" (or, for a reader's assignment served under its pseudonymous UIDs, "these
pseudonyms are this stored series, with this map", so the reader's frames take this path as well). While
they last, this WSGI middleware answers the following frame requests itself: it matches the path, finds both
decisions, and answers with the frames kept in the frame cache (``labeling.dicom.frame_cache``: what this
path fetched before, for any caller, sent with ``sendfile``) or else streams them from the DICOMweb server
through the proxy's connection pool, keeping them for the next request. Everything else — a first request, a
decision not (or no longer) cached, an upstream error answer, the local folder store, any other resource —
falls through to Django unchanged, so every rule stays in one place; only an image server that cannot be
reached (or does not answer in time) is answered here, with the full path's own 502 body, so that the wait is
not doubled. It adds no decision of its own: it only reuses what the full path has decided.

Why: the Django request cycle (middleware, DRF, ``requests``) costs several times what streaming a frame does,
and it ran on every frame; see tests/bench/bench_proxy.py for the figures.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable, Iterable, Iterator
from http.cookies import CookieError, SimpleCookie
from typing import Any, BinaryIO, cast

import urllib3
from django.conf import settings
from requests.adapters import HTTPAdapter

from labeling.api.dicomweb_auth import decisions
from labeling.api.dicomweb_urls import FRAMES_PATH
from labeling.api.dicomweb_views import CACHE_IMMUTABLE, frame_cache, frame_numbers, pseudonymous_series
from labeling.api.errors import IMAGE_SERVER_DOWN_BODY, IMAGE_SERVER_RETRY_AFTER_S
from labeling.dicom.frame_cache import FrameCache, frame_key
from labeling.dicom.proxy import (
    StaleConnectionRetry,
    frames_accept,
    pooled_session,
    without_part_locations,
)
from labeling.exceptions import InvalidInput

#: Exactly the Django route's path (same UID and frame-list patterns, so no ``.``/``..`` segments).
_FRAMES_PATH = re.compile(FRAMES_PATH)
_READ_BYTES = 1024 * 1024

logger = logging.getLogger(__name__)

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def cached_user_pk(environ: dict[str, Any]) -> int | None:
    """The user the full path authenticated for these credentials within the cache lifetime, if any."""
    authorization = environ.get("HTTP_AUTHORIZATION", "")
    if authorization:
        scheme, _, key = authorization.partition(" ")
        if scheme.lower() != "token" or not key:
            return None
        found = decisions.get(("token", key.strip()))
        return found[0].pk if found else None
    cookies = environ.get("HTTP_COOKIE")
    if not cookies:
        return None
    try:
        morsel = SimpleCookie(cookies).get(settings.SESSION_COOKIE_NAME)
    except CookieError:
        return None
    return decisions.get(("session", morsel.value)) if morsel else None


class FramesFastPath:
    """WSGI middleware: serve frame requests whose caller and study are already authorised (see module)."""

    def __init__(self, app: WsgiApp) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        served = self._serve(environ, start_response) if environ.get("REQUEST_METHOD") == "GET" else None
        return self.app(environ, start_response) if served is None else served

    def _serve(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes] | None:
        base = settings.DICOMWEB_URL
        match = _FRAMES_PATH.fullmatch(environ.get("PATH_INFO", ""))
        if not base or match is None or environ.get("QUERY_STRING"):
            return None
        study, series, instance, frames = match.groups()
        try:
            frames = ",".join(str(n) for n in frame_numbers(frames))
        except InvalidInput:
            return None  # frame 0: the full path words the 400
        user_pk = cached_user_pk(environ)
        if user_pk is None:
            return None
        pseudonymous = None
        if not decisions.get(("study", user_pk, study, series)):
            # a reader's assignment, under its pseudonymous UIDs: the stored ones behind them, as decided
            pseudonymous = pseudonymous_series(user_pk, study, series)
            if pseudonymous is None:
                return None
            study, series, uids = pseudonymous
            instance = uids.real(instance)  # type: ignore[assignment]
            if instance is None:
                return None  # names nothing of this series: the full path words the 404
        accept = frames_accept(environ.get("HTTP_ACCEPT") or "")
        # a reader's assignment: no part may name the stored UIDs (as the full path does)
        located = pseudonymous is None
        cache = frame_cache()
        key = frame_key(base, study, series, instance, frames, accept, located=located)
        if cache is not None and (hit := cache.open(key)) is not None:
            return _send_file(environ, start_response, *hit)
        url = f"{base.rstrip('/')}/studies/{study}/series/{series}/instances/{instance}/frames/{frames}"
        pool = cast(HTTPAdapter, pooled_session().get_adapter(url)).poolmanager  # shares its connections
        try:
            upstream = pool.urlopen(
                "GET",
                url,
                headers={"Accept": accept},
                preload_content=False,
                redirect=False,
                retries=StaleConnectionRetry(),
                timeout=urllib3.Timeout(
                    connect=settings.DICOMWEB_CONNECT_TIMEOUT_S, read=settings.DICOMWEB_READ_TIMEOUT_S
                ),
            )
        except urllib3.exceptions.HTTPError as exc:
            # down, or no answer in time: the full path's 502 (asking again there would double the wait)
            logger.warning("GET %s: image server unavailable: %s", url, exc)
            return _image_server_down(start_response)
        if upstream.status != 200:
            upstream.drain_conn()
            upstream.release_conn()
            return None
        content_type = upstream.headers.get("Content-Type", "application/octet-stream")
        if not located or (cache is not None and _fits(upstream, cache)):
            # read whole: to take the parts' locations out, or to keep the frames for the next request
            try:
                body = upstream.read(decode_content=True)
            except urllib3.exceptions.HTTPError:
                upstream.close()
                return None
            upstream.release_conn()
            if not located:
                body = without_part_locations(body, content_type)
            if cache is not None:
                cache.put(key, body, content_type)
            start_response("200 OK", [*_headers(content_type), ("Content-Length", str(len(body)))])
            return [body]
        headers = _headers(content_type)
        # passed through as they come: the body is relayed undecoded, so its length and encoding still hold
        headers += [
            (name, upstream.headers[name])
            for name in ("Content-Length", "Content-Encoding")
            if name in upstream.headers
        ]
        start_response("200 OK", headers)
        return _body(upstream)


def _fits(upstream: urllib3.BaseHTTPResponse, cache: FrameCache) -> bool:
    """Whether the answer is small enough to read whole and keep (frames of one image are; a long list may not)."""
    length = upstream.headers.get("Content-Length", "")
    return length.isdigit() and int(length) <= cache.max_entry_bytes


def _send_file(
    environ: dict[str, Any], start_response: StartResponse, handle: BinaryIO, content_type: str
) -> Iterable[bytes]:
    """A kept answer, by ``sendfile`` where the server offers it (gunicorn does): the pixels stay in the kernel."""
    size = os.fstat(handle.fileno()).st_size
    start_response("200 OK", [*_headers(content_type), ("Content-Length", str(size))])
    wrapper = environ.get("wsgi.file_wrapper")
    if wrapper is not None:
        return cast(Iterable[bytes], wrapper(handle, _READ_BYTES))
    return _file_chunks(handle)


def _file_chunks(handle: BinaryIO) -> Iterator[bytes]:
    with handle:
        while chunk := handle.read(_READ_BYTES):
            yield chunk


def _image_server_down(start_response: StartResponse) -> list[bytes]:
    """The answer of ``errors.image_server_down_response``, for a caller this path already served."""
    body = json.dumps(IMAGE_SERVER_DOWN_BODY).encode()
    start_response(
        "502 Bad Gateway",
        [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
            ("Retry-After", str(IMAGE_SERVER_RETRY_AFTER_S)),
            ("Cache-Control", "no-store"),
            ("X-Content-Type-Options", "nosniff"),
        ],
    )
    return [body]


def _headers(content_type: str) -> list[tuple[str, str]]:
    return [
        ("Content-Type", content_type),
        ("Cache-Control", CACHE_IMMUTABLE),
        ("Vary", "Authorization, Cookie, Accept"),
        ("X-Content-Type-Options", "nosniff"),
    ]


def _body(upstream: urllib3.BaseHTTPResponse) -> Iterator[bytes]:
    complete = False
    try:
        while chunk := upstream.read(_READ_BYTES, decode_content=False):
            yield chunk
        complete = True
    finally:
        if complete:
            upstream.release_conn()  # back to the pool for the next frame
        else:
            upstream.close()  # the client left mid-body: the connection still holds unread bytes
