"""Per-slice joint curves and anatomy maps of the MRI phantom (SPEC §6.3), in in-plane millimetres.

In-plane coordinates ``(u, v)`` run along the row and column directions of the semicoronal slice: ``u``
toward the patient's left (+x), ``v`` toward the feet. The left joint therefore lies at larger ``u``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.random import Generator
from scipy.spatial import cKDTree

from ml.data.geometry import (
    BoolArray,
    FloatArray,
    arc_lengths,
    bezier,
    resample_by_spacing,
    unit_tangents,
)

DENSE_SPACING_MM = 0.2
JOINT_SIGNS = {"left": 1, "right": -1}


@dataclass(frozen=True)
class JointShape:
    """Scan-level shape of one joint; per-slice curves derive from it.

    Attributes:
        joint: ``"left"`` or ``"right"``.
        offset_mm: distance of the chord centre from the midline, along ``u``.
        v_centre_mm: chord centre along ``v`` (image coordinates, mm).
        angle_deg: chord tilt from the vertical; superior end lateral.
        length_mm: (S,) arc length per slice, < 10 mm on the end slices.
        bend_mm: signed S-bend amplitude.
        width_mm: joint-space width.
        drift_mm: (S, 2) smooth per-slice shift of the chord centre, |shift| <= 2 mm.
        angle_drift_deg: (S,) smooth per-slice change of the tilt.
    """

    joint: str
    offset_mm: float
    v_centre_mm: float
    angle_deg: float
    length_mm: FloatArray
    bend_mm: float
    width_mm: float
    drift_mm: FloatArray
    angle_drift_deg: FloatArray

    @property
    def sign(self) -> int:
        """+1 for the left joint (lateral = +u), -1 for the right."""
        return JOINT_SIGNS[self.joint]


def smooth_series(rng: Generator, n: int, max_abs: float, n_terms: int = 3) -> FloatArray:
    """Draw a smooth random series (n,) (sum of low-frequency sinusoids, a cheap Gaussian-process stand-in)."""
    t = np.linspace(0.0, 1.0, n)
    out = np.zeros(n)
    for f in range(1, n_terms + 1):
        out += rng.normal(0.0, 1.0 / f) * np.sin(np.pi * f * t + rng.uniform(0, 2 * np.pi))
    peak = np.max(np.abs(out))
    return out * (max_abs / peak) if peak > 0 else out


def sample_joint_shape(
    rng: Generator, joint: str, n_slices: int, u_mid_v_mid: tuple[float, float]
) -> JointShape:
    """Sample one joint's scan-level shape per SPEC §6.3."""
    length_max = rng.uniform(40.0, 65.0)
    length_min = rng.uniform(5.0, 9.0)
    t = np.linspace(-1.0, 1.0, n_slices)
    profile = 1.0 - np.abs(t) ** rng.uniform(1.6, 2.6)
    profile /= profile.max()  # an even slice count has no slice at t = 0
    drift_max = rng.uniform(0.5, 2.0)
    drift = np.stack([smooth_series(rng, n_slices, drift_max), smooth_series(rng, n_slices, drift_max)], 1)
    norms = np.linalg.norm(drift, axis=1, keepdims=True)
    drift = drift * np.minimum(1.0, drift_max / np.maximum(norms, 1e-9))
    return JointShape(
        joint=joint,
        offset_mm=float(rng.uniform(40.0, 50.0)),
        v_centre_mm=float(u_mid_v_mid[1] + rng.uniform(-6.0, 6.0)),
        angle_deg=float(rng.uniform(12.0, 28.0)),
        length_mm=length_min + (length_max - length_min) * profile,
        bend_mm=float(rng.uniform(2.0, 6.0) * rng.choice([-1.0, 1.0])),
        width_mm=float(np.clip(rng.normal(2.3, 0.4), 1.2, 4.5)),
        drift_mm=drift,
        angle_drift_deg=smooth_series(rng, n_slices, float(rng.uniform(0.5, 2.0))),
    )


def joint_curve(shape: JointShape, k: int, u_mid: float) -> FloatArray:
    """Return the dense polyline (n, 2) in (u, v) mm of one joint on slice ``k``, start (superior) first.

    A cubic Bezier whose chord runs superolateral -> inferomedial, with opposite control-point offsets for a
    small S-bend, scaled so that its arc length equals ``shape.length_mm[k]``.
    """
    angle = np.deg2rad(shape.angle_deg + shape.angle_drift_deg[k])
    sign = shape.sign
    direction = np.array([-sign * np.sin(angle), np.cos(angle)])  # start -> end: medial and inferior
    normal = np.array([direction[1], -direction[0]])
    p0, p3 = -0.5 * direction, 0.5 * direction
    bend = shape.bend_mm / max(shape.length_mm[k], 1e-6)
    control = np.stack([p0, p0 + (p3 - p0) / 3 + bend * normal, p0 + 2 * (p3 - p0) / 3 - bend * normal, p3])
    unit = bezier(control, np.linspace(0.0, 1.0, 200))
    curve = unit * (shape.length_mm[k] / arc_lengths(unit)[-1])
    centre = np.array([u_mid + sign * shape.offset_mm, shape.v_centre_mm]) + shape.drift_mm[k]
    return resample_by_spacing(curve + centre, DENSE_SPACING_MM)


