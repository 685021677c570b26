"""The CT pipeline: ml.ctgrade's pelvis segmenter and 3-D DenseNet-121 grader trained on a snapshot's
CT studies (soft labels of the frozen ordinal consensus), evaluated on its gold studies.

Primary gold metric: quadratic-weighted κ of the mNY grade; per output: one-vs-rest AUC per grade.
Training needs each study's pelvis SEG (the segmenter's labels); a snapshot without them fails clearly.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ml.ctgrade.infer import CtPredictor
from ml.ctgrade.train import evaluate, train_from_config
from ml.data.snapshot import TEST, TRAIN, load_data_folder, series_folder
from ml.pipelines import Cancelled, Evaluation, StudyPreReader, TrainRequest, check_config
from ml.pipelines.recipes import recipe
from ml.training import read_card


def _config(overrides: dict[str, Any]) -> dict[str, Any]:
    check_config("ctgrade", overrides)
    return recipe("ctgrade", overrides)


def two_phase_progress(
    request: TrainRequest, *, seg_epochs: int, grader_epochs: int, seg_done: bool = False
) -> Callable[[int, int, float, Any], None]:
    """Adapt ml.training's progress to one scale over the two fits, segmenter epochs then grader epochs,
    so the run's fraction never goes back when the grader starts; each report names its ``phase``.
    ``seg_done``: the segmenter had finished before (a resumed run)."""
    state = {"grader": seg_done, "last_epoch": -1}

    def progress(epoch: int, step: int, loss: float, metrics: Any) -> None:
        if not state["grader"] and epoch < state["last_epoch"]:  # the segmenter stopped early
            state["grader"] = True
        state["last_epoch"] = epoch
        request.progress(
            {
                "epoch": epoch + (seg_epochs if state["grader"] else 0),
                "epochs": seg_epochs + grader_epochs,
                "step": step,
                "loss": float(loss),
                "metrics": {k: float(v) for k, v in dict(metrics).items()},
                "phase": "grader" if state["grader"] else "segmenter",
            }
        )
        if step == -1 and epoch == seg_epochs - 1:  # the segmenter's last epoch: the grader comes next
            state["grader"] = True

    return progress


def _finished(fit_dir: Path, epochs: int) -> bool:
    """Whether a fit's card (written after every epoch) records ``epochs`` epochs."""
    try:
        return len(read_card(fit_dir).get("metrics_history", [])) >= epochs
    except FileNotFoundError:
        return False


def _require_segmentations(snapshot_dir: Path) -> None:
    """Raise ValueError naming the training studies that have no SEG series (the segmenter's labels)."""
    missing = [
        study.study_id
        for study in load_data_folder(snapshot_dir).of_kind("ct")
        if (study.split or TRAIN) == TRAIN and not series_folder(study, "SEG")
    ]
    if missing:
        raise ValueError(
            f"training case(s) {missing} have no SEG series: the CT grader trains its pelvis segmenter on "
            "each study's DICOM SEG; import the SEG with (or after) the CT study"
        )


class CtGradePipeline:
    kind = "ctgrade"
    default_config: dict[str, Any] = _config({})

    def train(self, request: TrainRequest) -> dict[str, Any]:
        _require_segmentations(Path(request.snapshot_dir))
        config = _config(request.config)

        progress = two_phase_progress(
            request,
            seg_epochs=int(config["seg_train"]["epochs"]),
            grader_epochs=int(config["train"]["epochs"]),
            seg_done=request.resume
            and _finished(Path(request.checkpoint_dir) / "seg", int(config["seg_train"]["epochs"])),
        )

        summary = train_from_config(
            request.snapshot_dir,
            request.checkpoint_dir,
            config,
            progress=progress,
            should_stop=request.should_stop,
            resume=request.resume,
        )
        if "grader" not in summary or summary["grader"].get("stopped") == "cancelled":
            raise Cancelled("training was cancelled")
        return read_card(Path(request.checkpoint_dir) / "grader")

    def evaluate(self, checkpoint_dir: Path, snapshot_dir: Path, device: str = "auto") -> Evaluation:
        result = evaluate(snapshot_dir, checkpoint_dir, split=TEST, device=device)
        five = result["mny5"]  # 5-class metrics; groupings sit beside it
        qwk = float(five["qwk"])
        metrics = {
            "qwk": qwk if math.isfinite(qwk) else -1.0,
            "accuracy": float(five["accuracy"]),
            "macro_auc": float(five["macro_auc"]),
        }
        per_output = {
            f"auc_grade_{g}": float(a) for g, a in enumerate(five["auc"]) if math.isfinite(float(a))
        }
        return Evaluation("qwk", metrics, per_output, n_gold=int(result.get("n_joints", 0)) // 2)

    def load(self, checkpoint_dir: Path, device: str = "auto") -> StudyPreReader:
        return StudyPreReader(CtPredictor.from_checkpoint(checkpoint_dir, device=device))


PIPELINE = CtGradePipeline()
