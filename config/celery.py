"""The Celery app: queues `default` and `gpu`, late acknowledgement, JSON only, database-backed beat."""

import os

from celery import Celery
from celery.signals import worker_ready
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


@app.task(name="concord.ping")
def ping(value: str = "pong") -> str:
    """Answer with ``value``: a round trip through broker, worker and result backend."""
    return value
