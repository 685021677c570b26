"""The Celery app: queues `default` and `gpu`, late acknowledgement, JSON only, database-backed beat."""

import os
import sys
from typing import Any

from celery import Celery
from celery.signals import celeryd_after_setup, worker_process_init, worker_ready
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("concord")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.update(
    task_queues=(Queue("default"), Queue("gpu")),
    task_default_queue="default",
    task_acks_late=True,
    task_reject_on_worker_lost=True,  # a killed worker's task is redelivered, not lost
    worker_prefetch_multiplier=1,
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    result_expires=24 * 3600,
    beat_scheduler="django_celery_beat.schedulers:DatabaseScheduler",
    broker_connection_retry_on_startup=True,
    task_routes={
        "ml.tasks.training_runs_recover_task": {"queue": "default"},  # never behind a long training run
        "ml.tasks.*": {"queue": "gpu"},
    },
)
app.autodiscover_tasks()

RECOVER_ENTRY = "ml: re-dispatch training runs whose task was lost"
OUTBOX_ENTRY = "labeling: publish pending outbox messages"
JOBS_RECOVER_ENTRY = "labeling: queue again import jobs and consensus refits whose worker died"
FULL_REFIT_ENTRY = "labeling: full consensus refit of projects updated incrementally"
#: The pool size of this worker, handed from the worker's main process to its pool processes.
PROCESSES_ENV = "CONCORD_WORKER_PROCESSES"


@app.on_after_finalize.connect
def _periodic_tasks(sender: Celery, **kwargs: object) -> None:
    """Fixed beat entries; the DatabaseScheduler copies them into django-celery-beat's tables at start."""
    from django.conf import settings

    sender.add_periodic_task(
        float(settings.ML_RECOVER_EVERY_S),
        sender.signature("ml.tasks.training_runs_recover_task"),
        name=RECOVER_ENTRY,
    )
    sender.add_periodic_task(
        float(settings.OUTBOX_DRAIN_EVERY_S),
        sender.signature("labeling.tasks.outbox_drain_task"),
        name=OUTBOX_ENTRY,
    )
    sender.add_periodic_task(
        float(settings.JOB_RECOVER_EVERY_S),
        sender.signature("labeling.tasks.jobs_recover_task"),
        name=JOBS_RECOVER_ENTRY,
    )
    sender.add_periodic_task(
        float(settings.CONSENSUS_FULL_REFIT_EVERY_S),
        sender.signature("labeling.tasks.consensus_full_refits_task"),
        name=FULL_REFIT_ENTRY,
    )


@worker_ready.connect
def _on_worker_ready(sender: object = None, **kwargs: object) -> None:
    """A (re)started worker publishes what the outbox holds and recovers jobs whose worker died."""
    app.send_task("labeling.tasks.outbox_drain_task")
    app.send_task("labeling.tasks.jobs_recover_task")


@celeryd_after_setup.connect
def _note_processes(sender: object = None, instance: Any = None, **kwargs: object) -> None:
    """Before the pool forks: how many processes will share this machine's cores (``_share_the_cores``)."""
    os.environ[PROCESSES_ENV] = str(getattr(instance, "concurrency", None) or 1)


def cores_per_process(processes: int, cores: int) -> int:
    """Each of ``processes`` computing at once gets this many of ``cores`` (at least one)."""
    return max(1, cores // max(1, processes))


@worker_process_init.connect
def _share_the_cores(**kwargs: object) -> None:
    """A pool process computes with its share of the cores, not all of them: torch starts a thread per core in
    every process, so the two processes of ``make demo``'s worker (``-c 2``), one training and one pre-reading,
    ran four compute threads on two cores, each waiting for the others. An ``OMP_NUM_THREADS`` set by the
    operator is kept. torch reads it when first imported; a torch imported before the fork is told directly."""
    processes = int(os.environ.get(PROCESSES_ENV, "1"))
    os.environ.setdefault("OMP_NUM_THREADS", str(cores_per_process(processes, len(os.sched_getaffinity(0)))))
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


@app.task(name="concord.ping")
def ping(value: str = "pong") -> str:
    """Answer with ``value``: a round trip through broker, worker and result backend."""
    return value
