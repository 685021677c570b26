"""Issue 13 (trust): regression tests for the holes found by an outside review, one or more per hole.

Hole numbers follow the issue. Each test failed on the code before its fix.
"""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection, transaction
from django.utils import timezone

from labeling.api.serializers import assignment_pseudonym
from labeling.models import Adjudication, Assignment, Case, Membership
from labeling.services.studies import study_register
from tests.labeling.factories import MembershipFactory, ProjectFactory, UserFactory, full_values, mri_study

# --- hole 12: hostile JSON ------------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [40, 900, 100_000])
def test_deeply_nested_json_is_a_400_not_a_500(world, client_for, depth):
    body = '{"values": ' + "[" * depth + "]" * depth + "}"
    client = client_for(world.reader)
    client.raise_request_exception = False  # a 500 must show as a 500, not as an exception in the test
    response = client.post(
        f"/api/assignments/{world.assignment.key}/draft/save/", body, content_type="application/json"
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
        f"/api/assignments/{world.assignment.key}/draft/save/",
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
                    project=world.project,
                    case=world.case,
                    value=0,
                    reason="rival",
                    adjudicator=world.staff,
                    **ITEM,
                )
                inserted.set()
                # commit only once our request waits on the rival's row (bounded: 10 s)
                with connection.cursor() as cursor:
                    for _ in range(200):
                        # this test's database only: a wait anywhere else on the server (another test, another
                        # checkout) let the rival commit before our request had read, and it got a 201
                        cursor.execute(
                            "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
                            " WHERE NOT l.granted AND a.datname = current_database()"
                        )
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
    from tests.labeling.dicom.dicom_factory import make_mri_study, write_study

    settings.DICOMWEB_URL = ""
    settings.DICOM_FOLDER = tmp_path / "store"
    settings.DEIDENTIFY_ON_IMPORT = (
        False  # de-identified, the files would become a study of the project's own
    )
    _, _, foreign, _ = two_projects
    paths = write_study(make_mri_study(n_slices=2, size=8, study_uid=foreign.study_uid), tmp_path / "in")
    report = import_paths(actor=world.admin, paths=paths, project=world.project)
    assert report.cases == [] and report.imported == []
    assert any("outside your projects" in p["reason"] for p in report.problems), report.problems
    assert not world.project.cases.filter(study=foreign).exists()
    assert not (tmp_path / "store").exists() or not any((tmp_path / "store").rglob("*.dcm"))
    with pytest.raises(Exception, match="outside your projects"):
        study_register(actor=world.admin, study_uid=foreign.study_uid, modality="MR")


# --- hole 1: blinding as a rule of the system -----------------------------------------------------------


def _refit(world):
    from labeling.services.consensus import consensus_refit_project

    return consensus_refit_project(project_id=world.project.pk)


def _read(world, user, case=None, session=1, value=None):
    from labeling.services.readings import reading_submit

    assignment = Assignment.objects.filter(
        reader=user, case=case or world.case, session=session, aided=False
    ).first() or Assignment.objects.create(
        project=world.project, case=case or world.case, reader=user, session=session
    )
    return reading_submit(
        actor=user, assignment=assignment, values=full_values(world.project.scheme.parsed, value=value)
    )


def test_an_adjudicator_who_still_reads_sees_nothing_of_other_readers_until_they_submit(world, client_for):
    """The adjudicator also reads: while their assignment is open, no other reader, consensus or agreement."""
    MembershipFactory(project=world.project, user=world.adjudicator, role=Membership.Role.READER)
    other_case = Case.objects.create(project=world.project, study=mri_study(), label="case-2")
    mine = Assignment.objects.create(project=world.project, case=other_case, reader=world.adjudicator)
    _read(world, world.reader)
    _read(world, world.other_reader, value=1)
    _refit(world)
    client = client_for(world.adjudicator)
    p = f"/api/projects/{world.project.pk}"
    urls = [
        f"{p}/adjudication/queue/",
        f"{p}/adjudication/items/{world.case.pk}/left/iliac_upper/bme/",
        f"{p}/consensus/",
        f"{p}/agreement/?n_boot=5",
        f"{p}/contours/reliability/",
        f"{p}/models/",
        f"{p}/cases/{world.case.pk}/predictions/",
    ]
    assert {u: client.get(u).status_code for u in urls} == dict.fromkeys(urls, 404)
    record = client.post(
        f"{p}/adjudication/record/",
        {"case_id": world.case.pk, **ITEM, "value": 1, "reason": "peeked"},
        format="json",
    )
    assert record.status_code == 404 and not Adjudication.objects.exists()
    _read(world, world.adjudicator, case=other_case)  # submits `mine`
    mine.refresh_from_db()
    after = dict.fromkeys(urls, 200) | {f"{p}/agreement/?n_boot=5": 202}  # 202: queued for the worker
    assert {u: client.get(u).status_code for u in urls} == after


