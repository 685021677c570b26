"""The API as a client sees it: login with CSRF, tokens, error bodies, the OpenAPI schema."""

import pytest
from rest_framework.test import APIClient

from labeling.models import AuditEvent, Reading
from labeling.services.identity import assignment_uids
from tests.labeling.factories import contour, full_values


def test_browser_login_needs_the_csrf_token(world):
    client = APIClient(enforce_csrf_checks=True)
    creds = {"username": "reader", "password": "pw"}
    assert client.post("/api/auth/login/", creds, format="json").status_code == 403
    client.get("/api/auth/csrf/")
    token = client.cookies["csrftoken"].value
    response = client.post("/api/auth/login/", creds, format="json", HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 200
    assert response.json()["roles"] == {str(world.project.pk): ["reader"]}
    # a session-authenticated write without the CSRF header is refused
    url = f"/api/assignments/{world.assignment.key}/reading/"
    body = {"values": full_values(world.project.scheme.parsed)}
    assert client.post(url, body, format="json").status_code == 403
    token = client.cookies["csrftoken"].value
    assert client.post(url, body, format="json", HTTP_X_CSRFTOKEN=token).status_code == 201


def test_wrong_password_is_refused(world):
    client = APIClient()
    assert client.post("/api/auth/login/", {"username": "reader", "password": "no"}).status_code == 400
    assert client.post("/api/auth/token/", {"username": "reader", "password": "no"}).status_code == 400


def test_token_auth_for_scripts(world):
    client = APIClient()
    key = client.post("/api/auth/token/", {"username": "reader", "password": "pw"}, format="json").json()[
        "token"
    ]
    assert client.get("/api/auth/me/").status_code == 401
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert client.get("/api/auth/me/").json()["username"] == "reader"
    url = f"/api/assignments/{world.assignment.key}/reading/"
    assert (
        client.post(url, {"values": full_values(world.project.scheme.parsed)}, format="json").status_code
        == 201
    )


def test_a_reading_that_does_not_fit_is_a_400_naming_the_field(world, client_for):
    values = full_values(world.project.scheme.parsed)
    values[7]["region"] = "iliac_middle"
    response = client_for(world.reader).post(
        f"/api/assignments/{world.assignment.key}/reading/", {"values": values}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["field"] == "values[7].region"
    assert "iliac_middle" in response.json()["detail"]
    assert not Reading.objects.exists()


def test_submit_again_is_idempotent_or_409_and_correction_keeps_both(world, client_for):
    client = client_for(world.reader)
    series = world.case.study.series.get(description="STIR").series_uid
    shown = assignment_uids(world.assignment).pseudo(series)  # the reader knows the series by its pseudonym
    body = {"values": full_values(world.project.scheme.parsed), "contours": [contour(shown, 2, "right")]}
    url = f"/api/assignments/{world.assignment.key}/reading/"
    first = client.post(url, body, format="json")
    assert first.status_code == 201
    assert first.json()["contours"][0]["slice_index"] == 2
    assert first.json()["contours"][0]["series_uid"] == shown
    assert Reading.objects.get().contours.get().series_uid == series  # stored under the stored UID
    again = client.post(url, body, format="json")  # a client retrying after a lost answer
    assert again.status_code == 201 and again.json()["version"] == 1 and Reading.objects.count() == 1
    other = {**body, "values": full_values(world.project.scheme.parsed, 1)}
    assert client.post(url, other, format="json").status_code == 409  # other values: submitted already
    assert (first.json()["assignment"], first.json()["version"]) == (world.assignment.key, 1)
    fixed = client.post(
        f"/api/assignments/{world.assignment.key}/readings/1/correct/",
        {"values": full_values(world.project.scheme.parsed, 1), "reason": "re-read"},
        format="json",
    )
    assert fixed.status_code == 201 and fixed.json()["supersedes"] == 1 and fixed.json()["version"] == 2
    assert client.get(f"/api/assignments/{world.assignment.key}/readings/1/").json()["superseded"] is True
    assert Reading.objects.count() == 2
    assert set(AuditEvent.objects.values_list("action", flat=True)) >= {"reading.submit", "reading.correct"}


def test_worklist_next_opens_the_case_and_then_204_when_done(world, client_for):
    client = client_for(world.reader)
    opened = client.post(f"/api/projects/{world.project.pk}/worklist/next/")
    assert opened.status_code == 200 and opened.json()["status"] == "in_progress"
    assert {s["description"] for s in opened.json()["series"]} == {"T1", "STIR"}
    assert len(opened.json()["scheme"]["form"]) == 28
    client.post(
        f"/api/assignments/{opened.json()['key']}/reading/",
        {"values": full_values(world.project.scheme.parsed)},
        format="json",
    )
    assert client.post(f"/api/projects/{world.project.pk}/worklist/next/").status_code == 204
    progress = client.get(f"/api/projects/{world.project.pk}/worklist/").json()["progress"]
    assert progress == {"total": 1, "submitted": 1, "available": 0, "waiting": 0}


def test_admin_creates_project_members_cases_and_assignments_through_the_api(world, client_for):
    staff = client_for(world.staff)
    project = staff.post(
        "/api/projects/create/", {"name": "CT study", "scheme": "ct_sij"}, format="json"
    ).json()
    pid = project["id"]
    for name in ("reader", "reader2", "adj"):
        assert (
            staff.post(
                f"/api/projects/{pid}/members/add/", {"username": name, "role": "reader"}, format="json"
            ).status_code
            == 201
        )
    assert (
        staff.post(
            f"/api/projects/{pid}/members/add/", {"username": "reader", "role": "reader"}, format="json"
        ).status_code
        == 409
    )
    study = staff.post("/api/studies/register/", {"study_uid": "1.2.3.4.5", "modality": "CT"}, format="json")
    assert study.status_code == 201
    assert (
        staff.post(
            f"/api/projects/{pid}/cases/create/", {"study_uid": "1.2.3.4.5"}, format="json"
        ).status_code
        == 201
    )
    mri = staff.post(
        f"/api/projects/{pid}/cases/create/", {"study_uid": world.case.study.study_uid}, format="json"
    )
    assert mri.status_code == 400 and mri.json()["field"] == "study_uid"
    generated = staff.post(f"/api/projects/{pid}/assignments/generate/", {"seed": 1}, format="json").json()
    assert generated["created"] == 3
    listed = staff.get(f"/api/projects/{pid}/assignments/").json()
    assert listed["count"] == 3
    events = staff.get(f"/api/audit/?project={pid}").json()["results"]
    assert {"project.create", "membership.add", "case.create", "assignments.generate"} <= {
        e["action"] for e in events
    }


@pytest.mark.parametrize("path", ["/api/schema/", "/api/docs/"])
def test_openapi_schema_and_docs_are_served(db, path):
    response = APIClient().get(path)
    assert response.status_code == 200
    if path == "/api/schema/":
        assert b"/api/assignments/{key}/reading/" in response.content


def test_a_draft_survives_a_reload_and_is_dropped_on_submit(world, client_for):
    client = client_for(world.reader)
    url = f"/api/assignments/{world.assignment.key}/draft/"
    assert client.get(url).json() == {"values": [], "contours": [], "updated_at": None}
    partial = [{"joint": "left", "region": "iliac_upper", "lesion": "bme", "value": 1}]
    assert client.post(f"{url}save/", {"values": partial}, format="json").status_code == 200
    assert client.get(url).json()["values"] == partial  # a reload gets the work back
    bad = client.post(f"{url}save/", {"values": "everything"}, format="json")
    assert bad.status_code == 400
    client.post(
        f"/api/assignments/{world.assignment.key}/reading/",
        {"values": full_values(world.project.scheme.parsed)},
        format="json",
    )
    assert client.get(url).json()["updated_at"] is None
    assert client.post(f"{url}save/", {"values": partial}, format="json").status_code == 409


def test_ai_aided_read_opens_after_the_unaided_one_and_only_it_shows_ai(world, client_for):
    from labeling.models import Assignment

    world.project.ai_aided_reads = True
    world.project.save()
    client = client_for(world.reader)
    assert client.get(f"/api/assignments/{world.assignment.key}/ai/").status_code == 404  # unaided: blind
    client.post(
        f"/api/assignments/{world.assignment.key}/reading/",
        {"values": full_values(world.project.scheme.parsed)},
        format="json",
    )
    aided = Assignment.objects.get(reader=world.reader, case=world.case, aided=True)
    items = client.get(f"/api/projects/{world.project.pk}/worklist/").json()["items"]
    assert [i["key"] for i in items] == [aided.key] and items[0]["aided"] is True
    assert client.get(f"/api/assignments/{aided.key}/ai/").json() == []  # no promoted model yet
    assert client_for(world.other_reader).get(f"/api/assignments/{aided.key}/ai/").status_code == 404
