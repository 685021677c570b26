"""Trace a contour by integrating a predicted vector field from the start point to the end point.

x_{t+1} = x_t + h * d_t with d_t the bilinearly interpolated field at x_t, normalised, and blended with the
previous heading (momentum). Small or zero vectors (gaps) keep the previous heading; a vector that turns
back by more than ``max_turn_deg`` relative to the heading is rejected and the heading kept. Stops within
``stop_radius_px`` of the end point (or on passing it closely), after ``max_steps`` steps, on leaving the grid, or on a loop.
Coordinates are pixels (x = column, y = row); the field is (2, H, W) with channels (vx, vy).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ml.contours.geometry import FloatArray, resample_polyline

StopReason = Literal["reached_end", "field_end", "max_steps", "loop", "left_grid"]


@dataclass(frozen=True)
class WalkResult:
    """A traced polyline (K, 2) in pixels, resampled at ``spacing_px``, and why the walk stopped."""

    points: FloatArray
    reason: StopReason
    n_steps: int

    @property
    def reached_end(self) -> bool:
        """True when the walk stopped at the end point."""
        return self.reason == "reached_end"


def bilinear(field: NDArray[np.floating], x: float, y: float) -> FloatArray:
    """Sample a (C, H, W) array at a sub-pixel point (x, y), clamped to the grid: returns (C,)."""
    _, h, w = field.shape
    x = min(max(x, 0.0), w - 1.0)
    y = min(max(y, 0.0), h - 1.0)
    x0, y0 = min(int(x), w - 2) if w > 1 else 0, min(int(y), h - 2) if h > 1 else 0
    fx, fy = x - x0, y - y0
    x1, y1 = min(x0 + 1, w - 1), min(y0 + 1, h - 1)
    top = field[:, y0, x0] * (1 - fx) + field[:, y0, x1] * fx
    bottom = field[:, y1, x0] * (1 - fx) + field[:, y1, x1] * fx
    return np.asarray(top * (1 - fy) + bottom * fy, dtype=np.float64)


def heatmap_peak(heatmap: NDArray[np.floating]) -> FloatArray:
    """Return the (x, y) of the maximum of an (H, W) heatmap, refined by a 3x3 centroid."""
    h, w = heatmap.shape
    r, c = np.unravel_index(int(np.argmax(heatmap)), heatmap.shape)
    r0, r1, c0, c1 = max(r - 1, 0), min(r + 2, h), max(c - 1, 0), min(c + 2, w)
    patch = np.clip(np.asarray(heatmap[r0:r1, c0:c1], dtype=np.float64), 0, None)
    if patch.sum() <= 0:
        return np.array([float(c), float(r)])
    yy, xx = np.mgrid[r0:r1, c0:c1]
    return np.array([(xx * patch).sum() / patch.sum(), (yy * patch).sum() / patch.sum()])


def walk(
    field: ArrayLike,
    start_xy: ArrayLike,
    end_xy: ArrayLike,
    *,
    step_px: float = 0.75,
    stop_radius_px: float = 1.5,
    max_steps: int | None = None,
    min_norm: float = 0.2,
    max_turn_deg: float = 90.0,
    momentum: float = 0.0,
    loop_radius_px: float = 1.0,
    capture_radius_px: float = 4.0,
    max_reversed_px: float = 10.0,
    spacing_px: float = 1.0,
) -> WalkResult:
    """Integrate ``field`` (2, H, W) from ``start_xy`` towards ``end_xy``; return the traced polyline.

    ``step_px`` is h (0.5-1 px); ``max_steps`` defaults to 4 x (H + W) / h; ``min_norm`` is the field
    magnitude below which the heading is kept; ``momentum`` in [0, 1) weights the previous heading;
    a loop is a return within ``loop_radius_px`` of a point visited well before. A walk that passes
    the end point within ``capture_radius_px`` (the end falls behind the heading) also counts as arrived.
    The end point is appended when reached. A field that keeps pointing back for more than
    ``max_reversed_px`` of travel means the walk overshot the curve's end (e.g. a misplaced end
    point): the walk stops ("field_end") and the overshoot is trimmed. The output is resampled every
    ``spacing_px`` pixels.
    """
    if not 0 < step_px <= 2.0:
        raise ValueError(f"step_px must lie in (0, 2] px (0.5-1 recommended), got {step_px}")
    v = np.asarray(field, dtype=np.float64)
    if v.ndim != 3 or v.shape[0] != 2:
        raise ValueError(f"field must be (2, H, W), got {v.shape}")
    _, h, w = v.shape
    x = np.asarray(start_xy, dtype=np.float64).copy()
    end = np.asarray(end_xy, dtype=np.float64)
    limit = max_steps if max_steps is not None else int(4 * (h + w) / step_px)
    cos_max = float(np.cos(np.deg2rad(max_turn_deg)))
    heading = _unit(end - x)  # fallback until the field gives a direction
    first = _accepted(v, x, heading, min_norm, -2.0)
    if first is not None:
        heading = first
    path = [x.copy()]
    loop_lag = int(np.ceil((4 * loop_radius_px + 2 * stop_radius_px) / step_px)) + 2
    reason: StopReason = "max_steps"
    reversed_run, max_reversed = 0, int(np.ceil(max_reversed_px / step_px))
    for _ in range(limit):
        to_end = end - x
        gap = float(np.linalg.norm(to_end))
        if gap <= stop_radius_px or (gap <= capture_radius_px and float(to_end @ heading) < 0):
            reason = "reached_end"  # at the end, or just passed it (it lies behind the heading)
            break
        # midpoint (RK2) step: follows the field's flow lines without the outward drift of Euler
        d1 = _accepted(v, x, heading, min_norm, cos_max)
        reversed_run = (
            reversed_run + 1 if d1 is None and _is_reversed(v, x, heading, min_norm, cos_max) else 0
        )
        if reversed_run > max_reversed:
            reason = "field_end"
            del path[len(path) - reversed_run + 1 :]
            break
        d1 = heading if d1 is None else d1
        d2 = _accepted(v, x + 0.5 * step_px * d1, heading, min_norm, cos_max)
        d2 = d1 if d2 is None else d2
        heading = _unit(momentum * heading + (1 - momentum) * d2)
        x = x + step_px * heading
        if not (-0.5 <= x[0] <= w - 0.5 and -0.5 <= x[1] <= h - 0.5):
            reason = "left_grid"
            break
        if len(path) > loop_lag:
            old = np.asarray(path[:-loop_lag])
            if np.min(np.sum((old - x) ** 2, axis=1)) < loop_radius_px**2:
                reason = "loop"
                break
        path.append(x.copy())
    if reason == "reached_end":
        path.append(end.copy())
    return WalkResult(resample_polyline(np.asarray(path), spacing_px), reason, len(path) - 1)


def _accepted(
    v: NDArray[np.float64], x: FloatArray, heading: FloatArray, min_norm: float, cos_max: float
) -> FloatArray | None:
    """Unit field direction at x, or None in a gap (norm < min_norm) or when it turns back too far."""
    sample = bilinear(v, float(x[0]), float(x[1]))
    norm = float(np.linalg.norm(sample))
    if norm < min_norm:
        return None
    direction = sample / norm
    return direction if float(direction @ heading) >= cos_max else None


def _is_reversed(
    v: NDArray[np.float64], x: FloatArray, heading: FloatArray, min_norm: float, cos_max: float
) -> bool:
    """True when the field at x is strong and turns back by more than the allowed angle."""
    sample = bilinear(v, float(x[0]), float(x[1]))
    norm = float(np.linalg.norm(sample))
    return norm >= min_norm and float(sample @ heading) / norm < cos_max


def _unit(vector: FloatArray) -> FloatArray:
    n = float(np.linalg.norm(vector))
    return vector / n if n > 0 else np.array([1.0, 0.0])
