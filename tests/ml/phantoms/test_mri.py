"""MRI phantom: curve shape and length rules, dark joint line under the truth polyline, lesion recipes."""

from __future__ import annotations

import numpy as np

from ml.data.truth import berlin_grade
from ml.phantoms.mri import (
    NORMAL_BAND_FACTOR,
    make_mri_phantom,
    mri_geometry,
    render_clean,
    sample_mri_params,
)
from ml.phantoms.mri_lesions import LesionSpec
from ml.phantoms.schema import JOINTS, QUADRANTS
from ml.phantoms.studies import study_rng

from .conftest import bilinear


def test_grid_and_lengths_follow_the_spec(mri_phantom) -> None:
    p = mri_phantom.params
    assert 12 <= p.n_slices <= 16 and 3.0 <= p.slice_thickness_mm <= 4.0 and 0.75 <= p.pixel_mm <= 0.94
    assert mri_phantom.t1.shape == (p.n_slices, 320, 320) == mri_phantom.stir.shape
    for joint in JOINTS:
        lengths = [s.length_mm for s in mri_phantom.slices if s.joint == joint]
        assert lengths[0] < 10 and lengths[-1] < 10
        assert 40 <= max(lengths) <= 65.5
        assert 1.2 <= mri_phantom.params.joints[joint].width_mm <= 4.5


def test_contours_drift_smoothly_between_slices(mri_phantom) -> None:
    for joint in JOINTS:
        records = [s for s in mri_phantom.slices if s.joint == joint]
        mids = np.array([np.mean(s.points_px, axis=0) for s in records]) * mri_phantom.params.pixel_mm
        assert np.linalg.norm(np.diff(mids, axis=0), axis=1).max() < 5.0  # mm between neighbouring slices


def test_truth_polyline_lies_on_the_dark_joint_line(mri_phantom) -> None:
    px = mri_phantom.params.pixel_mm
    for record in mri_phantom.slices:
        if record.length_mm < 30 or record.ankylosis or record.sclerosis:
            continue
        line = record.polyline_px()[3:-3]
        tangent = np.gradient(line, axis=0)
        normal = np.stack([tangent[:, 1], -tangent[:, 0]], 1) / np.linalg.norm(tangent, axis=1, keepdims=True)
        for image in (
            mri_phantom.t1_clean,
            mri_phantom.t1,
        ):  # STIR: joint 0.15 ~ marrow, only the cortex is dark
            on = np.median(bilinear(image[record.slice_index], line))
            sides = [
                np.median(bilinear(image[record.slice_index], line + s * normal * 6.0 / px)) for s in (-1, 1)
            ]
            off = max(sides)  # a lesion may darken one side (sclerosis); the other is marrow
            assert on < 0.75 * off, (record.slice_index, record.joint)


def _render(lesion: LesionSpec, seed: int = 11):
    rng = np.random.default_rng(seed)
    params = sample_mri_params(rng)
    k = params.n_slices // 2
    lesion = LesionSpec(**{**lesion.__dict__, "slices": (k,)})
    t1, stir, records = render_clean(params, mri_geometry(params), [lesion], rng)
    return (
        params,
        k,
        t1[k],
        stir[k],
        next(r for r in records if r.slice_index == k and r.joint == lesion.joint),
    )


def test_bme_is_bright_on_stir_and_dark_on_t1() -> None:
    spec = LesionSpec("bme", "left", "iliac_upper", (0,), 0.25, 6.0, 12.0, stir=0.8)
    params, _, t1, stir, record = _render(spec)
    bright = np.isclose(stir, 0.8)
    assert bright.sum() > 20
    allowed = (
        np.array([params.marrow_t1, params.marrow_t1 * NORMAL_BAND_FACTOR]) * 0.6
    )  # marrow or iliac band
    assert np.isclose(t1[bright][:, None], allowed[None]).any(axis=1).all()
    assert record.quadrants["iliac_upper"]["bme"] == 1 and record.quadrants["iliac_upper"]["bme_deep"] == 1
    assert record.quadrants["iliac_upper"]["bme_intense"] == 0
    assert sum(record.quadrants[q]["bme"] for q in QUADRANTS) == 1
    assert 0 < record.bme_fraction["iliac_upper"] < 1 and record.bme_fraction["sacral_upper"] == 0
    assert berlin_grade([record], "iliac_upper") in (1, 2, 3) and berlin_grade([record], "sacral_upper") == 0


def test_fat_erosion_backfill_and_sclerosis_signals() -> None:
    params, _, t1, stir, record = _render(
        LesionSpec("fat", "right", "sacral_lower", (0,), 0.75, 6.0, 6.0, t1=0.93)
    )
    assert np.isclose(t1, 0.93).sum() > 10 and record.quadrants["sacral_lower"]["fat"] == 1
    np.testing.assert_allclose(stir[np.isclose(t1, 0.93)], params.marrow_stir * 0.3, atol=1e-6)
    _, _, t1, stir, record = _render(
        LesionSpec("erosion", "left", "iliac_lower", (0,), 0.7, 2.5, 3.0, t1=0.2, stir=0.15, active=True)
    )
    assert np.isclose(stir, 0.7).sum() >= 3 and record.quadrants["iliac_lower"]["erosion"] == 1
    _, _, t1, _, record = _render(
        LesionSpec("erosion", "left", "iliac_upper", (0,), 0.3, 2.5, 3.0, t1=0.95, stir=0.05, backfill=True)
    )
    assert record.halves["upper"]["backfill"] == 1 and record.quadrants["iliac_upper"]["erosion"] == 1
    _, _, t1, stir, record = _render(
        LesionSpec("sclerosis", "right", None, (0,), 0.5, 12.0, 7.0, t1=0.05, stir=0.05)
    )
    assert record.sclerosis == 1 and (np.isclose(t1, 0.05) & np.isclose(stir, 0.05)).sum() > 50


def test_ankylosis_replaces_the_joint_line_with_marrow() -> None:
    params, _, t1, _, record = _render(LesionSpec("ankylosis", "left", None, (0,), 0.5, 10.0, 0.0))
    assert record.ankylosis == 1
    assert record.halves["upper"]["ankylosis"] + record.halves["lower"]["ankylosis"] >= 1
    centre = record.polyline_px()[len(record.points_px) // 2]
    assert bilinear(t1, centre[None])[0] > 0.9 * params.marrow_t1


def test_scan_outputs_are_any_over_slices(mri_phantom) -> None:
    for joint in JOINTS:
        outputs = mri_phantom.joints[joint].outputs
        assert sum(len(v) for v in outputs.values()) == 14
        for q in QUADRANTS:
            expected = any(s.quadrants[q]["bme"] for s in mri_phantom.slices if s.joint == joint)
            assert outputs["bme"][q] == int(expected)
    assert any(
        v for j in JOINTS for lesion in mri_phantom.joints[j].outputs.values() for v in lesion.values()
    )


def test_same_seed_same_phantom_different_seed_different() -> None:
    a = make_mri_phantom(study_rng(5, "mri", 1))
    b = make_mri_phantom(study_rng(5, "mri", 1))
    c = make_mri_phantom(study_rng(6, "mri", 1))
    np.testing.assert_array_equal(a.t1, b.t1)
    np.testing.assert_array_equal(a.stir, b.stir)
    assert a.slices == b.slices
    assert a.t1.shape != c.t1.shape or not np.array_equal(a.t1, c.t1)
