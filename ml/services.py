"""The model registry's services, by topic, one section each (views and tasks stay thin):

* ``training``: start, execute (resumably, on the gpu queue), cancel, recover runs whose message was lost;
* ``snapshots``: freeze a project's labels for a model kind (``ml.data.snapshot`` format);
* ``promotion``: evaluate on gold, register, promote (or roll back by hand);
* ``prereads``: AI pre-reads of a promoted version;
* ``schedules``: training policies and the nightly check.

Reads live in ``ml.selectors``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import CharField, F, Func, JSONField, Max, OuterRef, Q, Subquery, TextField, Value
from django.db.models.functions import Cast, Concat
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from labeling.dicom import LocalFolderStore
from labeling.exceptions import Conflict, InvalidInput
from labeling.models import AuditEvent, Case, Project
from labeling.services.audit import audit_record
from labeling.services.ingest import configured_store
from labeling.services.jobs import Heartbeat, is_alive
from labeling.services.outbox import outbox_send
from ml.config import ConfigError
from ml.data.files import write_atomically
from ml.data.snapshot import MANIFEST, TEST, TRAIN, link_study
from ml.models import DatasetSnapshot, ModelKind, ModelVersion, Prediction, TrainingPolicy, TrainingRun
from ml.pipelines import Cancelled, Evaluation, TrainRequest, check_config, pipeline_for
from ml.selectors import item_key, labelled_items, snapshot_labels
from ml.vocab import MODEL_INPUTS

log = logging.getLogger(__name__)


def json_safe(value: Any) -> Any:
    """JSON-safe: NaN and infinities become None, recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


# --- snapshots -----------------------------------------------------------------------------------
# Dataset snapshots: freeze a project's cases and labels for one model kind into a folder (format:
# ``ml.data.snapshot``); the same data gives the same snapshot (content hash). Gold cases
# (references or adjudications) are kept apart for evaluation.

#: The series each kind reads (``ml.vocab.MODEL_INPUTS``); empty: every series of the study.
SERIES_FOR_KIND = {kind: list(series) for kind, (_, series) in MODEL_INPUTS.items()}


def _series_files(case: Case, wanted: list[str], dicom_dir: Path) -> list[dict[str, Any]]:
    """Each wanted series with its files in slice order: local files are referenced, remote ones copied."""
    store = configured_store()
    out = []
    for series in case.study.series.prefetch_related("instances").order_by("id"):
        if wanted and series.description not in wanted:
            continue
        files = []
        for inst in series.instances.all():
            if isinstance(store, LocalFolderStore):
                files.append(str(store.file_path(case.study.study_uid, series.series_uid, inst.sop_uid)))
            else:
                target = dicom_dir / series.series_uid / f"{inst.slice_index:04d}.dcm"
                if not target.exists():  # whole or absent (a full disk leaves no partial file to trust)
                    dataset = store.instance(case.study.study_uid, series.series_uid, inst.sop_uid)
                    write_atomically(target, dataset.save_as, what="snapshot image")
                files.append(str(target))
        out.append(
            {
                "description": series.description,
                "modality": series.modality,
                "series_uid": series.series_uid,
                "files": files,
            }
        )
    return out


def _study_entry(folder: Path, case: dict[str, Any], modality: str) -> dict[str, Any]:
    """The same case as a study folder (series sub-folders of links to the files) with its labels, the
    layout every pipeline reads (``ml.data.snapshot``)."""
    link_study(case, folder / "studies" / str(case["case_id"]))

    def rows(values: dict[str, Any], key: str) -> list[dict[str, Any]]:
        return [
            dict(zip(("joint", "region", "lesion"), item.split("/"), strict=True), **{key: v})
            for item, v in sorted(values.items())
        ]

    entry = {
        "study_id": str(case["case_id"]),
        "kind": "ct" if modality == "CT" else "mri",
        "path": f"studies/{case['case_id']}",
        "split": case["split"],
        "readings": [
            {"reader": f"R{r['reader']}", "session": r["session"], "values": rows(r["values"], "value")}
            for r in case["readers"]
        ],
        "soft_labels": rows(case["consensus"], "posterior"),
        "contours": case["contours"]["consensus"],  # joint lines readers agreed on: lesion crops follow them
    }
    if case["gold"]:
        entry["reference"] = rows(case["gold"], "value")
    return entry


