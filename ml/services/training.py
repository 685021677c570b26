"""Training runs: start (one active run per project and kind, enforced by the database), execute on a
worker (resumable after a crash, cancellable, progress on the row), then evaluate and maybe promote."""

from __future__ import annotations

import logging
import math
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import timezone

from labeling.exceptions import Conflict, InvalidInput
from labeling.models import Project
from labeling.services.audit import audit_record
from ml.models import ModelKind, TrainingRun
from ml.pipelines import Cancelled, TrainRequest, pipeline_for

log = logging.getLogger(__name__)
PROGRESS_EVERY_S = 1.0


def _finite(value: Any) -> Any:
    """JSON-safe: NaN and infinities become None, recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def training_run_start(
    *,
    actor: User | None,
    project: Project,
    kind: str,
    config: dict[str, Any] | None = None,
    trigger: str = TrainingRun.Trigger.MANUAL,
) -> TrainingRun:
    """Queue a training run; Conflict (409) when one of this kind is already queued or running."""
    if kind not in ModelKind.values:
        raise InvalidInput(f"{kind!r} is not one of {ModelKind.values}", field="kind")
    expected = {"contour": "MR", "lesions": "MR", "ctgrade": "CT"}[kind]
    if project.scheme.modality != expected:
        raise InvalidInput(f"a {kind} model needs a {expected} project", field="kind")
    policy = project.training_policies.filter(kind=kind).first()
    merged = {**(policy.config if policy else {}), **(config or {})}
    try:
        with transaction.atomic():
            run = TrainingRun.objects.create(
                project=project, kind=kind, trigger=trigger, started_by=actor, config=merged
            )
            audit_record(
                actor=actor,
                action="training.start",
                target=run,
                project=project,
                data={"kind": kind, "trigger": trigger, "config": merged},
            )
            transaction.on_commit(lambda: _enqueue(run.pk))
    except IntegrityError as exc:
        active = TrainingRun.objects.filter(project=project, kind=kind, state__in=TrainingRun.ACTIVE).first()
        raise Conflict(
            f"a {kind} training run is already {active.state if active else 'active'} for this project"
            + (f" (run {active.pk})" if active else "")
        ) from exc
    return run


def _enqueue(run_id: int) -> None:
    from ml.tasks import training_run_task  # services import tasks lazily: tasks import services

    training_run_task.delay(run_id)


def training_run_cancel(*, actor: User, run: TrainingRun) -> TrainingRun:
    """Ask a queued or running run to stop; the worker stops at its next step."""
    with transaction.atomic():
        run = TrainingRun.objects.select_for_update().get(pk=run.pk)
        if run.state not in TrainingRun.ACTIVE:
            raise Conflict(f"the run is {run.state}")
        if run.state == TrainingRun.State.QUEUED:
            run.state, run.finished_at = TrainingRun.State.CANCELLED, timezone.now()
        run.cancel_requested = True
        run.save(update_fields=["state", "finished_at", "cancel_requested"])
        audit_record(actor=actor, action="training.cancel", target=run, project=run.project)
    return run


def _claim(run_id: int) -> tuple[TrainingRun, bool] | None:
    """Mark the run running for this worker; returns (run, resume) or None when there is nothing to do."""
    with transaction.atomic():
        run = TrainingRun.objects.select_for_update().select_related("project__scheme").get(pk=run_id)
        if run.state not in TrainingRun.ACTIVE:
            return None  # finished, failed or cancelled: a redelivery lands here and stops
        now = timezone.now()
        stale_after = timedelta(seconds=settings.ML_HEARTBEAT_STALE_S)  # then its worker is gone
        alive = run.heartbeat_at and now - run.heartbeat_at < stale_after
        if run.state == TrainingRun.State.RUNNING and alive:
            return None  # another worker is on it
        resume = run.state == TrainingRun.State.RUNNING  # its worker died: continue from the checkpoint
        run.state, run.heartbeat_at, run.attempts = TrainingRun.State.RUNNING, now, run.attempts + 1
        run.started_at = run.started_at or now
        run.log += f"{now:%Y-%m-%d %H:%M:%S} attempt {run.attempts}{' (resuming)' if resume else ''}\n"
        run.save(update_fields=["state", "heartbeat_at", "attempts", "started_at", "log"])
        return run, resume


class _Reporter:
    """Progress and cancellation through the run's row, throttled to about one write a second."""

    def __init__(self, run: TrainingRun) -> None:
        self.run_id, self.last = run.pk, 0.0
        self.cancelled = False

    def progress(self, info: dict[str, Any]) -> None:
        now = time.monotonic()
        end_of_epoch = info.get("step") == -1
        if not end_of_epoch and now - self.last < PROGRESS_EVERY_S:
            return
        self.last = now
        epochs = max(int(info.get("epochs") or 1), 1)
        fraction = min(1.0, (int(info.get("epoch", 0)) + (1 if end_of_epoch else 0)) / epochs)
        TrainingRun.objects.filter(pk=self.run_id).update(
            progress=_finite({**info, "fraction": round(fraction, 4)}), heartbeat_at=timezone.now()
        )
        if end_of_epoch:
            line = (
                f"epoch {info.get('epoch')}: loss {info.get('loss'):.4f} {_finite(info.get('metrics', {}))}\n"
            )
            run = TrainingRun.objects.get(pk=self.run_id)
            TrainingRun.objects.filter(pk=self.run_id).update(log=run.log + line)

    def should_stop(self) -> bool:
        self.cancelled = (
            self.cancelled or TrainingRun.objects.filter(pk=self.run_id, cancel_requested=True).exists()
        )
        return self.cancelled


def _finish(run_id: int, state: str, error: str = "") -> None:
    now = timezone.now()
    run = TrainingRun.objects.get(pk=run_id)
    TrainingRun.objects.filter(pk=run_id).update(
        state=state, error=error, finished_at=now, log=run.log + f"{now:%Y-%m-%d %H:%M:%S} {state}\n"
    )


def training_run_execute(*, run_id: int) -> None:
    """Run (or resume) one training run to the end: snapshot, train, evaluate on gold, register.

    Idempotent: a finished run, or one another live worker holds, returns at once; a run whose worker
    died resumes from its last checkpoint.
    """
    from ml.services.promotion import model_version_register
    from ml.services.snapshots import snapshot_create

    claimed = _claim(run_id)
    if claimed is None:
        return
    run, resume = claimed
    reporter = _Reporter(run)
    try:
        snapshot = run.snapshot or snapshot_create(project=run.project, kind=run.kind)
        if run.snapshot_id is None:
            TrainingRun.objects.filter(pk=run.pk).update(snapshot=snapshot)
        pipeline = pipeline_for(run.kind)
        request = TrainRequest(
            snapshot_dir=Path(snapshot.path),
            checkpoint_dir=Path(run.checkpoint_dir),
            config=run.config,
            progress=reporter.progress,
            should_stop=reporter.should_stop,
            resume=resume,
            snapshot_id=snapshot.content_hash,
        )
        card = pipeline.train(request)
        model_version_register(run=TrainingRun.objects.get(pk=run.pk), card=_finite(card))
    except Cancelled:
        _finish(run.pk, TrainingRun.State.CANCELLED)
        return
    except Exception as exc:
        log.exception("training run %s failed", run.pk)
        _finish(run.pk, TrainingRun.State.FAILED, f"{type(exc).__name__}: {exc}")
        return
    _finish(run.pk, TrainingRun.State.SUCCEEDED)
