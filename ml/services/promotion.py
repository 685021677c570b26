"""Model versions: evaluate a finished run's checkpoint on the snapshot's gold, register it, and promote it
when it beats the promoted one without any output dropping by more than the policy allows (or by hand,
which is also how an admin rolls back)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from labeling.exceptions import Conflict, InvalidInput
from labeling.services.audit import audit_record
from ml.models import ModelVersion, TrainingPolicy, TrainingRun
from ml.pipelines import Evaluation, pipeline_for
from ml.services import json_safe as _finite
from ml.services.prereads import _enqueue_prereads

DEFAULT_MAX_OUTPUT_DROP = 0.02


def _evaluate(kind: str, checkpoint_dir: str, snapshot_dir: str) -> Evaluation | None:
    try:
        return pipeline_for(kind).evaluate(
            Path(checkpoint_dir), Path(snapshot_dir), device=settings.ML_DEVICE
        )
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
