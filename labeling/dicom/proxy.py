"""The wire side of Concord's DICOMweb endpoint, for any DicomStore. Django-free.

- ``pooled_session``: one HTTP connection pool per process for the DICOMweb server behind the endpoint;
- ``Served``: a response body a store hands to the web layer (media type, chunks, length);
- ``multipart`` and the frame media-type negotiation (PS3.18 8.7.3.3, 8.7.4);
- ``stream_get``: a GET on the DICOMweb server streamed back, its failures raised as DicomStoreError kinds;
- ``search_visible``: QIDO across the studies a caller may see, narrowed by UID lists where the store can.
"""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any
from urllib.parse import quote, urlencode

import requests
from urllib3 import BaseHTTPResponse
from urllib3.connectionpool import ConnectionPool
from urllib3.exceptions import ReadTimeoutError
from urllib3.util.retry import Retry

from labeling.dicom.errors import (
    DicomInvalidRequest,
    DicomNotFound,
    DicomOperationUnsupported,
    DicomStoreError,
    DicomStoreUnavailable,
)
from labeling.dicom.store import DicomJson, DicomStore, SearchFilters, json_value, tag_key

FRAMES_ACCEPT = 'multipart/related; type="application/octet-stream"; transfer-syntax=*'
EXPLICIT_LITTLE = "1.2.840.10008.1.2.1"
#: UIDs per QIDO request when a search is narrowed to the studies a user may see (keeps URLs short).
UID_CHUNK = 100
#: Above this many visible studies, search the store unnarrowed and filter the answer instead.
NARROW_LIMIT = 1000
#: The same for servers without UID-list matching, which need one search per visible study.
PER_UID_LIMIT = 20
_CHUNK_BYTES = 256 * 1024
_STUDY_UID = tag_key("StudyInstanceUID")

#: A requests timeout: seconds for the whole, or (connect, read). A server that is down (connection refused)
#: fails at once; one that accepts and never answers fails after the read timeout, never hangs a request.
Timeout = float | tuple[float, float]
#: Upstream statuses of a server that is overloaded, restarting or behind a failing gateway: worth a retry.
TRANSIENT_HTTP_STATUSES = frozenset({408, 429, 502, 503, 504})

_session: requests.Session | None = None
_session_lock = threading.Lock()


class StaleConnectionRetry(Retry):
    """One more try of a GET (or HEAD) whose connection broke before any answer came, on a new connection.

    A server closes an idle keep-alive connection when it likes (Orthanc after about a second); when that
    close crosses our reuse of the connection, the request dies unanswered ("Remote end closed connection
    without response", a reset) although the server never saw it, and requests' default is not to try again
    (a load run had one series metadata in 10,402 requests answered 502 with nothing in Orthanc's log, which
    fits this race). Nothing else is retried here: a refused connection and a timeout are raised at once (asking a server that does not
    answer again would double the wait), and so is anything but a GET or HEAD.
    """

    def __init__(self, **kwargs: Any) -> None:
        defaults: dict[str, Any] = {"total": 1, "connect": 0, "read": 1, "redirect": 0, "status": 0}
        defaults |= {"other": 0, "allowed_methods": frozenset({"GET", "HEAD"}), "raise_on_status": False}
        super().__init__(**(defaults | kwargs))

    def increment(
        self,
        method: str | None = None,
        url: str | None = None,
        response: BaseHTTPResponse | None = None,
        error: Exception | None = None,
        _pool: ConnectionPool | None = None,
        _stacktrace: TracebackType | None = None,
    ) -> StaleConnectionRetry:
        if isinstance(error, ReadTimeoutError):
            raise error.with_traceback(_stacktrace)
        return super().increment(method, url, response, error, _pool, _stacktrace)  # type: ignore[return-value]


