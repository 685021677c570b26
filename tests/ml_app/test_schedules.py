"""The nightly check starts a run only when enough items were labelled since the last run's snapshot."""

from __future__ import annotations

import pytest

from ml.models import TrainingRun
from ml.selectors import labelled_items
from ml.services.schedules import training_policy_update, training_scheduled_check
from ml.services.snapshots import snapshot_create
from tests.ml_app.conftest import build_campaign


@pytest.mark.django_db
def test_a_scheduled_run_needs_new_labels_since_the_last_snapshot(campaign_settings):
    campaign = build_campaign(campaign_settings, n_mri=3, n_gold=1)
    project = campaign.project
    training_policy_update(
        actor=campaign.admin, project=project, kind="contour", schedule_enabled=True, min_new_items=1
    )
    assert labelled_items(project=project) >= 1
    first = training_scheduled_check(project_id=project.pk, kind="contour")
    assert first is not None and first.trigger == TrainingRun.Trigger.SCHEDULE

    snapshot = snapshot_create(project=project, kind="contour")
    assert snapshot.summary["labelled_items"] == labelled_items(project=project)
    TrainingRun.objects.filter(pk=first.pk).update(state=TrainingRun.State.SUCCEEDED, snapshot=snapshot)
    assert training_scheduled_check(project_id=project.pk, kind="contour") is None  # nothing new since
