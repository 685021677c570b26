"""Repair of traced joint lines across slices."""

from __future__ import annotations

import numpy as np

from ml.contours.repair import repair_short_traces


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
