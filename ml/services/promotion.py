"""Evaluate candidates on adjudicated gold, promote only a better model, and pre-read cases with it."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from labeling.dicom import LocalFolderStore, store_open
from labeling.exceptions import Conflict, InvalidInput
from labeling.models import Case
from labeling.services.audit import audit_record
from ml.models import ModelVersion, Prediction, TrainingPolicy, TrainingRun
from ml.pipelines import Evaluation, pipeline_for
from ml.services.training import _finite

log = logging.getLogger(__name__)
DEFAULT_MAX_OUTPUT_DROP = 0.02


def _evaluate(kind: str, checkpoint_dir: str, snapshot_dir: str) -> Evaluation | None:
    try:
        return pipeline_for(kind).evaluate(Path(checkpoint_dir), Path(snapshot_dir))
    except FileNotFoundError:
        return None  # e.g. the promoted version's weights were removed


def compare(candidate: Evaluation, current: Evaluation | None, max_drop: float) -> dict[str, Any]:
    """Decide on promotion: better on the primary metric, and no output worse by more than ``max_drop``."""
    if candidate.n_gold == 0:
        return {"promote": False, "reason": "no adjudicated gold to evaluate on"}
    if current is None:
        return {"promote": True, "reason": "no promoted model yet"}
    drops = {k: current.per_output[k] - v for k, v in candidate.per_output.items() if k in current.per_output}
    worst = max(drops, key=lambda k: drops[k], default="")
    better = candidate.score > current.score
    ok_outputs = not worst or drops[worst] <= max_drop
    reason = f"{candidate.primary} {candidate.score:.4f} vs {current.score:.4f}" + (
        "" if ok_outputs else f"; {worst} drops by {drops[worst]:.4f} > {max_drop}"
    )
    return {
        "promote": better and ok_outputs,
        "reason": reason,
        "current": current.metrics,
        "drops": {k: round(v, 6) for k, v in drops.items()},
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
    transaction.on_commit(lambda: _enqueue_prereads(version.pk))


def _enqueue_prereads(version_id: int) -> None:
    from ml.tasks import prereads_task

    prereads_task.delay(version_id)


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
    decision = compare(candidate, current, policy.max_output_drop if policy else DEFAULT_MAX_OUTPUT_DROP)
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
            gold_metrics=_finite(
                {
                    "primary": candidate.primary,
                    "n_gold": candidate.n_gold,
                    **candidate.metrics,
                    "per_output": candidate.per_output,
                }
            ),
            comparison=_finite(
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
    """Promote a version by hand (also how an admin rolls back to an earlier one); audited."""
    if not reason.strip():
        raise InvalidInput("promoting by hand needs a reason", field="reason")
    if version.status == ModelVersion.Status.PROMOTED:
        raise Conflict(f"version {version.version} is already promoted")
    _promote(version, actor, f"by hand: {reason.strip()}")
    return version


def case_record(case: Case, series_for: list[str]) -> dict[str, Any]:
    """A case in the snapshot's case format (series with files), for prediction."""
    store = store_open(dicomweb_url=settings.DICOMWEB_URL, folder=settings.DICOM_FOLDER)
    if not isinstance(store, LocalFolderStore):
        from ml.services.snapshots import _series_files

        folder = Path(settings.ML_WEIGHTS_DIR) / "prereads" / case.study.study_uid
        return {"case_id": case.pk, "series": _series_files(case, series_for, folder)}
    series = []
    for s in case.study.series.prefetch_related("instances").order_by("id"):
        if series_for and s.description not in series_for:
            continue
        files = [
            str(store.file_path(case.study.study_uid, s.series_uid, i.sop_uid)) for i in s.instances.all()
        ]
        series.append(
            {"description": s.description, "modality": s.modality, "series_uid": s.series_uid, "files": files}
        )
    return {"case_id": case.pk, "study_uid": case.study.study_uid, "series": series}


def prereads_compute(*, version_id: int, batch: int = 50) -> int:
    """AI pre-reads of the project's cases that this version has not read yet; returns how many were made.

    Idempotent (a unique row per version and case); a retired version stops early.
    """
    from ml.services.snapshots import SERIES_FOR_KIND

    version = ModelVersion.objects.select_related("project").get(pk=version_id)
    pipeline = pipeline_for(version.kind)
    done = 0
    todo = (
        version.project.cases.exclude(predictions__model_version=version)
        .select_related("study")
        .order_by("id")
    )
    for case in todo[:batch]:
        if not ModelVersion.objects.filter(pk=version.pk, status=ModelVersion.Status.PROMOTED).exists():
            break
        try:
            output = pipeline.predict(
                Path(version.checkpoint_dir), case_record(case, SERIES_FOR_KIND[version.kind])
            )
        except Exception:  # one unreadable case must not stop the others
            log.exception("pre-read of case %s by %s failed", case.pk, version)
            continue
        Prediction.objects.get_or_create(
            model_version=version, case=case, defaults={"output": _finite(output)}
        )
        done += 1
    if todo.exists() and done:
        _enqueue_prereads(version.pk)  # the next batch
    return done
