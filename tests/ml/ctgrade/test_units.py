"""Groupings, metrics, crop mirroring, joint centres and checkpoint round trip of the CT grader."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from ml.ctgrade.data import CtCropConfig, crop_joint, joint_centres
from ml.ctgrade.infer import CtPredictor
from ml.ctgrade.metrics import class_metrics, grading_metrics, quadratic_weighted_kappa
from ml.ctgrade.model import GraderConfig, build_grader, grouped_labels, grouped_probabilities
from ml.data.series import Series
from ml.training import save_model

SMALL = GraderConfig(init_features=4, growth_rate=4)


def test_grouped_probabilities_sum_the_grades() -> None:
    p = np.array([[0.1, 0.2, 0.3, 0.15, 0.25], [0.0, 0.0, 0.0, 0.0, 1.0]])
    du = grouped_probabilities(p, "du_2026_three_class")
    np.testing.assert_allclose(du[0], [0.3, 0.45, 0.25])
    np.testing.assert_allclose(grouped_probabilities(p, "zhang_2023_three_class")[0], [0.3, 0.3, 0.4])
    np.testing.assert_allclose(grouped_probabilities(p, "binary_definite"), [[0.3, 0.7], [0.0, 1.0]])
    for name in ("du_2026_three_class", "zhang_2023_three_class", "binary_definite"):
        np.testing.assert_allclose(grouped_probabilities(p, name).sum(1), 1.0)
    assert grouped_labels([0, 1, 2, 3, 4], "zhang_2023_three_class").tolist() == [0, 0, 1, 2, 2]
    assert grouped_labels([0, 1, 2, 3, 4], "du_2026_three_class").tolist() == [0, 0, 1, 1, 2]


def test_quadratic_weighted_kappa_by_hand() -> None:
    assert quadratic_weighted_kappa([0, 1, 2], [0, 1, 2], 3) == 1.0
    # O = [[0, .5], [.5, 0]], E = [[.25, .25], [.25, .25]], w = [[0, 1], [1, 0]] -> 1 - 1 / 0.5 = -1
    assert quadratic_weighted_kappa([0, 1], [1, 0], 2) == -1.0
    # observed [[1,0],[1,0]]: weighted disagreement 1/2 vs expected 1/2 -> kappa 0
    assert quadratic_weighted_kappa([0, 1], [0, 0], 2) == pytest.approx(0.0)
    assert quadratic_weighted_kappa([0, 2], [2, 0], 3) == pytest.approx(-1.0)  # reversed ordinal ratings
    assert np.isnan(quadratic_weighted_kappa([2, 2], [2, 2], 5))  # undefined: one grade everywhere


def test_class_and_grading_metrics() -> None:
    grades = np.array([0, 1, 2, 3, 4, 4])
    probs = np.eye(5)[grades] * 0.9 + 0.02
    m = grading_metrics(grades, probs)
    assert m["mny5"]["accuracy"] == 1.0 and m["mny5"]["macro_auc"] == 1.0 and m["mny5"]["qwk"] == 1.0
    assert m["binary_definite"]["confusion"] == [[2, 0], [0, 4]]
    assert set(m) == {"mny5", "du_2026_three_class", "zhang_2023_three_class", "binary_definite"}
    assert np.isnan(class_metrics([0, 0], np.array([[0.6, 0.4], [0.7, 0.3]]))["auc"][1])


def _series() -> Series:
    """A 40^3 axial volume, 1 mm voxels, origin at (-20, -20, -20): patient x = column - 20."""
    pixels = np.zeros((40, 40, 40), np.float32)
    return Series(
        pixels,
        np.array([1.0, 1.0]),
        np.array([[-20.0, -20.0, -20.0 + k] for k in range(40)]),
        np.array([1.0, 0, 0, 0, 1.0, 0]),
        1.0,
        "1",
        tuple(str(k) for k in range(40)),
    )


def test_right_joint_crop_is_mirrored_so_lateral_is_plus_x() -> None:
    series = _series()
    for x in (8.0, -8.0):  # a dot 4 mm lateral of each joint centre (+-4 mm from the midline)
        series.pixels[20, 20, int(20 + x + np.sign(x) * 4)] = 1300.0
    config = CtCropConfig(box_mm=(33.0, 33.0, 33.0), voxel_mm=1.0)  # odd: voxel centres on the grid
    left = crop_joint(series, np.array([8.0, 0.0, 0.0]), "left", config)
    right = crop_joint(series, np.array([-8.0, 0.0, 0.0]), "right", config)
    assert left.shape == (1, 33, 33, 33) and left.max() == 1.0
    np.testing.assert_allclose(left, right)
    assert np.unravel_index(int(np.argmax(left[0])), left.shape[1:])[2] > 16  # lateral = high crop x


def test_joint_centres_from_labels_and_errors() -> None:
    series = _series()
    labels = np.zeros((10, 10, 10), np.uint8)
    labels[:, :, 4:6] = 1  # sacrum in the middle (x around 0)
    labels[:, :, 7:9] = 2  # left ilium (+x), joint space at column 6
    labels[:, :, 1:3] = 2  # right ilium
    centres = joint_centres(series, labels, touch_vox=1)
    assert centres["left"][0] > 0 > centres["right"][0]
    with pytest.raises(ValueError):
        joint_centres(series, np.zeros_like(labels))
    with pytest.raises(ValueError):
        CtCropConfig(box_mm=(40.0, 40.0, 40.0), voxel_mm=2.0)  # 20 voxels: too small for DenseNet-121


def test_grader_shapes_gradients_and_checkpoint_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = build_grader(SMALL)
    x = torch.rand(2, 1, 32, 32, 32)
    out = net(x)
    assert out.shape == (2, 5)
    out.logsumexp(1).sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in net.parameters() if p.grad is not None)
    net.eval()
    save_model(
        tmp_path / "grader",
        net,
        model_kind="ctgrade",
        extra={"grader_config": SMALL.to_dict(), "crop_config": CtCropConfig().to_dict()},
    )
    predictor = CtPredictor.from_checkpoint(tmp_path, device="cpu")
    assert predictor.segmenter is None
    with torch.no_grad():
        expected = torch.softmax(net(x), 1).double().numpy()
    np.testing.assert_array_equal(predictor.grade_crops(x.numpy()), expected)
