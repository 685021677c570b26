"""Targets, walker and RMSE on analytic curves whose answers are known by construction."""

from __future__ import annotations

import numpy as np
import pytest

from ml.contours.field import field_targets
from ml.contours.geometry import project_to_polyline, resample_polyline
from ml.contours.metrics import summarise_rmse, symmetric_rmse
from ml.contours.walker import bilinear, heatmap_peak, walk
from ml.data.geometry import patient_to_pixel, pixel_to_patient


def _arc(cx: float, cy: float, r: float, a0: float, a1: float, n: int = 200) -> np.ndarray:
    a = np.linspace(a0, a1, n)
    return np.stack([cx + r * np.cos(a), cy + r * np.sin(a)], axis=1)


def _s_curve(h: int = 64) -> np.ndarray:
    y = np.linspace(8, h - 8, 200)
    return np.stack([32 + 8 * np.sin((y - 8) / (h - 16) * 2 * np.pi), y], axis=1)


def test_projection_and_resampling() -> None:
    line = np.array([[0.0, 0.0], [10.0, 0.0]])
    proj = project_to_polyline(np.array([[5.0, 3.0], [-4.0, 3.0]]), line)
    assert proj.distance.tolist() == pytest.approx([3.0, 5.0])
    assert np.allclose(proj.point, [[5.0, 0.0], [0.0, 0.0]])
    res = resample_polyline(line, 2.5)
    assert res[:, 0].tolist() == pytest.approx([0, 2.5, 5, 7.5, 10])


def test_field_is_unit_tangent_on_curve_and_points_to_curve_off_it() -> None:
    line = np.array([[10.0, 5.0], [10.0, 25.0]])  # vertical, downwards (start at top)
    t = field_targets(line, (30, 20), band_px=2.0, sigma_px=2.0)
    norms = np.linalg.norm(t.field, axis=0)
    assert np.allclose(norms, 1.0, atol=1e-5)
    assert t.field[:, 15, 10].tolist() == pytest.approx([0.0, 1.0])  # on the curve: tangent start->end
    assert t.field[:, 15, 11].tolist() == pytest.approx([0.0, 1.0])  # inside the band
    assert t.field[:, 15, 16].tolist() == pytest.approx([-1.0, 0.0])  # right of it: points left
    assert t.field[:, 15, 3].tolist() == pytest.approx([1.0, 0.0])
    assert t.field[:, 0, 10].tolist() == pytest.approx([0.0, 1.0])  # above the start: to the start
    assert t.heatmaps[0, 5, 10] == 1.0 and t.heatmaps[1, 25, 10] == 1.0
    assert t.distance[15, 16] == pytest.approx(6.0)


def test_field_on_an_arc_is_tangent() -> None:
    arc = _arc(32, 32, 20, -np.pi / 2, np.pi / 2)
    t = field_targets(arc, (64, 64))
    # the arc's rightmost point (52, 32) moves towards +y (angle increasing)
    assert t.field[:, 32, 52] == pytest.approx([0.0, 1.0], abs=0.05)
    assert t.field[:, 32, 60] == pytest.approx([-1.0, 0.0], abs=0.05)


def _check_trace(field: np.ndarray, line: np.ndarray, tol_px: float) -> None:
    res = walk(field, line[0], line[-1], step_px=0.75)
    assert res.reached_end, res.reason
    assert symmetric_rmse(res.points, line) < tol_px
    gaps = np.linalg.norm(np.diff(res.points, axis=0), axis=1)
    assert gaps.max() <= 1.0 + 1e-6


def test_walker_straight_line_uniform_field() -> None:
    field = np.zeros((2, 40, 40))
    field[0] = 1.0  # every pixel points +x
    line = np.array([[5.0, 20.0], [35.0, 20.0]])
    _check_trace(field, line, 0.05)


def test_walker_circle_arc() -> None:
    arc = _arc(32, 32, 20, -np.pi / 2, np.pi / 2)
    _check_trace(field_targets(arc, (64, 64)).field, arc, 0.2)


def test_walker_s_curve_with_a_gap() -> None:
    s = _s_curve()
    field = field_targets(s, (64, 64)).field.copy()
    field[:, 28:34, :] = 0.0  # six rows with no signal: keep the heading
    _check_trace(field, s, 1.0)


