"""Semicoronal T1 + STIR phantom of both sacroiliac joints (SPEC §6.3).

:func:`make_mri_phantom` returns float images in arbitrary units (0..~1.2) plus per-slice truth; writing
DICOM and the sidecar is done by :mod:`ml.phantoms.studies`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.random import Generator
from scipy.ndimage import distance_transform_edt, gaussian_filter, zoom

from ml.data.geometry import FloatArray, SliceGeometry, centred_geometry, resample_polyline
from ml.data.truth import MriJointTruth, SliceJointTruth, joint_summary
from ml.phantoms.difficulty import EASY, Difficulty, draw
from ml.phantoms.mri_anatomy import JointFrame, JointShape, joint_curve, joint_frame, sample_joint_shape
from ml.phantoms.mri_lesions import LesionSpec, paint_lesions, plan_lesions
from ml.phantoms.schema import JOINTS, quadrant_rule

MATRIX = 320
CONTOUR_POINTS = 64
#: Fixed tissue values (arbitrary units), SPEC §6.3; marrow is sampled per scan.
T1 = {"cortex": 0.05, "joint": 0.25, "muscle": 0.30, "fat": 0.95}
STIR = {"cortex": 0.03, "joint": 0.15, "muscle": 0.20, "fat": 0.05}
NORMAL_BAND_FACTOR = 0.55  # the physiological iliac subchondral band, relative to marrow


@dataclass(frozen=True)
class MriParams:
    """Scan-level parameters sampled per phantom (SPEC §6.3 ``grid``, ``intensity``, ``noise``)."""

    n_slices: int
    slice_thickness_mm: float
    pixel_mm: float
    tilt_deg: float
    centre_mm: tuple[float, float, float]
    marrow_t1: float
    marrow_stir: float
    cortex_mm: float
    iliac_band_mm: float
    iliac_depth_mm: float
    snr_t1: float
    snr_stir: float
    bias_strength: float
    joints: dict[str, JointShape] = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready parameters (joint shapes summarised)."""
        out = {k: v for k, v in self.__dict__.items() if k != "joints"}
        out["joints"] = {
            j: {
                "offset_mm": s.offset_mm,
                "angle_deg": s.angle_deg,
                "bend_mm": s.bend_mm,
                "width_mm": s.width_mm,
                "length_mm": np.round(s.length_mm, 3).tolist(),
                "drift_mm": np.round(s.drift_mm, 3).tolist(),
            }
            for j, s in self.joints.items()
        }
        return out


@dataclass
class MriPhantom:
    """One generated MRI phantom.

    Attributes:
        t1, stir: (S, H, W) float32 noisy images; ``t1_clean``/``stir_clean`` before bias and noise.
        geometry: slice geometry shared by both series.
        slices: per (slice, joint) truth; joints: scan-level truth per joint; lesions: the sampled plan.
    """

    params: MriParams
    geometry: SliceGeometry
    t1: FloatArray
    stir: FloatArray
    t1_clean: FloatArray
    stir_clean: FloatArray
    slices: list[SliceJointTruth]
    joints: dict[str, MriJointTruth]
    lesions: list[LesionSpec]


def sample_mri_params(rng: Generator, d: Difficulty = EASY) -> MriParams:
    """Sample the scan-level parameters of one MRI phantom (noise from the difficulty ``d``)."""
    n_slices = int(rng.integers(12, 17))
    pixel_mm = float(rng.uniform(0.75, 0.94))
    mid = ((MATRIX - 1) / 2 * pixel_mm, (MATRIX - 1) / 2 * pixel_mm)
    return MriParams(
        n_slices=n_slices,
        slice_thickness_mm=float(rng.choice([3.0, 3.5, 4.0])),
        pixel_mm=pixel_mm,
        tilt_deg=float(rng.uniform(0.0, 20.0)),
        centre_mm=(float(rng.uniform(-5, 5)), float(rng.uniform(-10, 10)), float(rng.uniform(-10, 10))),
        marrow_t1=float(rng.uniform(0.55, 0.85)),
        marrow_stir=float(rng.uniform(0.10, 0.20)),
        cortex_mm=float(rng.uniform(0.8, 1.5)),
        iliac_band_mm=float(rng.uniform(1.0, 3.0)),
        iliac_depth_mm=float(rng.uniform(25.0, 35.0)),
        snr_t1=draw(rng, d.snr),
        snr_stir=draw(rng, d.snr),
        bias_strength=float(rng.uniform(0.05, 0.15)),
        joints={j: sample_joint_shape(rng, j, n_slices, mid) for j in JOINTS},
    )


