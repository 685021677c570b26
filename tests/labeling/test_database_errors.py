"""A database that drops the connection or cannot be reached: 503 with Retry-After and a JSON body under /api/
(not a 500), and nothing of the interrupted write is left behind."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from django.db import connection
from django.test import Client

from labeling.models import Assignment, OutboxMessage, Reading, ReadingValue
from tests.labeling.factories import full_values
from tests.labeling.processes import free_port
from tests.labeling.processes import test_database_url as database_url


def _kill_own_backend_before(table: str) -> Callable[..., Any]:
    """An execute wrapper that makes PostgreSQL terminate this connection just before a write to ``table``
    (what a database restart does to a request in flight)."""

    def wrapper(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        if sql.startswith(f'INSERT INTO "{table}"'):
            pid = connection.connection.info.backend_pid
            with psycopg.connect(
                database_url().replace("postgres://", "postgresql://"), autocommit=True
            ) as other:
                other.execute("SELECT pg_terminate_backend(%s)", [pid])
        return execute(sql, params, many, context)

    return wrapper


@pytest.mark.django_db(transaction=True)
def test_a_reading_cut_off_by_a_database_restart_is_a_503_and_leaves_nothing(world, client_for):
    with connection.execute_wrapper(_kill_own_backend_before("labeling_readingvalue")):
        response = client_for(world.reader).post(
            f"/api/assignments/{world.assignment.key}/reading/",
            {"values": full_values(world.project.scheme.parsed, 1)},
            format="json",
        )
    connection.close()  # the test's own connection died with the request's: reconnect
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert response.json() == {
        "detail": "the database is unavailable for a moment; try again (a change is saved whole or not at "
        "all, and the same reading sent again is not stored twice)"
    }
    assert not Reading.objects.exists() and not ReadingValue.objects.exists()
    assert not OutboxMessage.objects.exists()
    assert Assignment.objects.get(pk=world.assignment.pk).status == Assignment.Status.OPEN
    retried = client_for(world.reader).post(
        f"/api/assignments/{world.assignment.key}/reading/",
        {"values": full_values(world.project.scheme.parsed, 1)},
        format="json",
    )
    assert retried.status_code == 201  # the client's retry goes through once the database is back


@contextmanager
def _database_unreachable() -> Iterator[None]:
    """Point the connection at a port where no PostgreSQL listens (a database that is down)."""
    saved = connection.settings_dict["PORT"]
    connection.close()
    connection.settings_dict["PORT"] = str(free_port())
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict["PORT"] = saved


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("path", "json_body"),
    [
        ("/api/projects/", True),  # a DRF view: its authentication reads the session
        ("/dicomweb/studies", True),  # the DICOMweb endpoint
        ("/admin/", False),  # a page outside the API: plain text, still a 503 with Retry-After
    ],
)
def test_a_database_that_is_down_is_a_503_with_retry_after_everywhere(world, path, json_body):
    client = Client(raise_request_exception=False)
    client.force_login(world.admin)
    with _database_unreachable():
        response = client.get(path)
    assert response.status_code == 503, response.content
    assert response["Retry-After"] == "5"
    if json_body:
        assert response.json()["detail"].startswith("the database is unavailable")
    else:
        assert b"the database is unavailable" in response.content
