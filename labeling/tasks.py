"""Celery entry points of the labeling domain; each calls one service."""

from __future__ import annotations

from celery import shared_task


@shared_task(acks_late=True, ignore_result=True, soft_time_limit=1800)
def consensus_refit_task(project_id: int, requested_at: str | None = None) -> None:
    """Refit the project's consensus; debounced, idempotent per data hash, safe to run twice at once."""
    from labeling.services.consensus import consensus_refit_project

    consensus_refit_project(project_id=project_id, requested_at=requested_at)
