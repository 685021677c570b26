"""The Celery worker's pool processes share the machine's cores instead of each starting a thread per core."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from config import celery as celery_config
from tests.labeling.processes import process_env, running
from tests.ml_app.worker_probe import torch_threads


def prefork_worker_cmd(queue: str, processes: int) -> list[str]:
    """``make demo``'s worker (prefork, ``-c processes``) on a queue of its own, with the probe task."""
    return [
        *[sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", queue, "--pool", "prefork"],
        *["-c", str(processes), "--include", "tests.ml_app.worker_probe", "--loglevel", "INFO"],
        *["--without-gossip", "--without-mingle", "--without-heartbeat"],
    ]


def test_each_pool_process_of_a_real_worker_computes_with_its_share_of_the_cores(tmp_path: Path) -> None:
    """Two pool processes on this machine: each gets half the cores for torch. Before, each had all of them,
    so a training run and a pre-read batch side by side ran four threads on two cores."""
    queue = f"cores-{uuid.uuid4().hex[:8]}"
    env = {k: v for k, v in process_env().items() if k != "OMP_NUM_THREADS"}
    with running(prefork_worker_cmd(queue, 2), env, tmp_path / "worker.log"):
        answers = [torch_threads.apply_async(queue=queue) for _ in range(4)]
        threads = {answer.get(timeout=120) for answer in answers}
    assert threads == {celery_config.cores_per_process(2, len(os.sched_getaffinity(0)))}


OPERATOR = """
from config.celery import _note_processes, _share_the_cores

class Worker:  # what celeryd_after_setup hands over: the worker, with its pool size
    concurrency = 1

_note_processes(instance=Worker())
_share_the_cores()  # in a pool process, before any task imported torch
import torch
print(torch.get_num_threads())
"""


def test_an_operators_omp_num_threads_is_kept() -> None:
    """One process alone would get every core; the operator asked for one thread."""
    env = {k: v for k, v in os.environ.items() if k != celery_config.PROCESSES_ENV}
    answer = subprocess.run(
        [sys.executable, "-c", OPERATOR],
        env={**env, "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert answer.returncode == 0, answer.stderr
    assert answer.stdout.split()[-1] == "1"


@pytest.mark.parametrize("processes, cores, share", [(1, 2, 2), (2, 2, 1), (4, 2, 1), (2, 16, 8), (0, 4, 4)])
def test_cores_per_process(processes: int, cores: int, share: int) -> None:
    assert celery_config.cores_per_process(processes, cores) == share