def test_a_reader_never_adjudicates_a_case_they_read_unless_the_project_allows_it(world, client_for):
    from labeling.models import AuditEvent

    MembershipFactory(project=world.project, user=world.reader, role=Membership.Role.ADJUDICATOR)
    _read(world, world.reader)
    _read(world, world.other_reader, value=1)
    _refit(world)
    client = client_for(world.reader)
    p = f"/api/projects/{world.project.pk}"
    queue = client.get(f"{p}/adjudication/queue/").json()["results"]
    assert queue == []  # every uncertain item is of the case they read
    assert client_for(world.adjudicator).get(f"{p}/adjudication/queue/").json()["results"]
    item = f"{p}/adjudication/items/{world.case.pk}/left/iliac_upper/bme/"
    assert client.get(item).status_code == 404
    body = {"case_id": world.case.pk, **ITEM, "value": 1, "reason": "my own case"}
    assert client.post(f"{p}/adjudication/record/", body, format="json").status_code == 403
    # the project may allow it: off by default, audited when switched on
    assert client_for(world.admin).get(f"{p}/").json()["readers_may_adjudicate_own_cases"] is False
    response = client_for(world.admin).post(
        f"{p}/update/", {"readers_may_adjudicate_own_cases": True}, format="json"
    )
    assert response.status_code == 200
    assert AuditEvent.objects.filter(action="project.blinding_relaxed", actor=world.admin).count() == 1
    assert client.get(item).status_code == 200
    assert client.post(f"{p}/adjudication/record/", body, format="json").status_code == 201


def test_an_admin_who_still_reads_gets_cases_without_reference_and_no_audit_of_the_project(world, client_for):
    MembershipFactory(project=world.project, user=world.admin, role=Membership.Role.READER)
    world.case.is_gold, world.case.reference = True, full_values(world.project.scheme.parsed)
    world.case.save()
    Assignment.objects.create(project=world.project, case=world.case, reader=world.admin)
    client = client_for(world.admin)
    p = f"/api/projects/{world.project.pk}"
    (case,) = client.get(f"{p}/cases/").json()["results"]
    detail = client.get(f"{p}/cases/{world.case.pk}/").json()
    for shown in (case, detail):
        assert not {"reference", "is_gold", "n_readings"} & set(shown)
    _read(world, world.reader)
    assert client.get(f"{p}/assignments/").status_code == 404
    assert client.get(f"/api/audit/?project={world.project.pk}").status_code == 404
    assert [
        e for e in client.get("/api/audit/").json()["results"] if e["project_id"] == world.project.pk
    ] == []


# --- hole 2 (records side): earlier readings hidden during a repeat; study design hidden from readers ----


def test_the_earlier_reading_stays_hidden_until_the_repeat_is_submitted(world, client_for):
    first = _read(world, world.reader)
    client = client_for(world.reader)

    def listed():
        rows = client.get(f"/api/readings/?project={world.project.pk}").json()["results"]
        return [(r["assignment"], r["version"]) for r in rows]

    assert listed() == [(first.assignment.key, 1)]
    repeat = Assignment.objects.create(
        project=world.project, case=world.case, reader=world.reader, session=2, previous=world.assignment
    )
    assert listed() == []
    assert client.get(f"/api/assignments/{first.assignment.key}/readings/1/").status_code == 404
    body = {"values": full_values(world.project.scheme.parsed), "reason": "second thoughts"}
    url = f"/api/assignments/{first.assignment.key}/readings/1/correct/"
    assert client.post(url, body, format="json").status_code == 404
    _read(world, world.reader, session=2)
    repeat.refresh_from_db()
    assert repeat.status == Assignment.Status.SUBMITTED
    assert sorted(listed()) == sorted([(first.assignment.key, 1), (repeat.key, 1)])