def pooled_session() -> requests.Session:
    """One pooled HTTP session per process for the DICOMweb server (urllib3 pools are thread-safe)."""
    global _session
    with _session_lock:
        if _session is None:
            session = requests.Session()
            # trust_env would re-read proxy variables and ~/.netrc on every request (milliseconds each); the
            # DICOMweb server is reached directly, as configured
            session.trust_env = False
            adapter = requests.adapters.HTTPAdapter(
                pool_connections=4, pool_maxsize=64, max_retries=StaleConnectionRetry()
            )
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            _session = session
        return _session


@dataclass
class Served:
    """A response body: ``chunks`` are sent in order, then ``close`` is called (also when the client leaves)."""

    content_type: str
    chunks: Iterable[bytes]
    length: int | None = None
    close: Callable[[], None] = field(default=lambda: None)

    @classmethod
    def whole(cls, content_type: str, body: bytes) -> Served:
        return cls(content_type, [body], len(body))

    def read(self) -> bytes:
        """The whole body (for tests and small answers)."""
        try:
            return b"".join(self.chunks)
        finally:
            self.close()


def multipart(parts: Iterable[bytes], media_type: str) -> Served:
    """A multipart/related body (PS3.18 8.7.3.3): one part per item, all of ``media_type``."""
    boundary = uuid.uuid4().hex
    chunks: list[bytes] = []
    for part in parts:
        chunks += [f"--{boundary}\r\nContent-Type: {media_type}\r\n\r\n".encode(), part, b"\r\n"]
    chunks.append(f"--{boundary}--\r\n".encode())
    kind = media_type.split(";")[0]
    return Served.whole(f'multipart/related; type="{kind}"; boundary={boundary}', b"".join(chunks))


_BOUNDARY = re.compile(r'boundary="?([^";]+)"?', re.IGNORECASE)


def without_part_locations(body: bytes, content_type: str) -> bytes:
    """A multipart body with no ``Content-Location`` header in its parts, everything else as it was.

    A DICOMweb server may name each frame part by its own URL (Orthanc does), that is, by the stored UIDs and
    the server's address: nothing for a reader, who knows the study under the assignment's pseudonymous UIDs.
    The header is optional in a frames response (PS3.18 8.7.3.3). The boundary never occurs in a part's data
    (the encoder's guarantee), so splitting on it leaves the pixel data untouched.
    """
    found = _BOUNDARY.search(content_type)
    if found is None:
        return body
    delimiter = b"--" + found.group(1).encode()
    pieces = body.split(delimiter)
    for i, piece in enumerate(pieces[1:], start=1):
        head, blank, data = piece.partition(b"\r\n\r\n")
        if blank:
            lines = [
                line for line in head.split(b"\r\n") if not line.lower().startswith(b"content-location:")
            ]
            pieces[i] = b"\r\n".join(lines) + blank + data
    return delimiter.join(pieces)


def multipart_stream(parts: Iterable[bytes], media_type: str) -> Served:
    """Like ``multipart`` but produced lazily, one part in memory at a time (whole instances)."""
    boundary = uuid.uuid4().hex

    def body() -> Iterator[bytes]:
        for part in parts:
            yield f"--{boundary}\r\nContent-Type: {media_type}\r\n\r\n".encode()
            yield part
            yield b"\r\n"
        yield f"--{boundary}--\r\n".encode()

    return Served(f'multipart/related; type="{media_type}"; boundary={boundary}', body())


def _offers(accept: str) -> list[str]:
    return [offer.strip() for offer in accept.split(",") if offer.strip()]


def _part_type(offer: str) -> str | None:
    kind = re.search(r'type="?([^";]+)"?', offer)
    return kind.group(1) if kind else None


