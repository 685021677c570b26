"""Pelvis and joint geometry of the CT phantom (SPEC §6.4) in axial slices, as curve-aligned coordinates.

Each joint is a bowed surface: in slice ``z`` its line runs from an anterior-lateral point ``A(z)`` to a
posterior-medial point ``P(z)``; ``a`` is the distance along ``A -> P``, ``d`` the signed distance from the
line (positive lateral = iliac side). Patient LPS: +x left, +y posterior, +z superior.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.random import Generator

from ml.data.geometry import BoolArray, FloatArray
from ml.phantoms.schema import JOINTS

SIGNS = {"left": 1.0, "right": -1.0}


@dataclass(frozen=True)
class CtJointShape:
    """Scan-level shape of one CT joint (mm, relative to the volume centre).

    Attributes:
        joint: ``"left"`` or ``"right"``.
        anterior, posterior: (x, y) of the joint line ends at the centre slice (x for the left side).
        slope: (4,) change per mm of z of (xa, ya, xp, yp).
        bow_mm: bow of the joint line (convex anteriorly-laterally).
        half_height_mm: joint half-extent in z around ``z_centre_mm``.
        z_centre_mm: joint centre in z.
        width_mm: joint-space width.
        iliac_mm: iliac thickness lateral of the joint.
    """

    joint: str
    anterior: tuple[float, float]
    posterior: tuple[float, float]
    slope: tuple[float, float, float, float]
    bow_mm: float
    half_height_mm: float
    z_centre_mm: float
    width_mm: float
    iliac_mm: float

    def ends(self, z: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
        """(xa, ya, xp, yp) per slice (S,) for slice heights ``z`` (S,) mm, with the side's sign applied to x."""
        dz = z - self.z_centre_mm
        sign = SIGNS[self.joint]
        xa = sign * (self.anterior[0] + self.slope[0] * dz)
        ya = self.anterior[1] + self.slope[1] * dz
        xp = sign * (self.posterior[0] + self.slope[2] * dz)
        yp = self.posterior[1] + self.slope[3] * dz
        return xa, ya, xp, yp


def sample_ct_joint(rng: Generator, joint: str, width_mm: float) -> CtJointShape:
    """Sample one joint's shape; ``width_mm`` comes from the grade recipe."""
    return CtJointShape(
        joint=joint,
        anterior=(float(rng.uniform(50, 56)), float(rng.uniform(-28, -20))),
        posterior=(float(rng.uniform(30, 37)), float(rng.uniform(12, 20))),
        slope=tuple(float(v) for v in rng.uniform(-0.08, 0.08, 4)),  # type: ignore[arg-type]
        bow_mm=float(rng.uniform(1.0, 4.0)),
        half_height_mm=float(rng.uniform(27, 35)),
        z_centre_mm=float(rng.uniform(-4, 4)),
        width_mm=width_mm,
        iliac_mm=float(rng.uniform(20, 27)),
    )


@dataclass
class CtJointCoords:
    """Curve coordinates of one joint over the volume (S, H, W): ``a``, ``d`` (mm), line length (S,1,1),
    and ``zone`` (S, H, W) bool: the articulating part (inside the joint's z extent and a-range)."""

    a: FloatArray
    d: FloatArray
    length: FloatArray
    zone: BoolArray


def joint_coords(shape: CtJointShape, x: FloatArray, y: FloatArray, z: FloatArray) -> CtJointCoords:
    """Compute curve coordinates for voxel centres ``x`` (1,1,W), ``y`` (1,H,1), ``z`` (S,1,1) in mm."""
    xa, ya, xp, yp = (v.astype(np.float32) for v in shape.ends(z))
    dx, dy = xp - xa, yp - ya
    length = np.sqrt(dx**2 + dy**2)
    tx, ty = dx / length, dy / length
    sign = SIGNS[shape.joint]
    nx, ny = ty, -tx
    flip = np.where(nx * sign > 0, 1.0, -1.0).astype(np.float32)
    nx, ny = nx * flip, ny * flip
    rx, ry = x - xa, y - ya
    a = rx * tx + ry * ty
    frac = np.clip(a / length, 0.0, 1.0)
    d = rx * nx + ry * ny - shape.bow_mm * np.sin(np.pi * frac)
    dz = np.abs(z - shape.z_centre_mm) / shape.half_height_mm
    taper = np.sqrt(np.clip(1.0 - dz**2, 0.0, 1.0)).astype(np.float32)
    half = length / 2 * taper
    zone = (np.abs(a - length / 2) <= half) & (dz < 1.0)
    return CtJointCoords(a=a, d=d, length=length, zone=zone)


def sacrum_mask(
    joints: dict[str, CtJointShape], coords: dict[str, CtJointCoords], x: FloatArray, y: FloatArray
) -> tuple[BoolArray, FloatArray]:
    """Return (sacrum bool (S,H,W), distance-like margin to its boundary in mm (S,H,W)).

    The sacrum lies medial to both joints, behind a promontory-shaped anterior surface and in front of a
    flat posterior surface, minus an elliptical sacral canal.
    """
    ya = min(joints[j].anterior[1] for j in JOINTS)
    yp = max(joints[j].posterior[1] for j in JOINTS)
    xa = max(joints[j].anterior[0] for j in JOINTS)
    front = ya - 6.0 + 6.0 * (x / xa) ** 2
    back = yp + 10.0
    canal = np.sqrt((x / 11.0) ** 2 + ((y - (yp - 3.0)) / 6.0) ** 2)
    margins = [-coords[j].d - joints[j].width_mm / 2 for j in JOINTS] + [
        y - front,
        back - y,
        (canal - 1.0) * 6.0,
    ]
    margin = margins[0]
    for m in margins[1:]:
        margin = np.minimum(margin, m)
    return margin >= 0, margin


def ilium_mask(shape: CtJointShape, c: CtJointCoords) -> tuple[BoolArray, FloatArray]:
    """Return (ilium bool (S,H,W), margin to its boundary in mm) lateral of one joint."""
    half_w = shape.width_mm / 2
    margin = np.minimum(
        np.minimum(c.d - half_w, half_w + shape.iliac_mm - c.d), np.minimum(c.a + 30.0, c.length + 12.0 - c.a)
    )
    return margin >= 0, margin
