"""The Celery worker's pool processes share the machine's cores instead of each starting a thread per core."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from celery.signals import celeryd_after_setup, worker_process_init

from config import celery as celery_config

SHARE = """
import os
os.environ.pop("OMP_NUM_THREADS", None) if {drop} else None
from config.celery import _note_processes, _share_the_cores

class Worker:  # what celeryd_after_setup hands over: the worker, with its pool size
    concurrency = {processes}

_note_processes(instance=Worker())
_share_the_cores()  # in a pool process, before any task imported torch
import torch
print(torch.get_num_threads())
"""


def threads_in_pool_process(processes: int, *, omp: str | None = None) -> int:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", celery_config.PROCESSES_ENV)}
    if omp is not None:
        env["OMP_NUM_THREADS"] = omp
    code = SHARE.format(processes=processes, drop=omp is None)
    answer = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert answer.returncode == 0, answer.stderr
    return int(answer.stdout.split()[-1])


def test_the_signals_that_share_the_cores_are_connected() -> None:
    assert celery_config._note_processes in [r[1]() for r in celeryd_after_setup.receivers]
    assert celery_config._share_the_cores in [r[1]() for r in worker_process_init.receivers]


@pytest.mark.parametrize("processes", [1, 2])
def test_each_pool_process_gets_its_share_of_the_cores_for_torch(processes: int) -> None:
    cores = len(os.sched_getaffinity(0))
    assert threads_in_pool_process(processes) == max(1, cores // processes)


def test_an_operators_omp_num_threads_is_kept() -> None:
    """One process alone would get every core; the operator asked for one thread."""
    assert threads_in_pool_process(1, omp="1") == 1


@pytest.mark.parametrize("processes, cores, share", [(1, 2, 2), (2, 2, 1), (4, 2, 1), (2, 16, 8), (0, 4, 4)])
def test_cores_per_process(processes: int, cores: int, share: int) -> None:
    assert celery_config.cores_per_process(processes, cores) == share
