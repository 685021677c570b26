"""Celery entry points of the model registry, on the `gpu` queue; each calls one service."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError


# A database that is briefly unavailable or locked is transient: retry; the service is idempotent.
@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=5,
)
def training_run_task(run_id: int) -> None:
    """Train (or resume) one run; a redelivery after a worker crash continues from the checkpoint."""
    from ml.services.training import training_run_execute

    training_run_execute(run_id=run_id)


@shared_task(acks_late=True, ignore_result=True)
def prereads_task(version_id: int) -> None:
    """AI pre-reads of one batch of cases by a promoted version (queues the next batch itself)."""
    from ml.services.prereads import prereads_compute

    prereads_compute(version_id=version_id)


@shared_task(acks_late=True, ignore_result=True)
def training_scheduled_task(project_id: int, kind: str) -> None:
    """Beat entry: start a run when enough new gold or confident items exist since the last one."""
    from ml.services.schedules import training_scheduled_check

    training_scheduled_check(project_id=project_id, kind=kind)


@shared_task(ignore_result=True)
def training_runs_recover_task() -> None:
    """Beat entry (on the default queue, every ML_RECOVER_EVERY_S): re-dispatch runs whose message was lost."""
    from ml.services.training import training_runs_recover

    training_runs_recover()
