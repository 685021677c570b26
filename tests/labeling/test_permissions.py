"""The whole role × endpoint matrix, including the blinding rules: outsiders and other readers get 404."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.urls import get_resolver
from django.utils import timezone

from labeling.models import Assignment, Membership
from labeling.services.readings import reading_submit
from tests.labeling.factories import MembershipFactory, UserFactory, contour, full_values, mri_study

ROLES = ["anonymous", "outsider", "reader", "other_reader", "adjudicator", "admin", "staff"]
# Blinding (issue 13, hole 1): a reader with an open assignment on the world's case who also holds another
# role, and a reader whose blinded repeat of that case is open (their first reading submitted).
BLINDED_ROLES = {
    "reader_admin": "admin",
    "reader_adjudicator": "adjudicator",
    "repeat_reader": "other_reader",
}


@dataclass
class Endpoint:
    name: str
    method: str
    url: Callable[[Any], str]
    expect: dict[str, int]  # role -> status; roles not named get `default`
    default: int = 403
    body: Callable[[Any], dict] = lambda w: {}
    setup: Callable[[Any], None] = lambda w: None
    blinded: bool = False  # reveals other readers, consensus, AI output or agreement: 404 while reading


def values(w):
    return {"values": full_values(w.project.scheme.parsed)}


def with_reading(w):
    w.reading = reading_submit(
        actor=w.reader, assignment=w.assignment, values=full_values(w.project.scheme.parsed)
    )


def with_aided(w):
    w.aided = Assignment.objects.create(
        project=w.project, case=w.case, reader=w.reader, session=1, aided=True
    )


def with_repeat(w):
    """The world's reader has read the case; their blinded repeat of it is open now."""
    with_reading(w)
    w.repeat = Assignment.objects.create(
        project=w.project,
        case=w.case,
        reader=w.reader,
        session=2,
        previous=w.assignment,
        not_before=timezone.now(),
    )


def repeat_values(w):
    """A full reading with a contour on the repeat's T1 series, named as its reader knows it."""
    from labeling.services.identity import assignment_uids

    t1 = assignment_uids(w.repeat).pseudo(w.case.study.series.get(description="T1").series_uid)
    return {**values(w), "contours": [contour(t1, 1)]}


def with_run(w):
    with_reading(w)
    from labeling.services.consensus import consensus_refit_project

    w.run = consensus_refit_project(project_id=w.project.pk)[0]


def with_contour_reading(w):
    """The world's reader has read the case with a joint line on slice 1 of T1."""
    t1 = w.case.study.series.get(description="T1").series_uid
    w.reading = reading_submit(
        actor=w.reader,
        assignment=w.assignment,
        values=full_values(w.project.scheme.parsed),
        contours=[contour(t1, 1)],
    )


def with_import_job(w):
    from labeling.services.ingest import import_job_create

    w.job = import_job_create(actor=w.admin, project=w.project, source="test", params={"folder": "/nowhere"})


def with_training_run(w):
    from ml.models import ModelVersion, TrainingRun

    w.run = TrainingRun.objects.create(project=w.project, kind="contour", state="running")
    w.version = ModelVersion.objects.create(
        project=w.project,
        kind="contour",
        version=1,
        training_run=w.run,
        checkpoint_dir="/nonexistent",
        gold_metrics={"frac_below_2_76mm": 0.9},  # above the promotion floor
    )


def new_study(w):
    w.new_study = mri_study(actor=w.admin)  # a project admin may add only studies they registered


P = lambda w: f"/api/projects/{w.project.pk}"  # noqa: E731
EVERYONE = dict.fromkeys(ROLES[1:], 200)
ADMINS = {"admin": 200, "staff": 200}
MEMBERS_404 = {"outsider": 404}
ADJUDICATORS = {**ADMINS, "adjudicator": 200}

