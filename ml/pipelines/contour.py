"""The contour pipeline: train ml.contours on a snapshot's consensus contours, evaluate on its gold cases.

Targets are the consensus polylines (ml.consensus.contours, written into the snapshot by the product) on
the T1 series; the primary gold metric is the share of gold joint slices traced within 2.76 mm RMSE
(SPEC.md §7.1), per output the mean RMSE per joint side (negated so that larger is better).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from ml.contours.files import ScanArrays
from ml.contours.infer import CONFIDENT, ContourPredictor, rmse_against_truth
from ml.contours.model import ContourModelConfig
from ml.contours.train import train_contours
from ml.data.geometry import patient_to_pixel
from ml.data.series import load_series_files
from ml.data.snapshot import TEST, TRAIN, load_data_folder, series_folder
from ml.pipelines import (
    Cancelled,
    Evaluation,
    PreReads,
    TrainRequest,
    check_config,
    loop_progress,
    predict_concurrently,
)
from ml.pipelines.recipes import recipe
from ml.training import TrainConfig, read_card

RMSE_LIMIT_MM = 2.76
#: What a pre-read keeps of a traced line (``TracedContour.to_json`` less its ``scan_id``).
PRE_READ_FIELDS = (
    "slice_index",
    "side",
    "points_mm",
    "start_mm",
    "end_mm",
    "reached_end",
    "stop_reason",
    "confidence",
)


def _scan(scan_id: str, files: list[Path] | list[str], contours: list[dict[str, Any]]) -> ScanArrays:
    """A T1 series (files in slice order) with its consensus joint lines mapped to pixels."""
    series = load_series_files(files)
    polylines = {
        (c["slice_index"], c["joint"]): patient_to_pixel(
            c["points_mm"], series.positions[c["slice_index"]], series.orientation, series.pixel_spacing
        )
        for c in contours
    }
    return ScanArrays(
        scan_id=scan_id,
        images=series.pixels[:, None].astype(np.float32),
        pixel_spacing=series.pixel_spacing,
        image_position=series.positions,
        image_orientation=series.orientation,
        polylines=polylines,
    )


def _traced_studies(snapshot_dir: Path, split: str) -> list[ScanArrays]:
    """The snapshot's MRI studies of ``split`` that have consensus joint lines, as scans."""
    studies = load_data_folder(snapshot_dir).of_kind("mri")
    return [
        _scan(s.study_id, series_folder(s, "T1"), s.contours)
        for s in studies
        if (s.split or TRAIN) == split and s.contours
    ]


class ContourPipeline:
    kind = "contour"
    default_config: dict[str, Any] = recipe("contour")  # ml.pipelines.recipes

    def train(self, request: TrainRequest) -> dict[str, Any]:
        check_config(self.kind, request.config)
        cfg = {**self.default_config, **request.config}
        scans = _traced_studies(Path(request.snapshot_dir), TRAIN)
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
            amp=cfg["amp"],
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
        gold = _traced_studies(Path(snapshot_dir), TEST)
        for scan in gold:
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
        """The confident traces, without a scan id: a pre-read reaches blinded readers, and the case's
        primary key (what ``scan_id`` carried) must not."""
        t1 = next((x for x in case["series"] if x["description"] == "T1"), case["series"][0])
        traces = self.predictor.predict_scan(_scan("", t1["files"], []))
        return {
            "contours": [
                {k: v for k, v in t.to_json().items() if k in PRE_READ_FIELDS}
                for t in traces
                if t.confidence >= CONFIDENT
            ]
        }

    def predict_many(self, cases: Iterable[dict[str, Any]]) -> PreReads:
        """:meth:`predict` of each case in order (its exception in place of a failed one's output)."""
        return predict_concurrently(self.predict, cases)


PIPELINE = ContourPipeline()
