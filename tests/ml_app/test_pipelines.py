"""The lesion pipeline on a product snapshot, in process: train, evaluate on gold, pre-read a case."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ml.lesions.infer import LesionPredictor
from ml.models import ModelVersion, Prediction, TrainingRun
from ml.pipelines import TrainRequest, pipeline_for, predict_concurrently
from ml.services import prereads
from ml.services.prereads import prereads_compute
from ml.services.snapshots import case_record, json_safe, snapshot_create
from ml.services.training import training_run_start
from ml.training import read_card
from tests.ml_app.conftest import TINY_CONTOUR, build_campaign

TINY_LESIONS = {
    "epochs": 1,
    "batch_size": 4,
    "device": "cpu",
    "model": {"channels": [4, 8], "strides": [2, 2]},
    "crop": {"crop_mm": 64.0, "size_px": 32, "n_slices": 8},
}


@pytest.mark.django_db
def test_lesion_pipeline_trains_on_a_snapshot_evaluates_on_gold_and_pre_reads(campaign_settings):
    campaign = build_campaign(campaign_settings, n_mri=4, n_gold=2)
    snapshot = snapshot_create(project=campaign.project, kind="lesions")
    assert snapshot_create(project=campaign.project, kind="lesions") == snapshot  # same data, same snapshot
    assert snapshot.summary["gold"] == 2 and snapshot.summary["train"] == 2
    pipeline = pipeline_for("lesions")
    seen = []
    card = pipeline.train(
        TrainRequest(
            Path(snapshot.path),
            campaign.root / "ckpt",
            TINY_LESIONS,
            progress=seen.append,
            snapshot_id=snapshot.content_hash,
        )
    )
    assert card["model_kind"] and seen and {"epoch", "loss"} <= set(seen[-1])
    evaluation = pipeline.evaluate(campaign.root / "ckpt", Path(snapshot.path))
    assert evaluation.primary == "mean_auc" and evaluation.n_gold == 2
    assert 0.0 <= evaluation.score <= 1.0
    case = campaign.project.cases.select_related("study").first()
    output = pipeline.load(campaign.root / "ckpt", "cpu").predict(case_record(case, ["T1", "STIR"]))
    assert set(output) >= {"left", "right"} and 0.0 <= output["left"]["bme/iliac_upper"] <= 1.0


def _lesion_version(campaign, checkpoint, status=ModelVersion.Status.PROMOTED):  # type: ignore[no-untyped-def]
    """Version 1 of a lesion model of the campaign's project, from a finished run, at ``checkpoint``."""
    run = TrainingRun.objects.create(
        project=campaign.project, kind="lesions", state=TrainingRun.State.SUCCEEDED
    )
    return ModelVersion.objects.create(
        project=campaign.project,
        kind="lesions",
        version=1,
        training_run=run,
        status=status,
        checkpoint_dir=str(checkpoint),
    )


@pytest.mark.django_db
def test_a_pre_read_batch_loads_the_weights_once(campaign_settings, monkeypatch):
    """Pre-reads of a promoted version read its checkpoint once per batch, not once per case (24 CT
    pre-reads took ~4 min when every case reloaded the model)."""
    campaign = build_campaign(campaign_settings, n_mri=4, n_gold=2)
    snapshot = snapshot_create(project=campaign.project, kind="lesions")
    checkpoint = campaign.root / "ckpt"
    pipeline_for("lesions").train(TrainRequest(Path(snapshot.path), checkpoint, TINY_LESIONS))
    version = _lesion_version(campaign, checkpoint)
    loads = []
    real = LesionPredictor.from_checkpoint.__func__  # type: ignore[attr-defined]

    def counting(cls, directory, **kwargs):
        loads.append(str(directory))
        return real(cls, directory, **kwargs)

    monkeypatch.setattr(LesionPredictor, "from_checkpoint", classmethod(counting))
    monkeypatch.setattr("ml.services.prereads._enqueue_prereads", lambda version_id: None)  # one batch only

    assert prereads_compute(version_id=version.pk, batch=10) == campaign.project.cases.count() == 4
    assert loads == [str(checkpoint)]
    outputs = Prediction.objects.filter(model_version=version).values_list("output", flat=True)
    assert all(0.0 <= o["left"]["bme/iliac_upper"] <= 1.0 for o in outputs)
    assert prereads_compute(version_id=version.pk) == 0 and len(loads) == 1  # nothing left: nothing loaded

    # the batch (cases on threads) stored what each case read alone gives
    predictor = pipeline_for("lesions").load(checkpoint, "cpu")
    for prediction in Prediction.objects.filter(model_version=version).select_related("case__study"):
        alone = predictor.predict(case_record(prediction.case, ["T1", "STIR"]))
        assert prediction.output == json_safe(alone)


