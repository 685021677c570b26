"""Training runs: start on the gpu queue (one active run per project and kind, enforced by the database),
execute on a worker resumably (claim, heartbeat, progress and epoch history through the run's row), cancel,
and re-dispatch runs whose task message was lost."""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import CharField, F, Func, JSONField, OuterRef, Q, Subquery, TextField, Value
from django.db.models.functions import Cast, Concat
from django.utils import timezone

from labeling.exceptions import Conflict, InvalidInput
from labeling.models import AuditEvent, Project
from labeling.services.audit import audit_record
from labeling.services.jobs import Heartbeat, is_alive
from labeling.services.outbox import outbox_send
from ml.config import ConfigError
from ml.models import ModelKind, ModelVersion, TrainingRun
from ml.pipelines import Cancelled, TrainRequest, check_config, pipeline_for
from ml.services.promotion import model_version_register
from ml.services.snapshots import json_safe, snapshot_create
from ml.vocab import MODEL_INPUTS

log = logging.getLogger(__name__)

PROGRESS_EVERY_S = 1.0


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
    expected = MODEL_INPUTS[kind][0]
    if project.scheme.modality != expected:
        raise InvalidInput(f"a {kind} model needs a {expected} project", field="kind")
    _check_config(kind, config or {})
    policy = project.training_policies.filter(kind=kind).first()
    merged = {**(policy.config if policy else {}), **(config or {})}
    if kind == ModelKind.LESIONS and "contour_checkpoint" not in merged:
        # the lesion model's crops follow the joint lines of the project's promoted contour model
        contour = project.model_versions.filter(
            kind=ModelKind.CONTOUR, status=ModelVersion.Status.PROMOTED
        ).first()
        if contour is not None:
            merged |= {"contour_checkpoint": contour.checkpoint_dir, "contour_version": contour.version}
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
            _enqueue(run.pk)
    except IntegrityError as exc:
        active = TrainingRun.objects.filter(project=project, kind=kind, state__in=TrainingRun.ACTIVE).first()
        raise Conflict(
            f"a {kind} training run is already {active.state if active else 'active'} for this project"
            + (f" (run {active.pk})" if active else "")
        ) from exc
    return run


def _check_config(kind: str, config: Any) -> None:
    """InvalidInput (400) for a configuration that is not an object or has a key ``kind`` does not know."""
    if not isinstance(config, dict):
        raise InvalidInput("the configuration must be a JSON object", field="config")
    try:
        check_config(kind, config)
    except ConfigError as exc:
        raise InvalidInput(str(exc), field="config") from exc


def _enqueue(run_id: int) -> None:
    """Queue the run's task with the current transaction (outbox)."""
    outbox_send("ml.tasks.training_run_task", args=(run_id,))


def training_run_cancel(*, actor: User, run: TrainingRun) -> TrainingRun:
    """Ask a queued or running run to stop; the worker stops at its next step."""
    with transaction.atomic():
        run = TrainingRun.objects.select_for_update(no_key=True).get(pk=run.pk)
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
        run = (
            TrainingRun.objects.select_for_update(of=("self",), no_key=True)
            .select_related("project__scheme")
            .get(pk=run_id)
        )
        if run.state not in TrainingRun.ACTIVE:
            return None  # finished, failed or cancelled: a redelivery lands here and stops
        now = timezone.now()
        alive = is_alive(run.heartbeat_at, stale_after_s=settings.ML_HEARTBEAT_STALE_S, now=now)
        if run.state == TrainingRun.State.RUNNING and alive:
            return None  # another worker is on it
        if run.cancel_requested:  # cancelled while its worker was gone: nothing left to train
            run.state, run.finished_at = TrainingRun.State.CANCELLED, now
            run.log += f"{now:%Y-%m-%d %H:%M:%S} cancelled (asked while no worker was on it)\n"
            run.save(update_fields=["state", "finished_at", "log"])
            return None
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
            progress=json_safe({**info, "fraction": round(fraction, 4)}), heartbeat_at=timezone.now()
        )
        if end_of_epoch:
            row = json_safe({k: info[k] for k in ("epoch", "loss", "metrics", "phase") if k in info})
            shown = " ".join(f"{k} {v:.4g}" for k, v in row.get("metrics", {}).items() if v is not None)
            loss = f"{row['loss']:.4f}" if row.get("loss") is not None else "nan"
            _append(
                self.run_id,
                line=f"epoch {row.get('epoch')}: loss {loss} {shown}".rstrip() + "\n",
                history=row,
            )

    def should_stop(self) -> bool:
        self.cancelled = (
            self.cancelled or TrainingRun.objects.filter(pk=self.run_id, cancel_requested=True).exists()
        )
        return self.cancelled