def frames_accept(accept: str) -> str:
    """The Accept to send upstream: a wildcard part type (dicomweb-client's default) becomes octet-stream.

    ``multipart/related; type="*/*"`` and ``*/*`` are valid requests that some servers (Orthanc) refuse; the
    stored transfer syntax as octet-stream is what they mean.
    """
    offers = _offers(accept)

    def wildcard(offer: str) -> bool:
        return offer.startswith("*/*") or (
            offer.startswith("multipart/related") and _part_type(offer) in (None, "*/*")
        )

    if not offers or any(wildcard(offer) for offer in offers):
        return FRAMES_ACCEPT
    return accept


def frames_media_type(accept: str, stored_syntax: str | None) -> str:
    """The part media type for frames stored in ``stored_syntax``, or DicomOperationUnsupported (406)."""
    stored = stored_syntax or EXPLICIT_LITTLE
    for offer in _offers(accept) or [FRAMES_ACCEPT]:
        if offer.startswith("*/*"):
            return f"application/octet-stream; transfer-syntax={stored}"
        if not offer.startswith("multipart/related"):
            continue
        if _part_type(offer) not in (None, "application/octet-stream", "*/*"):
            continue
        wanted = re.search(r'transfer-syntax="?([^";]+)"?', offer)
        if wanted is None or wanted.group(1) in ("*", stored):
            return f"application/octet-stream; transfer-syntax={stored}"
    raise DicomOperationUnsupported(
        f'frames are available as multipart/related; type="application/octet-stream" in transfer syntax '
        f"{stored} (or transfer-syntax=*)"
    )


def replacing(chunks: Iterable[bytes], old: bytes, new: bytes) -> Iterator[bytes]:
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


def qido_query(params: Mapping[str, str | int | Sequence[str]]) -> str:
    """A QIDO-RS query string (no ``?``) that keeps the matching wildcards ``*`` and ``?`` as they are.

    ``urlencode`` (and dicomweb-client) send them as ``%2A``/``%3F``; Orthanc then matches the literal text
    and a ``PatientID=PHANTOM-*`` search finds nothing (PS3.18 8.3.4.1: ``*`` and ``?`` are wildcards
    in any matching value, so leaving them unencoded never changes what is asked).
    """
    return urlencode(
        {key: value if isinstance(value, str | int) else list(value) for key, value in params.items()},
        doseq=True,
        quote_via=quote,
        safe="*?",
    )


def dicomweb_raw_get(
    base_url: str,
    path: str,
    *,
    query: str | Mapping[str, str | Sequence[str]] | None = None,
    accept: str | None = None,
    session: requests.Session | None = None,
    timeout_s: Timeout = 30.0,
) -> requests.Response:
    """GET ``base_url/path`` with ``stream=True`` and return the open response, whatever its status.

    The building block of the authorised DICOM proxy: it forwards only ``Accept``, never the caller's
    cookies or credentials. ``path`` is relative to the DICOMweb root (``studies/1.2/series/3.4/metadata``)
    and may not climb out of it. The caller must close the response (``with`` or ``.close()``).
    Raises DicomStoreUnavailable when the server cannot be reached, ValueError for an unsafe path.
    """
    relative = path.lstrip("/")
    segments = relative.split("/")
    if "://" in relative or "\\" in relative or any(seg in {"..", "."} for seg in segments):
        raise ValueError(f"unsafe DICOMweb path {path!r}")
    url = f"{base_url.rstrip('/')}/{relative}"
    if query:
        url += "?" + (query.lstrip("?") if isinstance(query, str) else qido_query(query))
    headers = {"Accept": accept} if accept else {}
    http = session or requests.Session()
    try:
        return http.get(url, headers=headers, stream=True, timeout=timeout_s)
    except (requests.ConnectionError, requests.Timeout) as exc:
        raise DicomStoreUnavailable(f"GET {url}: DICOM server unreachable: {exc}") from exc


