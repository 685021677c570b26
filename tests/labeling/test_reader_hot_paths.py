"""The reader's hot paths (worklist, next case, draft save, submit): what each answers, and how many SQL queries
it costs, pinned so that a change adding a query per request (an N+1, a lookup repeated) fails here.

The counts are those of a request with token authentication (one query), as tests/bench/bench_api_hot.py
measures them; they do not grow with the size of the worklist."""

from __future__ import annotations

import json
import os

import pytest
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from labeling.api.serializers import WorklistItemOutput
from labeling.models import (
    Assignment,
    AuditEvent,
    Case,
    Draft,
    GradingScheme,
    OutboxMessage,
    Reading,
    parsed_schemes,
)
from labeling.services import outbox
from labeling.services.identity import assignment_uids
from tests.labeling.factories import contour, full_values, mri_study

WORKLIST_QUERIES = 4  # token, the project with the user's roles, the worklist, the status counts
NEXT_QUERIES = 7  # token, project with roles, the next assignment, its start, UID map, schemes, series
DRAFT_QUERIES = 7  # token, assignment, UID map, BEGIN, row lock, upsert, COMMIT
SUBMIT_QUERIES = 18  # ... the reading's rows, the audit chain, the outbox message and its publish


def token_client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client


def more_cases(world, n: int) -> list[Assignment]:
    """``n`` more open assignments of the reader, after the world's one in their worklist order."""
    cases = [
        Case.objects.create(project=world.project, study=mri_study(), label=f"more-{i}") for i in range(n)
    ]
    return [
        Assignment.objects.create(project=world.project, case=c, reader=world.reader, order_key=10 + i)
        for i, c in enumerate(cases)
    ]


def pseudo_t1(world, assignment: Assignment) -> str:
    """The T1 series of the world's case as the assignment's reader knows it."""
    return assignment_uids(assignment).pseudo(world.case.study.series.get(description="T1").series_uid)


def test_the_worklist_costs_the_same_few_queries_however_long_it_is(world, django_assert_max_num_queries):
    reader = token_client(world.reader)
    url = f"/api/projects/{world.project.pk}/worklist/"
    with django_assert_max_num_queries(WORKLIST_QUERIES):
        short = reader.get(url)
    more_cases(world, 12)
    with django_assert_max_num_queries(WORKLIST_QUERIES):
        long = reader.get(url)
    assert len(short.json()["items"]) == 1 and len(long.json()["items"]) == 13
    assert long.json()["items"][0]["key"] == world.assignment.key
    assert long.json()["progress"] == {"total": 13, "submitted": 0, "available": 13, "waiting": 0}


def test_the_worklist_answers_what_its_declared_serializer_would(world):
    """The worklist's items are built without DRF's serializer (per-row work); they must stay what
    ``WorklistItemOutput``, the schema's declaration, makes of the same assignments."""
    later = more_cases(world, 3)
    Assignment.objects.filter(pk=later[0].pk).update(
        status=Assignment.Status.IN_PROGRESS, started_at=timezone.now()
    )
    Assignment.objects.filter(pk=later[1].pk).update(condition="aided", aided=True)
    Assignment.objects.filter(pk=later[2].pk).update(condition="t1_only")
    answered = token_client(world.reader).get(f"/api/projects/{world.project.pk}/worklist/").json()["items"]
    shown = Assignment.objects.filter(reader=world.reader).order_by("order_key", "id")
    assert answered == json.loads(json.dumps(WorklistItemOutput(shown, many=True).data))
    assert {item["condition_label"] for item in answered} >= {"AI-aided", "T1 only"}
    assert sum(item["started_at"] is not None for item in answered) == 1


def test_next_case_opens_the_first_case_then_keeps_serving_the_one_in_progress(
    world, django_assert_max_num_queries
):
    later = more_cases(world, 3)
    Assignment.objects.filter(pk=world.assignment.pk).update(order_key=100)  # now the last of four
    reader = token_client(world.reader)
    url = f"/api/projects/{world.project.pk}/worklist/next/"
    parsed_schemes()  # as after a process's first request: the definitions are parsed once (one more query)
    with django_assert_max_num_queries(NEXT_QUERIES):
        first = reader.post(url)
    assert first.status_code == 200
    assert first.json()["key"] == later[0].key and first.json()["status"] == "in_progress"
    assert [s["n_instances"] for s in first.json()["series"]] == [3, 3]
    assert {s["description"] for s in first.json()["series"]} == {"T1", "STIR"}
    assert Assignment.objects.get(pk=later[0].pk).started_at is not None
    started = Assignment.objects.get(pk=later[0].pk).started_at
    with django_assert_max_num_queries(NEXT_QUERIES):
        again = reader.post(url)
    assert again.json()["key"] == later[0].key  # the case in progress, not the next open one
    assert Assignment.objects.get(pk=later[0].pk).started_at == started


