"""The production-shaped stack on 127.0.0.1 for the benches that need one (``bench_load``, ``faults``):
Redis, gunicorn, a Celery worker and beat, each in its own process group, logs under a folder."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(predicate: Callable[[], Any], *, timeout_s: float, what: str, every_s: float = 0.1) -> Any:
    """Poll until ``predicate`` returns something truthy (returned); TimeoutError naming ``what`` else."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(every_s)
    raise TimeoutError(f"no {what} within {timeout_s:.0f} s")


class Stack:
    """Redis, gunicorn, worker and beat; each start of a process logs to ``<folder>/<name>-<n>.log``.

    ``tag`` names the worker (``<tag>-<pid>@host``); ``web_workers`` None keeps gunicorn.conf.py's count."""

    def __init__(
        self,
        folder: Path,
        env: dict[str, str],
        web_port: int,
        redis_port: int,
        *,
        tag: str,
        web_workers: int | None = None,
        worker_concurrency: int = 1,
        loglevel: str = "INFO",
    ) -> None:
        self.folder, self.env, self.web_port, self.redis_port = folder, env, web_port, redis_port
        self.tag, self.web_workers, self.concurrency, self.loglevel = (
            tag,
            web_workers,
            worker_concurrency,
            loglevel,
        )
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.starts: dict[str, int] = {}

    def command(self, name: str) -> list[str]:
        python, celery = sys.executable, [sys.executable, "-m", "celery", "-A", "config"]
        web = [python, "-m", "gunicorn", "-c", "config/gunicorn.conf.py", "config.wsgi"]
        return {
            "redis": [
                *("redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no", "--dir", str(self.folder)),
            ],
            "web": [
                *web,
                *("--bind", f"127.0.0.1:{self.web_port}"),
                *(("--workers", str(self.web_workers)) if self.web_workers else ()),
            ],
            "worker": [
                *(*celery, "worker", "-Q", "default,gpu", "-c", str(self.concurrency)),
                *("--loglevel", self.loglevel, "--without-gossip", "--without-mingle"),
                *("--hostname", f"{self.tag}-{os.getpid()}@%h"),
            ],
            "beat": [
                *(*celery, "beat", "--loglevel", self.loglevel),
                *("--pidfile", str(self.folder / "beat.pid"), "--schedule", str(self.folder / "beat")),
            ],
        }[name]

    def start(self, name: str) -> None:
        self.starts[name] = self.starts.get(name, 0) + 1
        log = (self.folder / f"{name}-{self.starts[name]}.log").open("wb")
        self.procs[name] = subprocess.Popen(
            self.command(name),
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def kill9(self, name: str) -> None:
        """SIGKILL the process group (a worker: its main process and its pool children at once)."""
        proc = self.procs.pop(name)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)

    def stop(self, name: str) -> None:
        proc = self.procs.pop(name, None)
        if proc is None or proc.poll() is not None:
            return
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)

    def stop_all(self) -> None:
        for name in ("web", "beat", "worker", "redis"):
            self.stop(name)

    def redis_up(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.redis_port), timeout=1) as conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def web_up(self) -> bool:
        import requests

        try:
            return requests.get(f"http://127.0.0.1:{self.web_port}/api/schemes/", timeout=5).status_code < 500
        except requests.RequestException:
            return False

    @staticmethod
    def worker_ready() -> bool:
        from config.celery import app

        return bool(app.control.ping(timeout=1.0))
