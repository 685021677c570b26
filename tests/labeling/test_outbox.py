"""Transactional outbox: a broker that is down never turns a reading into a 500, and the follow-up work runs
once the broker is back; two drainers never send the same message."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
import requests
from django.db import connection
from django.utils import timezone
from django_celery_beat.models import PeriodicTask
from django_celery_beat.schedulers import DatabaseScheduler

from config.celery import FULL_REFIT_ENTRY, JOBS_RECOVER_ENTRY, OUTBOX_ENTRY, app
from labeling.models import ConsensusRun, OutboxMessage, Reading
from labeling.services.outbox import outbox_drain
from tests.labeling.factories import full_values
from tests.labeling.processes import (
    celery_worker_cmd,
    free_port,
    http_up,
    process_env,
    running,
    wait_until,
    web_server_cmd,
)

REFIT = "labeling.tasks.consensus_refit_task"


@pytest.mark.django_db(transaction=True)
def test_readings_are_accepted_while_the_broker_is_down_and_refit_once_it_is_back(world, tmp_path):
    port, dead_broker = free_port(), f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    base = f"http://127.0.0.1:{port}"
    web_env = process_env(CONCORD_TEST_BROKER_URL=dead_broker)
    with running(web_server_cmd(port), web_env, tmp_path / "web.log"):
        wait_until(lambda: http_up(f"{base}/api/schema/"), timeout_s=60, what="the web server")
        for assignment, user in ((world.assignment, "reader"), (world.other_assignment, "reader2")):
            token = requests.post(f"{base}/api/auth/token/", json={"username": user, "password": "pw"})
            created = requests.post(
                f"{base}/api/assignments/{assignment.key}/reading/",
                json={"values": full_values(world.project.scheme.parsed, 1)},
                headers={"Authorization": f"Token {token.json()['token']}"},
                timeout=60,
            )
            assert created.status_code == 201, created.text
    assert Reading.objects.filter(project=world.project).count() == 2
    pending = list(OutboxMessage.objects.filter(task=REFIT, sent_at__isnull=True))
    assert len(pending) == 2 and all("OperationalError" in m.last_error for m in pending)
    assert not ConsensusRun.objects.exists()

    app.control.purge()
    with running(celery_worker_cmd(), process_env(), tmp_path / "worker.log"):
        assert outbox_drain() == 2  # what beat's drain does once the broker answers again
        wait_until(
            lambda: ConsensusRun.objects.filter(project=world.project, lesion="bme", n_readings=16).exists(),
            timeout_s=60,
            what="the refit the readings asked for",
        )
    assert not OutboxMessage.objects.filter(sent_at__isnull=True).exists()


@pytest.mark.django_db(transaction=True)
def test_a_reading_does_not_wait_for_a_broker_that_is_down(world, client_for):
    """The publish after the commit fails at once: kombu's re-connecting cost each request about 6 s."""
    reader = client_for(world.reader)
    assert reader.get(f"/api/assignments/{world.assignment.key}/").status_code == 200  # warm: imports, scheme
    app.conf.broker_write_url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    try:
        began = time.monotonic()
        created = reader.post(
            f"/api/assignments/{world.assignment.key}/reading/",
            {"values": full_values(world.project.scheme.parsed, 1)},
            format="json",
        )
        took = time.monotonic() - began
    finally:
        app.conf.broker_write_url = None
    assert created.status_code == 201, created.content
    assert took < 2.0, f"the reading took {took:.1f} s"
    (pending,) = OutboxMessage.objects.filter(task=REFIT, sent_at__isnull=True)
    assert "Connection refused" in pending.last_error


@pytest.mark.django_db(transaction=True)
def test_two_drainers_at_once_send_each_message_exactly_once():
    app.control.purge()
    # pending, as when the sends after commit failed; project 0 does not exist: a no-op task
    messages = OutboxMessage.objects.bulk_create([OutboxMessage(task=REFIT, args=[0]) for _ in range(60)])
    counts: list[int] = []

    def drain() -> None:
        try:
            while sent := outbox_drain(limit=7):
                counts.append(sent)
        finally:
            connection.close()

    threads = [threading.Thread(target=drain) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sum(counts) == len(messages)
    assert app.control.purge() == len(messages)  # in the broker once each
    assert set(OutboxMessage.objects.values_list("attempts", flat=True)) == {1}
    assert not OutboxMessage.objects.filter(sent_at__isnull=True).exists()


@pytest.mark.django_db(transaction=True)
def test_a_live_lease_is_left_alone_and_an_expired_one_is_sent_again():
    app.control.purge()
    now = timezone.now()
    held = OutboxMessage.objects.create(task=REFIT, args=[0], leased_until=now + timedelta(seconds=60))
    died = OutboxMessage.objects.create(task=REFIT, args=[0], leased_until=now - timedelta(seconds=1))
    assert outbox_drain() == 1
    assert OutboxMessage.objects.get(pk=died.pk).sent_at is not None
    assert OutboxMessage.objects.get(pk=held.pk).sent_at is None  # its drainer may still be sending it
    assert app.control.purge() == 1


@pytest.mark.django_db(transaction=True)  # the scheduler closes database connections as beat does
def test_beat_drains_the_outbox_and_recovers_jobs_on_the_configured_periods(settings):
    app.finalize()
    DatabaseScheduler(app=app)  # what `celery beat` does at start: copy the fixed entries into the tables
    for name, task, period_s in (
        (OUTBOX_ENTRY, "labeling.tasks.outbox_drain_task", settings.OUTBOX_DRAIN_EVERY_S),
        (JOBS_RECOVER_ENTRY, "labeling.tasks.jobs_recover_task", settings.JOB_RECOVER_EVERY_S),
        (
            FULL_REFIT_ENTRY,
            "labeling.tasks.consensus_full_refits_task",
            settings.CONSENSUS_FULL_REFIT_EVERY_S,
        ),
    ):
        entry = PeriodicTask.objects.get(name=name)
        assert entry.task == task and entry.enabled
        assert timedelta(**{entry.interval.period: entry.interval.every}).total_seconds() == period_s
        assert app.amqp.router.route({}, entry.task)["queue"].name == "default"