def mri_geometry(params: MriParams) -> SliceGeometry:
    """Coronal stack ``[1,0,0, 0,0,-1]`` tilted about patient x by ``tilt_deg`` (semicoronal)."""
    tilt = np.deg2rad(params.tilt_deg)
    col_dir = np.array([0.0, np.sin(tilt), -np.cos(tilt)])
    return centred_geometry(
        rows=MATRIX,
        cols=MATRIX,
        n_slices=params.n_slices,
        pixel_mm=params.pixel_mm,
        slice_thickness_mm=params.slice_thickness_mm,
        spacing_mm=params.slice_thickness_mm,
        row_dir=np.array([1.0, 0.0, 0.0]),
        col_dir=col_dir,
        centre=np.asarray(params.centre_mm),
    )


def smooth_field(rng: Generator, shape: tuple[int, ...], coarse: tuple[int, ...]) -> FloatArray:
    """Smooth random field of ``shape`` scaled to [-1, 1], upsampled from a coarse uniform grid."""
    base = rng.uniform(-1.0, 1.0, coarse)
    out = zoom(base, [s / c for s, c in zip(shape, coarse, strict=True)], order=1 if len(shape) > 2 else 3)
    out = out[tuple(slice(0, s) for s in shape)]
    scaled: FloatArray = out / max(float(np.abs(out).max()), 1e-9)
    return scaled


def _paint_anatomy(frame: JointFrame, t1: FloatArray, stir: FloatArray, params: MriParams) -> None:
    """Joint space, subchondral cortex and normal iliac band of one joint into ROI views (h, w), in place."""
    depth, within = frame.surface_depth, frame.within & frame.bone
    band = (
        within
        & (frame.d > 0)
        & (depth >= params.cortex_mm)
        & (depth < params.cortex_mm + params.iliac_band_mm)
    )
    t1[band], stir[band] = params.marrow_t1 * NORMAL_BAND_FACTOR, params.marrow_stir * NORMAL_BAND_FACTOR
    cortex = within & (depth >= 0) & (depth < params.cortex_mm)
    t1[cortex], stir[cortex] = T1["cortex"], STIR["cortex"]
    space = within & (depth < 0)
    t1[space], stir[space] = T1["joint"], STIR["joint"]


def _r3(values: FloatArray) -> Any:
    """Round to 0.001 (mm or px) and convert to nested lists for JSON."""
    return np.round(values, 3).tolist()


def _slice_truth(
    curve: FloatArray, frame: JointFrame, k: int, geometry: SliceGeometry, labels: dict[str, Any]
) -> SliceJointTruth:
    """Resample the dense curve (n, 2) (u, v mm) to CONTOUR_POINTS and package it with its labels."""
    pts_px = resample_polyline(curve, CONTOUR_POINTS) / geometry.pixel_mm
    pts_mm = geometry.px_to_patient(k, pts_px)
    height = float(np.ptp(curve[:, 1]))
    return SliceJointTruth(
        slice_index=k,
        joint=frame.joint,
        points_mm=_r3(pts_mm),
        points_px=_r3(pts_px),
        start_mm=_r3(pts_mm[0]),
        end_mm=_r3(pts_mm[-1]),
        start_px=_r3(pts_px[0]),
        end_px=_r3(pts_px[-1]),
        length_mm=round(frame.length_mm, 3),
        height_mm=round(height, 3),
        width_mm=round(frame.width_mm, 3),
        quadrant_rule=quadrant_rule(height),
        **labels,
    )


