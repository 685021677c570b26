"""A CT pre-read batch (``predict_many``, cases on threads) gives each case what reading it alone gives:
with a segmenter (the study's SEG is then not read) and without one (the SEG finds the joints); seeded
untrained weights, so the arithmetic, not the accuracy, is under test."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from ml.ctgrade.data import CtCropConfig
from ml.ctgrade.infer import CtPredictor
from ml.ctgrade.model import GraderConfig, build_grader, build_segmenter
from ml.pipelines import StudyPreReader

CROP = CtCropConfig(box_mm=(64.0, 64.0, 64.0), voxel_mm=2.0, seg_shape=(16, 32, 32))
SMALL = GraderConfig(init_features=4, growth_rate=4, seg_channels=(4, 8, 16), seg_strides=(2, 2))


def _record(folder: Path) -> dict[str, Any]:
    return {
        "case_id": folder.name,
        "study_uid": folder.name,
        "series": [
            {"description": m, "modality": m, "files": [str(p) for p in sorted((folder / m).glob("*.dcm"))]}
            for m in ("CT", "SEG")
        ],
    }


@pytest.mark.parametrize("with_segmenter", [False, True])
def test_ct_batch_equals_case_by_case(ct_phantoms: Path, with_segmenter: bool) -> None:
    torch.manual_seed(7)
    grader, segmenter = build_grader(SMALL), build_segmenter(SMALL)
    reader = StudyPreReader(CtPredictor(grader, segmenter if with_segmenter else None, CROP, device="cpu"))
    records = [_record(ct_phantoms / f"ct-{i:04d}") for i in range(2)] * 2
    alone = [_or_error(reader.predict, r) for r in records]
    batch = list(reader.predict_many(records))
    assert [_comparable(b) for b in batch] == [_comparable(a) for a in alone]
    if not with_segmenter:  # the truth SEG always finds both joints
        assert all(isinstance(a, dict) and a["left"]["groupings"] for a in alone)


def _or_error(predict: Any, record: dict[str, Any]) -> Any:
    try:
        return predict(record)
    except Exception as error:  # an untrained segmenter may find no sacrum: the batch must say the same
        return error


def _comparable(output: Any) -> Any:
    return (type(output).__name__, str(output)) if isinstance(output, Exception) else output
