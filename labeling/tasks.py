"""Celery entry points of the labeling domain; each calls one service."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from labeling.dicom import DicomStoreUnavailable

# A database that is briefly locked or unavailable is transient: retry (every such task is idempotent).
DATABASE_TASK = {
    "acks_late": True,
    "ignore_result": True,
    "soft_time_limit": 1800,
    "autoretry_for": (OperationalError,),
    "retry_backoff": True,
    "max_retries": 5,
}


@shared_task(**DATABASE_TASK)
def consensus_refit_task(project_id: int, requested_at: str | None = None, full: bool = False) -> None:
    """Refit the project's consensus (incrementally unless ``full``); debounced, idempotent, safe to run twice
    at once."""
    from labeling.services.consensus_recovery import consensus_refit_tracked

    consensus_refit_tracked(project_id=project_id, requested_at=requested_at, full=full)


@shared_task(
    acks_late=True,
    ignore_result=True,
    soft_time_limit=6 * 3600,
    autoretry_for=(DicomStoreUnavailable,),
    retry_backoff=True,
    max_retries=5,
)
def import_job_run_task(job_id: int) -> None:
    """Run an import job; a finished job is left alone and a rerun skips the studies already imported."""
    from labeling.services.ingest import import_job_run

    import_job_run(job_id=job_id)


@shared_task(**DATABASE_TASK)
def reader_study_compute_task(project_id: int, reference: str, conditions: list[str] | None = None) -> None:
    """Analyse the project's reader study (two of its conditions) against ``reference``; idempotent per data
    hash."""
    from labeling.services.reader_study import reader_study_compute

    reader_study_compute(project_id=project_id, reference=reference, conditions=conditions)


@shared_task(**DATABASE_TASK)
def agreement_compute_task(project_id: int, n_boot: int) -> None:
    """Compute the project's agreement report at ``n_boot`` unless the stored one is current; idempotent."""
    from labeling.services.agreement import agreement_compute

    agreement_compute(project_id=project_id, n_boot=n_boot)


@shared_task(ignore_result=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=3)
def outbox_drain_task() -> None:
    """Beat entry (every OUTBOX_DRAIN_EVERY_S, and at worker start): publish pending outbox messages."""
    from labeling.services.outbox import outbox_drain, outbox_prune

    outbox_drain()
    outbox_prune()


@shared_task(ignore_result=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=3)
def jobs_recover_task() -> None:
    """Beat entry (every JOB_RECOVER_EVERY_S, and at worker start): queue again the import jobs and consensus
    refits whose worker died or whose message was lost."""
    from labeling.services.consensus_recovery import consensus_refits_recover
    from labeling.services.ingest import import_jobs_recover

    import_jobs_recover()
    consensus_refits_recover()


@shared_task(ignore_result=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=3)
def consensus_full_refits_task() -> None:
    """Beat entry (every CONSENSUS_FULL_REFIT_EVERY_S): a full refit of each project whose consensus runs were
    updated incrementally since their full fit."""
    from labeling.services.consensus import consensus_full_refits_due

    consensus_full_refits_due()