ENDPOINTS = [
    Endpoint("auth-me", "get", lambda w: "/api/auth/me/", EVERYONE),
    Endpoint("scheme-list", "get", lambda w: "/api/schemes/", EVERYONE),
    Endpoint("project-list", "get", lambda w: "/api/projects/", EVERYONE),
    Endpoint(
        "project-create",
        "post",
        lambda w: "/api/projects/create/",
        {"staff": 201},
        body=lambda w: {"name": "New", "scheme": "ct_sij"},
    ),
    Endpoint("project-detail", "get", lambda w: f"{P(w)}/", {**EVERYONE, **MEMBERS_404}),
    Endpoint(
        "project-update",
        "post",
        lambda w: f"{P(w)}/update/",
        {**ADMINS, **MEMBERS_404},
        body=lambda w: {"description": "changed"},
    ),
    Endpoint(
        "project-delete", "post", lambda w: f"{P(w)}/delete/", {"admin": 204, "staff": 204, **MEMBERS_404}
    ),
    Endpoint("member-list", "get", lambda w: f"{P(w)}/members/", {**ADMINS, **MEMBERS_404}),
    Endpoint(
        "member-add",
        "post",
        lambda w: f"{P(w)}/members/add/",
        {"admin": 201, "staff": 201, **MEMBERS_404},
        body=lambda w: {"username": "outsider", "role": "reader"},
    ),
    Endpoint(
        "member-remove",
        "post",
        lambda w: f"{P(w)}/members/{w.project.memberships.get(user=w.other_reader).pk}/remove/",
        {**ADMINS, **MEMBERS_404},
    ),
    Endpoint("study-list", "get", lambda w: "/api/studies/", ADMINS),
    Endpoint(
        "study-register",
        "post",
        lambda w: "/api/studies/register/",
        {"admin": 201, "staff": 201},
        body=lambda w: {"study_uid": "1.2.3.999", "modality": "MR"},
    ),
    Endpoint("case-list", "get", lambda w: f"{P(w)}/cases/", {**ADMINS, "adjudicator": 200, **MEMBERS_404}),
    Endpoint(
        "case-create",
        "post",
        lambda w: f"{P(w)}/cases/create/",
        {"admin": 201, "staff": 201, **MEMBERS_404},
        body=lambda w: {"study_uid": w.new_study.study_uid},
        setup=new_study,
    ),
    Endpoint(
        "case-detail",
        "get",
        lambda w: f"{P(w)}/cases/{w.case.pk}/",
        {**ADMINS, "adjudicator": 200, **MEMBERS_404},
    ),
    Endpoint(
        "case-update",
        "post",
        lambda w: f"{P(w)}/cases/{w.case.pk}/update/",
        {**ADMINS, **MEMBERS_404},
        body=lambda w: {"label": "renamed"},
    ),
    Endpoint(
        "case-delete",
        "post",
        lambda w: f"{P(w)}/cases/{w.case.pk}/delete/",
        {"admin": 204, "staff": 204, **MEMBERS_404},
    ),
    Endpoint(
        "assignment-list", "get", lambda w: f"{P(w)}/assignments/", {**ADMINS, **MEMBERS_404}, blinded=True
    ),
    Endpoint(
        "assignment-generate",
        "post",
        lambda w: f"{P(w)}/assignments/generate/",
        {**ADMINS, **MEMBERS_404},
        body=lambda w: {"readers_per_case": 2},
    ),
    Endpoint(
        "worklist", "get", lambda w: f"{P(w)}/worklist/", {"reader": 200, "other_reader": 200, **MEMBERS_404}
    ),
    Endpoint(
        "worklist-next",
        "post",
        lambda w: f"{P(w)}/worklist/next/",
        {"reader": 200, "other_reader": 200, **MEMBERS_404},
    ),
    Endpoint(
        "assignment-detail", "get", lambda w: f"/api/assignments/{w.assignment.key}/", {"reader": 200}, 404
    ),
    Endpoint(
        "reading-submit",
        "post",
        lambda w: f"/api/assignments/{w.assignment.key}/reading/",
        {"reader": 201},
        404,
        body=values,
    ),
    Endpoint(
        "draft-detail", "get", lambda w: f"/api/assignments/{w.assignment.key}/draft/", {"reader": 200}, 404
    ),
    Endpoint(
        "assignment-ai",
        "get",
        lambda w: f"/api/assignments/{w.aided.key}/ai/",
        {"reader": 200},
        404,
        setup=with_aided,
    ),
    Endpoint(
        "draft-save",
        "post",
        lambda w: f"/api/assignments/{w.assignment.key}/draft/save/",
        {"reader": 200},
        404,
        body=lambda w: {"values": [{"joint": "left"}]},
    ),
    Endpoint("reading-list", "get", lambda w: "/api/readings/", EVERYONE),
    # repeat sessions (issue 13, hole 2): the repeat is reached by its own key, by its reader only; the
    # earlier reading of the case is hidden from everyone (its reader too) until the repeat is submitted
    Endpoint(
        "assignment-detail",
        "get",
        lambda w: f"/api/assignments/{w.repeat.key}/",
        {"reader": 200},
        404,
        setup=with_repeat,
    ),
    Endpoint(
        "draft-save",
        "post",
        lambda w: f"/api/assignments/{w.repeat.key}/draft/save/",
        {"reader": 200},
        404,
        body=repeat_values,
        setup=with_repeat,
    ),
    Endpoint(
        "reading-submit",
        "post",
        lambda w: f"/api/assignments/{w.repeat.key}/reading/",
        {"reader": 201},
        404,
        body=repeat_values,
        setup=with_repeat,
    ),
    Endpoint(
        "reading-detail",
        "get",
        lambda w: f"/api/assignments/{w.assignment.key}/readings/1/",
        {},
        404,
        setup=with_repeat,
    ),
    Endpoint(
        "reading-correct",
        "post",
        lambda w: f"/api/assignments/{w.assignment.key}/readings/1/correct/",
        {},
        404,
        body=lambda w: {**values(w), "reason": "peeked at the first read"},
        setup=with_repeat,
    ),
    Endpoint(
        "reading-detail",
        "get",
        lambda w: f"/api/assignments/{w.assignment.key}/readings/1/",
        {"reader": 200},
        404,
        setup=with_reading,
    ),
    Endpoint(
        "reading-correct",
        "post",
        lambda w: f"/api/assignments/{w.assignment.key}/readings/1/correct/",
        {"reader": 201},
        404,
        body=lambda w: {**values(w), "reason": "typo"},
        setup=with_reading,
    ),
    Endpoint("audit-list", "get", lambda w: "/api/audit/", ADMINS),
    Endpoint(
        "audit-list",
        "get",
        lambda w: f"/api/audit/?project={w.project.pk}",
        {**ADMINS, **MEMBERS_404},
        blinded=True,
    ),
    Endpoint(
        "consensus-list", "get", lambda w: f"{P(w)}/consensus/", {**ADJUDICATORS, **MEMBERS_404}, blinded=True
    ),
    Endpoint(
        "consensus-refit",
        "post",
        lambda w: f"{P(w)}/consensus/refit/",
        {"admin": 202, "staff": 202, **MEMBERS_404},
    ),
    Endpoint(
        "consensus-readers",
        "get",
        lambda w: f"{P(w)}/consensus/{w.run.pk}/readers/",
        {**ADJUDICATORS, **MEMBERS_404},
        setup=with_run,
        blinded=True,
    ),
    Endpoint(
        "adjudication-queue",
        "get",
        lambda w: f"{P(w)}/adjudication/queue/",
        {**ADJUDICATORS, **MEMBERS_404},
        blinded=True,
    ),
    Endpoint(
        "adjudication-item",
        "get",
        lambda w: f"{P(w)}/adjudication/items/{w.case.pk}/left/iliac_upper/bme/",
        {**ADJUDICATORS, **MEMBERS_404},
        setup=with_run,
        blinded=True,
    ),
    Endpoint(
        "adjudication-record",
        "post",
        lambda w: f"{P(w)}/adjudication/record/",
        {"adjudicator": 201, "staff": 201, **MEMBERS_404},
        body=lambda w: {
            "case_id": w.case.pk,
            "joint": "left",
            "region": "iliac_upper",
            "lesion": "bme",
            "value": 1,
            "reason": "clear oedema",
        },
        blinded=True,
    ),
    Endpoint(
        "adjudication-cases",
        "get",
        lambda w: f"{P(w)}/adjudication/cases/",
        {**ADJUDICATORS, **MEMBERS_404},
        blinded=True,
    ),
    Endpoint(
        "contour-dispute",
        "get",
        lambda w: f"{P(w)}/adjudication/contours/{w.case.pk}/left/1/",
        {**ADJUDICATORS, **MEMBERS_404},
        setup=with_contour_reading,
        blinded=True,
    ),
    Endpoint(
        "contour-adjudication-record",
        "post",
        lambda w: f"{P(w)}/adjudication/contours/record/",
        {"adjudicator": 201, "staff": 201, **MEMBERS_404},
        body=lambda w: {
            "case_id": w.case.pk,
            "joint": "left",
            "slice_index": 1,
            "choice": "drawn",
            "points_mm": [[30.0, 0.0, 40.0], [27.0, 0.0, 20.0], [24.0, 0.0, 0.0]],
            "reason": "the joint line runs medial to both readers'",
        },
        setup=with_contour_reading,
        blinded=True,
    ),
    Endpoint(
        "contour-queue",
        "get",
        lambda w: f"{P(w)}/adjudication/contours/",
        {**ADJUDICATORS, **MEMBERS_404},
        blinded=True,
    ),
    Endpoint(
        "contour-reliability",
        "get",
        lambda w: f"{P(w)}/contours/reliability/",
        {**ADJUDICATORS, **MEMBERS_404},
        blinded=True,
    ),
    Endpoint("training-run-list", "get", lambda w: f"{P(w)}/training/runs/", {**ADMINS, **MEMBERS_404}),
    Endpoint(
        "training-run-start",
        "post",
        lambda w: f"{P(w)}/training/runs/start/",
        {"admin": 201, "staff": 201, **MEMBERS_404},
        body=lambda w: {"kind": "contour"},
    ),
    Endpoint(
        "training-run-detail",
        "get",
        lambda w: f"{P(w)}/training/runs/{w.run.pk}/",
        {**ADMINS, **MEMBERS_404},
        setup=with_training_run,
    ),
    Endpoint(
        "training-run-cancel",
        "post",
        lambda w: f"{P(w)}/training/runs/{w.run.pk}/cancel/",
        {**ADMINS, **MEMBERS_404},
        setup=with_training_run,
    ),
    Endpoint(
        "training-policy-list", "get", lambda w: f"{P(w)}/training/policies/", {**ADMINS, **MEMBERS_404}
    ),
    Endpoint(
        "training-policy-update",
        "post",
        lambda w: f"{P(w)}/training/policies/contour/update/",
        {**ADMINS, **MEMBERS_404},
        body=lambda w: {"schedule_enabled": True, "min_new_items": 10},
    ),
    Endpoint(
        "model-version-list",
        "get",
        lambda w: f"{P(w)}/models/",
        {**ADJUDICATORS, **MEMBERS_404},
        blinded=True,
    ),
    Endpoint(
        "model-version-promote",
        "post",
        lambda w: f"{P(w)}/models/{w.version.pk}/promote/",
        {**ADMINS, **MEMBERS_404},
        body=lambda w: {"reason": "rollback"},
        setup=with_training_run,
    ),
    Endpoint(
        "case-prediction-list",
        "get",
        lambda w: f"{P(w)}/cases/{w.case.pk}/predictions/",
        {**ADJUDICATORS, **MEMBERS_404},
        blinded=True,
    ),
    Endpoint(
        "agreement",
        "get",
        lambda w: f"{P(w)}/agreement/?n_boot=5",
        {"admin": 202, "staff": 202, "adjudicator": 202, **MEMBERS_404},  # queued for the worker
        blinded=True,
    ),
    Endpoint(
        "agreement-csv",
        "get",
        lambda w: f"{P(w)}/agreement.csv?n_boot=5",
        {"admin": 202, "staff": 202, "adjudicator": 202, **MEMBERS_404},  # queued for the worker
        blinded=True,
    ),
    Endpoint(
        "calibration",
        "get",
        lambda w: f"{P(w)}/calibration/",
        # both readers still have their case to read: the consensus stays hidden (200 once they submit,
        # tests/labeling/test_trust.py)
        {"reader": 404, "other_reader": 404, **MEMBERS_404},
        blinded=True,
    ),
    # the reader-study analysis (202: queued for the worker)
    *(
        Endpoint(
            name,
            "get",
            lambda w, u=url: f"{P(w)}/{u}",
            {"admin": 202, "staff": 202, **MEMBERS_404},
            blinded=True,
        )
        for name, url in [
            ("reader-study", "reader-study/"),
            ("reader-study-csv", "reader-study.csv"),
            ("reader-study-report", "reader-study/report.html"),
        ]
    ),
    # imports and exports (labeling/api/io_urls.py)
    Endpoint("import-list", "get", lambda w: f"{P(w)}/imports/", {**ADMINS, **MEMBERS_404}),
    Endpoint(
        "import-detail",
        "get",
        lambda w: f"{P(w)}/imports/{w.job.pk}/",
        {**ADMINS, **MEMBERS_404},
        setup=with_import_job,
    ),
    # JSON is no upload (multipart only): 415 shows the admin got past the permission check
    Endpoint(
        "import-upload",
        "post",
        lambda w: f"{P(w)}/imports/upload/",
        {"admin": 415, "staff": 415, **MEMBERS_404},
    ),
    # no DICOMweb server is configured in the tests: 400 shows the admin got past the permission check
    Endpoint(
        "import-dicomweb",
        "post",
        lambda w: f"{P(w)}/imports/dicomweb/",
        {"admin": 400, "staff": 400, **MEMBERS_404},
        body=lambda w: {"filters": {"PatientID": "PHANTOM-*"}},
    ),
    Endpoint(
        "export-readings-csv",
        "get",
        lambda w: f"{P(w)}/exports/readings.csv",
        {**ADMINS, **MEMBERS_404},
        blinded=True,
    ),
    Endpoint(
        "export-consensus-csv",
        "get",
        lambda w: f"{P(w)}/exports/consensus.csv",
        {**ADMINS, **MEMBERS_404},
        blinded=True,
    ),
    Endpoint(
        "export-adjudications-csv",
        "get",
        lambda w: f"{P(w)}/exports/adjudications.csv",
        {**ADMINS, **MEMBERS_404},
        blinded=True,
    ),
    Endpoint(
        "export-sr",
        "post",
        lambda w: f"{P(w)}/exports/sr/",
        {**ADMINS, **MEMBERS_404},
        setup=with_reading,
        blinded=True,
    ),
    # the originals behind the pseudonyms: site staff only (audited; tests/labeling/test_deidentification.py)
    Endpoint(
        "deidentification-mapping",
        "get",
        lambda w: f"{P(w)}/deidentification/",
        {"staff": 200, **MEMBERS_404},
    ),
]


