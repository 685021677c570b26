"""The ml answers match the OpenAPI schema field for field (tests/api_schema: objects closed): a contour model
trained in process on a small campaign, registered, promoted and pre-reading, then every training, model and
pre-read answer an admin, an adjudicator and an AI-aided reader get, checked against its operation's schema."""

from __future__ import annotations

import pytest

from labeling.models import Assignment, Membership
from ml.models import Prediction, TrainingRun
from ml.services.prereads import prereads_compute
from ml.services.training import training_run_execute
from tests.api_schema import assert_matches_schema
from tests.labeling.factories import MembershipFactory, UserFactory
from tests.ml_app.conftest import TINY_CONTOUR, build_campaign


@pytest.mark.django_db
def test_training_model_and_pre_read_answers_match_the_schema(campaign_settings, client_for, monkeypatch):
    monkeypatch.setattr("ml.services.training._enqueue", lambda run_id: None)  # trained in process below
    monkeypatch.setattr("ml.services.promotion._enqueue_prereads", lambda version_id: None)  # on promotion
    monkeypatch.setattr("ml.services.prereads._enqueue_prereads", lambda version_id: None)  # next batch
    campaign = build_campaign(campaign_settings, n_mri=4, n_gold=2)
    project = campaign.project
    project.ai_aided_reads = True
    project.save()
    admin = client_for(campaign.admin)
    p = f"/api/projects/{project.pk}"

    policy = admin.post(f"{p}/training/policies/contour/update/", {"promotion_floor": 0.0}, format="json")
    assert assert_matches_schema(policy)["floor"]["set_by"] == "policy"
    started = admin.post(
        f"{p}/training/runs/start/", {"kind": "contour", "config": TINY_CONTOUR}, format="json"
    )
    run_id = assert_matches_schema(started)["id"]
    assert_matches_schema(admin.get(f"{p}/training/runs/{run_id}/"))  # queued: no progress yet
    training_run_execute(run_id=run_id)
    assert TrainingRun.objects.get(pk=run_id).state == TrainingRun.State.SUCCEEDED
    assert prereads_compute(version_id=TrainingRun.objects.get(pk=run_id).model_version.pk) == 4

    run = assert_matches_schema(admin.get(f"{p}/training/runs/{run_id}/"))
    assert (
        run["progress"]["fraction"] == 1.0
        and run["history"]
        and run["started_by"] == "ml-admin-" + str(project.pk)
    )
    assert_matches_schema(admin.get(f"{p}/training/runs/"))
    assert_matches_schema(admin.get(f"{p}/training/policies/"))
    (version,) = assert_matches_schema(admin.get(f"{p}/models/"))
    assert (
        version["gold_metrics"]["primary"] == "frac_below_2_76mm" and version["gold_metrics"]["n_gold"] == 2
    )
    assert version["comparison"]["reason"] and version["status"] == "promoted"

    case = project.cases.order_by("id").first()
    assert Prediction.objects.filter(case=case).exists()
    adjudicator = UserFactory(username=f"ml-adjudicator-{project.pk}")
    MembershipFactory(project=project, user=adjudicator, role=Membership.Role.ADJUDICATOR)
    (listed,) = assert_matches_schema(client_for(adjudicator).get(f"{p}/cases/{case.pk}/predictions/"))
    assert listed["kind"] == "contour"
    item = client_for(adjudicator).get(f"{p}/adjudication/items/{case.pk}/left/iliac_upper/bme/")
    assert [a["kind"] for a in assert_matches_schema(item)["ai"]] == ["contour"]

    reader = campaign.readers[0]
    aided = Assignment.objects.create(project=project, case=case, reader=reader, session=2, aided=True)
    (ai,) = assert_matches_schema(client_for(reader).get(f"/api/assignments/{aided.key}/ai/"))
    assert ai["kind"] == "contour" and ai["output"]["contours"]


def test_the_check_refuses_an_undeclared_field_and_a_kind_s_wrong_shape():
    import jsonschema

    from tests.api_schema import response_schema

    schema = response_schema("GET", "/api/assignments/some-key/ai/", 200)
    line = {"slice_index": 3, "side": "left", "points_mm": [[0, 0, 0], [0, 1, 2]], "confidence": 0.9}
    good = [{"kind": "contour", "version": 1, "output": {"contours": [line]}}]
    validator = jsonschema.Draft202012Validator(schema)
    assert not list(validator.iter_errors(good))
    leaked = [{"kind": "contour", "version": 1, "output": {"contours": [{**line, "scan_id": "17"}]}}]
    assert list(validator.iter_errors(leaked))  # the blinding leak of issue 17 fails the check
    wrong_kind = [{"kind": "lesions", "version": 1, "output": {"contours": [line]}}]
    assert list(validator.iter_errors(wrong_kind))