def stream_get(
    session: requests.Session,
    base_url: str,
    path: str,
    *,
    accept: str,
    query: str | None = None,
    timeout_s: Timeout = 30.0,
) -> Served:
    """GET ``base_url/path`` and hand the body back as it arrives (known length kept when not encoded).

    A 404 raises DicomNotFound, 400 DicomInvalidRequest, 406 DicomOperationUnsupported, a transient status
    (``TRANSIENT_HTTP_STATUSES``) and an unreachable server DicomStoreUnavailable, anything else but 200
    DicomStoreError.
    """
    upstream = dicomweb_raw_get(
        base_url, path, query=query, accept=accept, session=session, timeout_s=timeout_s
    )
    if upstream.status_code != 200:
        status, detail = upstream.status_code, upstream.text[:300]
        upstream.close()
        what = f"GET {path}: HTTP {status}: {detail!r}"
        if status == 404:
            raise DicomNotFound(what)
        if status == 400:
            raise DicomInvalidRequest(what)
        if status == 406:
            raise DicomOperationUnsupported(what)
        if status in TRANSIENT_HTTP_STATUSES:
            raise DicomStoreUnavailable(what)
        raise DicomStoreError(what)
    length = upstream.headers.get("Content-Length")
    encoded = "Content-Encoding" in upstream.headers
    return Served(
        content_type=upstream.headers.get("Content-Type", "application/octet-stream"),
        chunks=upstream.iter_content(_CHUNK_BYTES),
        # a known length spares chunked encoding: fewer, larger writes (no Nagle/delayed-ACK stalls)
        length=int(length) if length and length.isdigit() and not encoded else None,
        close=upstream.close,
    )


def rebase_links(items: list[DicomJson], old_root: str | None, new_root: str) -> list[DicomJson]:
    """Point BulkDataURI and RetrieveURL values that name ``old_root`` (the store's URL) at ``new_root``."""
    if not old_root:
        return items
    old = old_root.rstrip("/")

    def rebase(entry: dict[str, object]) -> None:
        uri = entry.get("BulkDataURI")
        if isinstance(uri, str):
            entry["BulkDataURI"] = uri.replace(old, new_root)
        values = entry.get("Value")
        if entry.get("vr") == "UR" and isinstance(values, list):
            entry["Value"] = [v.replace(old, new_root) if isinstance(v, str) else v for v in values]
        elif entry.get("vr") == "SQ" and isinstance(values, list):
            for item in values:
                for child in item.values():
                    rebase(child)

    for item in items:
        for entry in item.values():
            rebase(entry)
    return items


def search_visible(
    store: DicomStore,
    level: str,
    filters: SearchFilters,
    visible: set[str],
    *,
    uid_lists: bool,
) -> list[DicomJson]:
    """A study/series/instance search across the ``visible`` studies, narrowed to and filtered by them.

    ``uid_lists``: whether the store matches UID lists (PS3.18 8.3.4.1, optional; Orthanc lacks it): without
    it each visible study is searched on its own, or (above PER_UID_LIMIT) everything once and filtered.
    """
    asked = filters.get("StudyInstanceUID") or filters.get(_STUDY_UID)
    if asked:
        visible = visible & set(asked.split("\\"))
    if not visible:
        return []
    search: Callable[[SearchFilters], list[DicomJson]] = {
        "studies": lambda f: store.search_studies(f),
        "series": lambda f: store.search_series(None, f),
        "instances": lambda f: store.search_instances(None, None, f),
    }[level]
    others = {k: v for k, v in filters.items() if k not in ("StudyInstanceUID", _STUDY_UID)}
    per_request = UID_CHUNK if uid_lists else 1
    if len(visible) > NARROW_LIMIT or (per_request == 1 and len(visible) > PER_UID_LIMIT):
        return [item for item in search(others) if json_value(item, "StudyInstanceUID") in visible]
    uids = sorted(visible)
    found: list[DicomJson] = []
    for start in range(0, len(uids), per_request):
        found += search({**others, "StudyInstanceUID": "\\".join(uids[start : start + per_request])})
    return [item for item in found if json_value(item, "StudyInstanceUID") in visible]
