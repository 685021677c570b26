"""Axial CT phantom of the pelvis around both sacroiliac joints with mNY grade recipes 0-4 (SPEC §6.4).

:func:`make_ct_phantom` returns HU volumes (clean and with ~1 mm PSF blur + Gaussian noise), the pelvis-bone
label map for the SEG (1 sacrum, 2 left ilium, 3 right ilium) and the drawn features per joint.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.random import Generator
from scipy.ndimage import gaussian_filter

from ml.data.geometry import BoolArray, FloatArray, SliceGeometry, centred_geometry
from ml.phantoms.ct_anatomy import (
    SIGNS,
    CtJointCoords,
    CtJointShape,
    ilium_mask,
    joint_coords,
    sacrum_mask,
    sample_ct_joint,
)
from ml.phantoms.difficulty import EASY, Difficulty, draw
from ml.phantoms.schema import JOINTS

MATRIX = 256
N_SLICES = 96
PIXEL_MM = 0.7
SLICE_MM = 1.0
PSF_FWHM_MM = 1.0
LABELS = {"sacrum": 1, "left": 2, "right": 3}


@dataclass(frozen=True)
class CtParams:
    """Scan-level parameters: tissue HU (SPEC §6.4), noise, rescale, the per-joint grades and shapes, and what
    the difficulty adds: per-joint latent severity and anatomical variants, slice thickness, pixel size, PSF."""

    centre_mm: tuple[float, float, float]
    hu: dict[str, float]
    noise_sigma_hu: float
    rescale_slope: float
    rescale_intercept: float
    cortex_mm: float
    grades: dict[str, int]
    joints: dict[str, CtJointShape] = field(repr=False)
    severity: dict[str, float] = field(default_factory=dict)
    variants: dict[str, dict[str, bool]] = field(default_factory=dict)
    slice_mm: float = SLICE_MM
    pixel_mm: float = PIXEL_MM
    psf_fwhm_mm: float = PSF_FWHM_MM

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready parameters."""
        out = {k: v for k, v in self.__dict__.items() if k != "joints"}
        out["joints"] = {j: dict(s.__dict__) for j, s in self.joints.items()}
        return out


@dataclass
class CtPhantom:
    """One CT phantom: ``hu`` (S, H, W) float32 noisy, ``hu_clean`` before blur/noise, ``labels`` uint8 SEG map."""

    params: CtParams
    geometry: SliceGeometry
    hu: FloatArray
    hu_clean: FloatArray
    labels: np.ndarray
    features: dict[str, dict[str, Any]]


def grade_width(rng: Generator, grade: int) -> float:
    """Joint width in mm: N(2.3, 0.4) kept within normal limits, but widened or narrowed at grade 3."""
    if grade == 3:
        return float(rng.uniform(4.3, 6.0) if rng.random() < 0.5 else rng.uniform(0.6, 1.0))
    return float(np.clip(rng.normal(2.3, 0.4), 1.6, 3.2))


def _chance(rng: Generator, p: float) -> bool:
    """True with probability ``p``; draws nothing when ``p`` is 0 (``easy`` keeps its random stream)."""
    return p > 0 and bool(rng.random() < p)