def _write_atomically(path: Path, text: str) -> None:
    write_atomically(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"), what="snapshot manifest")


def snapshot_create(*, project: Project, kind: str) -> DatasetSnapshot:
    """Freeze the project's current labels for ``kind`` into a snapshot folder; the same data gives the
    same snapshot (content hash), so a run can be repeated exactly."""
    labels = snapshot_labels(project=project)
    scheme = project.scheme.parsed
    root = Path(settings.ML_WEIGHTS_DIR) / "snapshots" / f"project-{project.pk}-{kind}"
    case_rows = []
    gold_cases = set(labels["gold"])
    if kind == ModelKind.CONTOUR:  # adjudicated joint lines are the contour model's gold
        gold_cases |= labels["contour_gold"]
    for case in project.cases.select_related("study").order_by("id"):
        readers = labels["readings"].get(case.pk, {})
        if not readers and case.pk not in gold_cases:
            continue  # nothing known about this case yet
        case_rows.append(
            {
                "case_id": case.pk,
                "study_uid": case.study.study_uid,
                "split": TEST if case.pk in gold_cases else TRAIN,
                "series": _series_files(case, SERIES_FOR_KIND[kind], root / "dicom"),
                "consensus": labels["consensus"].get(case.pk, {}),
                "readers": [
                    {"reader": r, "session": s, "values": v} for (r, s), v in sorted(readers.items())
                ],
                "gold": labels["gold"].get(case.pk, {}),
                "contours": labels["contours"].get(case.pk, {"consensus": [], "readers": []}),
            }
        )
    manifest = {
        "format": 2,
        "kind": kind,
        "project": project.pk,
        "scheme": {
            "name": scheme.name,
            "version": scheme.version,
            "modality": scheme.modality,
            "items": [item_key(*i.key) for i in scheme.form_items],
            "definition": project.scheme.definition,  # ml.vocab.Vocabulary.from_definition reads it
        },
        "consensus_runs": labels["runs"],
        "cases": case_rows,
    }
    digest = hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()
    if existing := DatasetSnapshot.objects.filter(project=project, kind=kind, content_hash=digest).first():
        return existing
    folder = root / digest[:16]
    studies = [_study_entry(folder, case, scheme.modality) for case in case_rows]
    frozen = {
        k: v for k, v in manifest.items() if k != "cases"
    }  # the hash covers the files; studies link them
    _write_atomically(
        folder / MANIFEST,
        json.dumps({**frozen, "content_hash": digest, "snapshot_id": digest, "studies": studies}, indent=1),
    )
    summary = {
        "cases": len(case_rows),
        "train": sum(c["split"] == TRAIN for c in case_rows),
        "gold": sum(c["split"] == TEST for c in case_rows),
        "labelled_items": labelled_items(project=project),  # the nightly check counts new ones from here
    }
    try:
        with transaction.atomic():
            return DatasetSnapshot.objects.create(
                project=project,
                kind=kind,
                content_hash=digest,
                path=str(folder),
                summary=summary,
                consensus_runs=labels["runs"],
            )
    except IntegrityError:  # the same snapshot was stored concurrently
        return DatasetSnapshot.objects.get(project=project, kind=kind, content_hash=digest)


# --- prereads ------------------------------------------------------------------------------------
# AI pre-reads: a promoted version reads the project's cases in batches on the gpu queue, its
# weights loaded once per batch.


def _enqueue_prereads(version_id: int) -> None:
    """Queue a batch of pre-reads with the current transaction (outbox)."""
    outbox_send("ml.tasks.prereads_task", args=(version_id,))


def case_record(case: Case, series_for: list[str]) -> dict[str, Any]:
    """A case in the snapshot's case format (series with files), for prediction; remote instances are
    fetched once into ``ML_WEIGHTS_DIR/prereads``."""
    folder = Path(settings.ML_WEIGHTS_DIR) / "prereads" / case.study.study_uid
    return {
        "case_id": case.pk,
        "study_uid": case.study.study_uid,
        "series": _series_files(case, series_for, folder),
    }


def prereads_compute(*, version_id: int, batch: int = 50) -> int:
    """AI pre-reads of the project's cases that this version has not read yet; returns how many were made.

    The version's weights are loaded once per batch, onto ``ML_DEVICE`` (the gpu queue's GPU). Idempotent
    (a unique row per version and case); a retired version stops early.
    """

    version = ModelVersion.objects.select_related("project").get(pk=version_id)
    todo = (
        version.project.cases.exclude(predictions__model_version=version)
        .select_related("study")
        .order_by("id")
    )
    cases = list(todo[:batch])
    if not cases:
        return 0
    predictor = pipeline_for(version.kind).load(Path(version.checkpoint_dir), device=settings.ML_DEVICE)
    done = 0
    for case in cases:
        if not ModelVersion.objects.filter(pk=version.pk, status=ModelVersion.Status.PROMOTED).exists():
            break
        try:
            output = predictor.predict(case_record(case, SERIES_FOR_KIND[version.kind]))
        except Exception:  # one unreadable case must not stop the others
            log.exception("pre-read of case %s by %s failed", case.pk, version)
            continue
        Prediction.objects.get_or_create(
            model_version=version, case=case, defaults={"output": json_safe(output)}
        )
        done += 1
    if todo.exists() and done:
        _enqueue_prereads(version.pk)  # the next batch
    return done


# --- promotion -----------------------------------------------------------------------------------
# Model versions: evaluate a finished run's checkpoint on the snapshot's gold, register it, and
# promote it when it beats the promoted one without any output dropping by more than the policy
# allows (or by hand, which is also how an admin rolls back).

DEFAULT_MAX_OUTPUT_DROP = 0.02
# the gold metric each kind's promotion floor applies to (lesions: the least AUC of its outputs)
FLOOR_METRIC = {
    ModelKind.CONTOUR: "frac_below_2_76mm",
    ModelKind.LESIONS: "min_auc",
    ModelKind.CTGRADE: "qwk",
}


def _evaluate(kind: str, checkpoint_dir: str, snapshot_dir: str) -> Evaluation | None:
    try:
        return pipeline_for(kind).evaluate(
            Path(checkpoint_dir), Path(snapshot_dir), device=settings.ML_DEVICE
        )
    except FileNotFoundError:
        return None  # e.g. the promoted version's weights were removed


def promotion_floor(*, project: Project, kind: str) -> dict[str, Any]:
    """The floor a model of this kind must reach on gold: the project's policy, else the settings default."""
    policy = TrainingPolicy.objects.filter(project=project, kind=kind).first()
    own = policy.promotion_floor if policy is not None else None
    value = own if own is not None else settings.ML_PROMOTION_FLOORS[kind]
    return {
        "metric": FLOOR_METRIC[ModelKind(kind)],
        "min": float(value),
        "set_by": "default" if own is None else "policy",
    }


def fmt_metric(value: float) -> str:
    """The one rounding rule of metric values in decision texts (the training page shows the same): 3
    decimals, or 2 significant digits for a value below 0.001 that is not 0."""
    return f"{value:.2g}" if value and abs(value) < 0.001 else f"{value:.3f}"


# the least value each floor metric can take: a floor there (or below) is no floor at all
FLOOR_METRIC_LEAST = {"frac_below_2_76mm": 0.0, "min_auc": 0.0, "qwk": -1.0}


def below_floor(metrics: dict[str, Any], floor: dict[str, Any]) -> str | None:
    """Why the gold metrics miss the floor (None when they reach it); a missing or undefined metric misses,
    unless the floor is the metric's least value (an admin's "accept any model": e.g. an AUC on a gold set
    of one class is undefined, yet a floor of 0 accepts it)."""
    value = metrics.get(floor["metric"])
    if floor["min"] <= FLOOR_METRIC_LEAST[floor["metric"]]:
        return None
    if isinstance(value, int | float) and math.isfinite(value) and value >= floor["min"]:
        return None
    shown = fmt_metric(value) if isinstance(value, int | float) and math.isfinite(value) else "undefined"
    return f"{floor['metric']} {shown} is below the promotion floor {floor['min']:g}"


def compare(
    candidate: Evaluation, current: Evaluation | None, max_drop: float, floor: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Decide on promotion: at least the floor, better on the primary metric than the promoted model, and no
    output worse by more than ``max_drop``. Below the floor a model stays a candidate even when none is
    promoted."""
    if candidate.n_gold == 0:
        return {"promote": False, "reason": "no adjudicated gold to evaluate on"}
    floor_part = {"floor": floor} if floor else {}
    if floor and (missed := below_floor(candidate.metrics, floor)):
        return {"promote": False, "reason": f"{missed}: stays a candidate", **floor_part}
    if current is None:
        return {"promote": True, "reason": "no promoted model yet", **floor_part}
    drops = {k: current.per_output[k] - v for k, v in candidate.per_output.items() if k in current.per_output}
    worst = max(drops, key=lambda k: drops[k], default="")
    better = candidate.score > current.score
    ok_outputs = not worst or drops[worst] <= max_drop
    reason = f"{candidate.primary} {fmt_metric(candidate.score)} vs {fmt_metric(current.score)}" + (
        "" if ok_outputs else f"; {worst} drops by {fmt_metric(drops[worst])} > {max_drop:g}"
    )
    return {
        "promote": better and ok_outputs,
        "reason": reason,
        "current": current.metrics,
        "drops": {k: round(v, 6) for k, v in drops.items()},
        **floor_part,
    }


@transaction.atomic
def _promote(version: ModelVersion, actor: User | None, reason: str) -> None:
    ModelVersion.objects.filter(
        project=version.project, kind=version.kind, status=ModelVersion.Status.PROMOTED
    ).exclude(pk=version.pk).update(status=ModelVersion.Status.RETIRED)
    version.status, version.promoted_at, version.promoted_by = (
        ModelVersion.Status.PROMOTED,
        timezone.now(),
        actor,
    )
    version.save(update_fields=["status", "promoted_at", "promoted_by"])
    audit_record(
        actor=actor,
        action="model.promote",
        target=version,
        project=version.project,
        data={"kind": version.kind, "version": version.version, "reason": reason},
    )
    _enqueue_prereads(version.pk)


def model_version_register(*, run: TrainingRun, card: dict[str, Any]) -> ModelVersion:
    """Evaluate a finished run's checkpoint on gold, store it as a candidate, promote it if it is better."""
    if existing := ModelVersion.objects.filter(training_run=run).first():
        return existing  # a redelivered task after registration
    assert run.snapshot is not None
    candidate = _evaluate(run.kind, run.checkpoint_dir, run.snapshot.path)
    if candidate is None:
        raise FileNotFoundError(f"run {run.pk} left no checkpoint in {run.checkpoint_dir}")
    current_version = ModelVersion.objects.filter(
        project=run.project, kind=run.kind, status=ModelVersion.Status.PROMOTED
    ).first()
    current = (
        _evaluate(run.kind, current_version.checkpoint_dir, run.snapshot.path) if current_version else None
    )
    policy = TrainingPolicy.objects.filter(project=run.project, kind=run.kind).first()
    decision = compare(
        candidate,
        current,
        policy.max_output_drop if policy else DEFAULT_MAX_OUTPUT_DROP,
        promotion_floor(project=run.project, kind=run.kind),
    )
    with transaction.atomic():
        number = (
            ModelVersion.objects.filter(project=run.project, kind=run.kind).aggregate(n=Max("version"))["n"]
            or 0
        ) + 1
        version = ModelVersion.objects.create(
            project=run.project,
            kind=run.kind,
            version=number,
            training_run=run,
            checkpoint_dir=run.checkpoint_dir,
            card=card,
            gold_metrics=json_safe(
                {
                    "primary": candidate.primary,
                    "n_gold": candidate.n_gold,
                    **candidate.metrics,
                    "per_output": candidate.per_output,
                }
            ),
            comparison=json_safe(
                {**decision, "against_version": current_version.version if current_version else None}
            ),
        )
        audit_record(
            actor=None,
            action="model.register",
            target=version,
            project=run.project,
            data={"kind": run.kind, "version": number, "decision": decision["reason"]},
        )
        if decision["promote"]:
            _promote(version, None, f"automatic: {decision['reason']}")
    return version


def model_version_promote(*, actor: User, version: ModelVersion, reason: str) -> ModelVersion:
    """Promote a version by hand (also how an admin rolls back to an earlier one); audited. Conflict (409)
    for a version whose gold metrics miss its kind's promotion floor."""
    if not reason.strip():
        raise InvalidInput("promoting by hand needs a reason", field="reason")
    if version.status == ModelVersion.Status.PROMOTED:
        raise Conflict(f"version {version.version} is already promoted")
    floor = promotion_floor(project=version.project, kind=version.kind)
    if missed := below_floor(version.gold_metrics, floor):
        raise Conflict(
            f"{version.kind} v{version.version} cannot be promoted: {missed} "
            f"({'this project' if floor['set_by'] == 'policy' else 'the default'}; an admin may change it in "
            "the training policy)"
        )
    _promote(version, actor, f"by hand: {reason.strip()}")
    return version


# --- training ------------------------------------------------------------------------------------
# Training runs: start on the gpu queue (one active run per project and kind, enforced by the
# database), execute on a worker resumably (claim, heartbeat, progress and epoch history through the
# run's row), cancel, and re-dispatch runs whose task message was lost.


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


# --- schedules -----------------------------------------------------------------------------------
# Training policies: when a project retrains a model kind on its own (a django-celery-beat crontab),
# and the nightly check that starts a run once enough new items were labelled.

POLICY_FIELDS = (
    "schedule_enabled",
    "hour_utc",
    "min_new_items",
    "max_output_drop",
    "promotion_floor",
    "config",
)


@transaction.atomic
def training_policy_update(*, actor: User, project: Project, kind: str, **changes: Any) -> TrainingPolicy:
    """Create or change a project's policy for one kind and keep its beat schedule in step."""
    if "config" in changes:
        _check_config(kind, changes["config"])
    policy, _ = TrainingPolicy.objects.get_or_create(project=project, kind=kind)
    for key, value in changes.items():
        if key in POLICY_FIELDS:
            setattr(policy, key, value)
    crontab, _ = CrontabSchedule.objects.get_or_create(
        minute="0",
        hour=str(policy.hour_utc),
        day_of_week="*",
        day_of_month="*",
        month_of_year="*",
        timezone="UTC",
    )
    task, _ = PeriodicTask.objects.update_or_create(
        name=f"train {kind} for project {project.pk}",
        defaults={
            "task": "ml.tasks.training_scheduled_task",
            "crontab": crontab,
            "interval": None,
            "args": json.dumps([project.pk, kind]),
            "enabled": policy.schedule_enabled,
            "queue": "default",
        },
    )
    policy.periodic_task = task
    policy.save()
    audit_record(
        actor=actor,
        action="training.policy",
        target=policy,
        project=project,
        data={k: v for k, v in changes.items() if k in POLICY_FIELDS},
    )
    return policy


def training_scheduled_check(*, project_id: int, kind: str) -> TrainingRun | None:
    """Start a scheduled run when at least ``min_new_items`` items were labelled since the last run."""
    project = Project.objects.select_related("scheme").get(pk=project_id)
    if project.deleted_at is not None:
        return None  # a deleted project takes no new work
    policy = TrainingPolicy.objects.filter(project=project, kind=kind, schedule_enabled=True).first()
    if policy is None:
        return None
    last = (
        TrainingRun.objects.filter(project=project, kind=kind, snapshot__isnull=False).order_by("-id").first()
    )
    before = int(last.snapshot.summary.get("labelled_items", 0)) if last and last.snapshot else 0
    if labelled_items(project=project) - before < policy.min_new_items:
        return None
    try:
        return training_run_start(
            actor=None, project=project, kind=kind, trigger=TrainingRun.Trigger.SCHEDULE
        )
    except Conflict:
        return None  # a run of this kind is already going
