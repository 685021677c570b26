"""The web process loads the app once, in gunicorn's master: a worker replaced after ``max_requests`` (or
started at boot) answers at once instead of importing Django, every view, scipy and pydicom first (about 2 s
of CPU, which readers arriving at a fresh or recycling server used to wait behind)."""

from __future__ import annotations

import subprocess
import sys
import time

import requests

from tests.labeling.processes import ROOT, free_port, http_up, process_env, running, wait_until


def _import_seconds(env: dict[str, str]) -> float:
    """What importing the app costs a fresh process here (the test's yardstick: machines differ)."""
    code = "import time; t = time.perf_counter(); import config.wsgi; print(time.perf_counter() - t)"
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return float(done.stdout.strip().splitlines()[-1])


def test_a_replaced_worker_answers_without_loading_the_app_again(db, tmp_path):
    port = free_port()
    # one worker, replaced after every 3 requests (jitter 3 // 10 = 0): requests 4, 7 and 10 meet new workers
    env = process_env(WEB_WORKERS="1", WEB_THREADS="2", WEB_MAX_REQUESTS="3")
    url = f"http://127.0.0.1:{port}/api/schemes/"
    cmd = [sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.conf.py", "config.wsgi"]
    with running([*cmd, "--bind", f"127.0.0.1:{port}"], env, tmp_path / "web.log"):
        wait_until(lambda: http_up(url), timeout_s=120, what="gunicorn answering")
        took = []
        for _ in range(9):
            began = time.perf_counter()
            assert requests.get(url, timeout=60).status_code in (200, 401, 403)
            took.append(time.perf_counter() - began)
    log = (tmp_path / "web.log").read_text()
    assert log.count("Booting worker") >= 3, log  # the worker was replaced
    yardstick = _import_seconds(env)
    assert max(took) < yardstick / 2, (
        f"slowest answer {max(took):.2f} s; loading the app takes {yardstick:.2f} s"
    )
