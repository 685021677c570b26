"""Contour consensus: precision weighting, distances in mm, degenerate and reversed inputs."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from ml.consensus.contours import (
    contour_consensus,
    point_to_polyline,
    resample_polyline,
    symmetric_distances,
)


def _joint_curve(n: int = 60) -> np.ndarray:
    """A 50 mm S-bent open curve in the coronal plane, superior -> inferior, in mm."""
    t = np.linspace(0.0, 1.0, n)
    return np.stack([20 + 4 * np.sin(2 * np.pi * t), np.zeros(n), 50 * (1 - t)], axis=1)


def _noisy(curve: np.ndarray, sigma_mm: float, rng: np.random.Generator) -> np.ndarray:
    # smooth in-plane offset: readers trace a consistently shifted curve, not white noise
    offset = rng.normal(0, sigma_mm) + rng.normal(0, sigma_mm / 2, curve.shape[0]).cumsum() / 10
    noisy = curve.copy()
    noisy[:, 0] += offset
    return noisy


def test_resample_polyline_equal_spacing() -> None:
    line = np.array([[0.0, 0, 0], [1, 0, 0], [1, 3, 0]])
    out = resample_polyline(line, 5)
    np.testing.assert_allclose(np.linalg.norm(np.diff(out, axis=0), axis=1).sum(), 4.0)
    np.testing.assert_allclose(out[[0, -1]], line[[0, -1]])
    np.testing.assert_allclose(resample_polyline([[1.0, 2, 3]], 4), np.tile([1.0, 2, 3], (4, 1)))


def test_point_to_polyline_distance_by_hand() -> None:
    line = np.array([[0.0, 0, 0], [10, 0, 0]])
    points = np.array([[5.0, 3, 0], [-4, 0, 3], [12, 0, 0]])
    np.testing.assert_allclose(point_to_polyline(points, line), [3.0, 5.0, 2.0])
    assert symmetric_distances(line, line).max() == 0.0


def _distance_to_segments(point: np.ndarray, line: np.ndarray) -> float:
    """The textbook distance of one point to a polyline, one segment at a time (the reference)."""
    best = np.inf
    for a, b in itertools.pairwise(line):
        seg = b - a
        length2 = float(seg @ seg)
        t = 0.0 if length2 == 0 else min(max(float((point - a) @ seg) / length2, 0.0), 1.0)
        best = min(best, float(np.linalg.norm(point - (a + t * seg))))
    return best


@pytest.mark.parametrize("dims", [2, 3])
def test_point_to_polyline_matches_the_segment_by_segment_distance(dims: int) -> None:
    rng = np.random.default_rng(11)
    for n_points, n_line in [(1, 2), (7, 2), (40, 25), (25, 40)]:
        points = rng.normal(0, 20, (n_points, dims))
        line = rng.normal(0, 20, (n_line, dims))
        if n_line > 3:
            line[2] = line[1]  # a zero-length segment
        expected = [_distance_to_segments(p, line) for p in points]
        np.testing.assert_allclose(point_to_polyline(points, line), expected, rtol=1e-12, atol=1e-12)


def test_precise_readers_get_more_weight_and_consensus_beats_the_worst() -> None:
    rng = np.random.default_rng(0)
    truth = _joint_curve()
    sigmas = [0.3, 0.4, 0.5, 3.0]
    readers = [_noisy(truth, s, rng) for s in sigmas]
    result = contour_consensus(readers)
    assert result.converged
    assert np.argmin(result.weights) == 3
    assert result.weights.sum() == pytest.approx(1.0)
    error = symmetric_distances(result.polyline, truth).mean()
    assert error < symmetric_distances(readers[3], truth).mean()
    assert np.argmax(result.mean_distance_mm) == 3
    assert np.all(result.p95_distance_mm >= result.mean_distance_mm)


def test_single_reader_is_its_own_consensus() -> None:
    curve = _joint_curve()
    result = contour_consensus([curve])
    np.testing.assert_allclose(result.weights, [1.0])
    np.testing.assert_allclose(result.mean_distance_mm, [0.0], atol=1e-9)
    assert result.disagreement_mm == pytest.approx(0.0, abs=1e-9)
    assert not result.flagged(0.5)


def test_identical_contours_give_equal_weights_and_zero_distance() -> None:
    curve = _joint_curve()
    result = contour_consensus([curve, curve.copy(), curve.copy()])
    np.testing.assert_allclose(result.weights, 1 / 3)
    np.testing.assert_allclose(result.mean_distance_mm, 0.0, atol=1e-9)
    assert np.all(np.isfinite(result.polyline))


def test_reversed_reader_is_flipped() -> None:
    rng = np.random.default_rng(1)
    truth = _joint_curve()
    readers = [_noisy(truth, 0.5, rng) for _ in range(3)]
    forward = contour_consensus(readers)
    readers[1] = readers[1][::-1]
    flipped = contour_consensus(readers)
    assert flipped.reversed.tolist() == [False, True, False]
    np.testing.assert_allclose(flipped.polyline, forward.polyline, atol=1e-9)
    np.testing.assert_allclose(flipped.polyline[0], truth[0], atol=2.0)  # still starts superior


def test_disagreement_flags_slices_above_threshold() -> None:
    rng = np.random.default_rng(2)
    truth = _joint_curve()
    close = contour_consensus([_noisy(truth, 0.2, rng) for _ in range(3)])
    shift = np.array([6.0, 0.0, 0.0])
    apart = contour_consensus([truth, truth + shift, truth - shift])
    assert close.disagreement_mm < 1.0 < apart.disagreement_mm
    assert apart.flagged(2.0) and not close.flagged(2.0)


def test_rejects_no_readers() -> None:
    with pytest.raises(ValueError):
        contour_consensus([])