def test_walker_field_that_turns_back() -> None:
    line = np.array([[8.0, 32.0], [56.0, 32.0]])
    field = field_targets(line, (64, 64)).field.copy()
    field[:, :, 28:34] *= -1.0  # a band where the field points backwards
    _check_trace(field, line, 0.5)


def test_walker_stops_on_a_loop_and_on_max_steps() -> None:
    yy, xx = np.mgrid[0:64, 0:64].astype(float)
    dx, dy = xx - 32, yy - 32
    r = np.maximum(np.hypot(dx, dy), 1e-6)
    pull = 0.5 * (20 - r) / r  # tangent plus a pull onto the circle of radius 20: a limit cycle
    field = np.stack([-dy / r + pull * dx, dx / r + pull * dy])
    res = walk(field, [52.0, 32.0], [0.0, 0.0])
    assert res.reason == "loop" and not res.reached_end
    assert walk(field, [52.0, 32.0], [0.0, 0.0], max_steps=5).reason == "max_steps"


def test_bilinear_and_peak() -> None:
    f = np.zeros((1, 3, 3))
    f[0, 1, 1] = 4.0
    assert bilinear(f, 0.5, 0.5)[0] == pytest.approx(1.0)
    heat = np.zeros((9, 9))
    heat[4, 5], heat[4, 6] = 1.0, 1.0
    assert heatmap_peak(heat).tolist() == pytest.approx([5.5, 4.0])


def test_pixel_to_patient_roundtrip_and_dicom_axes() -> None:
    ipp, iop, spacing = [-150.0, 20.0, 100.0], [1, 0, 0, 0, 0, -1], [0.8, 0.9]  # (row, column) spacing
    mm = pixel_to_patient([[10.0, 20.0]], ipp, iop, spacing)
    assert mm[0].tolist() == pytest.approx([-150 + 10 * 0.9, 20.0, 100 - 20 * 0.8])
    assert patient_to_pixel(mm, ipp, iop, spacing)[0].tolist() == pytest.approx([10.0, 20.0])


def test_rmse_identical_and_shifted() -> None:
    s = _s_curve()
    assert symmetric_rmse(s, s) == pytest.approx(0.0, abs=1e-9)
    line = np.array([[0.0, 0.0, 0.0], [0.0, 40.0, 0.0]])
    assert symmetric_rmse(line, line + np.array([1.7, 0.0, 0.0])) == pytest.approx(1.7)
    summary = summarise_rmse([1.0, 2.0, 3.0, 4.0])
    assert summary["frac_below"] == 0.5 and summary["n"] == 4


def test_walker_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError):
        walk(np.zeros((2, 8, 8)), [1, 1], [6, 6], step_px=0.0)
    with pytest.raises(ValueError):
        walk(np.zeros((3, 8, 8)), [1, 1], [6, 6])
    with pytest.raises(ValueError):
        field_targets(np.array([[2.0, 2.0], [2.0, 2.0]]), (8, 8))


def test_walker_stops_where_the_field_ends_when_the_end_point_is_wrong() -> None:
    line = np.array([[8.0, 32.0], [40.0, 32.0]])
    field = field_targets(line, (64, 64)).field
    res = walk(field, line[0], [60.0, 10.0])  # a misplaced end point far beyond the curve's end
    assert res.reason == "field_end"
    assert np.linalg.norm(res.points[-1] - line[-1]) < 4.0  # the band (2 px) runs on past the end
    assert symmetric_rmse(res.points, line) < 1.0


def test_band_pull_tilts_in_band_vectors_towards_the_curve() -> None:
    line = np.array([[10.0, 5.0], [10.0, 25.0]])
    plain = field_targets(line, (30, 20)).field
    pulled = field_targets(line, (30, 20), band_pull=0.5).field
    assert pulled[:, 15, 10] == pytest.approx([0.0, 1.0])  # on the curve: still the tangent
    assert pulled[0, 15, 11] < -0.1 and plain[0, 15, 11] == 0.0  # 1 px right: leans left, back to it
    assert np.allclose(np.linalg.norm(pulled, axis=0), 1.0, atol=1e-5)
    assert np.array_equal(pulled[:, 15, 16], plain[:, 15, 16])  # off the band: unchanged
