"""Training policies: when a project retrains a model kind on its own (a django-celery-beat crontab), and
the nightly check that starts a run once enough new items were labelled."""

from __future__ import annotations

import json
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from labeling.exceptions import Conflict
from labeling.models import Project
from labeling.services.audit import audit_record
from ml.models import TrainingPolicy, TrainingRun
from ml.selectors import labelled_items
from ml.services.training import _check_config, training_run_start

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
