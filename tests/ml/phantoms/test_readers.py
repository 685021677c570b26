"""Simulated readers: empirical error rates match their parameters; payloads follow the API format."""

from __future__ import annotations

import numpy as np

from ml.data.truth import load_truth
from ml.phantoms.readers import (
    ReaderProfile,
    ordinal_confusion,
    read_binary,
    read_ordinal,
    read_study,
    sample_readers,
    simulate_readings,
)

REGIONS = {"iliac_upper", "iliac_lower", "sacral_upper", "sacral_lower", "joint"}


def test_binary_reader_empirical_sensitivity_and_specificity() -> None:
    rng = np.random.default_rng(0)
    truth = (rng.random(40_000) < 0.4).astype(int)
    for sens, spec in [(0.6, 0.8), (0.95, 0.98), (0.75, 0.9)]:
        given = read_binary(truth, sens, spec, rng)
        assert abs(given[truth == 1].mean() - sens) < 0.015
        assert abs(1 - given[truth == 0].mean() - spec) < 0.015


def test_ordinal_reader_follows_the_two_parameter_model() -> None:
    confusion = ordinal_confusion(bias=1, spread=0.5)
    np.testing.assert_allclose(confusion.sum(axis=1), 1.0)
    assert confusion[2].argmax() == 3 and confusion[4].argmax() == 4
    rng = np.random.default_rng(1)
    truth = rng.integers(0, 5, 50_000)
    given = read_ordinal(truth, -1, 0.6, rng)
    empirical = np.array([[np.mean(given[truth == j] == lv) for lv in range(5)] for j in range(5)])
    np.testing.assert_allclose(empirical, ordinal_confusion(-1, 0.6), atol=0.015)


def test_sampled_panel_respects_the_spec_ranges() -> None:
    readers = sample_readers(np.random.default_rng(2), 50, spammer=True, adversarial=True)
    normal = [r for r in readers if r.kind == "normal"]
    assert len(normal) == 50 and {r.kind for r in readers} == {"normal", "spammer", "adversarial"}
    assert all(0.6 <= r.sensitivity <= 0.95 and 0.8 <= r.specificity <= 0.98 for r in normal)
    assert all(r.bias in (-1, 0, 1) and 0.3 <= r.spread <= 1.0 and 0.3 <= r.coverage <= 1.0 for r in normal)
    assert all(1 <= r.sessions <= 3 for r in readers)


def test_mri_payload_has_28_values_and_contours_near_the_truth(written) -> None:
    truth = load_truth(written["root"] / "mri-0004")
    profile = ReaderProfile("R1", "normal", 0.9, 0.9, 0, 0.5, 1.0, 1, 0.0, 0.4, 0.3)
    payload = read_study(
        truth, profile, {"sensitivity": 0.9, "specificity": 0.9, "bias": 0}, np.random.default_rng(3)
    )
    values = payload["values"]
    assert len(values) == 28 and {v["joint"] for v in values} == {"left", "right"}
    assert {v["region"] for v in values} == REGIONS and all(v["value"] in (0, 1) for v in values)
    assert {v["lesion"] for v in values if v["region"] == "joint"} == {"sclerosis", "ankylosis"}
    assert payload["contours"]
    for contour in payload["contours"]:
        record = truth.contour(contour["joint"], contour["slice_index"])
        assert contour["series_uid"] == truth.series["T1"].series_instance_uid
        assert contour["sop_instance_uid"] == truth.series["T1"].sop_instance_uids[contour["slice_index"]]
        pts = np.asarray(contour["points_mm"])
        assert pts.shape[1] == 3 and len(pts) >= 2
        dist = np.linalg.norm(pts[:, None] - record.polyline_mm()[None], axis=2).min(axis=1)
        assert dist.max() < 4.0
        assert np.linalg.norm(pts[0] - record.start_mm) < np.linalg.norm(pts[0] - record.end_mm)


def test_campaign_covers_sessions_and_ct_grades(written) -> None:
    truths = [load_truth(written["root"] / "mri-0004"), load_truth(written["root"] / "ct-0000")]
    readers = sample_readers(np.random.default_rng(4), 3, sessions=2, spammer=True)
    records = simulate_readings(truths, readers, np.random.default_rng(5))
    assert {r["session"] for r in records} == {1, 2}
    ct = [r for r in records if r["modality"] == "CT"]
    for record in ct:
        values = record["payload"]["values"]
        assert [(v["joint"], v["region"], v["lesion"]) for v in values] == [
            ("left", "joint", "mny_grade"),
            ("right", "joint", "mny_grade"),
        ]
        assert all(0 <= v["value"] <= 4 for v in values) and record["payload"]["contours"] == []
    per_reader = {}
    for r in records:
        per_reader.setdefault((r["reader"], r["session"]), set()).add(r["study_id"])
    for reader in readers:  # the same studies in every session
        assert per_reader.get((reader.reader_id, 1)) == per_reader.get((reader.reader_id, 2))
