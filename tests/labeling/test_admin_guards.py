"""Admin guards and feedback (issue 15, finding 10): what removing a member cancels, studies of the project's
modality only, and soft, audited project deletion that refuses new work."""

from __future__ import annotations

import pytest

from labeling.exceptions import Conflict
from labeling.models import Assignment, AuditEvent, Case, Membership, Project
from labeling.services.assignments import assignments_generate
from labeling.services.readings import reading_submit
from tests.labeling.factories import full_values, mri_study


def _members(client, project: Project) -> dict[tuple[str, str], dict]:
    listed = client.get(f"/api/projects/{project.pk}/members/").json()
    return {(m["username"], m["role"]): m for m in listed}


def test_removing_a_reader_says_beforehand_and_afterwards_how_many_open_assignments_it_cancels(
    world, client_for
):
    admin = client_for(world.admin)
    other_case = Case.objects.create(project=world.project, study=mri_study(), label="case-2")
    Assignment.objects.create(
        project=world.project, case=other_case, reader=world.reader, session=1, status="in_progress"
    )
    Membership.objects.create(project=world.project, user=world.reader, role=Membership.Role.ADJUDICATOR)

    before = _members(admin, world.project)
    assert before[("reader", "reader")]["open_assignments"] == 2  # one open, one in progress
    assert before[("reader", "adjudicator")]["open_assignments"] == 0  # removing this role cancels nothing
    assert before[("admin", "admin")]["open_assignments"] == 0

    adjudicator_role = before[("reader", "adjudicator")]["id"]
    answer = admin.post(f"/api/projects/{world.project.pk}/members/{adjudicator_role}/remove/")
    assert answer.status_code == 200
    assert answer.json() == {"username": "reader", "role": "adjudicator", "cancelled_assignments": 0}
    assert world.project.assignments.filter(reader=world.reader, status="cancelled").count() == 0

    reader_role = before[("reader", "reader")]["id"]
    answer = admin.post(f"/api/projects/{world.project.pk}/members/{reader_role}/remove/")
    assert answer.status_code == 200
    assert answer.json() == {"username": "reader", "role": "reader", "cancelled_assignments": 2}
    assert world.project.assignments.filter(reader=world.reader, status="cancelled").count() == 2
    assert world.project.assignments.filter(reader=world.other_reader, status="open").count() == 1
    event = AuditEvent.objects.filter(action="membership.remove").order_by("-seq").first()
    assert event.data["cancelled_assignments"] == 2
    assert ("reader", "reader") not in _members(admin, world.project)


def test_studies_of_another_modality_are_not_offered_and_are_refused_by_name_of_the_modality(
    world, client_for
):
    staff = client_for(world.staff)
    ct_uid = "1.2.3.4.5.6.7.8.9.999"
    registered = staff.post(
        "/api/studies/register/",
        {"study_uid": ct_uid, "modality": "CT", "patient_id": "PAT-CT-1"},
        format="json",
    )
    assert registered.status_code == 201
    project = staff.get(f"/api/projects/{world.project.pk}/").json()
    assert project["modality"] == "MR"

    offered = staff.get(f"/api/studies/?modality={project['modality']}&limit=500").json()["results"]
    assert offered and {s["modality"] for s in offered} == {"MR"}
    assert ct_uid in {s["study_uid"] for s in staff.get("/api/studies/?limit=500").json()["results"]}

    refused = staff.post(
        f"/api/projects/{world.project.pk}/cases/create/", {"study_uid": ct_uid}, format="json"
    )
    assert refused.status_code == 400
    detail = refused.json()["detail"]
    assert "CT study" in detail and "MRI studies only" in detail and "PAT-CT-1" in detail
    assert ct_uid not in detail


def test_deleting_a_project_is_soft_audited_hidden_and_refuses_new_work(world, client_for):
    admin, staff, reader = client_for(world.admin), client_for(world.staff), client_for(world.reader)
    pid = world.project.pk
    key = world.assignment.key
    assert reader.get(f"/api/projects/{pid}/worklist/").status_code == 200
    assert reader.get(f"/api/assignments/{key}/").status_code == 200

    assert admin.post(f"/api/projects/{pid}/delete/").status_code == 204

    project = Project.objects.get(pk=pid)  # kept, with its cases and assignments
    assert project.deleted_at is not None and project.deleted_by == world.admin
    assert project.cases.count() == 1 and project.assignments.count() == 2
    event = AuditEvent.objects.get(action="project.delete", project_id=pid)
    assert event.actor == world.admin and event.data["name"] == project.name and event.data["soft"] is True
    assert event.data["open_assignments"] == 2
    for client in (admin, staff, reader):
        assert pid not in {p["id"] for p in client.get("/api/projects/").json()}
        assert str(pid) not in client.get("/api/auth/me/").json()["roles"]
    assert admin.get("/api/studies/").status_code == 403  # admin of no project left
    assert admin.get(f"/api/projects/{pid}/").status_code == 404
    assert reader.get(f"/api/projects/{pid}/worklist/").status_code == 404
    assert reader.get(f"/api/assignments/{key}/").status_code == 404  # its open reads cannot be opened
    body = {"values": full_values(project.scheme.parsed, value=0)}
    assert reader.post(f"/api/assignments/{key}/reading/", body, format="json").status_code == 404
    with pytest.raises(Conflict, match="was deleted"):
        reading_submit(actor=world.reader, assignment=world.assignment, values=body["values"])
    assert staff.post(f"/api/projects/{pid}/assignments/generate/", {}, format="json").status_code == 404
    assert staff.post(f"/api/projects/{pid}/update/", {"description": "x"}, format="json").status_code == 404
    assert staff.post(f"/api/projects/{pid}/delete/").status_code == 404
    with pytest.raises(Conflict, match="was deleted"):
        assignments_generate(actor=world.staff, project=project)
    # its name stays taken (the records keep it); a new project says why
    again = staff.post("/api/projects/create/", {"name": project.name, "scheme": "mri_sij"}, format="json")
    assert again.status_code == 409 and "deleted" in again.json()["detail"]