def render_clean(
    params: MriParams, geometry: SliceGeometry, plan: list[LesionSpec], rng: Generator
) -> tuple[FloatArray, FloatArray, list[SliceJointTruth]]:
    """Render noise-free T1 and STIR (S, H, W) and the per-(slice, joint) truth."""
    shape = (params.n_slices, MATRIX, MATRIX)
    fat = smooth_field(rng, shape, (max(2, params.n_slices // 4), 9, 9)) > 0.45
    t1 = np.where(fat, T1["fat"], T1["muscle"]).astype(np.float64)
    stir = np.where(fat, STIR["fat"], STIR["muscle"]).astype(np.float64)
    u_mid = (MATRIX - 1) / 2 * params.pixel_mm
    records: list[SliceJointTruth] = []
    for k in range(params.n_slices):
        curves = {j: joint_curve(params.joints[j], k, u_mid) for j in JOINTS}
        frames = {
            j: joint_frame(
                curves[j],
                params.joints[j],
                params.pixel_mm,
                (MATRIX, MATRIX),
                u_mid,
                params.cortex_mm,
                params.iliac_depth_mm,
            )
            for j in JOINTS
        }
        bone = np.zeros((MATRIX, MATRIX), bool)
        for f in frames.values():
            bone[f.rows, f.cols] |= f.bone
        near_joint = np.zeros_like(bone)
        for f in frames.values():
            near_joint[f.rows, f.cols] |= f.bone & (np.abs(f.d) < 12.0) & f.within
        # Round off the block corners far from the joints; the joint neighbourhood keeps its exact shape.
        bone = (gaussian_filter(bone.astype(np.float32), 5.0 / params.pixel_mm) > 0.5) | near_joint
        outer = bone & (distance_transform_edt(bone) * params.pixel_mm <= params.cortex_mm)
        t1[k][bone], stir[k][bone] = params.marrow_t1, params.marrow_stir
        t1[k][outer], stir[k][outer] = T1["cortex"], STIR["cortex"]
        for j in JOINTS:
            f = frames[j]
            t1_roi, stir_roi = t1[k][f.rows, f.cols], stir[k][f.rows, f.cols]
            _paint_anatomy(f, t1_roi, stir_roi, params)
            labels = paint_lesions(f, k, plan, t1_roi, stir_roi, (params.marrow_t1, params.marrow_stir))
            records.append(_slice_truth(curves[j], f, k, geometry, labels))
    return t1, stir, records


def add_bias_and_rician(image: FloatArray, bias: FloatArray, snr: float, rng: Generator) -> FloatArray:
    """Multiply by a bias field (H, W) and add Rician noise, sigma = mean(image) / snr -> (S, H, W) float32."""
    signal = (image * bias).astype(np.float32)
    sigma = np.float32(float(image.mean()) / snr)
    real = signal + sigma * rng.standard_normal(image.shape, dtype=np.float32)
    imag = sigma * rng.standard_normal(image.shape, dtype=np.float32)
    noisy: FloatArray = np.sqrt(real**2 + imag**2)
    return noisy


def partial_volume(image: FloatArray, weight: float) -> FloatArray:
    """Mix ``weight`` of each neighbouring slice into a slice (S, H, W): a thick slice through a curved joint."""
    if weight <= 0 or image.shape[0] < 2:
        return image
    padded = np.concatenate([image[:1], image, image[-1:]])
    mixed: FloatArray = (1 - 2 * weight) * image + weight * (padded[:-2] + padded[2:])
    return mixed


def ghosting(image: FloatArray, amplitude: float) -> FloatArray:
    """Add motion ghosts: copies at ``amplitude`` shifted by a quarter and a half of the field of view along
    the phase-encoding (row) direction, as periodic breathing and bowel motion leave them."""
    if amplitude <= 0:
        return image
    rows = image.shape[1]
    ghosts = 0.6 * np.roll(image, rows // 4, axis=1) + 0.4 * np.roll(image, rows // 2, axis=1)
    out: FloatArray = image + amplitude * ghosts
    return out


def make_mri_phantom(rng: Generator, difficulty: Difficulty = EASY) -> MriPhantom:
    """Sample and render one MRI phantom from ``rng`` (deterministic for a seeded generator and difficulty)."""
    params = sample_mri_params(rng, difficulty)
    geometry = mri_geometry(params)
    plan = plan_lesions(rng, {j: params.joints[j].length_mm for j in JOINTS}, difficulty)
    t1, stir, records = render_clean(params, geometry, plan, rng)
    bias = 1.0 + params.bias_strength * smooth_field(rng, (MATRIX, MATRIX), (4, 4))
    pv, ghost = draw(rng, difficulty.partial_volume), draw(rng, difficulty.ghosting)
    degraded = [ghosting(partial_volume(image, pv), ghost) for image in (t1, stir)]
    return MriPhantom(
        params=params,
        geometry=geometry,
        t1=add_bias_and_rician(degraded[0], bias, params.snr_t1, rng),
        stir=add_bias_and_rician(degraded[1], bias, params.snr_stir, rng),
        t1_clean=t1.astype(np.float32),
        stir_clean=stir.astype(np.float32),
        slices=records,
        joints={j: joint_summary(j, records) for j in JOINTS},
        lesions=plan,
    )
