"""A run's record: the per-epoch history is JSON (what the training panel charts), appended without a read so
that writers at the same moment (the worker's reporter, its heartbeat, the recovery task) lose nothing."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from ml.models import TrainingRun
from ml.services.training import _finish, _Reporter, training_runs_recover
from tests.labeling.factories import ProjectFactory, UserFactory


@pytest.mark.django_db
def test_finished_epochs_are_json_rows_the_run_api_serves(client_for):
    run = TrainingRun.objects.create(project=ProjectFactory(), kind="contour", state="running")
    reporter = _Reporter(run)
    reporter.progress({"epoch": 0, "epochs": 2, "step": 3, "loss": 0.95, "metrics": {}})  # mid-epoch
    reporter.progress(
        {
            "epoch": 0,
            "epochs": 2,
            "step": -1,
            "loss": 0.9134,
            "metrics": {"val_rmse_mm": 4.25, "val_loss": 0.88},
        }
    )
    reporter.progress(
        {"epoch": 1, "epochs": 2, "step": -1, "loss": float("nan"), "metrics": {"val_loss": float("inf")}}
    )
    _finish(run.pk, TrainingRun.State.SUCCEEDED)

    staff = UserFactory(is_staff=True)
    body = client_for(staff).get(f"/api/projects/{run.project_id}/training/runs/{run.pk}/").json()
    assert body["history"] == [
        {"epoch": 0, "loss": 0.9134, "metrics": {"val_rmse_mm": 4.25, "val_loss": 0.88}},
        {"epoch": 1, "loss": None, "metrics": {"val_loss": None}},
    ]
    assert body["state"] == "succeeded"
    lines = body["log"].splitlines()
    assert lines[0] == "epoch 0: loss 0.9134 val_rmse_mm 4.25 val_loss 0.88"
    assert lines[1] == "epoch 1: loss nan" and lines[2].endswith(" succeeded")


@pytest.mark.django_db(transaction=True)
def test_appends_at_the_same_moment_lose_no_line():
    run = TrainingRun.objects.create(project=ProjectFactory(), kind="contour", state="running")
    barrier = threading.Barrier(4)

    def report(worker: int) -> None:
        try:
            reporter = _Reporter(run)
            barrier.wait(timeout=30)
            for epoch in range(15):
                reporter.progress({"epoch": worker * 100 + epoch, "epochs": 1000, "step": -1, "loss": 0.5})
        finally:
            connection.close()

    threads = [threading.Thread(target=report, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    TrainingRun.objects.filter(pk=run.pk).update(state="queued")
    training_runs_recover()  # not lost yet: must not touch the record
    run.refresh_from_db()
    assert sorted(row["epoch"] for row in run.history) == sorted(
        w * 100 + e for w in range(4) for e in range(15)
    )
    assert len(run.log.splitlines()) == 60


@pytest.mark.django_db
def test_a_run_or_a_policy_with_an_unknown_config_key_is_refused_naming_it(client_for):
    project = ProjectFactory()
    staff = UserFactory(is_staff=True)
    client = client_for(staff)
    base = f"/api/projects/{project.pk}/training"
    started = client.post(f"{base}/runs/start/", {"kind": "contour", "config": {"epoch": 10}}, format="json")
    assert started.status_code == 400 and "unknown key 'epoch'" in started.json()["detail"]
    assert not TrainingRun.objects.filter(project=project).exists()
    policy = client.post(f"{base}/policies/lesions/update/", {"config": {"epoch": 10}}, format="json")
    assert policy.status_code == 400 and "unknown key 'epoch'" in policy.json()["detail"]
    assert not project.training_policies.exists()
    ok = client.post(f"{base}/policies/lesions/update/", {"config": {"epochs": 10}}, format="json")
    assert ok.status_code == 200 and ok.json()["config"] == {"epochs": 10}
