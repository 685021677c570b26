"""The lesion pipeline: ml.lesions trained on a snapshot's readers (soft Dawid–Skene labels of the frozen
consensus by default, or majority vote, or per-reader confusion layers), evaluated on its gold studies.

Crops: with a contour model (``contour_checkpoint`` in the config: the product passes the project's
promoted one) the joints are straightened along their lines (joint-mode crops, ``ml.lesions.crops``) -
the snapshot's consensus contours where readers drew them, the contour model's traces elsewhere - and
the contour model is copied into the lesion checkpoint (``contours/``), so its pre-reads trace the same
way. Without one, fixed boxes around the located joint centres.

Primary gold metric: mean AUC over the 14 outputs, at the traced lines (what a pre-read sees); per
output: each output's AUC (for the no-drop rule).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ml.data.snapshot import TEST
from ml.lesions.infer import LesionPredictor
from ml.lesions.model import JOINT_CROP_NET
from ml.lesions.train import evaluate, train_from_config
from ml.pipelines import Cancelled, Evaluation, StudyPreReader, TrainRequest, check_config, loop_progress
from ml.pipelines.recipes import recipe
from ml.training import read_card

BOX_CROP = {"mode": "box", "crop_mm": 80.0, "size_px": 48}


def _config(overrides: dict[str, Any]) -> dict[str, Any]:
    """Nested config for ``train_from_config``: the lesion recipe (:mod:`ml.pipelines.recipes`) with
    ``overrides`` merged in; flat training keys (epochs, device …) are accepted too."""
    check_config("lesions", overrides)
    return recipe("lesions", overrides)


class LesionPipeline:
    kind = "lesions"
    default_config: dict[str, Any] = _config({})

    def train(self, request: TrainRequest) -> dict[str, Any]:
        config = _config(request.config)
        if config["contour_checkpoint"]:
            config["crop"] = {"mode": "joint", **config["crop"]}
            config["model"] = {**JOINT_CROP_NET, **config["model"]}
        else:
            config["crop"] = {**BOX_CROP, **config["crop"]}
        progress = loop_progress(request, config["train"]["epochs"])
        summary = train_from_config(
            request.snapshot_dir,
            request.checkpoint_dir,
            config,
            progress=progress,
            should_stop=request.should_stop,
            resume=request.resume,
        )
        if summary.get("stopped") == "cancelled":
            raise Cancelled("training was cancelled")
        return read_card(request.checkpoint_dir)

    def evaluate(self, checkpoint_dir: Path, snapshot_dir: Path, device: str = "auto") -> Evaluation:
        result = evaluate(snapshot_dir, checkpoint_dir, split=TEST, device=device)
        per_output = {
            f"auc_{name}": float(v["auc"])
            for name, v in result["per_output"].items()
            if math.isfinite(v["auc"])
        }
        mean_auc = float(result["mean_auc"]) if math.isfinite(result["mean_auc"]) else 0.0
        metrics = {"mean_auc": mean_auc, "min_auc": float(result["min_auc"])}
        return Evaluation("mean_auc", metrics, per_output, n_gold=int(result["n_studies"]))

    def load(self, checkpoint_dir: Path, device: str = "auto") -> StudyPreReader:
        return StudyPreReader(LesionPredictor.from_checkpoint(checkpoint_dir, device=device))


PIPELINE = LesionPipeline()
