"""Round trips through real processes: a Celery worker on Redis, and a web server that restarts."""

import pytest
import requests

from config.celery import app, ping
from labeling.models import AuditEvent, ConsensusRun, Reading
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


@pytest.mark.django_db(transaction=True)
def test_a_task_round_trips_through_redis_and_a_real_worker(tmp_path):
    app.control.purge()
    with running(celery_worker_cmd(), process_env(), tmp_path / "worker.log"):
        assert ping.delay("hello").get(timeout=60) == "hello"
        assert ping.apply_async(("gpu",), queue="gpu").get(timeout=30) == "gpu"


@pytest.mark.django_db(transaction=True)
def test_a_submitted_reading_reaches_the_consensus_through_the_worker(world, client_for, tmp_path):
    app.control.purge()
    with running(celery_worker_cmd(), process_env(), tmp_path / "worker.log"):
        for assignment, user in (
            (world.assignment, world.reader),
            (world.other_assignment, world.other_reader),
        ):
            response = client_for(user).post(
                f"/api/assignments/{assignment.key}/reading/",
                {"values": full_values(world.project.scheme.parsed, 1)},
                format="json",
            )
            assert response.status_code == 201
        wait_until(
            lambda: ConsensusRun.objects.filter(
                project=world.project, n_readings=2 * 8, lesion="bme"
            ).exists(),
            timeout_s=60,
            what="the worker's consensus refit",
        )
    runs = ConsensusRun.objects.filter(project=world.project, is_current=True)
    assert sorted(runs.values_list("lesion", flat=True)) == [
        "ankylosis",
        "bme",
        "erosion",
        "fat",
        "sclerosis",
    ]


@pytest.mark.django_db(transaction=True)
def test_a_submitted_reading_survives_a_server_restart_and_is_audited(world, tmp_path):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    body = {"values": full_values(world.project.scheme.parsed, 1)}
    with running(web_server_cmd(port), process_env(), tmp_path / "web1.log"):
        wait_until(lambda: http_up(f"{base}/api/schema/"), timeout_s=60, what="the web server")
        key = requests.post(f"{base}/api/auth/token/", json={"username": "reader", "password": "pw"}).json()[
            "token"
        ]
        auth = {"Authorization": f"Token {key}"}
        created = requests.post(
            f"{base}/api/assignments/{world.assignment.key}/reading/", json=body, headers=auth
        )
        assert created.status_code == 201, created.text
        reading_id = Reading.objects.get(assignment=world.assignment).pk
    assert not http_up(f"{base}/api/schema/")
    with running(web_server_cmd(port), process_env(), tmp_path / "web2.log"):
        wait_until(lambda: http_up(f"{base}/api/schema/"), timeout_s=60, what="the restarted web server")
        again = requests.get(f"{base}/api/assignments/{world.assignment.key}/readings/1/", headers=auth)
        assert again.status_code == 200
        assert {v["value"] for v in again.json()["values"]} == {1}
    assert Reading.objects.filter(pk=reading_id).exists()
    event = AuditEvent.objects.get(action="reading.submit", object_id=str(reading_id))
    assert event.actor == world.reader and event.request_id and event.ip == "127.0.0.1"
