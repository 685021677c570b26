"""Consensus refits that survive a killed worker: a heartbeat while one runs, and a recovery step.

A refit is a Celery task with late acknowledgement; when its worker is killed, the broker hands the message to
another worker only after its visibility timeout (hours). ``consensus_refit_tracked`` keeps the project's
``ConsensusRefitState`` up to date (heartbeat while it runs; afterwards which readings the current runs cover),
and ``consensus_refits_recover`` (beat, and each worker at start) queues a refit for a project whose refit
worker died (stale heartbeat) or whose readings no refit has covered long after they were made (a lost
message). The refit itself is idempotent per data hash, so a refit queued twice stores one run.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Max
from django.utils import timezone

from labeling.models import Adjudication, ConsensusRefitState, ConsensusRun, Project, Reading
from labeling.services.consensus import consensus_refit_project
from labeling.services.jobs import Heartbeat, is_alive
from labeling.services.readings import consensus_enqueue

log = logging.getLogger(__name__)


def _superseded_request(project_id: int, requested_at: str | None) -> bool:
    """Debounce: a reading newer than the request has its own refit queued, so this one can stop."""
    if not requested_at:
        return False
    after = datetime.fromisoformat(requested_at)
    return Reading.objects.filter(project_id=project_id, created_at__gt=after).exists()


def consensus_refit_tracked(
    *, project_id: int, requested_at: str | None = None, full: bool = False
) -> list[ConsensusRun]:
    """Refit the project's consensus (``consensus_refit_project``) with its heartbeat kept fresh.

    On success the state records that readings made before the refit began reading are covered.
    """
    if not Project.objects.filter(pk=project_id).exists() or _superseded_request(project_id, requested_at):
        return []
    began = timezone.now()
    ConsensusRefitState.objects.get_or_create(project_id=project_id)
    ConsensusRefitState.objects.filter(project_id=project_id).update(
        started_at=began, heartbeat_at=began, attempts=F("attempts") + 1
    )
    every_s = max(settings.JOB_HEARTBEAT_STALE_S / 4, 0.2)
    with Heartbeat(ConsensusRefitState, project_id, every_s=every_s):
        runs = consensus_refit_project(project_id=project_id, full=full)
    with transaction.atomic():
        state = ConsensusRefitState.objects.select_for_update(no_key=True).get(project_id=project_id)
        state.covered_until = max(filter(None, (state.covered_until, began)))
        state.heartbeat_at = (
            None if state.started_at == began else state.heartbeat_at
        )  # a newer refit runs on
        state.finished_at = timezone.now()
        state.save(update_fields=["covered_until", "heartbeat_at", "finished_at"])
    return runs


def _lost(project: Project, state: ConsensusRefitState, now: datetime) -> str | None:
    """Why a refit of the project must be queued again, or None."""
    stale_s = settings.JOB_HEARTBEAT_STALE_S
    redispatch_before = now - timedelta(seconds=settings.JOB_REDISPATCH_AFTER_S)
    dispatched = state.dispatched_at
    if state.heartbeat_at and not is_alive(state.heartbeat_at, stale_after_s=stale_s, now=now):
        consumed = dispatched is None or (state.started_at is not None and dispatched < state.started_at)
        if consumed or (dispatched is not None and dispatched < redispatch_before):
            return f"its refit stopped beating {(now - state.heartbeat_at).total_seconds():.0f} s ago"
        return None
    if state.heartbeat_at:
        return None  # a live refit
    latest = max(filter(None, (project.latest_reading, project.latest_adjudication)), default=None)  # type: ignore[attr-defined]
    covered = state.covered_until
    if latest is None or (covered is not None and latest <= covered):
        return None
    settle_s = settings.JOB_REDISPATCH_AFTER_S + settings.CONSENSUS_DEBOUNCE_S
    if latest > now - timedelta(seconds=settle_s):
        return None  # its own message may still be on the way
    if dispatched is not None and dispatched >= redispatch_before:
        return None
    return f"readings since {latest:%Y-%m-%d %H:%M:%S} are in no refit"


def consensus_refits_recover(*, now: datetime | None = None) -> list[int]:
    """Queue a refit for each project whose refit worker died or whose refit message was lost; return their ids.

    Rows another caller is examining are skipped (``skip_locked``); each dispatch is noted in the state's
    ``dispatched_at``, so a project is queued again at most once per ``JOB_REDISPATCH_AFTER_S`` unless a worker
    took the message and died again.
    """
    now = now or timezone.now()
    projects = (
        Project.objects.active()
        .annotate(
            latest_reading=Max("readings__created_at"),
        )
        .filter(latest_reading__isnull=False)
    )
    adjudicated = dict(
        Adjudication.objects.values("project")
        .annotate(latest=Max("created_at"))
        .values_list("project", "latest")
    )
    recovered = []
    for project in projects.order_by("pk"):
        project.latest_adjudication = adjudicated.get(project.pk)  # type: ignore[attr-defined]
        with transaction.atomic():
            ConsensusRefitState.objects.get_or_create(project=project)
            state = (
                ConsensusRefitState.objects.select_for_update(skip_locked=True, no_key=True)
                .filter(project=project)
                .first()
            )
            if state is None:
                continue
            why = _lost(project, state, now)
            if why is None:
                continue
            state.dispatched_at = now
            state.save(update_fields=["dispatched_at"])
            consensus_enqueue(project.pk, debounce=False)
            log.warning("queued a consensus refit of project %s again: %s", project.pk, why)
            recovered.append(project.pk)
    return recovered
