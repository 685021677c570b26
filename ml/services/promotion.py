"""Model versions: evaluate a finished run's checkpoint on the snapshot's gold, register it, and promote it
when it beats the promoted one without any output dropping by more than the policy allows (or by hand,
which is also how an admin rolls back)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from labeling.exceptions import Conflict, InvalidInput
from labeling.models import Project
from labeling.services.audit import audit_record
from ml.models import ModelKind, ModelVersion, TrainingPolicy, TrainingRun
from ml.pipelines import Evaluation, pipeline_for
from ml.services.prereads import _enqueue_prereads
from ml.services.snapshots import json_safe

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
