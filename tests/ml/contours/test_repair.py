"""Repair of traced joint lines across slices."""

from __future__ import annotations

import numpy as np

from ml.contours.files import ScanArrays
from ml.contours.infer import TracedContour, repair_traced
from ml.contours.repair import repair_short_traces
from ml.data.geometry import pixel_to_patient

LENGTHS = [20.0, 32.0, 40.0, 44.0, 46.0, 44.0, 40.0, 32.0, 20.0]


def test_a_trace_stopped_at_a_gap_is_rebuilt_from_its_neighbours_a_short_joint_is_not() -> None:
    """Vertical joint lines 1 px = 1 mm, lengths rising and falling over 9 slices like a real joint's."""
    lengths = [20.0, 32.0, 40.0, 44.0, 46.0, 44.0, 40.0, 32.0, 20.0]
    lines = {
        k: np.stack([np.full(30, 50.0 + k), np.linspace(10, 10 + n, 30)], 1) for k, n in enumerate(lengths)
    }
    stopped = dict(lines)
    stopped[4] = lines[4][:12]  # the walker ended 17 mm in, at an ankylosed segment
    repaired = repair_short_traces(stopped, 1.0)
    assert abs(np.ptp(repaired[4][:, 1]) - 44.0) < 1.0 and np.allclose(repaired[4][:, 0], 54.0)
    assert all(repaired[k] is stopped[k] for k in lines if k != 4)
    elsewhere = dict(lines)
    elsewhere[4] = lines[4][:12] + np.array([15.0, 0.0])  # short and 15 mm off its neighbours: kept
    assert repair_short_traces(elsewhere, 1.0)[4] is elsewhere[4]
    assert repair_short_traces({k: stopped[k] for k in range(3, 7)}, 1.0)[4] is stopped[4]  # too few slices


def test_traced_contours_are_repaired_in_pixels_and_patient_mm_from_confident_neighbours_only() -> None:
    scan = ScanArrays(
        "s",
        np.zeros((9, 1, 8, 8), np.float32),
        np.array([0.5, 0.5]),
        np.array([[0.0, 0.0, 3.0 * k] for k in range(9)]),
        np.array([1.0, 0, 0, 0, 1, 0]),
    )

    def trace(k: int, points: np.ndarray, confidence: float = 0.7) -> TracedContour:
        mm = pixel_to_patient(points, scan.image_position[k], scan.image_orientation, scan.pixel_spacing)
        return TracedContour("s", k, "left", points, mm, True, "end", confidence)

    lines = [np.stack([np.full(30, 50.0), np.linspace(10, 10 + 2 * n, 30)], 1) for n in LENGTHS]  # 0.5 mm px
    traced = [trace(k, line) for k, line in enumerate(lines)]
    traced[4] = trace(4, lines[4][:12])
    traced.append(
        TracedContour("s", 4, "right", lines[4][:5], traced[4].points_mm[:5], False, "field_end", 0.9)
    )
    repaired = repair_traced(traced, scan)
    assert (
        repaired[4].stop_reason == "repaired" and np.ptp(repaired[4].points_px[:, 1]) == 88.0
    )  # slices 3, 5
    np.testing.assert_allclose(repaired[4].points_mm[:, 2], 12.0)  # on slice 4's plane
    assert all(repaired[k] is traced[k] for k in range(len(traced)) if k != 4)
    traced[3], traced[5] = trace(3, lines[3], 0.1), trace(5, lines[5], 0.1)  # unconfident neighbours
    assert np.ptp(repair_traced(traced, scan)[4].points_px[:, 1]) == 80.0  # from slices 2 and 6 instead
