"""Resource curve of a long load run (issue 16, "a 30-minute soak"): memory of web, worker, database and Redis,
and the open connections, sampled in the background while locust runs; then a table and a flatness verdict.

Memory is USS, the memory a process alone holds (psutil's ``memory_full_info``): RSS would count shared
libraries and, for a PostgreSQL backend, every shared buffer it has touched, which grows with the data read and
is not a leak. A component is the process group this bench started (gunicorn master + workers, Celery worker +
pool, Redis) or, for the database, the backends connected to the run's own database.

Flat: the median of the last third of the samples is within ``FLAT_PCT`` (or ``FLAT_MIB``, for small numbers)
of the median of the second third. The first third is warm-up (imports, caches, pools filling) and is shown,
not judged. Connections: the same comparison, and the most seen.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import psutil

MIB = 1024 * 1024
FLAT_PCT = 5.0  # 10 % passed the web curve of session 11's soak, which climbed 604 -> 860 MiB in 30 min
FLAT_MIB = 8.0
COLUMNS = ("web MiB", "worker MiB", "database MiB", "redis MiB", "db connections", "web connections")


def tree(pid: int) -> list[psutil.Process]:
    """The process and its descendants; empty when it is gone."""
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def uss_mib(procs: Sequence[psutil.Process]) -> float:
    total = 0
    for proc in procs:
        try:
            total += proc.memory_full_info().uss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return total / MIB


def established(procs: Sequence[psutil.Process], port: int) -> int:
    """TCP connections in ESTABLISHED state on ``port`` held by ``procs`` (the web server's clients)."""
    count = 0
    for proc in procs:
        try:
            conns = proc.net_connections(kind="tcp")
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        count += sum(
            1 for c in conns if c.status == psutil.CONN_ESTABLISHED and c.laddr and c.laddr.port == port
        )
    return count


@dataclass
class Sampler:
    """Samples every ``every_s`` in a daemon thread between :meth:`start` and :meth:`stop`.

    ``pids`` maps a component to the pid of its process group leader (looked up at each sample, so a restart is
    followed); ``db_backends`` returns the pids and the count of the database's connections."""

    pids: Callable[[], dict[str, int]]
    db_backends: Callable[[], list[int]]
    web_port: int
    every_s: float = 30.0
    rows: list[tuple[float, ...]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _began: float = 0.0

    def sample(self) -> tuple[float, ...]:
        pids = self.pids()
        web = tree(pids["web"]) if "web" in pids else []
        backends = self.db_backends()
        db_procs = []
        for pid in backends:
            try:
                db_procs.append(psutil.Process(pid))
            except psutil.NoSuchProcess:
                continue
        return (
            round((time.monotonic() - self._began) / 60, 2),
            uss_mib(web),
            uss_mib(tree(pids["worker"]) if "worker" in pids else []),
            uss_mib(db_procs),
            uss_mib(tree(pids["redis"]) if "redis" in pids else []),
            float(len(backends)),
            float(established(web, self.web_port)),
        )

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.rows.append(self.sample())
            except Exception as exc:  # a sample lost is reported, not fatal to the run
                print(f"soak: sample failed: {exc!r}", flush=True)
            self._stop.wait(self.every_s)

    def start(self) -> None:
        self._began = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="soak-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.every_s + 30)


def flatness(
    values: Sequence[float], *, pct: float = FLAT_PCT, floor: float = FLAT_MIB
) -> tuple[float, bool]:
    """(growth from the second third's median to the last third's, flat?)."""
    third = len(values) // 3
    if third < 1:
        return float("nan"), False
    middle = statistics.median(values[third : 2 * third])
    last = statistics.median(values[2 * third :])
    growth = last - middle
    return growth, growth <= max(floor, abs(middle) * pct / 100)


def report(rows: Sequence[tuple[float, ...]], *, every_n: int = 1) -> bool:
    """Print the curve (every ``every_n``-th sample and the last) and the verdict; True when all is flat."""
    print("\n### Soak: resources over time (USS, MiB; open connections)\n")
    print("| minute | " + " | ".join(COLUMNS) + " |")
    print("|" + "---|" * (len(COLUMNS) + 1))
    shown = [r for i, r in enumerate(rows) if i % every_n == 0 or i == len(rows) - 1]
    for row in shown:
        print(
            f"| {row[0]:.1f} | "
            + " | ".join(f"{v:.0f}" if i >= 4 else f"{v:.1f}" for i, v in enumerate(row[1:]))
            + " |"
        )
    ok = True
    print("\n| component | first | second-third median | last-third median | growth | max | flat |")
    print("|---|---|---|---|---|---|---|")
    for i, name in enumerate(COLUMNS, start=1):
        values = [r[i] for r in rows]
        if not values:
            continue
        is_conn = "connections" in name
        growth, flat = flatness(values, floor=2.0 if is_conn else FLAT_MIB)
        third = len(values) // 3
        mid = statistics.median(values[third : 2 * third]) if third else float("nan")
        last = statistics.median(values[2 * third :]) if third else float("nan")
        ok &= flat
        print(
            f"| {name} | {values[0]:.1f} | {mid:.1f} | {last:.1f} | {growth:+.1f} | {max(values):.1f} |"
            f" {'yes' if flat else 'NO'} |"
        )
    return ok
