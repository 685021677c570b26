"""schemathesis against /api/schema/, as each role: no server error, every response as the schema says.

Each API operation is fuzzed as anonymous, reader, adjudicator, project admin and staff, in-process through
Django's WSGI application on the real PostgreSQL test database (each operation and role in its own rolled-back
transaction). Path parameters are drawn from the generated values and the ids of a real project, case,
assignment and membership, so requests reach the views' logic and not only the 404 of an unknown id.

``FUZZ_EXAMPLES`` (default 4) bounds the examples per operation, each sent as every role, and they are the same
in every run, so ``make test`` stays fast and steady; ``make fuzz`` runs a longer, random session with
schemathesis' coverage phase. Below the fuzzing: a plain test for each failure it found.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import hypothesis
import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from config.wsgi import application
from labeling.api.authentication import token_issue
from tests.labeling.conftest import World

FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "4"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]

#: The ids of the current test's real objects, by path parameter name (filled by the ``fuzz_world`` fixture).
REAL_IDS: dict[str, list[Any]] = {}

#: ``make fuzz`` adds schemathesis' coverage phase (boundary values, every negative case, unexpected methods).
FUZZ_COVERAGE = os.environ.get("FUZZ_COVERAGE", "") == "1"

schema = schemathesis.openapi.from_dict(
    SchemaGenerator().get_schema(request=None, public=True),
    config=SchemathesisConfig.from_dict(
        {
            "generation": {"max-examples": FUZZ_EXAMPLES},
            "phases": {"coverage": {"enabled": FUZZ_COVERAGE}},
        }
    ),
)
schema.app = application


@schema.hook
def flatmap_path_parameters(context: Any, path_parameters: dict[str, Any] | None) -> st.SearchStrategy:
    """Either the generated value or a real one, for each path parameter with real values."""
    if not path_parameters:
        return st.just(path_parameters)
    choices = {
        name: st.sampled_from([value, *REAL_IDS[name]]) if name in REAL_IDS else st.just(value)
        for name, value in path_parameters.items()
    }
    return st.fixed_dictionaries(choices)


@pytest.fixture
def in_test_transaction() -> Iterator[None]:
    """Keep Django from closing the test's connection (its transaction) at each request, as its test client does."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def role_headers(world: World, in_test_transaction: None) -> dict[str, dict[str, str]]:
    """The request headers of each role (a token each; none for anonymous), admin last: it may delete."""
    REAL_IDS.clear()
    REAL_IDS.update(
        project_id=[world.project.pk],
        case_id=[world.case.pk],
        key=[world.assignment.key, world.other_assignment.key],
        membership_id=list(world.project.memberships.values_list("pk", flat=True)[:2]),
        version=[1],
    )
    users = {
        "reader": world.reader,
        "adjudicator": world.adjudicator,
        "staff": world.staff,
        "admin": world.admin,
    }
    return {"anonymous": {}} | {
        role: {"Authorization": f"Token {token_issue(user).key}"} for role, user in users.items()
    }


@schema.parametrize()
@hypothesis.settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    suppress_health_check=list(hypothesis.HealthCheck),
    derandomize=not FUZZ_COVERAGE,  # the same examples in every make test; make fuzz explores
)
def test_api_conforms_to_its_schema(case: Any, role_headers: dict[str, dict[str, str]]) -> None:
    """Each generated request, sent as each role in turn."""
    for role, headers in role_headers.items():
        try:
            case.call_and_validate(headers=headers, checks=CHECKS)
        except Exception as exc:
            exc.add_note(f"(sent as {role})")
            raise


# --- what the fuzzing found, each pinned by a plain test -------------------------------------------------


def test_a_url_no_route_matches_is_a_json_404_on_api_paths(world: World, client_for: Any) -> None:
    response = client_for(world.admin).get("/api/projects/-1/")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json" and response.json() == {"detail": "not found"}


def test_a_refused_csrf_check_is_a_json_403_on_api_paths(world: World) -> None:
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(world.admin)
    response = client.post("/api/auth/logout/")
    assert response.status_code == 403
    assert response["Content-Type"] == "application/json" and "CSRF" in response.json()["detail"]


def test_list_endpoints_document_the_page_they_answer(world: World, client_for: Any) -> None:
    spec = SchemaGenerator().get_schema(request=None, public=True)
    documented = spec["paths"]["/api/studies/"]["get"]["responses"]["200"]["content"]["application/json"]
    assert documented["schema"]["$ref"] == "#/components/schemas/PaginatedStudyOutputList"
    body = client_for(world.staff).get("/api/studies/").json()
    assert set(body) == {"count", "next", "previous", "results"}


def test_error_responses_are_documented(world: World) -> None:
    spec = SchemaGenerator().get_schema(request=None, public=True)
    update = spec["paths"]["/api/projects/{project_id}/update/"]["post"]["responses"]
    assert {"200", "400", "401", "403", "404", "409", "503"} <= set(update)
    login = spec["paths"]["/api/auth/login/"]["post"]["responses"]
    assert "429" in login and "401" not in login  # anonymous may call it; failed logins are throttled


def test_an_unknown_adjudication_item_is_a_404_not_a_500(world: World, client_for: Any) -> None:
    response = client_for(world.adjudicator).get(
        f"/api/projects/{world.project.pk}/adjudication/items/{world.case.pk}/left/nowhere/no-such-lesion/"
    )
    assert response.status_code == 404 and "no item" in response.json()["detail"]


def test_a_washout_beyond_any_integer_column_is_a_400_not_a_500(world: World, client_for: Any) -> None:
    response = client_for(world.admin).post(
        f"/api/projects/{world.project.pk}/update/", {"washout_cases": 2856100154861730304}, format="json"
    )
    assert response.status_code == 400 and "washout_cases" in response.json()


def test_a_value_its_column_cannot_hold_is_a_400(db: None) -> None:
    """The safety net under a serializer without bounds: PostgreSQL's DataError is the client's 400."""
    from django.db import DataError

    from labeling.api.errors import exception_handler

    response = exception_handler(DataError("integer out of range"), {})
    assert response is not None and response.status_code == 400
    assert response.data == {"detail": "a value of the request is out of range or too long"}


def test_a_failed_login_with_any_username_is_a_400_and_still_throttled(world: World, settings: Any) -> None:
    """The throttle's cache key hashes the username: spaces and control characters in it made the cache
    warn (an error on memcached, a 500 for the caller)."""
    import warnings

    from django.core.cache.backends.base import CacheKeyWarning
    from rest_framework.test import APIClient

    settings.LOGIN_THROTTLE_RATES = {**settings.LOGIN_THROTTLE_RATES, "login_user": "2/min"}
    body = json.dumps({"username": 'a b\x07{"x": []}', "password": "wrong"})
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheKeyWarning)
        codes = [
            APIClient().post("/api/auth/login/", body, content_type="application/json").status_code
            for _ in range(3)
        ]
    assert codes == [400, 400, 429]
