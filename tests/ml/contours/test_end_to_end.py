"""A tiny model trained for seconds on toy curves traces them; the command line runs end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from ml.contours.__main__ import main
from ml.contours.infer import ContourPredictor, rmse_against_truth
from ml.contours.model import ContourModelConfig
from ml.contours.synthetic import toy_scan
from ml.contours.train import train_contours
from ml.training import TrainConfig


def test_tiny_training_traces_toy_curves(tmp_path: Path) -> None:
    torch.set_num_threads(2)
    scans = [toy_scan(i, n_slices=2, shape=(64, 112), pixel_mm=0.8) for i in range(6)]
    # 32 px crops, band_pull and batch 4: seeds 0-2 all converged (0.4-0.6 mm on the validation crops,
    # <= 0.9 mm through the whole pipeline) in 12 epochs; batch 8 with the SPEC band left one of three
    # seeds stuck, so this setting keeps the test robust to numeric drift across platforms
    model_config = ContourModelConfig(width=8, crop_mm=48.0, pixel_mm=1.5, band_pull=0.5)
    config = TrainConfig(
        epochs=12,
        lr=3e-3,
        batch_size=4,
        seed=0,
        device="cpu",
        metric="val_rmse_mm",
        mode="min",
        checkpoint_dir=str(tmp_path),
    )
    result = train_contours(scans[:5], scans[5:], model_config, config, jitter_mm=4.0, copies=2)
    assert result.best_metric is not None and result.best_metric < 2.0  # mm on the validation crops

    predictor = ContourPredictor.from_checkpoint(tmp_path, device="cpu")
    val = scans[5]
    traced = predictor.predict_scan(val)  # joints located on the slice, no manual input
    assert {(c.slice_index, c.side) for c in traced} == set(val.polylines)
    rmse = rmse_against_truth(val, traced)
    assert max(rmse.values()) < 3.0, rmse  # slice pixels are 0.8 mm: below ~4 px everywhere
    for contour in traced:
        assert contour.points_mm.shape[1] == 3 and contour.reached_end
        truth = val.polylines[(contour.slice_index, contour.side)]
        assert contour.points_px[0, 1] < contour.points_px[-1, 1]  # start is the superior end
        assert np.linalg.norm(contour.points_px[0] - truth[0]) < 4.0
        assert contour.start_mm[2] > contour.end_mm[2]  # superior = larger patient z (LPS)


def test_cli_toy_train_evaluate_predict(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data, ckpt = tmp_path / "data", tmp_path / "ckpt"
    assert main(["toy", "--out", str(data), "--scans", "2", "--slices", "1"]) == 0
    capsys.readouterr()
    assert (
        main(
            [
                "train",
                "--data",
                str(data),
                "--out",
                str(ckpt),
                "--epochs",
                "1",
                "--width",
                "4",
                "--crop-mm",
                "48",
                "--pixel-mm",
                "1.5",
                "--device",
                "cpu",
                "--batch-size",
                "4",
            ]
        )
        == 0
    )
    trained = json.loads(capsys.readouterr().out)
    assert trained["epochs"] == 1 and trained["val_scans"] == ["toy-001"]
    card = json.loads((ckpt / "card.json").read_text())
    assert card["model_kind"] == "contours" and card["extra"]["model_config"]["pixel_mm"] == 1.5
    assert main(["evaluate", "--data", str(data), "--checkpoint", str(ckpt), "--device", "cpu"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["n"] == 4 and summary["missing"] == 0
    out = tmp_path / "traced.json"
    assert (
        main(
            [
                "predict",
                "--data",
                str(data),
                "--checkpoint",
                str(ckpt),
                "--device",
                "cpu",
                "--output",
                str(out),
            ]
        )
        == 0
    )
    traced = json.loads(out.read_text())
    assert len(traced) == 4 and {"start_mm", "end_mm", "points_mm", "side"} <= set(traced[0])