def test_readers_do_not_see_the_projects_repeat_fraction_or_washout(world, client_for):
    world.project.repeat_fraction, world.project.washout_days, world.project.washout_cases = 0.2, 14, 20
    world.project.save()
    design = {"repeat_fraction", "washout_days", "washout_cases", "gold_fraction", "readers_per_case"}
    for user in (world.reader, world.other_reader):
        detail = client_for(user).get(f"/api/projects/{world.project.pk}/").json()
        (listed,) = client_for(user).get("/api/projects/").json()
        assert not design & set(detail) and not design & set(listed)
        assert detail["name"] == world.project.name
    for user in (world.admin, world.adjudicator, world.staff):
        assert client_for(user).get(f"/api/projects/{world.project.pk}/").json()["repeat_fraction"] == 0.2


# --- hole 6: corrections only by current readers, never after calibration ------------------------------


def test_a_reader_removed_from_the_project_can_no_longer_correct(world, client_for):
    reading = _read(world, world.reader)
    membership = world.project.memberships.get(user=world.reader, role=Membership.Role.READER)
    removed = client_for(world.admin).post(
        f"/api/projects/{world.project.pk}/members/{membership.pk}/remove/"
    )
    assert removed.status_code == 200
    body = {"values": full_values(world.project.scheme.parsed, value=1), "reason": "late change"}
    url = f"/api/assignments/{reading.assignment.key}/readings/1/correct/"
    response = client_for(world.reader).post(url, body, format="json")
    assert response.status_code == 404
    assert not reading.__class__.objects.filter(supersedes=reading).exists()


def test_no_correction_after_the_reader_was_shown_the_consensus_through_calibration(world, client_for):
    mine = _read(world, world.reader)
    theirs = _read(world, world.other_reader, value=1)
    _refit(world)
    body = {"values": full_values(world.project.scheme.parsed, value=1), "reason": "second look"}
    # not shown yet: a correction is fine
    url = f"/api/assignments/{theirs.assignment.key}/readings/1/correct/"
    fixed = client_for(world.other_reader).post(url, body, format="json")
    assert fixed.status_code == 201
    calibration = client_for(world.reader).get(f"/api/projects/{world.project.pk}/calibration/")
    assert calibration.status_code == 200 and calibration.json()
    url = f"/api/assignments/{mine.assignment.key}/readings/1/correct/"
    response = client_for(world.reader).post(url, body, format="json")
    assert response.status_code == 409 and "calibration" in response.json()["detail"]
    assert not mine.__class__.objects.filter(supersedes=mine).exists()


# --- hole 10: records that resist tampering -------------------------------------------------------------


