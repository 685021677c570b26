"""Realistic readers of phantom studies (issue 18): the bench's training readings come from
``ml.consensus.realistic``'s reader model reading the phantoms' own lesions and CT severities."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ml.consensus.agreement import cohen_kappa
from ml.data.truth import CtTruth, MriTruth, load_truth
from ml.phantoms.cli import generate
from ml.phantoms.mri_lesions import LesionSpec
from ml.phantoms.realistic_readers import (
    relative_size,
    scenario_for,
    simulate_realistic_readings,
)
from ml.vocab import OUTPUT_NAMES


@pytest.fixture(scope="module")
def phantoms(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("realistic") / "p"
    generate(out, n_mri=3, n_ct=3, seed=41, workers=1, level="realistic", readers_scenario="realistic")
    return out


def _truths(folder: Path) -> list[MriTruth | CtTruth]:
    return [load_truth(p.parent) for p in sorted(folder.glob("*/truth.json"))]


def test_generator_writes_payloads_readers_and_their_kappa(phantoms: Path) -> None:
    manifest = json.loads((phantoms / "manifest.json").read_text())
    readers = json.loads((phantoms / "readings" / "readers.json").read_text())
    records = json.loads((phantoms / "readings" / "readings.json").read_text())
    assert manifest["arguments"]["readers_scenario"] == "realistic"
    assert readers["model"] == "ml.consensus.realistic" and readers["scenario"]["spammers"] == 0
    assert [r["reader_id"] for r in readers["readers"]] == ["R1", "R2", "R3"]  # no spammer by default
    assert {r["kind"] for r in readers["readers"]} == {"normal"}
    assert set(readers["readers"][0]["thresholds"]) == set(OUTPUT_NAMES)  # a cut point per output
    agreement = manifest["readings"]["agreement"]
    assert agreement["mri"]["inter"] is not None and "per_output" not in agreement["mri"]
    assert set(readers["agreement"]["mri"]["per_output"]) == set(OUTPUT_NAMES)
    assert agreement["ct"]["qwk_inter"] is not None
    # every reader reads every study in session 1; later sessions re-read some of them
    first = {(r["reader"], r["study_id"]) for r in records if r["session"] == 1}
    studies = {s["study_id"] for s in manifest["studies"]}
    assert first == {(k, s) for k in ("R1", "R2", "R3") for s in studies}
    assert {r["session"] for r in records} <= {1, 2}
    mri = next(r for r in records if r["modality"] == "MR")
    assert len(mri["payload"]["values"]) == 28 and mri["payload"]["contours"]
    ct = next(r for r in records if r["modality"] == "CT")
    assert len(ct["payload"]["values"]) == 2 and not ct["payload"]["contours"]
    assert {v["value"] for r in records if r["modality"] == "CT" for v in r["payload"]["values"]} <= set(
        range(5)
    )


def test_reported_kappa_is_the_kappa_of_the_written_readings(phantoms: Path) -> None:
    readers = json.loads((phantoms / "readings" / "readers.json").read_text())
    records = json.loads((phantoms / "readings" / "readings.json").read_text())
    ct = [r for r in records if r["modality"] == "CT" and r["session"] == 1]

    def grades(reader: str) -> list[int]:
        mine = sorted((r for r in ct if r["reader"] == reader), key=lambda r: r["study_id"])
        return [v["value"] for r in mine for v in r["payload"]["values"]]

    pairs = [("R1", "R2"), ("R1", "R3"), ("R2", "R3")]
    qwk = [
        cohen_kappa(grades(a), grades(b), weights="quadratic", labels=range(5)).value or 0.0 for a, b in pairs
    ]
    assert readers["agreement"]["ct"]["qwk_inter"] == pytest.approx(np.mean(qwk), abs=1e-12)


def test_same_seed_same_readings(phantoms: Path, tmp_path: Path) -> None:
    truths = _truths(phantoms)
    sc = scenario_for("realistic")
    a = simulate_realistic_readings(truths, sc, np.random.default_rng(5))[0]
    b = simulate_realistic_readings(truths, sc, np.random.default_rng(5))[0]
    assert a == b


def test_scenarios_spammer_and_paper_a(phantoms: Path) -> None:
    truths = _truths(phantoms)
    records, readers, agreement = simulate_realistic_readings(
        truths, scenario_for("spammer"), np.random.default_rng(1)
    )
    assert [r.kind for r in readers] == ["normal", "normal", "normal", "spammer"]
    spam = {(r["session"], r["study_id"]) for r in records if r["reader"] == "R4"}
    sessions = {r["session"] for r in records}
    assert spam == {(s, t.study_id) for s in sessions for t in truths}  # every study, every session
    assert agreement["spammers"] == 1 and agreement["n_readers"] == 3  # κ among the human readers
    records, readers, _ = simulate_realistic_readings(
        truths, scenario_for("paper_a"), np.random.default_rng(1)
    )
    assert len(readers) == 2
    assert {(r["reader"], r["session"]) for r in records} == {(k, s) for k in ("R1", "R2") for s in (1, 2, 3)}
    assert len(records) == 2 * 3 * len(truths)  # paper (a): every study in every session


def test_small_lesions_fool_every_reader_and_errors_are_correlated(phantoms: Path) -> None:
    """Readers of the same lesions many times over: the misses concentrate on the small lesions, and
    readers miss together far more often than independent readers would."""
    mri = [t for t in _truths(phantoms) if isinstance(t, MriTruth)]
    assert any(v["value"] for t in mri for v in t.values())
    truths = mri * 60
    records, _, _ = simulate_realistic_readings(truths, scenario_for("realistic"), np.random.default_rng(3))
    n = len(truths)
    labels = np.zeros((3, n, 28), dtype=np.int64)
    for k in range(3):  # records: reader, session, then the studies in order
        mine = [r for r in records if r["reader"] == f"R{k + 1}" and r["session"] == 1]
        labels[k] = [[v["value"] for v in r["payload"]["values"]] for r in mine]
    truth = np.array([[v["value"] for v in t.values()] for t in truths])
    wrong = labels != truth[None]
    p = wrong.reshape(3, -1).mean(axis=1)
    both = np.mean(wrong[0] & wrong[1])
    assert both > 2 * p[0] * p[1]
    # per positive item of the 3 studies: the share of (copy, reader) readings that missed it vs its size
    sizes, missed = [], []
    for s, t in enumerate(mri):
        lesions = [LesionSpec(**{**x, "slices": tuple(x["slices"])}) for x in t.lesions]
        for i, v in enumerate(t.values()):
            if not v["value"]:
                continue
            own = [
                relative_size(x)
                for x in lesions
                if x.kind == v["lesion"] and x.joint == v["joint"] and x.quadrant in (v["region"], None)
            ]
            if own:
                sizes.append(max(own))
                missed.append(wrong[:, s :: len(mri), i].mean())
    order = np.argsort(sizes)
    half = len(order) // 2
    assert half >= 2
    assert np.mean(np.asarray(missed)[order[:half]]) > np.mean(np.asarray(missed)[order[half:]])


def test_ct_readers_read_the_phantoms_latent_severity(phantoms: Path) -> None:
    cts = [t for t in _truths(phantoms) if isinstance(t, CtTruth)]
    severity = [cts[0].parameters["severity"][j] - cts[0].joints[j].mny_grade for j in ("left", "right")]
    assert any(abs(s) > 0 for s in severity)  # the realistic preset draws a severity beside the grade
    truths = cts * 150
    records, _, agreement = simulate_realistic_readings(
        truths, scenario_for("realistic"), np.random.default_rng(2)
    )
    given = np.array([[v["value"] for v in r["payload"]["values"]] for r in records], dtype=float)
    idx = [next(k for k, t in enumerate(cts) if t.study_id == r["study_id"]) for r in records]
    mean_given = np.array([given[np.array(idx) == k].mean(axis=0) for k in range(len(cts))])
    grades = np.array([[t.joints[j].mny_grade for j in ("left", "right")] for t in cts], dtype=float)
    latent = np.array([[t.parameters["severity"][j] for j in ("left", "right")] for t in cts])
    # readers' mean grade follows the latent severity beyond the grade itself
    resid_given, resid_latent = (mean_given - grades).ravel(), (latent - grades).ravel()
    assert np.corrcoef(resid_given, resid_latent)[0, 1] > 0.5
    assert agreement["ct"]["qwk_inter"] < agreement["ct"]["qwk_intra"]
