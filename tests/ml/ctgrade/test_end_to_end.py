"""Tiny CT phantoms -> segmenter + grader training -> full-pipeline evaluation and prediction (API, CLI)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from ml.ctgrade.__main__ import main
from ml.ctgrade.data import CtCropConfig, load_ct_scan, study_inputs
from ml.ctgrade.model import GraderConfig
from ml.ctgrade.train import evaluate, grade_targets, train, train_from_config
from ml.data.snapshot import load_data_folder
from ml.training import TrainConfig
from ml.vocab import JOINTS

CROP = CtCropConfig(box_mm=(64.0, 64.0, 64.0), voxel_mm=2.0, seg_shape=(16, 32, 32))
SMALL = GraderConfig(init_features=4, growth_rate=4, seg_channels=(4, 8, 16), seg_strides=(2, 2))


def test_study_inputs_from_dicom_and_seg(ct_phantoms: Path) -> None:
    scan = load_ct_scan(ct_phantoms / "ct-0000")
    assert scan.labels is not None and set(np.unique(scan.labels)) == {0, 1, 2}
    assert scan.series.pixels.max() > 700  # HU after rescale (cortical bone)
    image, crops, labels, centres = study_inputs(ct_phantoms / "ct-0000", CROP)
    assert image.shape == (1, 16, 32, 32) and crops.shape == (2, 1, 32, 32, 32) and labels is not None
    assert crops.min() >= 0 and crops.max() <= 1 and centres["left"][0] > 0 > centres["right"][0]


def test_targets_reference_soft_majority(ct_phantoms: Path) -> None:
    studies = load_data_folder(ct_phantoms).of_kind("ct")
    for mode in ("auto", "soft", "majority"):
        soft, ref, _used = grade_targets(studies, mode)
        assert soft.shape == (4, 5) and np.allclose(soft.sum(1), 1.0) and (ref >= 0).all()
    assert grade_targets(studies, "auto")[2] == "reference"


def test_soft_targets_are_the_snapshot_s_frozen_posteriors_not_a_refit(ct_phantoms: Path) -> None:
    """A product snapshot carries the ordinal consensus the project froze (its own smoothing, its run id on
    the card): the grader trains on exactly those posteriors, not on a refit of the readings."""
    studies = load_data_folder(ct_phantoms).of_kind("ct")
    refit, _, _ = grade_targets(studies, "soft")
    frozen = np.array([[0.05, 0.8, 0.1, 0.05, 0.0], [0.0, 0.0, 0.2, 0.3, 0.5]], dtype=np.float32)
    snapshot = [
        dataclasses.replace(
            s, soft={(j, "joint", "mny_grade"): frozen[n].tolist() for n, j in enumerate(JOINTS)}
        )
        for s in studies
    ]
    soft, _, mode = grade_targets(snapshot, "soft")
    assert mode == "soft" and np.array_equal(soft, np.concatenate([frozen] * len(studies)))
    assert not np.allclose(refit, soft)


def test_tiny_train_evaluate_predict_cli(
    ct_phantoms: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ckpt = tmp_path / "ckpt"
    summary = train(
        ct_phantoms,
        ckpt,
        grader_config=SMALL,
        crop_config=CROP,
        val_fraction=0.5,
        train_config=TrainConfig(epochs=1, batch_size=2, device="cpu"),
        seg_train_config=TrainConfig(epochs=1, batch_size=1, device="cpu"),
    )
    assert summary["grader"]["target"] == "reference" and summary["seg"]["epochs_completed"] == 1
    assert (ckpt / "seg" / "card.json").exists() and (ckpt / "grader" / "card.json").exists()
    metrics = evaluate(ct_phantoms, ckpt, device="cpu", use_truth_seg=True)
    assert metrics["n_joints"] == 4 and len(metrics["mny5"]["confusion"]) == 5
    assert (
        main(
            ["predict", "--study", str(ct_phantoms / "ct-0001"), "--checkpoint", str(ckpt), "--device", "cpu"]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out)["ct-0001"]
    assert abs(sum(out["left"]["probabilities"]) - 1) < 1e-3 and out["total_score"] in range(9)
    assert abs(sum(out["right"]["groupings"]["binary_definite"].values()) - 1) < 1e-3
    assert main(["evaluate", "--data", str(ct_phantoms), "--checkpoint", str(ckpt), "--device", "cpu"]) == 0
    assert "seg_dice" in json.loads(capsys.readouterr().out)


def test_cancel_during_segmenter_training(ct_phantoms: Path, tmp_path: Path) -> None:
    config = {"grader": SMALL.to_dict(), "crop": CROP.to_dict(), "seg_train": {"epochs": 2, "device": "cpu"}}
    out = train_from_config(
        ct_phantoms, tmp_path / "ckpt", json.loads(json.dumps(config)), should_stop=lambda: True
    )
    assert out["seg"]["stopped"] == "cancelled" and "grader" not in out
