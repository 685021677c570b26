"""A small per-process cache of recent decisions with a time to live (the DICOMweb proxy's auth cache)."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


class DecisionCache:
    """Entries live ``ttl_s()`` seconds (read at each ``put``, so a changed setting applies at once; 0: off).

    A viewer fetches hundreds of frames of one study in a burst: remembering "this user may see this study"
    (and "this token is this user") for a few seconds spares the database on every frame. Thread-safe; when
    full it starts over rather than grow.

    ``revoke()`` forgets every decision, in this process and in every other process whose cache shares the
    ``epoch()`` file: it appends a byte to that file, and each cache compares the file's size before every
    lookup (one ``stat``), starting over when it changed. A revocation (logout, a deleted token, a changed
    membership) therefore takes effect on the next request in every web worker, not after the TTL.
    """

    def __init__(
        self,
        ttl_s: Callable[[], float],
        epoch: Callable[[], Path | None] = lambda: None,
        max_entries: int = 20_000,
    ) -> None:
        self._ttl_s = ttl_s
        self._epoch = epoch
        self._entries: dict[Hashable, tuple[float, Any]] = {}
        self._max_entries = max_entries
        self._lock = threading.Lock()
        self._seen: tuple[str, int, int] | None = self._stamp()

    def _stamp(self) -> tuple[str, int, int] | None:
        path = self._epoch()
        if path is None:
            return None
        try:
            stat = path.stat()
        except FileNotFoundError:
            return (str(path), 0, 0)
        return (str(path), stat.st_ino, stat.st_size)

    def _sync(self) -> None:
        stamp = self._stamp()
        if stamp != self._seen:
            with self._lock:
                self._entries.clear()
                self._seen = stamp

    def get(self, key: Hashable) -> Any:
        self._sync()
        found = self._entries.get(key)
        if found is None or found[0] < time.monotonic():
            return None
        return found[1]

    def begin(self) -> object:
        """A mark to pass to ``put`` as ``since``: taken before a decision is made from the database."""
        return self._stamp()

    def put(self, key: Hashable, value: Any, *, since: object = None) -> None:
        """Remember ``value``; with ``since`` (from ``begin``) only if nothing was revoked meanwhile."""
        ttl_s = float(self._ttl_s())
        if ttl_s <= 0:
            return
        self._sync()
        if since is not None and since != self._seen:
            return  # revoked while the decision was being made: it may already be stale
        with self._lock:
            if len(self._entries) >= self._max_entries:
                self._entries.clear()
            self._entries[key] = (time.monotonic() + ttl_s, value)

    def revoke(self) -> None:
        """Forget every decision here and (through the epoch file) in every process sharing it."""
        path = self._epoch()
        self.clear()
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            handle = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(handle, b".")
            finally:
                os.close(handle)
        except OSError:
            # the change that asked for this (a logout, a removed role) must still happen; other processes
            # then forget within the TTL, as before this file existed
            logger.exception("cannot mark DICOMweb decisions revoked in %s", path)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