def test_reading_values_and_contours_cannot_be_changed_even_by_raw_sql(world):
    from django.db import DatabaseError, connection

    from labeling.models import Contour, ImmutableError, ReadingValue

    reading = _read(world, world.reader)
    value = reading.values.first()
    with pytest.raises(ImmutableError):
        ReadingValue.objects.filter(pk=value.pk).update(value=1)
    with pytest.raises(ImmutableError):
        Contour.objects.filter(reading=reading).delete()
    statements = [
        ("UPDATE labeling_readingvalue SET value = 1 - value WHERE id = %s", value.pk),
        ("DELETE FROM labeling_readingvalue WHERE id = %s", value.pk),
        ("UPDATE labeling_reading SET reason = 'edited' WHERE id = %s", reading.pk),
        ("UPDATE labeling_auditevent SET action = 'edited' WHERE object_id = %s", str(reading.pk)),
    ]
    for sql, arg in statements:
        with (
            pytest.raises(DatabaseError, match="immutable"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(sql, [arg])
    value.refresh_from_db()
    assert value.value == full_values(world.project.scheme.parsed)[0]["value"]


def _verify() -> tuple[int, str]:
    import io

    from django.core.management import call_command
    from django.core.management.base import CommandError

    out = io.StringIO()
    try:
        call_command("audit_verify", stdout=out)
    except CommandError as exc:
        return 1, str(exc)
    return 0, out.getvalue()


@pytest.fixture
def audit_chain(world):
    """Five audited writes, and a cursor that may tamper (as the database's owner can: triggers off)."""
    from labeling.models import AuditEvent

    for i in range(5):
        client_update = {"label": f"case-{i}"}
        from labeling.services.studies import case_update

        case_update(actor=world.admin, case=world.case, **client_update)
    events = list(AuditEvent.objects.order_by("seq"))
    assert _verify()[0] == 0, _verify()
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE labeling_auditevent DISABLE TRIGGER USER")
        yield events, cursor
        cursor.execute("ALTER TABLE labeling_auditevent ENABLE TRIGGER USER")


def test_audit_verify_reports_an_edited_event(audit_chain):
    events, cursor = audit_chain
    target = events[-3]
    cursor.execute(
        'UPDATE labeling_auditevent SET data = \'{"label": "harmless"}\' WHERE id = %s', [target.pk]
    )
    code, message = _verify()
    assert code == 1 and f"event {target.pk} (seq {target.seq})" in message and "edited" in message


def test_audit_verify_reports_a_deleted_event(audit_chain):
    events, cursor = audit_chain
    gone, after = events[-3], events[-2]
    cursor.execute("DELETE FROM labeling_auditevent WHERE id = %s", [gone.pk])
    code, message = _verify()
    assert code == 1 and f"event {after.pk} (seq {after.seq})" in message and "deleted" in message


def test_audit_verify_reports_an_inserted_event(audit_chain):
    events, cursor = audit_chain
    last = events[-1]
    cursor.execute(
        "INSERT INTO labeling_auditevent (created_at, action, object_type, object_id, data, request_id, seq,"
        " prev_hash, hash) VALUES (now(), 'reading.submit', 'labeling.reading', '1', '{}', '', %s, %s, %s)",
        [last.seq + 1, last.hash, "f" * 64],
    )
    code, message = _verify()
    assert code == 1 and f"(seq {last.seq + 1})" in message and "edited" in message
    # and one slipped in without a place in the chain
    cursor.execute("DELETE FROM labeling_auditevent WHERE seq = %s", [last.seq + 1])
    assert _verify()[0] == 0
    cursor.execute(
        "INSERT INTO labeling_auditevent (created_at, action, object_type, object_id, data, request_id,"
        " prev_hash, hash) VALUES (now(), 'reading.submit', 'labeling.reading', '1', '{}', '', '', '')"
    )
    code, message = _verify()
    assert code == 1 and "inserted" in message


def test_admin_site_writes_are_audited_and_records_are_read_only_there(world):
    from django.test import Client

    from labeling.models import AuditEvent

    client = Client()
    client.force_login(world.staff)
    world.staff.is_superuser = True
    world.staff.save()
    response = client.post(
        f"/admin/labeling/project/{world.project.pk}/change/",
        {
            "name": "Renamed in admin",
            "description": "",
            "scheme": world.project.scheme_id,
            "readers_per_case": 3,
            "gold_fraction": 0,
            "repeat_fraction": 0,
            "washout_days": 0,
            "washout_cases": 0,
            "adjudication_threshold": 0.8,
            "contour_disagreement_mm": 3,
            "reader_study_design": "sequential",
            "deidentify": "site",
            "deidentify_dates": "site",
            "created_by": world.admin.pk,
            "memberships-TOTAL_FORMS": 0,
            "memberships-INITIAL_FORMS": 0,
        },
    )
    errors = response.context and [f.errors for f in [response.context.get("adminform")] if f]
    assert response.status_code == 302, errors
    world.project.refresh_from_db()
    assert world.project.name == "Renamed in admin"
    event = AuditEvent.objects.filter(action="admin.change").latest("seq")
    assert event.actor_id == world.staff.pk and event.project_id == world.project.pk
    assert "Name" in event.data["change"]
    for model in ("study", "case", "assignment", "reading", "auditevent"):
        assert client.get(f"/admin/labeling/{model}/add/").status_code == 403, model
    assert _verify()[0] == 0


def test_a_repeat_reaches_the_reader_under_a_name_of_its_own_never_the_case_id_or_label(world, client_for):
    """Issue 13, hole 2: the repeat carried the same case_id and case_label as the first read."""
    client = client_for(world.reader)
    first = client.get(f"/api/assignments/{world.assignment.key}/").json()
    _read(world, world.reader)
    repeat = Assignment.objects.create(
        project=world.project,
        case=world.case,
        reader=world.reader,
        session=2,
        previous=world.assignment,
        not_before=timezone.now(),
    )
    (item,) = client.get(f"/api/projects/{world.project.pk}/worklist/").json()["items"]
    detail = client.get(f"/api/assignments/{repeat.key}/").json()
    # each name is the HMAC of its own assignment, not anything of the case (a substring test of the case id
    # failed by chance whenever the id was one digit that the hex name happened to contain)
    for shown, assignment in ((first, world.assignment), (item, repeat), (detail, repeat)):
        assert "case_id" not in shown and shown["case_label"] != world.case.label
        assert shown["case_label"] == assignment_pseudonym(assignment) != str(world.case.pk)
    assert item["case_label"] == detail["case_label"] != first["case_label"]
