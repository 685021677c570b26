"""Issue 13 (trust): regression tests for the holes found by an outside review, one or more per hole.

Hole numbers follow the issue. Each test failed on the code before its fix.
"""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection, transaction

from labeling.models import Adjudication, Case, Membership
from labeling.services.studies import study_register
from tests.labeling.factories import MembershipFactory, ProjectFactory, UserFactory, mri_study

# --- hole 12: hostile JSON ------------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [40, 900, 100_000])
def test_deeply_nested_json_is_a_400_not_a_500(world, client_for, depth):
    body = '{"values": ' + "[" * depth + "]" * depth + "}"
    client = client_for(world.reader)
    client.raise_request_exception = False  # a 500 must show as a 500, not as an exception in the test
    response = client.post(
        f"/api/assignments/{world.assignment.pk}/draft/save/", body, content_type="application/json"
    )
    assert response.status_code == 400, response.content[:200]
    assert "nested deeper than" in response.json()["detail"]
    case_update = client_for(world.admin)
    case_update.raise_request_exception = False
    response = case_update.post(
        f"/api/projects/{world.project.pk}/cases/{world.case.pk}/update/",
        '{"reference": ' + "[" * depth + "]" * depth + "}",
        content_type="application/json",
    )
    assert response.status_code == 400


def test_json_of_ordinary_depth_still_parses(world, client_for):
    response = client_for(world.reader).post(
        f"/api/assignments/{world.assignment.pk}/draft/save/",
        {"values": [{"joint": "left", "region": "iliac_upper", "lesion": "bme", "value": 1}]},
        format="json",
    )
    assert response.status_code == 200 and response.json()["values"][0]["value"] == 1


# --- hole 7: one current adjudication per item ----------------------------------------------------------

ITEM = {"joint": "left", "region": "iliac_upper", "lesion": "bme"}


@pytest.mark.django_db(transaction=True)
def test_two_simultaneous_first_adjudications_leave_one_current_and_the_second_gets_409(world, client_for):
    """A rival decision inserted (not yet committed) while ours reads "no previous decision" and inserts."""
    inserted, done = threading.Event(), threading.Event()
    waited = []

    def rival() -> None:
        try:
            with transaction.atomic():
                Adjudication.objects.create(
                    project=world.project, case=world.case, value=0, reason="rival", adjudicator=world.staff,
                    **ITEM,
                )  # fmt: skip
                inserted.set()
                # commit only once our request waits on the rival's row (bounded: 10 s)
                with connection.cursor() as cursor:
                    for _ in range(200):
                        cursor.execute("SELECT count(*) FROM pg_locks WHERE NOT granted")
                        if cursor.fetchone()[0]:
                            waited.append(True)
                            break
                        time.sleep(0.05)
        finally:
            connection.close()
            done.set()

    thread = threading.Thread(target=rival)
    thread.start()
    assert inserted.wait(10)
    response = client_for(world.adjudicator).post(
        f"/api/projects/{world.project.pk}/adjudication/record/",
        {"case_id": world.case.pk, **ITEM, "value": 1, "reason": "clear oedema"},
        format="json",
    )
    thread.join(15)
    assert done.is_set()
    decisions = Adjudication.objects.filter(project=world.project, case=world.case, **ITEM)
    current = [a for a in decisions if not Adjudication.objects.filter(supersedes=a).exists()]
    assert len(current) == 1, [(a.pk, a.reason) for a in decisions]
    assert response.status_code == 409, response.content[:300]
    assert "at the same time" in response.json()["detail"]
    assert waited  # the rival really held its row while ours inserted


