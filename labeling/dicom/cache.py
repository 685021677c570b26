"""A small per-process cache of recent decisions with a time to live (the DICOMweb proxy's auth cache)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Any


class DecisionCache:
    """Entries live ``ttl_s()`` seconds (read at each ``put``, so a changed setting applies at once; 0: off).

    A viewer fetches hundreds of frames of one study in a burst: remembering "this user may see this study"
    (and "this token is this user") for a few seconds spares the database on every frame. Thread-safe; when
    full it starts over rather than grow.
    """

    def __init__(self, ttl_s: Callable[[], float], max_entries: int = 20_000) -> None:
        self._ttl_s = ttl_s
        self._entries: dict[Hashable, tuple[float, Any]] = {}
        self._max_entries = max_entries
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Any:
        found = self._entries.get(key)
        if found is None or found[0] < time.monotonic():
            return None
        return found[1]

    def put(self, key: Hashable, value: Any) -> None:
        ttl_s = float(self._ttl_s())
        if ttl_s <= 0:
            return
        with self._lock:
            if len(self._entries) >= self._max_entries:
                self._entries.clear()
            self._entries[key] = (time.monotonic() + ttl_s, value)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
