"""``make demo-stop`` returns once the demo's processes have exited, so that ``make demo`` (which stops the
previous demo first) never starts gunicorn while the old one still holds the port, or a second worker and beat
beside the old ones. It returned as soon as it had sent SIGTERM."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

#: A process that takes ``delay`` seconds to exit after SIGTERM (gunicorn finishing its requests, a worker its
#: task), or ignores SIGTERM when ``delay`` is negative.
_STOPS_SLOWLY = """
import signal, sys, time
delay = float(sys.argv[1])
if delay < 0:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
else:
    signal.signal(signal.SIGTERM, lambda *_: (time.sleep(delay), sys.exit(0)))
print("ready", flush=True)
while True:
    time.sleep(0.05)
"""


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen[str]]]:
    """The stand-ins a test started; killed at its end whatever happened (one may ignore SIGTERM)."""
    processes: list[subprocess.Popen[str]] = []
    yield processes
    for process in processes:
        process.kill()


def _demo(
    tmp_path: Path, delay_s: float, started: list[subprocess.Popen[str]]
) -> dict[str, subprocess.Popen[str]]:
    """Stand-ins for web, worker and beat, with their pid files where ``make demo`` writes them."""
    run = tmp_path / "run"
    run.mkdir()
    processes = {}
    for name in ("web", "worker", "beat"):
        process = subprocess.Popen(
            [sys.executable, "-c", _STOPS_SLOWLY, str(delay_s)], stdout=subprocess.PIPE, text=True
        )
        started.append(process)
        assert process.stdout is not None and process.stdout.readline().strip() == "ready"
        # reaped as soon as it exits, as the demo's daemons are by init: a zombie would still answer kill -0
        threading.Thread(target=process.wait, daemon=True).start()
        (run / f"{name}.pid").write_text(f"{process.pid}\n")
        processes[name] = process
    return processes


def _demo_stop(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "-s", "demo-stop", f"VAR={tmp_path}", *args],
        cwd=ROOT,
        check=True,
        timeout=60,
        capture_output=True,
        text=True,
    )


def _running(processes: dict[str, subprocess.Popen[str]]) -> list[str]:
    """The stand-ins whose pid still exists. Asked of the kernel: ``Popen.poll`` answers None while the reaper
    thread sits in ``wait``, however long the process has been gone."""
    running = []
    for name, process in processes.items():
        try:
            os.kill(process.pid, 0)
        except ProcessLookupError:
            continue
        running.append(name)
    return running


def _exit_codes(processes: dict[str, subprocess.Popen[str]]) -> dict[str, int]:
    return {name: process.wait(timeout=5) for name, process in processes.items()}


def test_demo_stop_returns_once_the_demo_has_exited(tmp_path, started):
    processes = _demo(tmp_path, 1.0, started)
    _demo_stop(tmp_path)
    assert _running(processes) == []
    assert _exit_codes(processes) == {"web": 0, "worker": 0, "beat": 0}
    assert not list((tmp_path / "run").glob("*.pid"))


def test_a_process_that_ignores_sigterm_is_killed_after_the_wait(tmp_path, started):
    processes = _demo(tmp_path, -1, started)
    stopped = _demo_stop(tmp_path, "DEMO_STOP_WAIT_S=1")
    assert _running(processes) == []
    assert _exit_codes(processes) == {"web": -9, "worker": -9, "beat": -9}
    assert "web (pid" in stopped.stdout and "killed" in stopped.stdout