def test_the_database_refuses_a_second_first_adjudication_of_an_item(world):
    from django.db import IntegrityError

    Adjudication.objects.create(
        project=world.project, case=world.case, value=0, reason="a", adjudicator=world.adjudicator, **ITEM
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        Adjudication.objects.create(
            project=world.project, case=world.case, value=1, reason="b", adjudicator=world.adjudicator, **ITEM
        )


def test_sequential_adjudications_still_supersede(world, client_for):
    client = client_for(world.adjudicator)
    url = f"/api/projects/{world.project.pk}/adjudication/record/"
    first = client.post(url, {"case_id": world.case.pk, **ITEM, "value": 0, "reason": "a"}, format="json")
    second = client.post(url, {"case_id": world.case.pk, **ITEM, "value": 1, "reason": "b"}, format="json")
    assert (first.status_code, second.status_code) == (201, 201)
    assert second.json()["supersedes"] == first.json()["id"]


# --- hole 11: project admins see and touch only their projects' studies ---------------------------------


@pytest.fixture
def two_projects(world):
    """The world's project, and another with its own admin and a case on a study of its own."""
    other = ProjectFactory()
    other_admin = UserFactory(username="other_admin")
    MembershipFactory(project=other, user=other_admin, role=Membership.Role.ADMIN)
    foreign = mri_study()
    Case.objects.create(project=other, study=foreign, label="theirs")
    unattached = mri_study()  # imported by a command, in no project yet
    return other, other_admin, foreign, unattached


def test_a_project_admin_lists_only_their_projects_studies(world, client_for, two_projects):
    _, other_admin, foreign, unattached = two_projects
    mine = mri_study(actor=world.admin)
    listed = {s["study_uid"] for s in client_for(world.admin).get("/api/studies/").json()["results"]}
    assert listed == {world.case.study.study_uid, mine.study_uid}
    theirs = {s["study_uid"] for s in client_for(other_admin).get("/api/studies/").json()["results"]}
    assert theirs == {foreign.study_uid}
    everything = {s["study_uid"] for s in client_for(world.staff).get("/api/studies/").json()["results"]}
    assert everything >= {world.case.study.study_uid, foreign.study_uid, unattached.study_uid, mine.study_uid}


def test_a_project_admin_cannot_add_another_projects_study_as_a_case(world, client_for, two_projects):
    _, _, foreign, unattached = two_projects
    url = f"/api/projects/{world.project.pk}/cases/create/"
    for study in (foreign, unattached):
        response = client_for(world.admin).post(url, {"study_uid": study.study_uid}, format="json")
        unknown = client_for(world.admin).post(url, {"study_uid": "1.2.3.404"}, format="json")
        assert response.status_code == unknown.status_code == 400
        assert response.json() == unknown.json()  # existence is not confirmed
    assert not world.project.cases.filter(study__in=[foreign, unattached]).exists()
    # nor by registering its UID again, which used to return the existing study (patient ID included)
    response = client_for(world.admin).post(
        "/api/studies/register/", {"study_uid": foreign.study_uid, "modality": "MR"}, format="json"
    )
    assert response.status_code == 409 and "patient_id" not in response.json()
    assert (
        client_for(world.admin).post(url, {"study_uid": foreign.study_uid}, format="json").status_code == 400
    )
    # staff may
    staff = client_for(world.staff).post(url, {"study_uid": unattached.study_uid}, format="json")
    assert staff.status_code == 201


def test_an_import_cannot_graft_files_onto_another_projects_study(world, two_projects, settings, tmp_path):
    from labeling.services.ingest import import_paths
    from tests.labeling.dicom.dicom_factory import make_series, write_series

    settings.DICOMWEB_URL = ""
    settings.DICOM_FOLDER = tmp_path / "store"
    _, _, foreign, _ = two_projects
    paths = []
    for i, description in enumerate(("T1", "STIR")):
        series = make_series(n_slices=2, rows=8, columns=8, study_uid=foreign.study_uid,
                             description=description, seed=i)  # fmt: skip
        paths += write_series(series, tmp_path / "in" / description)
    report = import_paths(actor=world.admin, paths=paths, project=world.project)
    assert report.cases == [] and report.imported == []
    assert any("outside your projects" in p["reason"] for p in report.problems), report.problems
    assert not world.project.cases.filter(study=foreign).exists()
    assert not (tmp_path / "store").exists() or not any((tmp_path / "store").rglob("*.dcm"))
    with pytest.raises(Exception, match="outside your projects"):
        study_register(actor=world.admin, study_uid=foreign.study_uid, modality="MR")
