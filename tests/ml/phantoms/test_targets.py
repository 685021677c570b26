"""Vector-field and heatmap targets on tiny hand-built curves (SPEC §7.1)."""

from __future__ import annotations

import numpy as np

from ml.data.truth import load_truth
from ml.phantoms.schema import JOINTS
from ml.phantoms.targets import heatmap_targets, slice_targets, vector_field_target


def test_straight_line_field_points_to_the_curve_and_along_it() -> None:
    line = np.array([[2.0, 5.0], [12.0, 5.0]])  # (col, row), left to right
    field, band = vector_field_target((11, 15), [line], band_px=2.0)
    assert field.shape == (2, 11, 15) and band.shape == (11, 15)
    np.testing.assert_allclose(field[:, 0, 7], [0.0, 1.0], atol=1e-6)  # above the line: point down (+row)
    np.testing.assert_allclose(field[:, 10, 7], [0.0, -1.0], atol=1e-6)  # below: point up
    np.testing.assert_allclose(field[:, 5, 7], [1.0, 0.0], atol=1e-6)  # on the line: tangent start -> end
    np.testing.assert_allclose(field[:, 6, 7], [1.0, 0.0], atol=1e-6)  # inside the 2-px band
    assert band[3, 7] and not band[2, 7]
    np.testing.assert_allclose(
        field[:, 5, 0], [1.0, 0.0], atol=1e-6
    )  # beyond the start: toward the start point
    np.testing.assert_allclose(np.linalg.norm(field, axis=0), 1.0, atol=1e-5)


def test_heatmaps_peak_at_the_points() -> None:
    maps = heatmap_targets((9, 9), [(2, 3), (6.0, 7.0)], sigma_px=1.5)
    assert maps.shape == (2, 9, 9)
    assert np.unravel_index(maps[0].argmax(), (9, 9)) == (3, 2) and maps[0, 3, 2] == 1.0
    assert np.isclose(maps[1, 7, 7], np.exp(-1 / (2 * 1.5**2)))


def test_slice_targets_from_a_truth_record(written) -> None:
    truth = load_truth(written["root"] / "mri-0004")
    k = truth.slice_geometry().n_slices // 2
    targets = slice_targets(truth, k)
    assert targets["field"].shape == (2, 320, 320) and targets["heatmaps"].shape == (4, 320, 320)
    for i, joint in enumerate(JOINTS):
        start = np.rint(truth.contour(joint, k).start_px).astype(int)
        assert targets["heatmaps"][2 * i, start[1], start[0]] > 0.8