def _append(run_id: int, *, line: str = "", history: dict[str, Any] | None = None, **fields: Any) -> None:
    """Append a log line and/or an epoch row to a run in one UPDATE (no read: concurrent appends from the
    worker, its heartbeat and the recovery task cannot drop each other's lines)."""
    if line:
        fields["log"] = Concat(F("log"), Value(line), output_field=TextField())
    if history is not None:
        fields["history"] = Func(
            F("history"),
            Value([history], output_field=JSONField()),
            template="(%(expressions)s)",
            arg_joiner=" || ",
            output_field=JSONField(),
        )
    TrainingRun.objects.filter(pk=run_id).update(**fields)


def _finish(run_id: int, state: str, error: str = "") -> None:
    now = timezone.now()
    _append(run_id, line=f"{now:%Y-%m-%d %H:%M:%S} {state}\n", state=state, error=error, finished_at=now)


def training_run_execute(*, run_id: int) -> None:
    """Run (or resume) one training run to the end: snapshot, train, evaluate on gold, register.

    Idempotent, so the task may be delivered twice: a finished or cancelled run returns at once, and so does
    one that a live worker holds (its heartbeat is kept fresh by ``Heartbeat``); a run whose worker died
    resumes from its last checkpoint.
    """

    claimed = _claim(run_id)
    if claimed is None:
        return
    run, resume = claimed
    every_s = max(settings.ML_HEARTBEAT_STALE_S / 4, 0.5)
    with Heartbeat(TrainingRun, run.pk, every_s=every_s, state=TrainingRun.State.RUNNING):
        _train_claimed(run, resume)


def _train_claimed(run: TrainingRun, resume: bool) -> None:
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
        model_version_register(run=TrainingRun.objects.get(pk=run.pk), card=json_safe(card))
    except Cancelled:
        _finish(run.pk, TrainingRun.State.CANCELLED)
        return
    except Exception as exc:
        log.exception("training run %s failed", run.pk)
        _finish(run.pk, TrainingRun.State.FAILED, f"{type(exc).__name__}: {exc}")
        return
    _finish(run.pk, TrainingRun.State.SUCCEEDED)


REDISPATCH_ACTION = "training.redispatch"


def training_runs_recover(*, now: datetime | None = None) -> list[int]:
    """Re-dispatch the runs whose task message was lost (a broker restart, a purged queue); return their ids.

    A run is lost when its last dispatch (its start, or the latest re-dispatch in the audit trail) is older
    than ``ML_REDISPATCH_AFTER_S`` and no worker shows life: still queued, or running with a heartbeat older
    than ``ML_HEARTBEAT_STALE_S``. A message that was not lost after all does no harm: the task claims the
    run under a row lock, and the later of two deliveries finds it finished or held by a live worker and
    returns. Each run is re-dispatched at most once per ``ML_REDISPATCH_AFTER_S`` (audited, and noted in its
    log); rows another caller is examining are skipped (``skip_locked``).
    """
    now = now or timezone.now()
    dispatched_before = now - timedelta(seconds=settings.ML_REDISPATCH_AFTER_S)
    stale_before = now - timedelta(seconds=settings.ML_HEARTBEAT_STALE_S)
    silent = Q(state=TrainingRun.State.QUEUED) | Q(
        Q(heartbeat_at__isnull=True) | Q(heartbeat_at__lt=stale_before), state=TrainingRun.State.RUNNING
    )
    last_dispatch = (
        AuditEvent.objects.filter(
            action=REDISPATCH_ACTION,
            object_type="ml.trainingrun",
            object_id=Cast(OuterRef("pk"), CharField()),
        )
        .order_by("-id")
        .values("created_at")[:1]
    )
    recovered = []
    with transaction.atomic():
        candidates = (
            TrainingRun.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("project")
            .filter(silent, created_at__lt=dispatched_before)
            .annotate(last_dispatch=Subquery(last_dispatch))
            .filter(Q(last_dispatch__isnull=True) | Q(last_dispatch__lt=dispatched_before))
            .order_by("pk")
        )
        for run in candidates:
            quiet_s = (now - (run.heartbeat_at or run.last_dispatch or run.created_at)).total_seconds()
            why = f"{run.state} for {quiet_s:.0f} s with no sign of a worker"
            _append(run.pk, line=f"{now:%Y-%m-%d %H:%M:%S} re-dispatched: {why}\n")
            audit_record(
                actor=None, action=REDISPATCH_ACTION, target=run, project=run.project, data={"why": why}
            )
            _enqueue(run.pk)
            recovered.append(run.pk)
    if recovered:
        log.warning("re-dispatched lost training runs %s", recovered)
    return recovered
