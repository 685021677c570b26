"""The CT pipeline reports its two fits (segmenter, then grader) on one progress scale that never goes back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ml.pipelines import TrainRequest
from ml.pipelines.ctgrade import two_phase_progress


def _epochs(seen: list[dict[str, Any]]) -> list[tuple[int, str]]:
    return [(s["epoch"], s["phase"]) for s in seen if s["step"] == -1]


def _request(seen: list[dict[str, Any]]) -> TrainRequest:
    return TrainRequest(Path("snapshot"), Path("checkpoints"), progress=seen.append)


def test_segmenter_epochs_come_first_then_the_grader_s_on_one_scale() -> None:
    seen: list[dict[str, Any]] = []
    progress = two_phase_progress(_request(seen), seg_epochs=2, grader_epochs=3)
    for epoch in range(2):
        progress(epoch, 0, 1.0, {})
        progress(epoch, -1, 0.9, {"val_loss": 0.9})
    for epoch in range(3):
        progress(epoch, 0, 0.5, {})
        progress(epoch, -1, 0.4, {})
    assert _epochs(seen) == [(0, "segmenter"), (1, "segmenter"), (2, "grader"), (3, "grader"), (4, "grader")]
    assert {s["epochs"] for s in seen} == {5} and seen[1]["metrics"] == {"val_loss": 0.9}
    assert [s["epoch"] for s in seen] == sorted(s["epoch"] for s in seen)


def test_an_early_stopped_segmenter_and_a_resumed_grader_stay_on_the_scale() -> None:
    seen: list[dict[str, Any]] = []
    progress = two_phase_progress(_request(seen), seg_epochs=4, grader_epochs=2)
    for epoch in range(2):  # patience ran out after two epochs
        progress(epoch, -1, 1.0, {})
    progress(0, -1, 0.5, {})
    assert _epochs(seen) == [(0, "segmenter"), (1, "segmenter"), (4, "grader")]

    resumed: list[dict[str, Any]] = []
    two_phase_progress(_request(resumed), seg_epochs=4, grader_epochs=2, seg_done=True)(1, -1, 0.5, {})
    assert _epochs(resumed) == [(5, "grader")]