def sample_ct_params(rng: Generator, grades: dict[str, int] | None = None, d: Difficulty = EASY) -> CtParams:
    """Sample one phantom's parameters; grades follow the difficulty's prior (uniform over 0-4 for ``easy``)
    per joint, independently, unless given."""
    if d.grade_prior is None:
        drawn = {j: int(rng.integers(0, 5)) for j in JOINTS}
    else:
        drawn = {j: int(rng.choice(5, p=d.grade_prior)) for j in JOINTS}
    grades = grades or drawn
    joints = {j: sample_ct_joint(rng, j, grade_width(rng, grades[j])) for j in JOINTS}
    hu = {
        "cortical": float(rng.normal(1086, 100)),
        "cancellous": float(np.clip(rng.normal(188, 70), 90, 330)),
        "joint": float(rng.normal(74, 15)),
        "soft": 40.0,
        "fat": -100.0,
        "csf": 15.0,
        "backfill": float(rng.normal(447, 123)),
    }
    slope = float(rng.choice([1.0, 1.0, 0.5, 2.0]))
    centre_mm = (0.0, float(rng.uniform(-5, 5)), float(rng.uniform(-10, 10)))
    noise_sigma_hu = float(rng.uniform(10, 30))
    cortex_mm = float(rng.uniform(1.0, 1.6))
    severity = {
        j: grades[j] + (float(rng.normal(0, d.severity_sd)) if d.severity_sd else 0.0) for j in JOINTS
    }
    variants = {
        j: {
            "normal_variant_sclerosis": _chance(rng, d.normal_variant_sclerosis) and grades[j] <= 1,
            "accessory_joint": _chance(rng, d.accessory_joint),
            "osteophyte": _chance(rng, d.osteophyte),
        }
        for j in JOINTS
    }
    return CtParams(
        centre_mm=centre_mm,
        hu=hu,
        noise_sigma_hu=noise_sigma_hu,
        rescale_slope=slope,
        rescale_intercept=-1024.0,
        cortex_mm=cortex_mm,
        grades=grades,
        joints=joints,
        severity=severity,
        variants=variants,
        slice_mm=float(rng.choice(d.slice_mm)) if len(d.slice_mm) > 1 else d.slice_mm[0],
        pixel_mm=draw(rng, d.pixel_mm),
        psf_fwhm_mm=draw(rng, d.psf_fwhm_mm),
    )


def ct_geometry(params: CtParams) -> SliceGeometry:
    """Axial stack ``[1,0,0, 0,1,0]``; slices stepped along +z (inferior -> superior), covering the same
    96 mm whatever the slice thickness."""
    return centred_geometry(
        rows=MATRIX,
        cols=MATRIX,
        n_slices=round(N_SLICES * SLICE_MM / params.slice_mm),
        pixel_mm=params.pixel_mm,
        slice_thickness_mm=params.slice_mm,
        spacing_mm=params.slice_mm,
        row_dir=np.array([1.0, 0, 0]),
        col_dir=np.array([0, 1.0, 0]),
        centre=np.asarray(params.centre_mm),
    )


def _surface_noise(rng: Generator, a: FloatArray, z: FloatArray, amp: float) -> FloatArray:
    """Smooth irregularity of a joint surface in mm at points (a, z) (n,), a sum of sinusoids, |.| <= amp."""
    out = np.zeros(a.shape, np.float32)
    for _ in range(3):
        la, lz = rng.uniform(3.0, 8.0, 2)
        out += np.sin(2 * np.pi * a / la + rng.uniform(0, 6.3)) * np.sin(
            2 * np.pi * z / lz + rng.uniform(0, 6.3)
        )
    scaled: FloatArray = out * np.float32(amp / 3.0)
    return scaled


class _Blobs:
    """Ellipsoids in curve coordinates of one joint, evaluated only inside a small voxel box."""

    def __init__(
        self,
        shape: CtJointShape,
        c: CtJointCoords,
        geometry: SliceGeometry,
        z: FloatArray,
        offset: tuple[float, float, float],
    ) -> None:
        self.shape, self.c, self.geometry, self.z, self.offset = shape, c, geometry, z, offset

    def mask(
        self, a0: float, d0: float, z0: float, radii: tuple[float, float, float]
    ) -> tuple[tuple[slice, ...], BoolArray]:
        """Return (box index, bool mask within the box) of ((a-a0)/ra)^2 + ((d-d0)/rd)^2 + ((z-z0)/rz)^2 <= 1."""
        xa, ya, xp, yp = (float(v[0]) for v in self.shape.ends(np.array([z0])))
        length = np.hypot(xp - xa, yp - ya)
        t = np.array([xp - xa, yp - ya]) / length
        n = np.array([t[1], -t[0]]) * (1 if t[1] * SIGNS[self.shape.joint] > 0 else -1)
        bow = self.shape.bow_mm * np.sin(np.pi * np.clip(a0 / length, 0, 1))
        centre = np.array([xa, ya]) + a0 * t + (d0 + bow) * n
        reach = max(radii) + 1.5
        off = np.asarray(self.offset)
        lo, k0 = self.geometry.patient_to_px(
            np.array([centre[0] - reach, centre[1] - reach, z0 - reach]) + off
        )
        hi, k1 = self.geometry.patient_to_px(
            np.array([centre[0] + reach, centre[1] + reach, z0 + reach]) + off
        )
        g = self.geometry
        box = (
            slice(max(int(k0), 0), min(int(k1) + 2, g.n_slices)),
            slice(max(int(lo[1]), 0), min(int(hi[1]) + 2, g.rows)),
            slice(max(int(lo[0]), 0), min(int(hi[0]) + 2, g.cols)),
        )
        a, d = self.c.a[box], self.c.d[box]
        zz = self.z[box[0]]
        inside = ((a - a0) / radii[0]) ** 2 + ((d - d0) / radii[1]) ** 2 + ((zz - z0) / radii[2]) ** 2 <= 1
        return box, inside