class _FailingPipeline:
    """Loads a pre-reader whose ``predict`` fails on one case id."""

    def __init__(self, fail_on: int) -> None:
        self.fail_on = fail_on

    def load(self, checkpoint_dir, device="auto"):  # type: ignore[no-untyped-def]
        pipeline = self

        class PreReader:
            def predict(self, case):  # type: ignore[no-untyped-def]
                if case["case_id"] == pipeline.fail_on:
                    raise ValueError("no sacrum in the segmentation")
                return {"case": case["case_id"]}

            def predict_many(self, cases):  # type: ignore[no-untyped-def]
                return predict_concurrently(self.predict, cases)

        return PreReader()


@pytest.mark.django_db
def test_a_case_that_cannot_be_read_or_pre_read_does_not_stop_the_batch(campaign_settings, monkeypatch):
    campaign = build_campaign(campaign_settings, n_mri=4, n_gold=2)
    version = _lesion_version(campaign, campaign.root / "ckpt")
    first, second, *rest = campaign.project.cases.order_by("id")
    monkeypatch.setattr("ml.services.prereads.pipeline_for", lambda kind: _FailingPipeline(second.pk))
    real_record = prereads.case_record

    def record(case, series):  # type: ignore[no-untyped-def]
        if case.pk == first.pk:
            raise OSError("the DICOMweb store did not answer")
        return real_record(case, series)

    monkeypatch.setattr("ml.services.prereads.case_record", record)
    monkeypatch.setattr("ml.services.prereads._enqueue_prereads", lambda version_id: None)

    assert prereads_compute(version_id=version.pk) == len(rest) == 2
    stored = dict(Prediction.objects.filter(model_version=version).values_list("case_id", "output"))
    assert stored == {case.pk: {"case": case.pk} for case in rest}


@pytest.mark.django_db
def test_a_version_no_longer_promoted_pre_reads_nothing(campaign_settings, monkeypatch):
    campaign = build_campaign(campaign_settings, n_mri=4, n_gold=2)
    version = _lesion_version(campaign, campaign.root / "ckpt", ModelVersion.Status.RETIRED)
    loads = []
    monkeypatch.setattr("ml.services.prereads.pipeline_for", lambda kind: loads.append(kind))
    assert prereads_compute(version_id=version.pk) == 0 and loads == []  # not even loaded


@pytest.mark.django_db
def test_with_a_promoted_contour_model_lesion_crops_follow_the_joint_lines(campaign_settings):
    """A lesion run started while a contour model is promoted trains on joint-mode crops along the
    readers' consensus contours and that model's traces, bundles the contour model, and its pre-reads
    trace the joints with it."""
    campaign = build_campaign(campaign_settings, n_mri=4, n_gold=2)
    project = campaign.project
    contour_dir = campaign.root / "contour-ckpt"
    contour_snapshot = snapshot_create(project=project, kind="contour")
    pipeline_for("contour").train(TrainRequest(Path(contour_snapshot.path), contour_dir, TINY_CONTOUR))
    contour_run = TrainingRun.objects.create(
        project=project, kind="contour", state=TrainingRun.State.SUCCEEDED
    )
    ModelVersion.objects.create(
        project=project,
        kind="contour",
        version=1,
        training_run=contour_run,
        status=ModelVersion.Status.PROMOTED,
        checkpoint_dir=str(contour_dir),
    )

    config = {**TINY_LESIONS, "crop": {"crop_mm": 64.0, "size_px": 32, "width_px": 16, "n_slices": 8}}
    run = training_run_start(actor=None, project=project, kind="lesions", config=config)
    assert run.config["contour_checkpoint"] == str(contour_dir) and run.config["contour_version"] == 1

    snapshot = snapshot_create(project=project, kind="lesions")
    studies = json.loads((Path(snapshot.path) / "manifest.json").read_text())["studies"]
    assert all(
        s["contours"] and {"joint", "slice_index", "points_mm"} <= set(s["contours"][0]) for s in studies
    )
    pipeline = pipeline_for("lesions")
    checkpoint = campaign.root / "lesion-ckpt"
    card = pipeline.train(TrainRequest(Path(snapshot.path), checkpoint, run.config))
    assert (
        card["extra"]["crop_config"]["mode"] == "joint"
        and card["extra"]["model_config"]["head"] == "quadrant"
    )
    assert read_card(checkpoint / "contours")["model_kind"] == read_card(contour_dir)["model_kind"]
    assert 0.0 <= pipeline.evaluate(checkpoint, Path(snapshot.path)).score <= 1.0

    case = project.cases.select_related("study").first()
    output = pipeline.load(checkpoint, "cpu").predict(case_record(case, ["T1", "STIR"]))
    assert 0.0 <= output["right"]["erosion/sacral_lower"] <= 1.0
    assert all(np.isfinite(output["centres_px"][j]).all() for j in ("left", "right"))