def test_next_case_brings_the_draft_as_the_draft_request_answers_it(world, django_assert_max_num_queries):
    """The reading view opened by "Next case" asks for nothing more (issue 16: one request fewer per case
    opened): the answer holds the draft, its contours under the reader's UIDs, at no extra query."""
    reader = token_client(world.reader)
    url = f"/api/projects/{world.project.pk}/worklist/next/"
    parsed_schemes()
    fresh = reader.post(url).json()
    assert fresh["key"] == world.assignment.key
    assert fresh["draft"] == {"values": [], "contours": [], "updated_at": None}
    values = full_values(world.project.scheme.parsed, 1)[:3]
    drawn = contour(pseudo_t1(world, world.assignment), slice_index=1)
    saved = reader.post(
        f"/api/assignments/{world.assignment.key}/draft/save/",
        {"values": values, "contours": [drawn]},
        "json",
    )
    assert saved.status_code == 200, saved.content
    with django_assert_max_num_queries(NEXT_QUERIES):
        resumed = reader.post(url).json()
    assert resumed["draft"] == reader.get(f"/api/assignments/{world.assignment.key}/draft/").json()
    assert resumed["draft"]["values"] == values
    assert resumed["draft"]["contours"][0]["series_uid"] == drawn["series_uid"]  # pseudonymous, as sent


def test_next_case_is_a_204_when_nothing_is_left(world):
    Assignment.objects.filter(pk=world.assignment.pk).update(status=Assignment.Status.CANCELLED)
    assert (
        token_client(world.reader).post(f"/api/projects/{world.project.pk}/worklist/next/").status_code == 204
    )


def test_a_draft_is_one_upsert_and_reads_back_as_saved(world, django_assert_max_num_queries):
    reader = token_client(world.reader)
    key = world.assignment.key
    values = full_values(world.project.scheme.parsed, 1)[:5]
    drawn = contour(pseudo_t1(world, world.assignment), slice_index=1)
    with django_assert_max_num_queries(DRAFT_QUERIES):
        saved = reader.post(
            f"/api/assignments/{key}/draft/save/", {"values": values, "contours": [drawn]}, "json"
        )
    assert saved.status_code == 200, saved.content
    first_saved_at = saved.json()["updated_at"]
    # replaced, not added to: the second save updates the same row
    with django_assert_max_num_queries(DRAFT_QUERIES):
        saved = reader.post(
            f"/api/assignments/{key}/draft/save/", {"values": values[:2], "contours": [drawn]}, "json"
        )
    assert saved.status_code == 200
    assert Draft.objects.filter(assignment=world.assignment).count() == 1
    back = reader.get(f"/api/assignments/{key}/draft/").json()
    assert back["values"] == values[:2]
    assert back["updated_at"] == saved.json()["updated_at"] >= first_saved_at
    [shown] = back["contours"]
    assert shown["series_uid"] == drawn["series_uid"]  # the reader's pseudonym, as sent
    stored = Draft.objects.get(assignment=world.assignment).contours[0]
    assert stored["series_uid"] == world.case.study.series.get(description="T1").series_uid
    # without contours there is no UID map to build
    with django_assert_max_num_queries(DRAFT_QUERIES - 1):
        assert (
            reader.post(f"/api/assignments/{key}/draft/save/", {"values": values}, "json").status_code == 200
        )
    assert reader.get(f"/api/assignments/{key}/draft/").json()["contours"] == []


def test_a_draft_of_a_submitted_assignment_is_refused_and_not_written(world):
    reader = token_client(world.reader)
    key = world.assignment.key
    values = full_values(world.project.scheme.parsed, 1)
    assert (
        reader.post(f"/api/assignments/{key}/reading/", {"values": values}, format="json").status_code == 201
    )
    refused = reader.post(f"/api/assignments/{key}/draft/save/", {"values": values}, format="json")
    assert refused.status_code == 409
    assert not Draft.objects.exists()


