"""Kept database connections (``CONN_MAX_AGE``): checked before reuse without a round trip, and a connection
the server ended is still replaced before the request, not answered with a 503 (config.postgresql)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from django.db import connection as test_connection
from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper


@pytest.fixture
def kept(db) -> Iterator[BaseDatabaseWrapper]:
    """A second connection to the test database, as a web thread keeps one between requests."""
    wrapper = connections.create_connection("default")
    wrapper.ensure_connection()
    yield wrapper
    wrapper.close()


def last_query(pid: int) -> str:
    with test_connection.cursor() as cursor:
        cursor.execute("SELECT query FROM pg_stat_activity WHERE pid = %s", [pid])
        row = cursor.fetchone()
    return row[0] if row else ""


def test_a_live_connection_is_checked_without_a_query(kept):
    """Before: every reuse ran SELECT 1, a round trip per request."""
    assert kept.settings_dict["ENGINE"] == "config.postgresql"
    with kept.cursor() as cursor:
        cursor.execute("SELECT 'the request before'")
        pid = kept.connection.info.backend_pid
    assert kept.is_usable()
    assert last_query(pid) == "SELECT 'the request before'"


def test_a_connection_the_server_ended_is_replaced_before_the_request(kept):
    pid = kept.connection.info.backend_pid
    with test_connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
    deadline = time.monotonic() + 5
    while last_query(pid) and time.monotonic() < deadline:  # the server has let it go
        time.sleep(0.02)
    assert not kept.is_usable()
    kept.health_check_enabled, kept.health_check_done = True, False
    kept.close_if_health_check_failed()  # what Django does before a request's first query
    with kept.cursor() as cursor:
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,) and kept.connection.info.backend_pid != pid
