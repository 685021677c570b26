"""Promotion floors (issue 15, finding 6): a chance-level model must not reach readers, even as the first model
of its kind. Below its kind's floor a trained model stays a candidate, a manual promotion is refused with a 409
that says why, and no pre-reads come from it; a project's training policy may set its own floor."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.test import override_settings

from ml.models import ModelVersion, Prediction, TrainingRun
from ml.pipelines import Evaluation, TrainRequest, pipeline_for
from ml.services.prereads import prereads_compute
from ml.services.promotion import below_floor, compare, model_version_register
from ml.services.snapshots import snapshot_create
from tests.ml_app.conftest import TINY_CONTOUR, build_campaign


@pytest.mark.django_db
def test_a_first_model_below_the_floor_stays_a_candidate_and_cannot_be_promoted_by_hand(
    campaign_settings, client_for
):
    campaign = build_campaign(campaign_settings, n_mri=4, n_gold=2)
    project = campaign.project
    snapshot = snapshot_create(project=project, kind="contour")
    run = TrainingRun.objects.create(
        project=project, kind="contour", state=TrainingRun.State.RUNNING, snapshot=snapshot
    )
    pipeline_for("contour").train(TrainRequest(Path(snapshot.path), Path(run.checkpoint_dir), TINY_CONTOUR))

    # the tiny model traces few lines within 2.76 mm: under a floor above its fraction it stays a candidate,
    # although no contour model is promoted yet (before floors: "promoted: no promoted model yet")
    fraction = pipeline_for("contour").evaluate(Path(run.checkpoint_dir), Path(snapshot.path)).score
    floor = round(min(fraction + 0.25, 1.0), 2)
    assert fraction < floor
    with override_settings(ML_PROMOTION_FLOORS={"contour": floor, "lesions": 0.8, "ctgrade": 0.6}):
        version = model_version_register(run=run, card={})
        assert version.status == ModelVersion.Status.CANDIDATE, version.comparison
        assert not ModelVersion.objects.filter(project=project, status=ModelVersion.Status.PROMOTED).exists()
        assert "below the promotion floor" in version.comparison["reason"]
        assert version.comparison["floor"] == {
            "metric": "frac_below_2_76mm",
            "min": floor,
            "set_by": "default",
        }

        admin = client_for(campaign.admin)
        url = f"/api/projects/{project.pk}/models/{version.pk}/promote/"
        refused = admin.post(url, {"reason": "looks fine to me"}, format="json")
        assert refused.status_code == 409, refused.content
        assert "below the promotion floor" in refused.json()["detail"]
        version.refresh_from_db()
        assert version.status == ModelVersion.Status.CANDIDATE

        # no pre-reads from a candidate: neither computed nor listed
        assert prereads_compute(version_id=version.pk) == 0
        case = project.cases.first()
        Prediction.objects.create(model_version=version, case=case, output={"contours": []})
        listed = admin.get(f"/api/projects/{project.pk}/cases/{case.pk}/predictions/")
        assert listed.status_code == 200 and listed.json() == []

        # the project lowers its own floor for this kind: now the admin may promote it by hand
        policy = admin.post(
            f"/api/projects/{project.pk}/training/policies/contour/update/",
            {"promotion_floor": 0.0},
            format="json",
        )
        assert policy.status_code == 200, policy.content
        assert policy.json()["floor"] == {"metric": "frac_below_2_76mm", "min": 0.0, "set_by": "policy"}
        promoted = admin.post(url, {"reason": "accepted for the pilot"}, format="json")
        assert promoted.status_code == 200, promoted.content
        assert promoted.json()["status"] == "promoted"


def test_the_decision_text_rounds_as_the_training_page_does():
    """A table said 0.601 where the decision text said 0.6078: both now show 3 decimals (frontend fmtMetric)."""
    floor = {"metric": "qwk", "min": 0.6, "set_by": "default"}
    candidate = Evaluation("qwk", {"qwk": 0.6078}, {"auc_grade_2": 0.80}, n_gold=5)
    current = Evaluation("qwk", {"qwk": 0.6012}, {"auc_grade_2": 0.85}, n_gold=5)
    decision = compare(candidate, current, 0.02, floor)
    assert decision["reason"] == "qwk 0.608 vs 0.601; auc_grade_2 drops by 0.050 > 0.02"
    assert not decision["promote"] and decision["floor"] == floor
    low = compare(Evaluation("qwk", {"qwk": 0.07}, n_gold=5), None, 0.02, floor)
    assert low == {
        "promote": False,
        "reason": "qwk 0.070 is below the promotion floor 0.6: stays a candidate",
        "floor": floor,
    }


def test_a_floor_at_the_metrics_least_value_accepts_an_undefined_metric():
    """An AUC on a gold set of one class is undefined: a floor of 0 (accept any) still promotes; the e2e's
    lesion model, evaluated on one gold case, stayed a candidate and made no pre-reads."""
    undefined = {"min_auc": float("nan")}
    assert below_floor(undefined, {"metric": "min_auc", "min": 0.0}) is None
    assert below_floor({}, {"metric": "qwk", "min": -1.0}) is None
    assert below_floor(undefined, {"metric": "min_auc", "min": 0.01}) == (
        "min_auc undefined is below the promotion floor 0.01"
    )
    assert (
        below_floor({"qwk": -0.2}, {"metric": "qwk", "min": 0.0})
        == "qwk -0.200 is below the promotion floor 0"
    )


@pytest.mark.django_db
def test_the_default_floors_come_from_the_settings(campaign_settings):
    from django.conf import settings

    assert settings.ML_PROMOTION_FLOORS == {"contour": 0.8, "lesions": 0.8, "ctgrade": 0.6}