@dataclass
class JointFrame:
    """Curve-aligned coordinates of one joint on one slice, over a rectangular image ROI.

    Attributes:
        joint, sign: joint name and lateral sign (+1 left).
        rows, cols: ROI slices into the (H, W) image.
        a: (h, w) arc-length coordinate in mm from the start point (negative above it, > length below the end).
        d: (h, w) signed distance in mm from the curve, positive lateral (iliac), negative medial (sacral).
        length_mm, width_mm, cortex_mm: joint length, width and subchondral cortex thickness.
        bone: (h, w) bool, the bone of this joint's neighbourhood (ilium lateral, sacrum medial).
    """

    joint: str
    sign: int
    rows: slice
    cols: slice
    a: FloatArray
    d: FloatArray
    length_mm: float
    width_mm: float
    cortex_mm: float
    bone: BoolArray

    @property
    def surface_depth(self) -> FloatArray:
        """(h, w) depth in mm below the articular surface (|d| - w/2); negative inside the joint space."""
        return np.abs(self.d) - self.width_mm / 2

    @property
    def within(self) -> BoolArray:
        """(h, w) bool: the perpendicular foot lies on the joint segment (0 <= a <= length)."""
        return (self.a >= 0) & (self.a <= self.length_mm)

    def quadrant_mask(self, quadrant: str) -> BoolArray:
        """(h, w) bool mask of a quadrant: iliac lateral / sacral medial, upper / lower half of the arc."""
        side = self.d > self.width_mm / 2 if quadrant.startswith("iliac") else self.d < -self.width_mm / 2
        half = self.a < self.length_mm / 2 if quadrant.endswith("upper") else self.a >= self.length_mm / 2
        return side & half & self.within & self.bone


def joint_frame(
    curve: FloatArray,
    shape: JointShape,
    pixel_mm: float,
    image_shape: tuple[int, int],
    u_mid: float,
    cortex_mm: float,
    iliac_depth_mm: float,
) -> JointFrame:
    """Compute curve coordinates over an ROI around ``curve`` (n, 2) (u, v mm) and this joint's bone mask."""
    length = float(arc_lengths(curve)[-1])
    cap = max(10.0, (50.0 - length) / 2)
    lo = curve.min(axis=0) - np.array([iliac_depth_mm + 10, cap + 8])
    hi = curve.max(axis=0) + np.array([iliac_depth_mm + 10, cap + 8])
    if shape.sign > 0:
        lo[0] = u_mid - 4
    else:
        hi[0] = u_mid + 4
    c0, r0 = np.maximum(np.floor(lo / pixel_mm).astype(int), 0)
    c1, r1 = np.minimum(np.ceil(hi / pixel_mm).astype(int) + 1, [image_shape[1], image_shape[0]])
    uu, vv = np.meshgrid(np.arange(c0, c1) * pixel_mm, np.arange(r0, r1) * pixel_mm)
    pts = np.stack([uu.ravel(), vv.ravel()], axis=1)
    tangents = unit_tangents(curve)
    normals = np.stack([tangents[:, 1], -tangents[:, 0]], axis=1)
    normals *= np.sign(normals[:, :1] * shape.sign + 1e-12)  # point laterally
    arc = arc_lengths(curve)
    _, idx = cKDTree(curve).query(pts)
    rel = pts - curve[idx]
    a = (arc[idx] + np.einsum("ij,ij->i", rel, tangents[idx])).reshape(uu.shape)
    d = np.einsum("ij,ij->i", rel, normals[idx]).reshape(uu.shape)
    own_side = shape.sign * (uu - u_mid) >= -0.5 * pixel_mm
    bone = (a >= -cap) & (a <= length + cap) & (d <= iliac_depth_mm) & own_side
    return JointFrame(
        joint=shape.joint,
        sign=shape.sign,
        rows=slice(int(r0), int(r1)),
        cols=slice(int(c0), int(c1)),
        a=a,
        d=d,
        length_mm=length,
        width_mm=shape.width_mm,
        cortex_mm=cortex_mm,
        bone=bone,
    )
