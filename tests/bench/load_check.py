"""Plain-Python helpers of the load bench (tests/bench/bench_load.py): the post-run consistency check and the
figures of the table, computed from the raw samples the locust users record (no Django, no locust)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass
class Consistency:
    """How the readings the API acknowledged (201) compare with the readings stored in the database."""

    acknowledged: int
    stored: int
    missing: list[str] = field(default_factory=list)  # acknowledged, not in the database
    duplicated: list[str] = field(default_factory=list)  # acknowledged, stored more than once
    acknowledged_twice: list[str] = field(default_factory=list)  # the API said 201 twice for one assignment
    unacknowledged: list[str] = field(default_factory=list)  # stored, never acknowledged (a lost 201)

    @property
    def ok(self) -> bool:
        """Every acknowledged reading stored exactly once (a stored reading whose 201 the client never saw,
        e.g. a timed-out request, is reported but is not a loss)."""
        return not (self.missing or self.duplicated or self.acknowledged_twice)


def readings_consistency(acknowledged: Iterable[str], stored: Iterable[str]) -> Consistency:
    """Compare the assignment keys of the acknowledged submits with those of the stored first readings
    (one key per stored row, so a key stored twice appears twice)."""
    acks = Counter(acknowledged)
    rows = Counter(stored)
    return Consistency(
        acknowledged=sum(acks.values()),
        stored=sum(rows.values()),
        missing=sorted(k for k in acks if rows[k] == 0),
        duplicated=sorted(k for k in acks if rows[k] > 1),
        acknowledged_twice=sorted(k for k, n in acks.items() if n > 1),
        unacknowledged=sorted(k for k in rows if k not in acks),
    )


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank percentile (``q`` in 0..1) of ``values``; NaN for none."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


@dataclass
class Window:
    start_s: float
    users: int
    requests: int
    errors: int
    rps: float
    p95_ms: float


def windows(
    samples: list[tuple[float, str, float, bool, int]], names: set[str], width_s: float
) -> list[Window]:
    """Cut samples ``(t_s, name, ms, failed, users)`` into windows of ``width_s``: requests/s of every request,
    p95 of the requests named in ``names``, errors of every request, the most users seen in the window."""
    if not samples:
        return []
    t0 = min(s[0] for s in samples)
    buckets: dict[int, list[tuple[float, str, float, bool, int]]] = {}
    for s in samples:
        buckets.setdefault(int((s[0] - t0) // width_s), []).append(s)
    out = []
    for index in sorted(buckets):
        rows = buckets[index]
        out.append(
            Window(
                start_s=index * width_s,
                users=max(r[4] for r in rows),
                requests=len(rows),
                errors=sum(1 for r in rows if r[3]),
                rps=len(rows) / width_s,
                p95_ms=percentile([r[2] for r in rows if r[1] in names], 0.95),
            )
        )
    return out


def saturation(rows: list[Window], p95_limit_ms: float) -> tuple[float, Window | None]:
    """The highest requests/s among the windows before the first one whose p95 passes ``p95_limit_ms`` or that
    has errors, and that first window (None when none did). The last window (cut short by the end) is left
    out."""
    full = rows[:-1] if len(rows) > 1 else rows
    best = 0.0
    for w in full:
        if w.errors or w.p95_ms > p95_limit_ms:
            return best, w
        best = max(best, w.rps)
    return best, None
