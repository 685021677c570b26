"""Targets (majority, Dawid-Skene soft), metrics, and crop geometry (right joint mirrored, row 0 superior)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ml.data.series import Series
from ml.lesions.crops import (
    CropConfig,
    MriScan,
    crop_joint,
    fit_slices,
    known_polylines,
    straighten_joint,
)
from ml.lesions.labels import fit_soft_targets, majority_targets
from ml.lesions.metrics import lesion_metrics


def test_majority_vote_ties_and_unread_items() -> None:
    r = np.full((1, 3, 2, 14), -1, dtype=np.int8)  # one item, 3 readers x 2 sessions
    r[0, 0, 0, 0], r[0, 1, 0, 0], r[0, 2, 0, 0] = 1, 1, 0  # 2 of 3 say yes
    r[0, 0, 0, 1], r[0, 1, 0, 1] = 1, 0  # tie
    r[0, 0, :, 2] = 0
    vote = majority_targets(r)[0]
    assert vote[0] == 1.0 and vote[1] == 0.5 and vote[2] == 0.0 and np.isnan(vote[3])


def test_soft_targets_follow_the_reliable_readers() -> None:
    rng = np.random.default_rng(0)
    truth = rng.random((200, 14)) < 0.4
    readings = np.empty((200, 3, 1, 14), dtype=np.int8)
    for k, (sens, spec) in enumerate([(0.97, 0.97), (0.65, 0.7), (0.6, 0.75)]):  # one expert, two weak
        u = rng.random((200, 14))
        readings[:, k, 0] = np.where(truth, u < sens, u >= spec)
    readings[:5, 2] = -1
    soft, summary = fit_soft_targets(readings)
    assert soft.shape == (200, 14) and np.all((soft >= 0) & (soft <= 1))
    vote = majority_targets(readings)
    assert ((soft > 0.5) == truth).mean() > ((vote > 0.5) == truth).mean() + 0.02  # DS trusts the expert
    assert set(summary) == {"bme", "erosion", "fat", "sclerosis", "ankylosis"}


def test_lesion_metrics_perfect_and_pooled() -> None:
    y = np.tile(np.array([[0.0], [1.0], [0.0], [1.0]]), (1, 14))
    m = lesion_metrics(y, y * 0.8 + 0.1)
    assert m["mean_auc"] == 1.0 and m["per_lesion"]["bme"]["n"] == 16
    assert m["per_output"]["fat/sacral_lower"]["balanced_accuracy"] == 1.0


def _scan(orientation: tuple[float, ...]) -> MriScan:
    """Blank 2-slice scan, 1 mm pixels, with a bright dot 10 mm lateral and 10 mm superior of each joint."""
    images = np.zeros((2, 2, 64, 64), np.float32)
    row_up = -1 if orientation[5] < 0 else 1  # rows run inferior when the column direction points to -z
    for col, lateral in ((44, 1), (20, -1)):  # patient left at +x (higher column), right at lower column
        images[:, :, 32 + 10 * row_up, col + 10 * lateral] = 1.0
    series = Series(
        images[:, 0],
        np.array([1.0, 1.0]),
        np.zeros((2, 3)),
        np.array(orientation, float),
        3.0,
        "1",
        ("a", "b"),
    )
    return MriScan(images, series)


def test_right_joint_is_mirrored_to_left_orientation_and_row_zero_is_superior() -> None:
    config = CropConfig(mode="box", crop_mm=32.0, size_px=32, n_slices=2)
    for orientation in ((1, 0, 0, 0, 0, -1), (1, 0, 0, 0, 0, 1)):
        scan = _scan(orientation)
        left = crop_joint(scan, np.array([44.0, 32.0]), "left", config)
        right = crop_joint(scan, np.array([20.0, 32.0]), "right", config)
        for crop in (left, right):
            row, col = np.unravel_index(int(np.argmax(crop[0, 0])), crop.shape[2:])
            assert col > 16 and row < 16, (orientation, row, col)  # lateral = +crop x, superior = top
        np.testing.assert_allclose(left, right, atol=1e-6)


def test_fit_slices_pads_and_crops_centrally() -> None:
    crop = np.arange(5, dtype=np.float32)[None, :, None, None] * np.ones((1, 5, 2, 2), np.float32)
    assert fit_slices(crop, 3)[0, :, 0, 0].tolist() == [1, 2, 3]
    assert fit_slices(crop, 7)[0, :, 0, 0].tolist() == [0, 0, 1, 2, 3, 4, 0]


def test_joint_mode_straightens_the_line_iliac_right_superior_top_quadrants_fixed() -> None:
    """A slanted joint line with a dot 6 mm lateral of its upper quarter: the dot lands in the crop's
    iliac-upper block for both joints and both column directions, and the line on the middle column."""
    config = CropConfig(mode="joint", crop_mm=48.0, size_px=48, width_mm=24.0, width_px=24, n_slices=1)
    for orientation in ((1, 0, 0, 0, 0, -1), (1, 0, 0, 0, 0, 1), (-1, 0, 0, 0, 0, -1)):
        row_up = -1 if orientation[5] < 0 else 1
        for joint, sign in (("left", 1), ("right", -1)):
            lateral = sign * (1 if orientation[0] > 0 else -1)  # lateral in image columns
            image = np.zeros((1, 2, 96, 96), np.float32)
            rows = 48 + row_up * np.linspace(20, -20, 41)  # superior end first
            cols = 48 + lateral * np.linspace(4, -4, 41)  # superolateral -> inferomedial
            image[0, :, np.round(rows).astype(int), np.round(cols).astype(int)] = 0.5
            image[0, :, int(48 + row_up * 10), int(48 + lateral * 8)] = 1.0  # upper quarter, iliac
            series = Series(
                image[:, 0],
                np.array([1.0, 1.0]),
                np.zeros((1, 3)),
                np.array(orientation, float),
                3.0,
                "1",
                ("a",),
            )
            crop = straighten_joint(MriScan(image, series), {0: np.stack([cols, rows], 1)}, joint, config)
            assert crop.shape == (2, 1, 48, 24)
            row, col = np.unravel_index(int(np.argmax(crop[0, 0])), crop.shape[2:])
            assert row < 24 and col > 12, (orientation, joint, row, col)
            assert abs(int(np.argmax(crop[0, 0, 40])) - 11.5) <= 1.5  # the line on the middle column


def test_old_cards_load_box_crops() -> None:
    assert CropConfig.from_dict({"crop_mm": 72.0, "size_px": 56, "n_slices": 16}).mode == "box"
    assert CropConfig.from_dict({}).mode == "joint"
    assert CropConfig(mode="box", size_px=40).shape == (40, 40)


def _line_image() -> MriScan:
    """One slice, 1 mm pixels, a bright vertical joint line at column 48 (rows 18..78)."""
    image = np.zeros((1, 2, 96, 96), np.float32)
    image[0, :, 18:79, 48] = 1.0
    orientation = np.array([1.0, 0, 0, 0, 0, -1])
    series = Series(image[:, 0], np.array([1.0, 1.0]), np.zeros((1, 3)), orientation, 3.0, "1", ("a",))
    return MriScan(image, series)


def test_smoothing_keeps_a_straight_line_and_irons_out_a_traced_lines_wiggle() -> None:
    scan = _line_image()
    rows = np.arange(20.0, 77.0)
    straight = np.stack([np.full_like(rows, 48.0), rows], 1)
    wiggly = straight + np.stack([np.where(np.arange(len(rows)) % 4 < 2, 1.5, -1.5), 0 * rows], 1)
    wiggly[28:32, 0] += 3.0  # a 4 mm detour, as into an erosion
    sharp, smooth = CropConfig(n_slices=1, smooth_mm=0.0), CropConfig(n_slices=1, smooth_mm=3.0)
    np.testing.assert_allclose(
        straighten_joint(scan, {0: straight}, "left", smooth),
        straighten_joint(scan, {0: straight}, "left", sharp),
        atol=1e-5,
    )

    def offsets_px(config: CropConfig) -> np.ndarray:  # of the straightened line from the middle column
        crop = straighten_joint(scan, {0: wiggly}, "left", config)[0, 0]
        inside = crop.max(axis=1) > 0.5  # rows along the joint
        return np.abs(np.argmax(crop[inside], axis=1) - (crop.shape[1] - 1) / 2)

    before, after = offsets_px(sharp), offsets_px(smooth)
    assert np.median(before) == 1.5 and np.median(after) == 0.5  # the wiggle: +-1.5 mm -> within a pixel
    assert before.max() >= 6.0 and after.max() <= 0.6 * before.max()  # the detour: 5.2 mm -> 2.8 mm


def test_known_contours_in_patient_mm_become_slice_pixels() -> None:
    orientation = np.array([1.0, 0, 0, 0, 0, -1])  # rows along -z
    positions = np.array([[-50.0, 10.0, 40.0], [-50.0, 13.0, 40.0]])
    series = Series(
        np.zeros((2, 8, 8), np.float32), np.array([0.5, 0.8]), positions, orientation, 3.0, "1", ("a", "b")
    )
    drawn = [
        {
            "joint": "left",
            "slice_index": 1,
            "points_mm": [[-50.0 + 0.8 * 3, 13.0, 40.0 - 0.5 * 2], [-50.0 + 0.8 * 5, 13.0, 40.0 - 0.5 * 7]],
        },
        {"joint": "right", "slice_index": 9, "points_mm": [[0, 0, 0], [1, 1, 1]]},
    ]
    lines = known_polylines(series, drawn)
    np.testing.assert_allclose(lines["left"][1], [[3.0, 2.0], [5.0, 7.0]])
    assert lines["right"] == {}  # off the series


def test_the_crop_cache_never_answers_for_a_study_folder_rewritten_with_another_seed(tmp_path: Path) -> None:
    # was keyed by study id and config only: a rerun with another --seed-test into the same --out reused the
    # old seed's crops
    from ml.lesions.crops import cached_crops
    from ml.phantoms.cli import generate

    config = CropConfig(mode="box", crop_mm=32.0, size_px=16, n_slices=4)
    crops = []
    for seed in (11, 12):
        generate(tmp_path / "phantoms", n_mri=1, n_ct=0, seed=seed, workers=1)
        folder = next((tmp_path / "phantoms").glob("mri-*/truth.json")).parent
        crops.append(cached_crops(folder, folder.name, config, tmp_path / "cache"))
        again = cached_crops(folder, folder.name, config, tmp_path / "cache")
        np.testing.assert_array_equal(again, crops[-1])  # the cache still answers for unchanged files
    assert not np.allclose(crops[0], crops[1])
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 2
