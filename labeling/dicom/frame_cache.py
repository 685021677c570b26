"""Frames already fetched from the image server, kept on local disk for the next request of the same frame;
and the series metadata readers asked for.

A reader study reads every case several times: by each of its readers, by a reader again on a repeat, by an
adjudicator. Pixels never change once stored (an import that would replace them is refused), so the frames
the DICOMweb proxy fetched once can answer the next request without the image server, which would otherwise
parse the DICOM file again for every frame. The hit is sent with ``sendfile`` from the page cache: no Python
touches the pixels. A series' metadata costs the image server a read of every file of the series; it is kept
under the study's objects as Concord knows them (``metadata_key``), so the series' next reader is answered
without it, and an import into the study is not hidden by an old entry.

Bounded in size (least recently stored first out) and in age (``ttl_s``: an entry is never served after it,
so frames of a study removed from the project are gone from the cache within it as well). Built on
``diskcache`` (SQLite index + one file per entry; safe across processes and threads, atomic writes, culling
built in). A cache that cannot be written (disk full, a read-only folder) only logs, once, and is left alone for
``retry_after_s``: the frame is still served, and a misconfigured folder costs neither a failed attempt nor a
log line per frame. The folder is this user's alone (mode 700; a folder another user owns is refused).

Django-free: ``labeling.api.dicomweb_fastpath`` opens it with the settings ``FRAME_CACHE_*``.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import BinaryIO

import diskcache

logger = logging.getLogger(__name__)

#: Answers above this size (a long frame list) are streamed, not kept.
MAX_ENTRY_BYTES = 16 * 1024 * 1024
#: The index's SQLite waits at most this long for another writer before the entry is skipped, not the frame.
_LOCK_WAIT_S = 0.5
#: After a failure to open, read or write the folder, the cache is not tried again for this long.
RETRY_AFTER_S = 60.0


def frame_key(
    server: str, study: str, series: str, instance: str, frames: str, accept: str, *, located: bool
) -> str:
    """The entry of these stored UIDs' frames as fetched from ``server`` with ``accept``.

    ``located``: the body as the image server sent it, parts named by their URLs (``Content-Location``), or
    (False) without them, as a reader's assignment is served.
    """
    raw = "\0".join((server, study, series, instance, frames, accept, "located" if located else "bare"))
    return hashlib.sha256(raw.encode()).hexdigest()


def metadata_key(server: str, study: str, series: str, version: str) -> str:
    """The entry of a series' metadata as ``server`` answered it, while the study's objects are ``version``
    (``UidMap.version``: an import into the study makes a new entry, not a stale hit)."""
    raw = "\0".join((server, study, series, version, "metadata"))
    return hashlib.sha256(raw.encode()).hexdigest()


class FrameCache:
    """Frame bodies and their media types by ``frame_key``; one instance per process (opened lazily)."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        size_limit: int,
        ttl_s: float,
        retry_after_s: float = RETRY_AFTER_S,
    ) -> None:
        self.directory = Path(directory)
        self.size_limit = size_limit
        self.ttl_s = ttl_s
        self.retry_after_s = retry_after_s
        self.max_entry_bytes = min(MAX_ENTRY_BYTES, size_limit // 16)
        self._cache: diskcache.Cache | None = None
        self._pid = 0
        self._lock = threading.Lock()
        self._off_until = 0.0  # time.monotonic() before which the folder is not tried (after a failure)

    def _open(self) -> diskcache.Cache:
        # SQLite connections must not cross a fork: gunicorn may import this before it forks its workers
        if self._cache is None or self._pid != os.getpid():
            with self._lock:
                if self._cache is None or self._pid != os.getpid():
                    self._make_private()
                    self._cache = diskcache.Cache(
                        str(self.directory),
                        size_limit=self.size_limit,
                        eviction_policy="least-recently-stored",
                        timeout=_LOCK_WAIT_S,
                    )
                    self._pid = os.getpid()
        return self._cache

    def _make_private(self) -> None:
        """Create the folder for this user alone, or make it so; refuse one that another user owns.

        What is kept here is served to readers as the image server's answer, and a series' metadata holds
        the patient's identity: a folder other users could write would let them change the images a reader
        grades, and one they could read would show them who the patients are.
        """
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        found = self.directory.stat()
        if found.st_uid != os.geteuid():
            raise PermissionError(
                f"the folder belongs to user {found.st_uid}, not to this process's user {os.geteuid()}: "
                "another user could change the frames readers are served"
            )
        if found.st_mode & 0o077:
            self.directory.chmod(0o700)
            logger.warning(
                "frame cache %s was open to other users (mode %o); now %o",
                self.directory,
                found.st_mode & 0o777,
                0o700,
            )

    def _failed(self, what: str, exc: Exception) -> None:
        """Log a failure of the folder and leave it alone for ``retry_after_s`` (a busy index only logs)."""
        if isinstance(exc, diskcache.Timeout):
            logger.warning("frame cache %s %s: %s", self.directory, what, exc)
            return
        self._off_until = time.monotonic() + self.retry_after_s
        logger.warning(
            "frame cache %s %s: %s (not tried again for %g s)", self.directory, what, exc, self.retry_after_s
        )

    def open(self, key: str) -> tuple[BinaryIO, str] | None:
        """The stored body, open for reading, and its media type; None when absent, expired or unreadable."""
        if time.monotonic() < self._off_until:
            return None
        try:
            handle, content_type = self._open().get(key, read=True, tag=True)
        except (OSError, sqlite3.Error, diskcache.Timeout) as exc:
            self._failed("unreadable", exc)
            return None
        if handle is None:
            return None
        return handle, content_type

    def put(self, key: str, body: bytes, content_type: str) -> bool:
        """Keep ``body``; False when it cannot be written (logged): the caller serves it all the same."""
        if time.monotonic() < self._off_until:
            return False
        try:
            self._open().set(key, io.BytesIO(body), expire=self.ttl_s, read=True, tag=content_type)
        except (OSError, sqlite3.Error, diskcache.Timeout) as exc:
            self._failed("not written", exc)
            return False
        return True
