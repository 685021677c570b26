"""Blind repeats end to end (issue 13, hole 2): readers reach a case only through their assignment's opaque
key, and nothing a reader receives names the case (id, label), its study or its stored DICOM UIDs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.utils import timezone

from labeling.models import Assignment, Contour, Instance, Reading
from labeling.services.identity import assignment_uids
from tests.api_schema import assert_matches_schema
from tests.labeling.factories import contour, full_values

#: Keys that would tie a reader's payload to the case, its study or the reader's other sessions.
FORBIDDEN_KEYS = {
    "scan_id",
    "case",
    "case_id",
    "study_id",
    "series_id",
    "reading_id",
    "assignment_id",
    "previous_id",
    "session",
    "patient_id",
    "is_gold",
    "reference",
    "repeat_fraction",
    "washout_days",
    "washout_cases",
    "gold_fraction",
}


def walk(node: Any, path: str = "") -> Iterator[tuple[str, str, Any]]:
    """Every (path, key, value) of a JSON document, depth first."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield path, key, value
            yield from walk(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from walk(value, f"{path}[{i}]")


def stored_uids(world) -> set[str]:
    study = world.case.study
    uids = {study.study_uid}
    for series in study.series.all():
        uids |= {series.series_uid, series.frame_of_reference_uid} - {""}
    uids |= set(Instance.objects.filter(series__study=study).values_list("sop_uid", flat=True))
    return uids


def assert_blind(payload: Any, world, what: str) -> None:
    """No forbidden key, no ``id`` but a scheme's or the project's, no stored UID or case label anywhere."""
    forbidden_values = stored_uids(world) | {world.case.label}
    ids = (
        {a.pk for a in Assignment.objects.all()}
        | {world.case.pk}
        | set(Reading.objects.values_list("pk", flat=True))
    )
    for path, key, value in walk(payload):
        assert key not in FORBIDDEN_KEYS, (what, path, key)
        if key == "id":  # a scheme's, a project's or the user's own id, never an assignment's or a case's
            own = what in ("project", "projects", "me") and path in ("", "[0]")
            assert ".scheme" in path or own, (what, path, value)  # the form, the same for everyone
        if isinstance(value, str):
            assert not any(uid in value for uid in forbidden_values), (what, path, value)
        if key in ("assignment", "key"):
            assert not (isinstance(value, int) or str(value).isdigit()) and value not in map(str, ids)


def repeat_of(world, first: Assignment) -> Assignment:
    return Assignment.objects.create(
        project=world.project,
        case=world.case,
        reader=first.reader,
        session=first.session + 1,
        previous=first,
        not_before=timezone.now(),
    )


def series_as_shown(assignment: Assignment, description: str = "T1") -> str:
    stored = assignment.case.study.series.get(description=description).series_uid
    return assignment_uids(assignment).pseudo(stored)


def test_assignment_keys_are_opaque_unique_and_fresh_for_every_session(world):
    repeat = repeat_of(world, world.assignment)
    keys = [world.assignment.key, world.other_assignment.key, repeat.key]
    assert len(set(keys)) == 3
    assert all(len(k) >= 22 and not k.isdigit() for k in keys)  # token_urlsafe(16): 128 random bits
    assert all(str(world.case.pk) != k and world.case.label not in k for k in keys)


def test_a_reader_cannot_reach_a_case_by_its_id_label_or_study_uid(world, client_for):
    """Before: /api/assignments/<assignment id>/ answered the case data; now only the key does."""
    client = client_for(world.reader)
    study_uid = world.case.study.study_uid
    for name in (world.assignment.pk, world.case.pk, world.case.label, study_uid):
        for tail in ("", "draft/", "ai/"):
            response = client.get(f"/api/assignments/{name}/{tail}")
            assert response.status_code == 404, (name, tail)
        submit = client.post(
            f"/api/assignments/{name}/reading/",
            {"values": full_values(world.project.scheme.parsed)},
            format="json",
        )
        assert submit.status_code == 404, name
    assert not Reading.objects.exists()
    assert client.get(f"/api/assignments/{world.assignment.key}/").status_code == 200
    # another reader's key is as unknown as a made-up one
    assert client_for(world.other_reader).get(f"/api/assignments/{world.assignment.key}/").status_code == 404


def test_a_reading_is_reached_by_key_and_version_not_by_its_id(world, client_for):
    client = client_for(world.reader)
    made = client.post(
        f"/api/assignments/{world.assignment.key}/reading/",
        {"values": full_values(world.project.scheme.parsed)},
        format="json",
    )
    assert made.status_code == 201
    reading = Reading.objects.get()
    assert client.get(f"/api/readings/{reading.pk}/").status_code == 404  # the old address is gone
    assert client.get(f"/api/assignments/{world.assignment.key}/readings/1/").status_code == 200
    assert client.get(f"/api/assignments/{world.assignment.key}/readings/2/").status_code == 404
    assert client.get(f"/api/assignments/{world.assignment.key}/readings/0/").status_code == 404
    other = client_for(world.other_reader)
    assert other.get(f"/api/assignments/{world.assignment.key}/readings/1/").status_code == 404


def test_correcting_a_stale_version_is_a_409_and_leaves_the_newest_alone(world, client_for):
    client = client_for(world.reader)
    key = world.assignment.key
    client.post(
        f"/api/assignments/{key}/reading/",
        {"values": full_values(world.project.scheme.parsed)},
        format="json",
    )

    def correct(version: int, value: int):
        body = {"values": full_values(world.project.scheme.parsed, value), "reason": f"to {value}"}
        return client.post(f"/api/assignments/{key}/readings/{version}/correct/", body, format="json")

    second = correct(1, 1)
    assert second.status_code == 201 and second.json()["version"] == 2 and second.json()["supersedes"] == 1
    stale = correct(1, 0)  # a second tab still showing version 1
    assert stale.status_code == 409 and "stale" in stale.json()["detail"]
    assert correct(3, 0).status_code == 404  # no such version yet
    assert Reading.objects.count() == 2
    newest = client.get(f"/api/assignments/{key}/readings/2/").json()
    assert newest["superseded"] is False and {v["value"] for v in newest["values"]} == {1}
    third = correct(2, 0)
    assert third.status_code == 201 and third.json()["version"] == 3
    listed = client.get(f"/api/readings/?project={world.project.pk}").json()["results"]
    assert [(r["version"], r["superseded"]) for r in listed] == [(1, True), (2, True), (3, False)]


def test_a_repeat_has_its_own_key_name_and_uids_and_the_first_reading_stays_hidden(world, client_for):
    client = client_for(world.reader)
    first = client.get(f"/api/assignments/{world.assignment.key}/").json()
    t1_first = series_as_shown(world.assignment)
    body = {"values": full_values(world.project.scheme.parsed), "contours": [contour(t1_first, 1)]}
    assert (
        client.post(f"/api/assignments/{world.assignment.key}/reading/", body, format="json").status_code
        == 201
    )
    repeat = repeat_of(world, world.assignment)
    (item,) = client.get(f"/api/projects/{world.project.pk}/worklist/").json()["items"]
    assert item["key"] == repeat.key != world.assignment.key
    shown = client.get(f"/api/assignments/{repeat.key}/").json()
    assert shown["case_label"] != first["case_label"]
    assert shown["study_uid"] != first["study_uid"]
    first_series = {s["series_uid"] for s in first["series"]} | {first["study_uid"]}
    repeat_series = {s["series_uid"] for s in shown["series"]} | {shown["study_uid"]}
    assert not first_series & repeat_series and not repeat_series & stored_uids(world)
    assert [s["description"] for s in shown["series"]] == [s["description"] for s in first["series"]]
    # while the repeat is open: the earlier reading is neither listed nor reachable
    assert client.get(f"/api/readings/?project={world.project.pk}").json()["results"] == []
    assert client.get("/api/readings/").json()["results"] == []
    assert client.get(f"/api/assignments/{world.assignment.key}/readings/1/").status_code == 404
    # a contour drawn on the repeat names its series by the repeat's UIDs; the first read's do not fit it
    t1_repeat = series_as_shown(repeat)
    wrong = {"values": full_values(world.project.scheme.parsed), "contours": [contour(t1_first, 1)]}
    refused = client.post(f"/api/assignments/{repeat.key}/reading/", wrong, format="json")
    assert refused.status_code == 400 and refused.json()["field"] == "contours[0].series_uid"
    assert t1_first not in refused.content.decode()
    right = {"values": full_values(world.project.scheme.parsed), "contours": [contour(t1_repeat, 1)]}
    done = client.post(f"/api/assignments/{repeat.key}/reading/", right, format="json")
    assert done.status_code == 201 and done.json()["contours"][0]["series_uid"] == t1_repeat
    # both contours are stored under the one stored series UID; each reading shows its own pseudonym
    stored_t1 = world.case.study.series.get(description="T1").series_uid
    assert set(Contour.objects.values_list("series_uid", flat=True)) == {stored_t1}
    listed = client.get(f"/api/readings/?project={world.project.pk}").json()["results"]
    assert {(r["assignment"], r["contours"][0]["series_uid"]) for r in listed} == {
        (world.assignment.key, t1_first),
        (repeat.key, t1_repeat),
    }


def test_a_stored_uid_is_refused_in_contours_without_being_echoed(world, client_for):
    stored = world.case.study.series.get(description="T1").series_uid
    body = {"values": full_values(world.project.scheme.parsed), "contours": [contour(stored, 1)]}
    client = client_for(world.reader)
    for url in (
        f"/api/assignments/{world.assignment.key}/draft/save/",
        f"/api/assignments/{world.assignment.key}/reading/",
    ):
        response = client.post(url, body, format="json")
        assert response.status_code == 400 and response.json()["field"] == "contours[0].series_uid", url
        assert stored not in response.content.decode()
    assert not Reading.objects.exists()


def test_no_reader_payload_names_the_case_its_study_or_the_readers_other_sessions(world, client_for):
    from ml.models import ModelVersion, Prediction, TrainingRun

    world.project.ai_aided_reads = True
    world.project.repeat_fraction, world.project.washout_days = 0.2, 7
    world.project.save()
    run = TrainingRun.objects.create(project=world.project, kind="contour", state="succeeded")
    version = ModelVersion.objects.create(
        project=world.project,
        kind="contour",
        version=1,
        training_run=run,
        checkpoint_dir="/nonexistent",
        status=ModelVersion.Status.PROMOTED,
    )
    Prediction.objects.create(
        model_version=version,
        case=world.case,
        output={
            "contours": [  # as stored before the blinding fix: the case's primary key as scan_id
                {
                    "scan_id": str(world.case.pk),
                    "slice_index": 1,
                    "side": "left",
                    "points_mm": [[1, 2, 3]],
                    "confidence": 0.9,
                }
            ]
        },
    )
    client = client_for(world.reader)
    key, p = world.assignment.key, world.project.pk
    payloads: dict[str, Any] = {}

    def got(what: str, response) -> Any:
        assert response.status_code in (200, 201), (what, response.status_code, response.content[:300])
        payloads[what] = assert_matches_schema(response)  # no field the schema does not declare
        return payloads[what]

    got("project", client.get(f"/api/projects/{p}/"))
    got("projects", client.get("/api/projects/"))
    got("worklist", client.get(f"/api/projects/{p}/worklist/"))
    got("next", client.post(f"/api/projects/{p}/worklist/next/"))
    got("detail", client.get(f"/api/assignments/{key}/"))
    t1 = series_as_shown(world.assignment)
    draft = {"values": [], "contours": [{**contour(t1, 1), "sop_instance_uid": ""}]}
    got("draft-save", client.post(f"/api/assignments/{key}/draft/save/", draft, format="json"))
    assert got("draft", client.get(f"/api/assignments/{key}/draft/"))["contours"][0]["series_uid"] == t1
    body = {"values": full_values(world.project.scheme.parsed), "contours": [contour(t1, 1)]}
    got("submit", client.post(f"/api/assignments/{key}/reading/", body, format="json"))
    aided = Assignment.objects.get(reader=world.reader, case=world.case, aided=True)
    got("aided", client.get(f"/api/assignments/{aided.key}/"))
    assert got("ai", client.get(f"/api/assignments/{aided.key}/ai/"))
    aided_body = {**body, "contours": [contour(series_as_shown(aided), 1)]}  # the aided read's own UIDs
    got("aided-submit", client.post(f"/api/assignments/{aided.key}/reading/", aided_body, format="json"))
    correction = {**body, "reason": "second look"}
    got("correct", client.post(f"/api/assignments/{key}/readings/1/correct/", correction, format="json"))
    got("reading", client.get(f"/api/assignments/{key}/readings/2/"))
    got("readings", client.get(f"/api/readings/?project={p}"))
    repeat = repeat_of(world, world.assignment)
    got("repeat-worklist", client.get(f"/api/projects/{p}/worklist/"))
    got("repeat", client.get(f"/api/assignments/{repeat.key}/"))
    got("repeat-readings", client.get("/api/readings/"))
    got("me", client.get("/api/auth/me/"))
    assert payloads["readings"]["results"][0]["contours"][0]["sop_instance_uid"]  # mapped, not dropped
    for what, payload in payloads.items():
        assert_blind(payload, world, what)
