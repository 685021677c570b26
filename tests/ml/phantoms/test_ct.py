"""CT phantom: HU recipes per mNY grade, pelvis labels, rescale variety, truth groupings."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from ml.data.truth import load_truth
from ml.phantoms.ct import PIXEL_MM, PSF_FWHM_MM, SLICE_MM, _grids, make_ct_phantom, sample_ct_params
from ml.phantoms.ct_anatomy import joint_coords
from ml.phantoms.schema import GROUPINGS, grouping_class, mny_positive


def _joint_line_hu(phantom, joint: str) -> float:
    """Median clean HU on the joint's mid-plane inside its articulating zone."""
    x, y, z = _grids(phantom.geometry, phantom.params.centre_mm)
    c = joint_coords(phantom.params.joints[joint], x, y, z)
    line = c.zone & (np.abs(c.d) < 0.3)
    return float(np.median(phantom.hu_clean[line]))


@pytest.fixture(scope="module")
def graded():
    """Two phantoms covering grades 0-4: left 0 / right 4, left 3 / right 2 (plus 1 in a third)."""
    rng = np.random.default_rng(21)
    return {
        g: make_ct_phantom(rng, grades)
        for g, grades in [
            ("0-4", {"left": 0, "right": 4}),
            ("3-2", {"left": 3, "right": 2}),
            ("1-1", {"left": 1, "right": 1}),
        ]
    }


def test_joint_space_hu_by_grade(graded) -> None:
    p = graded["0-4"].params
    assert abs(_joint_line_hu(graded["0-4"], "left") - p.hu["joint"]) < 40  # open joint
    assert abs(_joint_line_hu(graded["0-4"], "right") - p.hu["cancellous"]) < 40  # fused: bony bridging


def test_grade_features(graded) -> None:
    f3, f2 = graded["3-2"].features["left"], graded["3-2"].features["right"]
    assert f3["erosions"] >= 4 and f3["sclerosis"] == "band"
    assert f3["width_mm"] > 4.0 or f3["width_mm"] < 1.2
    assert (
        1.2 <= f2["width_mm"] <= 4.0
        and f2["erosions"] <= 3
        and (f2["erosions"] or f2["sclerosis"] == "focal")
    )
    assert graded["0-4"].features["left"]["erosions"] == 0 and graded["0-4"].features["right"]["ankylosis"]
    assert _sclerotic_voxels(graded["3-2"], "left") > 10 * max(_sclerotic_voxels(graded["1-1"], "left"), 100)


def _sclerotic_voxels(phantom, joint: str) -> int:
    """Voxels brighter than 600 HU in the subchondral bone 2.5-8 mm from the joint surface."""
    x, y, z = _grids(phantom.geometry, phantom.params.centre_mm)
    c = joint_coords(phantom.params.joints[joint], x, y, z)
    depth = np.abs(c.d) - phantom.params.joints[joint].width_mm / 2
    band = c.zone & (depth > 2.5) & (depth < 8.0)
    return int((phantom.hu_clean[band] > 600).sum())


def test_pelvis_labels_put_the_left_ilium_at_positive_x(ct_phantom) -> None:
    x, _, _ = _grids(ct_phantom.geometry, ct_phantom.params.centre_mm)
    xs = np.broadcast_to(x, ct_phantom.labels.shape)
    assert np.median(xs[ct_phantom.labels == 2]) > 20 > -20 > np.median(xs[ct_phantom.labels == 3])
    assert abs(np.median(xs[ct_phantom.labels == 1])) < 5
    bone = ct_phantom.labels > 0
    assert np.median(ct_phantom.hu_clean[bone]) > 150 and np.median(ct_phantom.hu_clean[~bone]) < 80


def test_noise_and_blur_are_applied(ct_phantom) -> None:
    sigma_mm = PSF_FWHM_MM / 2.3548
    blurred = gaussian_filter(
        ct_phantom.hu_clean, (sigma_mm / SLICE_MM, sigma_mm / PIXEL_MM, sigma_mm / PIXEL_MM)
    )
    noise = ct_phantom.hu - blurred
    assert abs(noise.std() / ct_phantom.params.noise_sigma_hu - 1) < 0.05
    assert np.abs(np.diff(blurred, axis=2)).max() < 0.8 * np.abs(np.diff(ct_phantom.hu_clean, axis=2)).max()


def test_some_phantoms_rescale_with_slope_not_one() -> None:
    slopes = {sample_ct_params(np.random.default_rng(i)).rescale_slope for i in range(30)}
    assert 1.0 in slopes and len(slopes) > 1


def test_truth_grades_total_positivity_and_groupings(written, ct_phantom) -> None:
    truth = load_truth(written["root"] / "ct-0000")
    left, right = truth.joints["left"].mny_grade, truth.joints["right"].mny_grade
    assert (left, right) == (ct_phantom.params.grades["left"], ct_phantom.params.grades["right"])
    assert truth.total_score == left + right and truth.mny_positive == mny_positive(left, right)
    assert set(truth.groupings) == set(GROUPINGS)
    assert truth.groupings["zhang_2023_three_class"]["left"] == grouping_class("zhang_2023_three_class", left)


def test_mny_rule_and_groupings() -> None:
    assert mny_positive(2, 2) and mny_positive(3, 0) and mny_positive(0, 4)
    assert not mny_positive(2, 1) and not mny_positive(1, 1)
    assert [grouping_class("du_2026_three_class", g) for g in range(5)] == [
        "normal_or_suspicious",
        "normal_or_suspicious",
        "definite_sacroiliitis",
        "definite_sacroiliitis",
        "ankylosis",
    ]
    assert [grouping_class("binary_definite", g) for g in range(5)] == ["negative"] * 2 + ["positive"] * 3
