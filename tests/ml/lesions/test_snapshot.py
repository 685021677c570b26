"""The product's dataset-snapshot manifest: readings, frozen soft labels and reference labels."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ml.data.snapshot import load_data_folder
from ml.lesions.labels import OUTPUT_NAMES, snapshot_soft_targets
from ml.lesions.train import build_targets


def _manifest(tmp_path: Path, study_folder: Path, *, soft: bool) -> Path:
    entry = {
        "study_id": "S1",
        "kind": "mri",
        "path": str(study_folder),  # absolute paths are kept as they are
        "split": "train",
        "readings": [
            {
                "reader": "A",
                "session": 1,
                "values": [{"joint": "left", "region": "iliac_upper", "lesion": "bme", "value": 1}],
            },
            {
                "reader": "B",
                "session": 2,
                "values": [{"joint": "left", "region": "iliac_upper", "lesion": "bme", "value": 0}],
            },
        ],
        "reference": [{"joint": "left", "region": "joint", "lesion": "ankylosis", "value": 1}],
    }
    if soft:
        entry["soft_labels"] = [
            {"joint": "left", "region": "iliac_upper", "lesion": "bme", "posterior": [0.2, 0.8]}
        ]
    manifest = {
        "format": "concord-dataset-snapshot",
        "version": 1,
        "snapshot_id": "snap-1",
        "consensus_run_id": "cr-9",
        "kind": "mri",
        "studies": [entry],
    }
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    return tmp_path


def test_snapshot_manifest_round_trip(mri_phantoms: Path, tmp_path: Path) -> None:
    folder = load_data_folder(_manifest(tmp_path, mri_phantoms / "mri-0000", soft=True))
    assert (
        folder.snapshot_id == "snap-1"
        and folder.consensus_run_id == "cr-9"
        and folder.readers("mri") == ["A", "B"]
    )
    study = folder.studies[0]
    assert study.split == "train" and study.reference == {("left", "joint", "ankylosis"): 1}
    soft = snapshot_soft_targets(folder.studies)
    assert soft is not None and soft[0, 0, OUTPUT_NAMES.index("bme/iliac_upper")] == np.float32(0.8)
    targets, info = build_targets(folder.studies, ["A", "B"], 2)
    assert info["soft_source"] == "snapshot" and targets["readers"].shape == (2, 2, 2, 14)
    assert (
        targets["majority"][0, 0] == 0.5 and np.isnan(targets["majority"][1]).all()
    )  # tie; right joint unread
    assert targets["reference"][0, OUTPUT_NAMES.index("ankylosis/joint")] == 1.0


def test_without_frozen_soft_labels_consensus_is_fitted(mri_phantoms: Path, tmp_path: Path) -> None:
    folder = load_data_folder(_manifest(tmp_path, mri_phantoms / "mri-0000", soft=False))
    targets, info = build_targets(folder.studies, ["A", "B"], 2)
    assert info["soft_source"].startswith("ml.consensus") and 0 <= targets["soft"][0, 0] <= 1


def test_a_product_snapshot_naming_only_train_and_test_still_validates() -> None:
    """A product snapshot names its studies ``train`` or ``test`` (gold) and none ``val``: the lesion and CT
    runs validated on nothing and reported the training loss as the validation loss (issue 15, finding 10).
    Now the last ``val_fraction`` of the training studies is held out, and gold never enters either."""
    from ml.data.snapshot import StudyRecord
    from ml.lesions.train import split_studies

    studies = [StudyRecord(f"s{i}", "mri", Path("."), split="train") for i in range(10)]
    studies += [StudyRecord("gold-1", "mri", Path("."), split="test")]
    train, val = split_studies(studies, 0.2)
    assert [s.study_id for s in val] == ["s8", "s9"]
    assert [s.study_id for s in train] == [f"s{i}" for i in range(8)]
    named = [*studies, StudyRecord("v", "mri", Path("."), split="val")]
    assert [s.study_id for s in split_studies(named, 0.2)[1]] == ["v"]  # a named val split is kept as it is
