"""CLI smoke test, manifest layout, truth round trip and determinism for a seed."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import pydicom

from ml.data.truth import CtTruth, MriTruth, load_truth, save_truth
from ml.phantoms.cli import generate

REPO = Path(__file__).resolve().parents[3]


def _digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_cli_writes_studies_manifest_and_readings_deterministically(tmp_path: Path) -> None:
    out_a = tmp_path / "a"
    cmd = [
        sys.executable,
        "-m",
        "ml.phantoms",
        "--mri",
        "1",
        "--ct",
        "1",
        "--out",
        str(out_a),
        "--seed",
        "7",
        "--readers",
        "2",
        "--sessions",
        "2",
        "--spammer",
        "--adversarial",
        "--workers",
        "2",
    ]
    result = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    manifest = json.loads((out_a / "manifest.json").read_text())
    assert [s["study_id"] for s in manifest["studies"]] == ["mri-0000", "ct-0000"]
    mri_entry = manifest["studies"][0]
    assert set(mri_entry["series"]) == {"T1", "STIR"}
    for entry in manifest["studies"]:
        truth = load_truth(out_a / entry["truth"])
        assert truth.study_instance_uid == entry["study_instance_uid"]
        for series in entry["series"].values():
            assert len(list((out_a / series["folder"]).glob("*.dcm"))) == series["n_instances"]
    ds = pydicom.dcmread(out_a / "mri-0000/T1/0001.dcm")
    assert ds.SeriesInstanceUID == mri_entry["series"]["T1"]["series_instance_uid"]
    readers = json.loads((out_a / "readings/readers.json").read_text())
    readings = json.loads((out_a / "readings/readings.json").read_text())
    assert (
        [r["kind"] for r in readers] == ["normal", "normal", "spammer", "adversarial"]
        and readings
        and manifest["readings"]["count"] == len(readings)
    )
    assert {r["session"] for r in readings} <= {1, 2}

    out_b = tmp_path / "b"
    generate(out_b, n_mri=1, n_ct=1, seed=7, workers=1, readers=2, sessions=2, spammer=True, adversarial=True)
    assert _digest(out_a) == _digest(out_b)

    out_c = tmp_path / "c"
    generate(out_c, n_mri=1, n_ct=0, seed=8, workers=1)
    assert (
        load_truth(out_c / "mri-0000").study_instance_uid != load_truth(out_a / "mri-0000").study_instance_uid
    )


def test_truth_round_trips_through_json(written, tmp_path: Path) -> None:
    for key, cls in (("mri", MriTruth), ("ct", CtTruth)):
        truth = written[key]
        save_truth(truth, tmp_path / f"{key}.json")
        again = load_truth(tmp_path / f"{key}.json")
        assert isinstance(again, cls)
        assert json.loads(json.dumps(asdict(again))) == json.loads(
            json.dumps(asdict(truth))
        )  # tuples -> lists


def test_truth_sidecar_content(written) -> None:
    mri = load_truth(written["root"] / "mri-0004")
    assert isinstance(mri, MriTruth)
    assert (
        mri.generator["version"]
        and mri.seed == 0
        and mri.parameters["n_slices"] == len(mri.series["T1"].sop_instance_uids)
    )
    assert len(mri.slices) == 2 * mri.parameters["n_slices"]
    record = mri.slices[len(mri.slices) // 2]
    assert record.points_mm[0] == record.start_mm and record.points_px[-1] == record.end_px
    assert record.quadrant_rule in ("not_scored", "upper_quadrants_only", "upper_and_lower")
    assert len(mri.values()) == 28
    assert set(mri.joints["left"].scores) >= {"sparcc_inflammation", "sss_fat", "sss_erosion"}