def _grids(
    geometry: SliceGeometry, centre: tuple[float, float, float]
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Voxel-centre coordinates relative to ``centre``: x (1,1,W), y (1,H,1), z (S,1,1), float32 mm."""
    origin = np.asarray(geometry.origin) - np.asarray(centre)
    x = (origin[0] + np.arange(geometry.cols) * geometry.pixel_mm).astype(np.float32)[None, None, :]
    y = (origin[1] + np.arange(geometry.rows) * geometry.pixel_mm).astype(np.float32)[None, :, None]
    z = (origin[2] + np.arange(geometry.n_slices) * geometry.spacing_mm).astype(np.float32)[:, None, None]
    return x, y, z


def _random_site(rng: Generator, shape: CtJointShape, c: CtJointCoords) -> tuple[float, float]:
    """Random (a, z) on the articulating surface, away from its rim."""
    zr = float(rng.uniform(-0.6, 0.6)) * shape.half_height_mm + shape.z_centre_mm
    length = float(np.hypot(shape.posterior[0] - shape.anterior[0], shape.posterior[1] - shape.anterior[1]))
    return float(rng.uniform(0.25, 0.75)) * length, zr


def _apply_recipe(
    rng: Generator,
    grade: int,
    shape: CtJointShape,
    blobs: _Blobs,
    hu: FloatArray,
    labels: np.ndarray,
    p: CtParams,
) -> dict[str, Any]:
    """Draw the grade-specific changes of one joint into ``hu`` and ``labels`` (S, H, W), in place.

    The joint's latent severity (``p.severity``; the grade itself for ``easy``) scales the drawn changes, so
    that a mild grade 2 looks like a severe grade 1 and a mild grade 3 like a severe grade 2.
    """
    c, half_w, side_label = blobs.c, shape.width_mm / 2, LABELS[shape.joint]
    f = max(p.severity.get(shape.joint, grade) / grade, 0.3) if grade else 1.0
    features: dict[str, Any] = {
        "width_mm": round(shape.width_mm, 3),
        "erosions": 0,
        "sclerosis": "none",
        "bridges": 0,
        "ankylosis": grade == 4,
    }
    if grade == 4:
        fused = c.zone & (np.abs(c.d) < half_w + p.cortex_mm)
        hu[fused] = p.hu["cancellous"]
        labels[fused & (labels == 0)] = side_label
        return features
    if grade >= 2:
        # Grade 2 always gets 1-2 sclerotic foci plus 1-3 small erosions (the "and" of "and/or"), so that
        # it differs from grade 1 by focal lesions rather than by margin texture alone.
        n_scl = int(rng.integers(1, 3)) if grade == 2 else 2
        features["sclerosis"] = "focal" if grade == 2 else "band"
        for i in range(n_scl):
            a0, z0 = _random_site(rng, shape, c)
            depth = f * (rng.uniform(3.5, 5.0) if grade == 2 else rng.uniform(6.0, 10.0))
            extent = rng.uniform(5.0, 8.0) if grade == 2 else 0.35 * float(c.length.mean())
            sign = 1.0 if i == 0 else -1.0
            box, m = blobs.mask(
                a0,
                sign * (half_w + depth / 2),
                z0 if grade == 2 else shape.z_centre_mm,
                (extent, depth / 2 + 0.5, extent if grade == 2 else shape.half_height_mm * 0.7),
            )
            m &= labels[box] > 0
            hu[box][m] = rng.uniform(750, 1000)
        n_ero = int(rng.integers(1, 4)) if grade == 2 else int(rng.integers(4, 9))
        features["erosions"] = n_ero
        for _ in range(n_ero):
            a0, z0 = _random_site(rng, shape, c)
            r = min(f, 1.3) * (rng.uniform(1.3, 1.5) if grade == 2 else rng.uniform(1.7, 2.5))
            sign = 1.0 if rng.random() < 0.8 else -1.0
            box, m = blobs.mask(a0, sign * (half_w + r * 0.6), z0, (r, r, r))
            backfill = grade == 3 and rng.random() < 0.3  # fat-containing repair tissue in the cavity
            features["backfilled"] = features.get("backfilled", 0) + int(backfill)
            hu[box][m] = p.hu["backfill"] if backfill else p.hu["joint"]
            labels[box][m] = 0
    if grade == 1 and f >= 1.5:  # a severe grade 1: one tiny erosion, as readers see in early disease
        a0, z0 = _random_site(rng, shape, c)
        r = float(rng.uniform(0.8, 1.1))
        box, m = blobs.mask(a0, half_w + r * 0.6, z0, (r, r, r))
        hu[box][m], labels[box][m] = p.hu["joint"], 0
        features["erosions"] = 1
    if grade == 3 and rng.random() < 0.4:
        features["bridges"] = int(rng.integers(1, 4))
        for _ in range(features["bridges"]):
            a0, z0 = _random_site(rng, shape, c)
            box, m = blobs.mask(a0, 0.0, z0, (rng.uniform(2, 4), half_w + p.cortex_mm, rng.uniform(2, 4)))
            hu[box][m] = p.hu["cancellous"]
            labels[box][m] = side_label
    return features


def _paint_variants(
    rng: Generator,
    variants: dict[str, bool],
    shape: CtJointShape,
    blobs: _Blobs,
    hu: FloatArray,
    labels: np.ndarray,
    p: CtParams,
) -> dict[str, bool]:
    """Normal variants that are not sacroiliitis: non-uniform iliac subchondral sclerosis of normal width
    (SPEC §6.1, 83% of asymptomatic people), an accessory joint posteriorly, an anterior osteophyte."""
    c, half_w, side_label = blobs.c, shape.width_mm / 2, LABELS[shape.joint]
    length = float(c.length.mean())
    if variants.get("normal_variant_sclerosis"):
        depth = float(np.clip(rng.normal(2.5, 1.6), 1.0, 4.5))
        a0, z0 = _random_site(rng, shape, c)
        box, m = blobs.mask(
            a0, half_w + depth / 2, z0, (0.3 * length, depth / 2 + 0.3, shape.half_height_mm * 0.5)
        )
        m &= labels[box] > 0
        hu[box][m] = rng.uniform(450, 700)
    if variants.get("accessory_joint"):
        z0 = shape.z_centre_mm + float(rng.uniform(-0.3, 0.3)) * shape.half_height_mm
        box, m = blobs.mask(0.97 * length, half_w + 4.0, z0, (3.0, 0.9, 5.0))
        hu[box][m], labels[box][m] = p.hu["joint"], 0
    if variants.get("osteophyte"):
        z0 = shape.z_centre_mm + float(rng.uniform(-0.5, 0.5)) * shape.half_height_mm
        box, m = blobs.mask(0.0, half_w + 1.0, z0, (3.0, 2.0, 4.0))
        m &= labels[box] == 0
        hu[box][m], labels[box][m] = p.hu["cortical"], side_label
    return {k: bool(v) for k, v in variants.items() if v}


def render_ct(
    params: CtParams, geometry: SliceGeometry, rng: Generator
) -> tuple[FloatArray, np.ndarray, dict[str, Any]]:
    """Render the clean HU volume (S, H, W) float32, the SEG label map (S, H, W) uint8 and per-joint features."""
    x, y, z = _grids(geometry, params.centre_mm)
    coords = {j: joint_coords(params.joints[j], x, y, z) for j in JOINTS}
    shape = (geometry.n_slices, geometry.rows, geometry.cols)
    hu = np.full(shape, params.hu["soft"], np.float32)
    back = max(params.joints[j].posterior[1] for j in JOINTS) + 10.0
    hu[np.broadcast_to(y > back + 28.0, shape)] = params.hu["fat"]
    labels = np.zeros(shape, np.uint8)
    for j in JOINTS:
        s, c = params.joints[j], coords[j]
        grade = params.grades[j]
        amp = {0: 0.0, 1: 0.8, 2: 0.5, 3: 0.6, 4: 0.0}[grade] * (
            params.severity.get(j, grade) / grade if grade else 1
        )
        if amp:
            where = np.nonzero(c.zone)
            c.d = c.d.copy()
            c.d[where] -= _surface_noise(rng, c.a[where], np.broadcast_to(z, c.zone.shape)[where], amp)
        bone, margin = ilium_mask(s, c)
        hu[bone] = np.where(margin[bone] < params.cortex_mm, params.hu["cortical"], params.hu["cancellous"])
        labels[bone] = LABELS[j]
    sacrum, margin = sacrum_mask(params.joints, coords, x, y)
    hu[sacrum] = np.where(margin[sacrum] < params.cortex_mm, params.hu["cortical"], params.hu["cancellous"])
    labels[sacrum] = LABELS["sacrum"]
    hu[(labels == 0) & (np.abs(x) < 11.0) & (np.abs(y - back + 13.0) < 6.0)] = params.hu["csf"]
    features = {}
    for j in JOINTS:
        s, c, grade = params.joints[j], coords[j], params.grades[j]
        space = c.zone & (labels == 0) & (np.abs(c.d) < s.width_mm / 2 + 1.0)
        hu[space] = params.hu["joint"]
        if grade == 1:  # indistinct subchondral plate: the only change at grade 1
            plate = c.zone & (labels > 0) & (np.abs(c.d) < s.width_mm / 2 + params.cortex_mm + 0.5)
            hu[plate] = hu[plate] * rng.uniform(0.5, 0.65) + params.hu["cancellous"] * 0.3
        blobs = _Blobs(s, c, geometry, z, params.centre_mm)
        features[j] = _apply_recipe(rng, grade, s, blobs, hu, labels, params) | {"grade": grade}
        variants = _paint_variants(rng, params.variants.get(j, {}), s, blobs, hu, labels, params)
        if variants:
            features[j]["variants"] = variants
    return hu, labels, features


def make_ct_phantom(
    rng: Generator, grades: dict[str, int] | None = None, difficulty: Difficulty = EASY
) -> CtPhantom:
    """Sample and render one CT phantom (optionally with fixed grades): Gaussian PSF (~1 mm FWHM for ``easy``,
    the kernel of the difficulty otherwise), Gaussian noise."""
    params = sample_ct_params(rng, grades, difficulty)
    geometry = ct_geometry(params)
    clean, labels, features = render_ct(params, geometry, rng)
    sigma_mm = params.psf_fwhm_mm / 2.3548
    px = params.pixel_mm
    blurred = gaussian_filter(clean, (sigma_mm / params.slice_mm, sigma_mm / px, sigma_mm / px))
    noisy = blurred + np.float32(params.noise_sigma_hu) * rng.standard_normal(clean.shape, dtype=np.float32)
    return CtPhantom(
        params=params, geometry=geometry, hu=noisy, hu_clean=clean, labels=labels, features=features
    )