def expected(endpoint: Endpoint, role: str) -> int:
    if role == "anonymous":
        return 401
    if role in BLINDED_ROLES:
        if endpoint.name in ("worklist", "worklist-next"):
            return 200  # they are readers
        if endpoint.name == "calibration":
            return 404  # a reader's calibration shows the consensus: hidden while they read
        if endpoint.name == "case-create" and role == "reader_admin":
            return 400  # the new study was registered by the world's admin: not theirs to add
        code = expected(endpoint, BLINDED_ROLES[role])
        return 404 if endpoint.blinded and code not in (403, 404) else code
    return endpoint.expect.get(role, endpoint.default)


def add_blinded_role(w: Any, role: str) -> Any:
    """A user of ``role`` (see BLINDED_ROLES) with their open assignment on the world's case."""
    user = UserFactory(username=role)
    MembershipFactory(project=w.project, user=user, role=Membership.Role.READER)
    if role == "repeat_reader":
        first = Assignment.objects.create(project=w.project, case=w.case, reader=user, session=1)
        reading_submit(actor=user, assignment=first, values=full_values(w.project.scheme.parsed))
        Assignment.objects.create(
            project=w.project, case=w.case, reader=user, session=2, previous=first, not_before=timezone.now()
        )
    else:
        MembershipFactory(project=w.project, user=user, role=BLINDED_ROLES[role])
        Assignment.objects.create(project=w.project, case=w.case, reader=user, session=1)
    return user


