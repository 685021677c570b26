"""The contour pipeline: train ml.contours on a snapshot's consensus contours, evaluate on its gold cases.

Targets are the consensus polylines (ml.consensus.contours, written into the snapshot by the product) on
the T1 series; the primary gold metric is the share of gold joint slices traced within 2.76 mm RMSE
(SPEC.md §7.1), per output the mean RMSE per joint side (negated so that larger is better).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ml.contours.files import ScanArrays
from ml.contours.infer import CONFIDENT, ContourPredictor, rmse_against_truth
from ml.contours.model import ContourModelConfig
from ml.contours.train import train_contours
from ml.data.geometry import patient_to_pixel
from ml.data.series import load_series_files
from ml.pipelines import Cancelled, Evaluation, TrainRequest, check_config, loop_progress
from ml.pipelines.snapshot import cases, load_manifest, series_files
from ml.training import TrainConfig, read_card

RMSE_LIMIT_MM = 2.76


def _scan(case: dict[str, Any]) -> ScanArrays:
    series = load_series_files(series_files(case, "T1") if len(case["series"]) > 1 else series_files(case))
    polylines = {
        (c["slice_index"], c["joint"]): patient_to_pixel(
            c["points_mm"], series.positions[c["slice_index"]], series.orientation, series.pixel_spacing
        )
        for c in case.get("contours", {}).get("consensus", [])
    }
    return ScanArrays(
        scan_id=str(case["case_id"]),
        images=series.pixels[:, None].astype(np.float32),
        pixel_spacing=series.pixel_spacing,
        image_position=series.positions,
        image_orientation=series.orientation,
        polylines=polylines,
    )


class ContourPipeline:
    kind = "contour"
    default_config: dict[str, Any] = {
        "epochs": 4,
        "lr": 2e-3,
        "batch_size": 8,
        "seed": 0,
        "width": 8,
        "crop_mm": 96.0,
        "pixel_mm": 1.5,
        "jitter_mm": 6.0,
        "copies": 1,
        "patience": 0,
        "device": "auto",
    }

    def train(self, request: TrainRequest) -> dict[str, Any]:
        check_config(self.kind, request.config)
        cfg = {**self.default_config, **request.config}
        manifest = load_manifest(request.snapshot_dir)
        scans = [_scan(c) for c in cases(manifest, "train") if c.get("contours", {}).get("consensus")]
        if not scans:
            raise ValueError("the snapshot has no training case with consensus contours")
        n_val = max(1, len(scans) // 5) if len(scans) > 1 else 0
        train_scans, val_scans = scans[n_val:], scans[:n_val]
        model_config = ContourModelConfig(
            width=cfg["width"], crop_mm=cfg["crop_mm"], pixel_mm=cfg["pixel_mm"]
        )
        train_config = TrainConfig(
            epochs=cfg["epochs"],
            lr=cfg["lr"],
            batch_size=cfg["batch_size"],
            seed=cfg["seed"],
            patience=cfg["patience"],
            device=cfg["device"],
            checkpoint_dir=str(request.checkpoint_dir),
            metric="val_rmse_mm" if val_scans else "val_loss",
            mode="min",
        )

        progress = loop_progress(request, cfg["epochs"])

        result = train_contours(
            train_scans,
            val_scans,
            model_config,
            train_config,
            jitter_mm=cfg["jitter_mm"],
            copies=cfg["copies"],
            resume=request.resume,
            progress=progress,
            should_stop=request.should_stop,
            data_snapshot_id=request.snapshot_id,
        )
        if result.stopped == "cancelled":
            raise Cancelled("training was cancelled")
        return read_card(request.checkpoint_dir)

    def evaluate(self, checkpoint_dir: Path, snapshot_dir: Path, device: str = "auto") -> Evaluation:
        predictor = ContourPredictor.from_checkpoint(checkpoint_dir, device=device)
        errors: dict[str, list[float]] = {"left": [], "right": []}
        gold = [
            c for c in cases(load_manifest(snapshot_dir), "gold") if c.get("contours", {}).get("consensus")
        ]
        for case in gold:
            scan = _scan(case)
            centres = {k: (v.min(0) + v.max(0)) / 2.0 for k, v in scan.polylines.items()}
            traced = predictor.predict_scan(scan, centres=centres)
            rmse = rmse_against_truth(scan, traced)
            for (_, side), value in rmse.items():
                errors[side].append(value)
            for key in set(scan.polylines) - set(rmse):
                errors[key[1]].append(float("inf"))  # not traced at all
        flat = np.asarray(errors["left"] + errors["right"], dtype=float)
        finite = flat[np.isfinite(flat)]
        metrics = {
            "frac_below_2_76mm": float((flat < RMSE_LIMIT_MM).mean()) if flat.size else 0.0,
            "rmse_mean_mm": float(finite.mean()) if finite.size else float("nan"),
            "rmse_p95_mm": float(np.percentile(finite, 95)) if finite.size else float("nan"),
        }
        per_output = {
            f"neg_rmse_{side}": -float(np.mean(v)) for side, v in errors.items() if v and np.isfinite(v).all()
        }
        return Evaluation("frac_below_2_76mm", metrics, per_output, n_gold=len(gold))

    def load(self, checkpoint_dir: Path, device: str = "auto") -> ContourPreReader:
        return ContourPreReader(ContourPredictor.from_checkpoint(checkpoint_dir, device=device))


class ContourPreReader:
    """Traces the joint lines of a case's T1 series with weights loaded once."""

    def __init__(self, predictor: ContourPredictor) -> None:
        self.predictor = predictor

    def predict(self, case: dict[str, Any]) -> dict[str, Any]:
        scan = _scan({**case, "contours": {}})
        traces = self.predictor.predict_scan(scan)
        return {"contours": [t.to_json() for t in traces if t.confidence >= CONFIDENT]}


PIPELINE = ContourPipeline()
