"""Tiny phantoms -> train (each target mode) -> evaluate -> predict, through the API and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ml.data.snapshot import load_data_folder
from ml.lesions.__main__ import main
from ml.lesions.crops import CropConfig, study_crops
from ml.lesions.infer import LesionPredictor
from ml.lesions.labels import OUTPUT_NAMES
from ml.lesions.model import LesionModelConfig
from ml.lesions.train import evaluate, train, train_from_config
from ml.training import TrainConfig, read_card

CROP = CropConfig(crop_mm=64.0, size_px=16, width_mm=32.0, width_px=12, n_slices=16)  # joint mode
MODEL = LesionModelConfig(channels=(4, 8, 8, 8), dropout=0.0)


def test_phantom_folder_loads_readers_and_truth(mri_phantoms: Path) -> None:
    folder = load_data_folder(mri_phantoms)
    studies = folder.of_kind("mri")
    assert len(studies) == 3 and folder.readers("mri") == ["R1", "R2", "R3"]
    assert all(s.reference and len(s.reference) == 28 for s in studies)
    for crop in (CROP, CropConfig(mode="box", crop_mm=64.0, size_px=16, n_slices=16)):
        crops, centres = study_crops(studies[0].folder, crop)
        assert crops.shape == (2, 2, 16, *crop.shape) and np.isfinite(crops).all()
        _located, found = study_crops(studies[0].folder, crop, use_truth=False)
        assert all(
            np.linalg.norm(found[j] - centres[j]) < 15 for j in ("left", "right")
        )  # locator near truth (px)


@pytest.mark.parametrize("mode", ["majority", "soft", "readers"])
def test_tiny_train_and_evaluate(mri_phantoms: Path, tmp_path: Path, mode: str) -> None:
    calls: list[int] = []
    summary = train(
        mri_phantoms,
        tmp_path / "ckpt",
        target=mode,
        crop_config=CROP,
        model_config=MODEL,
        train_config=TrainConfig(epochs=2, batch_size=2, device="cpu"),
        cache_dir=tmp_path / "cache",
        val_fraction=0.34,
        progress=lambda e, s, loss, m: calls.append(s),
    )
    assert summary["epochs_completed"] == 2 and -1 in calls
    card = read_card(tmp_path / "ckpt")
    assert card["extra"]["model_config"]["target"] == mode and card["extra"]["readers"] == ["R1", "R2", "R3"]
    metrics = evaluate(mri_phantoms, tmp_path / "ckpt", cache_dir=tmp_path / "cache", device="cpu")
    assert set(metrics["per_output"]) == set(OUTPUT_NAMES) and metrics["n_studies"] == 3
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 3


def test_cancel_stops_training_config_from_json(mri_phantoms: Path, tmp_path: Path) -> None:
    config = {
        "target": "soft",
        "crop": CROP.to_dict(),
        "model": MODEL.to_dict(),
        "train": {"epochs": 3, "batch_size": 2, "device": "cpu"},
    }
    summary = train_from_config(
        mri_phantoms, tmp_path / "ckpt", json.loads(json.dumps(config)), should_stop=lambda: True
    )
    assert summary["stopped"] == "cancelled" and summary["epochs_completed"] == 0


def test_cli_train_evaluate_predict(
    mri_phantoms: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ckpt = str(tmp_path / "ckpt")
    args = [
        "--crop-mm",
        "64",
        "--size-px",
        "16",
        "--width-px",
        "12",
        "--channels",
        "4,8,8,8",
        "--epochs",
        "1",
        "--device",
        "cpu",
    ]
    assert main(["train", "--data", str(mri_phantoms), "--out", ckpt, "--target", "readers", *args]) == 0
    assert json.loads(capsys.readouterr().out)["epochs_completed"] == 1
    assert main(["evaluate", "--data", str(mri_phantoms), "--checkpoint", ckpt, "--device", "cpu"]) == 0
    assert "mean_auc" in json.loads(capsys.readouterr().out)
    study = str(mri_phantoms / "mri-0000")
    assert main(["predict", "--study", study, "--checkpoint", ckpt, "--device", "cpu"]) == 0
    out = json.loads(capsys.readouterr().out)["mri-0000"]
    assert set(out["left"]) == set(OUTPUT_NAMES) and all(0 <= p <= 1 for p in out["right"].values())
    direct = LesionPredictor.from_checkpoint(ckpt, device="cpu").predict_study(study)
    assert direct["left"] == out["left"]
