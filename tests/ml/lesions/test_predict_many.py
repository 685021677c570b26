"""A pre-read batch (``predict_many``, cases on threads) gives each case what reading it alone gives: the
contour pre-reader and the lesion pre-reader (joint crops along the bundled contour model's traces) on
MRI phantoms, with seeded untrained weights (the arithmetic, not the accuracy, is under test)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from ml.contours.infer import ContourPredictor
from ml.contours.model import ContourModelConfig, ContourNet
from ml.lesions.crops import CropConfig
from ml.lesions.infer import LesionPredictor
from ml.lesions.model import LesionModel, LesionModelConfig
from ml.pipelines import StudyPreReader
from ml.pipelines.contour import ContourPreReader

CROP = CropConfig(crop_mm=64.0, size_px=32, n_slices=8, width_mm=25.6, width_px=16)


def _record(folder: Path, series: tuple[str, ...]) -> dict[str, Any]:
    return {
        "case_id": folder.name,
        "study_uid": folder.name,
        "series": [
            {
                "description": s,
                "modality": "MR",
                "files": [str(p) for p in sorted((folder / s).glob("*.dcm"))],
            }
            for s in series
        ],
    }


def _contours() -> ContourPredictor:
    torch.manual_seed(3)
    return ContourPredictor(ContourNet(ContourModelConfig(width=4, crop_mm=48.0, pixel_mm=1.5)), device="cpu")


def test_contour_batch_equals_case_by_case(mri_phantoms: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("ml.pipelines.contour.CONFIDENT", 0.0)  # untrained: keep every trace to compare
    reader = ContourPreReader(_contours())
    records = [_record(mri_phantoms / f"mri-{i:04d}", ("T1",)) for i in range(3)] * 2
    alone = [reader.predict(r) for r in records]
    assert list(reader.predict_many(records)) == alone
    assert alone[0]["contours"] and alone[0] == alone[3] and alone[0] != alone[1]


def test_lesion_batch_equals_case_by_case(mri_phantoms: Path) -> None:
    torch.manual_seed(5)
    model = LesionModel(
        LesionModelConfig(
            size_px=32, n_slices=8, width_px=16, channels=(4, 8), strides=(2, 2), head="quadrant"
        )
    )
    reader = StudyPreReader(LesionPredictor(model.eval(), CROP, device="cpu", contours=_contours()))
    records = [_record(mri_phantoms / f"mri-{i:04d}", ("T1", "STIR")) for i in range(3)] * 2
    alone = [reader.predict(r) for r in records]
    assert list(reader.predict_many(records)) == alone
    assert {"left", "right", "centres_px"} <= set(alone[0]) and alone[0] == alone[3]