@pytest.mark.django_db(transaction=True)  # the publish after the commit is part of the request
def test_a_submit_writes_one_reading_in_a_pinned_number_of_queries(world, django_assert_max_num_queries):
    reader = token_client(world.reader)
    key = world.assignment.key
    values = full_values(world.project.scheme.parsed, 1)
    t1 = pseudo_t1(world, world.assignment)
    # not in the stored order (joint, slice), which the answer must give as a GET would
    drawn = [
        contour(t1, slice_index=2, joint="right"),
        contour(t1, slice_index=1),
        contour(t1, slice_index=0),
    ]
    body = {"values": values, "contours": drawn}
    reader.post(f"/api/assignments/{key}/draft/save/", body, format="json")
    with django_assert_max_num_queries(SUBMIT_QUERIES):
        created = reader.post(f"/api/assignments/{key}/reading/", {**body, "duration_s": 30}, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["version"] == 1 and len(created.json()["values"]) == len(values)
    assert created.json()["contours"][0]["series_uid"] == body["contours"][0]["series_uid"]
    [reading] = Reading.objects.filter(assignment=world.assignment)
    assert [c.slice_index for c in reading.contours.all()] == [0, 1, 2]
    assert Assignment.objects.get(pk=world.assignment.pk).status == Assignment.Status.SUBMITTED
    assert not Draft.objects.exists()
    assert AuditEvent.objects.filter(action="reading.submit", object_id=str(reading.pk)).count() == 1
    assert OutboxMessage.objects.filter(task="labeling.tasks.consensus_refit_task").count() == 1
    # the same reading again (a client's retry) is answered with the stored one: still exactly one
    again = reader.post(f"/api/assignments/{key}/reading/", {**body, "duration_s": 30}, format="json")
    assert again.status_code == 201 and again.json()["created_at"] == created.json()["created_at"]
    assert Reading.objects.filter(assignment=world.assignment).count() == 1
    # the first answer, made from the rows as written, is the stored reading as the retry and a GET read it
    assert again.json() == created.json()
    assert reader.get(f"/api/assignments/{key}/readings/1/").json() == created.json()


def test_a_reader_reaches_an_assignment_by_its_key_in_one_query(world, django_assert_num_queries):
    from labeling.selectors import assignment_get_for_reader

    with django_assert_num_queries(1):
        found = assignment_get_for_reader(reader=world.reader, key=world.assignment.key)
        assert found.case.study.study_uid and found.project.scheme.name  # loaded with it
    Assignment.objects.filter(pk=world.assignment.pk).update(status=Assignment.Status.SUBMITTED)
    assert assignment_get_for_reader(reader=world.reader, key=world.assignment.key).pk == world.assignment.pk


def test_a_scheme_version_is_parsed_once_per_process(world):
    row = world.project.scheme
    first, second = GradingScheme.objects.get(pk=row.pk), GradingScheme.objects.get(pk=row.pk)
    assert first is not second and first.parsed is second.parsed


@pytest.mark.django_db(transaction=True)
def test_a_kept_broker_connection_that_went_stale_is_replaced_and_the_message_sent(world):
    """A request publishes on its thread's kept connection; one that fails (the broker restarted, the socket
    is gone) is dropped and the message sent on a fresh one, not left for beat's drain."""
    from celery import current_app

    from labeling.services.outbox import outbox_drain

    dead = current_app.connection_for_write("redis://127.0.0.1:1/0")  # nothing listens there
    dead.transport_options = {**dead.transport_options, "max_retries": 0}
    outbox._kept.connection = dead
    outbox._kept.owner = (os.getpid(), current_app.conf.broker_write_url)
    message = OutboxMessage.objects.create(task="labeling.tasks.jobs_recover_task", args=[])
    assert outbox_drain(ids=[message.pk], retry=False) == 1
    assert OutboxMessage.objects.get(pk=message.pk).sent_at is not None
    assert outbox._kept.connection is not dead


def test_a_repeat_is_reached_by_its_key_only_once_its_washout_has_passed(
    world, django_assert_max_num_queries
):
    """The one-query lookup by key asks for the washout only for a repeat not yet submitted (a second query)."""
    from datetime import timedelta

    from django.utils import timezone

    from labeling.services.readings import reading_submit

    values = full_values(world.project.scheme.parsed, 1)
    reading_submit(actor=world.reader, assignment=world.assignment, values=values)
    repeat = Assignment.objects.create(
        project=world.project,
        case=world.case,
        reader=world.reader,
        session=2,
        previous=world.assignment,
        washout_days=7,
        not_before=timezone.now() + timedelta(days=7),
    )
    reader = token_client(world.reader)
    for url in (f"/api/assignments/{repeat.key}/", f"/api/assignments/{repeat.key}/draft/"):
        assert reader.get(url).status_code == 404, url
    assert (
        reader.post(f"/api/assignments/{repeat.key}/reading/", {"values": values}, "json").status_code == 404
    )
    Assignment.objects.filter(pk=repeat.pk).update(not_before=timezone.now() - timedelta(seconds=1))
    with django_assert_max_num_queries(4):  # token, the assignment, its washout, the draft
        assert reader.get(f"/api/assignments/{repeat.key}/draft/").status_code == 200
    assert (
        reader.post(f"/api/assignments/{repeat.key}/reading/", {"values": values}, "json").status_code == 201
    )
    first_read = reader.get(f"/api/assignments/{world.assignment.key}/")  # submitted: still the reader's
    assert first_read.status_code == 200
