"""The lesion pipeline on a product snapshot, in process: train, evaluate on gold, pre-read a case."""

from __future__ import annotations

from pathlib import Path

import pytest

from ml.pipelines import TrainRequest, pipeline_for
from ml.services import case_record, snapshot_create
from tests.ml_app.conftest import build_campaign

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
    output = pipeline.predict(campaign.root / "ckpt", case_record(case, ["T1", "STIR"]))
    assert set(output) >= {"left", "right"} and 0.0 <= output["left"]["bme/iliac_upper"] <= 1.0
