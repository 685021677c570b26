"""The retraining loop end to end: readings → consensus → run started from the API → progress → candidate
evaluated on gold → promoted → pre-reads; one active run per kind; a killed worker's run resumes."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest
from django.db import connection

from config.celery import app
from labeling.exceptions import Conflict
from ml.models import ModelVersion, Prediction, TrainingRun
from ml.services.training import training_run_start
from tests.labeling.processes import celery_worker_cmd, process_env, running, wait_until
from tests.ml_app.conftest import TINY_CONTOUR, build_campaign


def _worker_env(campaign_root, **extra):
    return process_env(
        DICOM_FOLDER=str(campaign_root / "store"),
        DICOMWEB_URL="",
        ML_WEIGHTS_DIR=str(campaign_root / "models"),
        **extra,
    )


@pytest.mark.django_db(transaction=True)
def test_two_simultaneous_starts_create_one_run(campaign_settings, client_for):
    from tests.labeling.factories import ProjectFactory, UserFactory

    project = ProjectFactory()
    outcomes = []

    def start():
        try:
            outcomes.append(training_run_start(actor=None, project=project, kind="contour").pk)
        except Conflict as exc:
            outcomes.append(str(exc))
        finally:
            connection.close()

    threads = [threading.Thread(target=start) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert TrainingRun.objects.filter(project=project).count() == 1
    assert sum(isinstance(o, int) for o in outcomes) == 1
    assert any(isinstance(o, str) and "already queued" in o for o in outcomes)
    staff = UserFactory(username="ml-staff", is_staff=True)
    response = client_for(staff).post(
        f"/api/projects/{project.pk}/training/runs/start/", {"kind": "contour"}, format="json"
    )
    assert response.status_code == 409 and "already" in response.json()["detail"]
    bad = client_for(staff).post(
        f"/api/projects/{project.pk}/training/runs/start/", {"kind": "ctgrade"}, format="json"
    )
    assert bad.status_code == 400  # a CT model on an MRI project


@pytest.mark.django_db(transaction=True)
def test_readings_to_promoted_model_and_prereads_through_a_real_worker(campaign_settings, client_for):
    campaign = build_campaign(campaign_settings, n_mri=4)
    admin = client_for(campaign.admin)
    # a 2-epoch model is far from the default floor (0.8 of the lines within 2.76 mm): this project accepts any
    floor = admin.post(
        f"/api/projects/{campaign.project.pk}/training/policies/contour/update/",
        {"promotion_floor": 0.0},
        format="json",
    )
    assert floor.status_code == 200, floor.content
    app.control.purge()
    with running(celery_worker_cmd(), _worker_env(campaign.root), campaign.root / "worker.log"):
        started = admin.post(
            f"/api/projects/{campaign.project.pk}/training/runs/start/",
            {"kind": "contour", "config": TINY_CONTOUR},
            format="json",
        )
        assert started.status_code == 201, started.content
        url = f"/api/projects/{campaign.project.pk}/training/runs/{started.json()['id']}/"
        seen = []

        def finished():
            body = admin.get(url).json()
            if body["progress"]:
                seen.append(body["progress"])
            return body["state"] in ("succeeded", "failed", "cancelled")

        wait_until(finished, timeout_s=300, interval_s=0.5, what="the training run")
        run = admin.get(url).json()
        assert run["state"] == "succeeded", run["error"] + run["log"]
        assert seen and {"epoch", "loss", "fraction"} <= set(seen[-1])
        version = ModelVersion.objects.get(training_run_id=run["id"])
        assert version.gold_metrics["n_gold"] == 2 and "frac_below_2_76mm" in version.gold_metrics
        assert version.status == ModelVersion.Status.PROMOTED, version.comparison
        assert version.card["data_snapshot_id"]
        wait_until(
            lambda: Prediction.objects.filter(model_version=version).count() == 4,
            timeout_s=120,
            what="AI pre-reads of every case",
        )
    case_id = Prediction.objects.filter(model_version=version).first().case_id
    listed = admin.get(f"/api/projects/{campaign.project.pk}/cases/{case_id}/predictions/").json()
    assert listed[0]["kind"] == "contour" and "contours" in listed[0]["output"]


@pytest.mark.django_db(transaction=True)
def test_a_killed_worker_resumes_the_run_from_its_checkpoint(campaign_settings):
    campaign = build_campaign(campaign_settings, n_mri=3, n_gold=1)
    config = {**TINY_CONTOUR, "epochs": 3}
    env = _worker_env(campaign.root, CELERY_VISIBILITY_TIMEOUT_S="3", ML_HEARTBEAT_STALE_S="2")
    app.control.purge()
    with running(celery_worker_cmd(), env, campaign.root / "worker1.log") as worker:
        run = training_run_start(actor=None, project=campaign.project, kind="contour", config=config)
        wait_until(
            lambda: TrainingRun.objects.get(pk=run.pk).progress.get("epoch", -1) >= 1,
            timeout_s=240,
            interval_s=0.2,
            what="the run to finish its first epochs",
        )
        os.killpg(worker.pid, signal.SIGKILL)
    killed = TrainingRun.objects.get(pk=run.pk)
    assert killed.state == TrainingRun.State.RUNNING and killed.attempts == 1
    time.sleep(4)  # past the visibility timeout: the broker hands the unacknowledged task out again
    with running(celery_worker_cmd(), env, campaign.root / "worker2.log"):
        wait_until(
            lambda: TrainingRun.objects.get(pk=run.pk).state not in TrainingRun.ACTIVE,
            timeout_s=300,
            what="the resumed run",
        )
    resumed = TrainingRun.objects.get(pk=run.pk)
    assert resumed.state == TrainingRun.State.SUCCEEDED, resumed.error + resumed.log
    assert resumed.attempts == 2 and "resuming" in resumed.log
    # the same run uninterrupted, in-process, gives the same card
    from ml.pipelines import TrainRequest, pipeline_for

    fresh = pipeline_for("contour").train(
        TrainRequest(
            snapshot_dir=Path(resumed.snapshot.path),
            checkpoint_dir=campaign.root / "uninterrupted",
            config=config,
            snapshot_id=resumed.snapshot.content_hash,
        )
    )
    card = ModelVersion.objects.get(training_run=resumed).card
    for key in ("best_metric", "best_epoch", "data_snapshot_id", "model_kind"):
        assert card[key] == fresh[key], key
    assert len(card["metrics_history"]) == len(fresh["metrics_history"]) == 3
    for resumed_epoch, fresh_epoch in zip(card["metrics_history"], fresh["metrics_history"], strict=True):
        assert resumed_epoch == pytest.approx(fresh_epoch, rel=1e-5)