@pytest.mark.parametrize("role", ROLES + list(BLINDED_ROLES))
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: f"{e.method}:{e.name}")
def test_role_endpoint_matrix(world, client_for, endpoint, role):
    endpoint.setup(world)
    if role in BLINDED_ROLES:
        user = add_blinded_role(world, role)
    else:
        user = None if role == "anonymous" else getattr(world, role)
    client = client_for(user)
    url = endpoint.url(world)
    response = getattr(client, endpoint.method)(url, endpoint.body(world), format="json")
    assert response.status_code == expected(endpoint, role), (url, role, response.content[:300])


def test_matrix_covers_every_api_endpoint():
    includes = [p for p in get_resolver().url_patterns if str(p.pattern) == "api/"]  # every api/ include
    names = {p.name for include in includes for p in include.url_patterns}
    assert names == {e.name for e in ENDPOINTS} | {"auth-csrf", "auth-login", "auth-logout", "auth-token"}


def test_outsider_project_list_is_empty_and_readers_see_only_their_readings(world, client_for):
    assert client_for(world.outsider).get("/api/projects/").json() == []
    with_reading(world)
    mine = client_for(world.reader).get("/api/readings/").json()
    assert [(r["assignment"], r["version"]) for r in mine["results"]] == [(world.assignment.key, 1)]
    assert client_for(world.other_reader).get("/api/readings/").json()["results"] == []


def test_worklist_reveals_neither_session_nor_gold(world, client_for):
    world.case.is_gold = True
    world.case.reference = full_values(world.project.scheme.parsed)
    world.case.save()
    body = client_for(world.reader).get(f"/api/projects/{world.project.pk}/worklist/").json()
    (item,) = body["items"]
    assert "session" not in item and "is_gold" not in item and "reference" not in item
    detail = client_for(world.reader).get(f"/api/assignments/{item['key']}/").json()
    assert not {"session", "is_gold", "reference", "previous_id"} & set(detail)
