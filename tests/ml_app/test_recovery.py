"""A training run whose task message was lost (a broker restart, a purged queue) is dispatched again by a beat
task; the training task is safe to receive twice."""

from __future__ import annotations

import re
import time
from datetime import timedelta

import pytest
from django.utils import timezone
from django_celery_beat.models import PeriodicTask
from django_celery_beat.schedulers import DatabaseScheduler

from config.celery import RECOVER_ENTRY, app
from labeling.models import AuditEvent
from labeling.services.jobs import Heartbeat
from ml.models import ModelVersion, TrainingRun
from ml.services.training import training_run_execute, training_run_start, training_runs_recover
from ml.tasks import training_runs_recover_task
from tests.labeling.factories import ProjectFactory
from tests.labeling.processes import celery_worker_cmd, process_env, running, wait_until
from tests.ml_app.conftest import TINY_CONTOUR, build_campaign


def _run(
    state: str, *, age_s: float, heartbeat_age_s: float | None = None, kind: str = "contour"
) -> TrainingRun:
    now = timezone.now()
    run = TrainingRun.objects.create(project=ProjectFactory(), kind=kind, state=state)
    TrainingRun.objects.filter(pk=run.pk).update(
        created_at=now - timedelta(seconds=age_s),
        heartbeat_at=None if heartbeat_age_s is None else now - timedelta(seconds=heartbeat_age_s),
    )
    return run


@pytest.mark.django_db(transaction=True)  # the scheduler closes database connections as beat does
def test_the_recovery_task_is_on_beat_every_configured_period_and_on_the_default_queue(settings):
    app.finalize()
    DatabaseScheduler(app=app)  # what `celery beat` does at start: copy the fixed entries into the tables
    entry = PeriodicTask.objects.get(name=RECOVER_ENTRY)
    assert entry.task == "ml.tasks.training_runs_recover_task" and entry.enabled
    assert timedelta(**{entry.interval.period: entry.interval.every}).total_seconds() == (
        settings.ML_RECOVER_EVERY_S
    )
    assert app.amqp.router.route({}, entry.task)["queue"].name == "default"


@pytest.mark.django_db
def test_only_runs_without_a_sign_of_life_are_re_dispatched_once_per_period(
    settings, django_capture_on_commit_callbacks
):
    settings.ML_REDISPATCH_AFTER_S, settings.ML_HEARTBEAT_STALE_S = 600, 120
    lost_queued = _run("queued", age_s=700)
    young = _run("queued", age_s=60)  # its message may still be on the way
    lost_running = _run("running", age_s=3600, heartbeat_age_s=300, kind="lesions")
    alive = _run("running", age_s=3600, heartbeat_age_s=5)  # a live worker is on it
    _run("succeeded", age_s=3600)
    app.control.purge()

    with django_capture_on_commit_callbacks(execute=True):
        recovered = training_runs_recover()

    assert recovered == [lost_queued.pk, lost_running.pk]
    assert app.control.purge() == 2  # one training task message each, now in the broker
    events = AuditEvent.objects.filter(action="training.redispatch").order_by("object_id")
    assert [e.object_id for e in events] == [str(lost_queued.pk), str(lost_running.pk)]
    assert re.search(
        r"re-dispatched: queued for 70\d s with no sign of a worker",
        TrainingRun.objects.get(pk=lost_queued.pk).log,
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert training_runs_recover() == []  # dispatched just now: its message gets a period to arrive
        later = timezone.now() + timedelta(seconds=601)  # nobody took any of them meanwhile: all are lost
        assert training_runs_recover(now=later) == [lost_queued.pk, young.pk, lost_running.pk, alive.pk]
    assert app.control.purge() == 4


@pytest.mark.django_db
def test_a_second_delivery_while_a_live_worker_holds_the_run_does_nothing():
    run = _run("running", age_s=60, heartbeat_age_s=1)
    TrainingRun.objects.filter(pk=run.pk).update(attempts=1, log="attempt 1\n")
    training_run_execute(run_id=run.pk)
    after = TrainingRun.objects.get(pk=run.pk)
    assert (after.state, after.attempts, after.log, after.snapshot_id) == ("running", 1, "attempt 1\n", None)


@pytest.mark.django_db
def test_a_run_cancelled_while_its_worker_was_gone_ends_at_its_next_delivery():
    run = _run("running", age_s=3600, heartbeat_age_s=600)
    TrainingRun.objects.filter(pk=run.pk).update(cancel_requested=True, attempts=1)
    training_run_execute(run_id=run.pk)
    after = TrainingRun.objects.get(pk=run.pk)
    assert (after.state, after.attempts, after.snapshot_id) == ("cancelled", 1, None)
    assert after.finished_at and "asked while no worker was on it" in after.log


@pytest.mark.django_db(transaction=True)
def test_the_heartbeat_stays_fresh_while_a_worker_is_busy_without_progress():
    run = _run("running", age_s=60, heartbeat_age_s=600)
    with Heartbeat(TrainingRun, run.pk, every_s=0.1, state=TrainingRun.State.RUNNING):
        wait_until(
            lambda: timezone.now() - TrainingRun.objects.get(pk=run.pk).heartbeat_at < timedelta(seconds=1),
            timeout_s=10,
            interval_s=0.05,
            what="a heartbeat",
        )
    stopped_at = TrainingRun.objects.get(pk=run.pk).heartbeat_at
    time.sleep(0.3)
    assert TrainingRun.objects.get(pk=run.pk).heartbeat_at == stopped_at  # no beats after the work ends


@pytest.mark.django_db(transaction=True)
def test_a_run_whose_message_was_lost_is_re_dispatched_by_the_beat_task_and_trained_once(campaign_settings):
    campaign = build_campaign(campaign_settings, n_mri=3, n_gold=1)
    app.control.purge()
    run = training_run_start(
        actor=None, project=campaign.project, kind="contour", config={**TINY_CONTOUR, "epochs": 1}
    )
    app.control.purge()  # the broker restarted without it
    TrainingRun.objects.filter(pk=run.pk).update(created_at=timezone.now() - timedelta(seconds=120))
    env = process_env(
        DICOM_FOLDER=str(campaign.root / "store"),
        DICOMWEB_URL="",
        ML_WEIGHTS_DIR=str(campaign.root / "models"),
        ML_REDISPATCH_AFTER_S="60",
    )
    with running(celery_worker_cmd(), env, campaign.root / "worker.log"):
        training_runs_recover_task.delay()  # what beat sends every ML_RECOVER_EVERY_S
        wait_until(
            lambda: TrainingRun.objects.get(pk=run.pk).state not in TrainingRun.ACTIVE,
            timeout_s=300,
            interval_s=0.5,
            what="the re-dispatched run",
        )
    done = TrainingRun.objects.get(pk=run.pk)
    assert done.state == TrainingRun.State.SUCCEEDED, done.error + done.log
    assert done.attempts == 1 and "re-dispatched: queued for" in done.log
    training_run_execute(run_id=run.pk)  # the lost message turns up after all: nothing happens twice
    again = TrainingRun.objects.get(pk=run.pk)
    assert (again.attempts, again.log, again.finished_at) == (1, done.log, done.finished_at)
    assert ModelVersion.objects.filter(training_run=run).count() == 1
