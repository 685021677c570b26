"""Per-joint MRI crops (SPEC §7.2): T1 + STIR as 2 channels over all slices, (C=2, S, H, W).

Two crop modes (``CropConfig.mode``):

* ``"joint"`` (default): the joint straightened along its line on every slice (a curved planar
  reformation). Row i samples the joint line at arc length L/2 + (i - (H-1)/2) * ``crop_mm`` / H from
  its superior end (L = that slice's joint length; rows beyond the ends are zero, as nothing is scored
  there, or with ``zero_outside`` off continue along the end tangents), column j at
  (j - (W-1)/2) * ``width_mm`` / W mm along the normal, toward the ilium (lateral) for increasing j.
  So on every slice the middle row is the upper/lower split (half the arc length, SPEC §6.3), the
  middle column the joint line, the left half sacral and the right half iliac: each quadrant is one
  fixed block of the crop, whatever the joint's length, slope or curvature, and small cortical defects
  keep close to native resolution (0.8 mm at the defaults). Slices without a joint line are zero.
* ``"box"``: a fixed-mm square (``crop_mm``) around the joint centre, resampled to ``size_px`` pixels
  (bilinear); the patient's right joint is mirrored so every crop looks like a left joint (iliac side
  toward the same crop edge), and rows are flipped when the image's column direction points superior,
  so row 0 is always the superior edge. Cards written before ``mode`` existed load as ``"box"``.

The slice axis is centre-cropped or zero-padded to ``n_slices``. Intensities are scaled per scan and
channel to the 1st..99th percentiles.

Joint lines (joint mode): the truth polylines of phantoms, else the readers' consensus contours where
they drew one and the contour model's traced lines elsewhere (``ml.contours.ContourPredictor``; confident
traces, short ones rebuilt from the neighbouring slices by ``ml.contours.repair``), else a straight
vertical line of ``FALLBACK_LENGTH_MM`` through the intensity locator's centre. Every line is smoothed
along its arc (``CropConfig.smooth_mm``) before straightening. Joint centres
(box mode): the truth polylines' box centres, else the median of the traced lines' box centres, else
the intensity locator ``ml.contours.locate.locate_joints`` (median over slices).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from ml.config import load_config
from ml.contours.data import mirror_side, normalise_scan
from ml.contours.files import ScanArrays
from ml.contours.infer import CONFIDENT, ContourPredictor
from ml.contours.locate import locate_joints
from ml.data.geometry import patient_to_pixel
from ml.data.series import Series, folder_fingerprint, load_series
from ml.data.truth import MriTruth, load_truth
from ml.vocab import JOINTS

F32 = NDArray[np.float32]
F64 = NDArray[np.float64]
SEQUENCES = ("T1", "STIR")
CROP_MODES = ("joint", "box")
#: Length of the straight stand-in joint line when neither truth nor a contour model is at hand.
FALLBACK_LENGTH_MM = 50.0
Polylines = dict[str, dict[int, F64]]  # joint -> slice index -> (K, 2) slice px (col, row)


@dataclass(frozen=True)
class CropConfig:
    """Crop geometry, stored in the model card so inference rebuilds identical crops.

    ``crop_mm``/``size_px``: extent and samples along the joint (joint mode) or of the square (box mode);
    ``width_mm``/``width_px``: extent and samples across the joint (joint mode only); ``zero_outside``:
    rows beyond the joint line's ends are zero (joint mode), so the crop shows where the joint ends;
    ``smooth_mm``: Gaussian sigma (mm of arc) the joint line is smoothed with before straightening, so a
    traced line's pixel wiggle, or a detour into an erosion, does not bend the crop (joint mode);
    ``short_trace_ratio``: traced lines shorter than this fraction of their expected length are repaired
    from the neighbouring slices' (:func:`ml.contours.repair.repair_short_traces`; 0 = off).
    """

    mode: str = "joint"
    crop_mm: float = 64.0
    size_px: int = 80
    n_slices: int = 16
    width_mm: float = 38.4
    width_px: int = 48
    zero_outside: bool = True
    smooth_mm: float = 3.0
    short_trace_ratio: float = 0.8

    def __post_init__(self) -> None:
        if self.mode not in CROP_MODES:
            raise ValueError(f"crop mode must be one of {CROP_MODES}, got {self.mode!r}")

    @property
    def shape(self) -> tuple[int, int]:
        """In-plane crop shape (rows, columns)."""
        return (self.size_px, self.width_px) if self.mode == "joint" else (self.size_px, self.size_px)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CropConfig:
        """Inverse of :meth:`to_dict`; ConfigError (a ValueError) naming a key it does not have."""
        if data and "mode" not in data:  # a card from before joint-mode crops
            data = {**data, "mode": "box"}
        return load_config(cls, data)

    def tag(self) -> str:
        """Short hash naming cache files built with this config."""
        return hashlib.sha1(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:10]


@dataclass(frozen=True)
class MriScan:
    """Both sequences of one study: ``images`` (S, 2, H, W) normalised, geometry from the T1 series."""

    images: F32
    series: Series


def load_mri_scan(folder: str | os.PathLike[str]) -> MriScan:
    """Read ``folder/T1`` and ``folder/STIR`` (same geometry, SPEC §6.6) and normalise each channel."""
    series = [load_series(Path(folder) / name) for name in SEQUENCES]
    if series[0].pixels.shape != series[1].pixels.shape:
        raise ValueError(f"T1 and STIR of {folder} differ in shape")
    images = normalise_scan(np.stack([s.pixels for s in series], axis=1))
    return MriScan(images, series[0])


def truth_centres(truth: MriTruth) -> dict[str, F64]:
    """Per joint, the mean over slices of the truth polylines' bounding-box centres, slice px (col, row)."""
    out = {}
    for joint in JOINTS:
        boxes = [
            (r.polyline_px().min(0) + r.polyline_px().max(0)) / 2 for r in truth.slices if r.joint == joint
        ]
        out[joint] = np.mean(boxes, axis=0)
    return out


def located_centres(scan: MriScan, predictor: ContourPredictor | None = None) -> dict[str, F64]:
    """Joint centres (col, row) without truth: the contour model if given, else the intensity locator."""
    s = scan.series
    per_side: dict[str, list[F64]] = {j: [] for j in JOINTS}
    if predictor is not None:
        arrays = ScanArrays("scan", scan.images, s.pixel_spacing, s.positions, s.orientation)
        for traced in predictor.predict_scan(arrays):
            per_side[traced.side].append((traced.points_px.min(0) + traced.points_px.max(0)) / 2)
    if not all(per_side.values()):
        for k in range(scan.images.shape[0]):
            for side, xy in locate_joints(scan.images[k, 0], s.pixel_spacing, s.orientation).items():
                per_side[side].append(np.asarray(xy, dtype=np.float64))
    return {j: np.median(np.stack(v), axis=0) for j, v in per_side.items()}


def crop_joint(scan: MriScan, centre_xy: F64, joint: str, config: CropConfig) -> F32:
    """Cut one joint's crop (2, n_slices, size_px, size_px) around ``centre_xy`` (slice px (col, row))."""
    s, n = scan.series, config.size_px
    dr, dc = s.pixel_spacing
    step = config.crop_mm / n
    sx = (-1.0 if mirror_side(joint, float(s.orientation[0])) else 1.0) * step / dc
    sy = (-1.0 if s.orientation[5] > 0 else 1.0) * step / dr  # row 0 = superior
    grid = np.arange(n, dtype=np.float64) - (n - 1) / 2
    rows = np.broadcast_to((centre_xy[1] + sy * grid)[:, None], (n, n))
    cols = np.broadcast_to((centre_xy[0] + sx * grid)[None, :], (n, n))
    coords = np.stack([rows.ravel(), cols.ravel()])
    vol = scan.images
    out = np.zeros((vol.shape[1], vol.shape[0], n, n), dtype=np.float32)
    for k in range(vol.shape[0]):
        for c in range(vol.shape[1]):
            out[c, k] = ndimage.map_coordinates(vol[k, c], coords, order=1, mode="constant").reshape(n, n)
    return fit_slices(out, config.n_slices)


def fit_slices(crop: F32, n_slices: int) -> F32:
    """Centre-crop or zero-pad axis 1 of a (C, S, H, W) crop to ``n_slices``."""
    s = crop.shape[1]
    if s >= n_slices:
        lo = (s - n_slices) // 2
        return np.ascontiguousarray(crop[:, lo : lo + n_slices])
    out = np.zeros((crop.shape[0], n_slices, *crop.shape[2:]), dtype=np.float32)
    lo = (n_slices - s) // 2
    out[:, lo : lo + s] = crop
    return out


def truth_polylines(truth: MriTruth) -> Polylines:
    """Per joint and slice, the truth polyline in slice px (col, row), superior end first."""
    out: Polylines = {j: {} for j in JOINTS}
    for r in truth.slices:
        if r.joint in out:
            out[r.joint][r.slice_index] = np.asarray(r.polyline_px(), dtype=np.float64)
    return out


def located_polylines(
    scan: MriScan, predictor: ContourPredictor | None = None, *, short_trace_ratio: float = 0.0
) -> Polylines:
    """Joint lines without truth: the contour model's confident traces (short ones repaired when
    ``short_trace_ratio`` > 0, :func:`ml.contours.repair.repair_short_traces`), else a straight vertical line of
    ``FALLBACK_LENGTH_MM`` through the located joint centre on every slice (slice px (col, row))."""
    s = scan.series
    out: Polylines = {j: {} for j in JOINTS}
    if predictor is not None:
        arrays = ScanArrays("scan", scan.images, s.pixel_spacing, s.positions, s.orientation)
        for traced in predictor.predict_scan(arrays, short_trace_ratio=short_trace_ratio):
            if traced.confidence >= CONFIDENT and len(traced.points_px) >= 2:
                out[traced.side][traced.slice_index] = np.asarray(traced.points_px, dtype=np.float64)
    if not all(out.values()):
        centres = located_centres(scan)
        half = FALLBACK_LENGTH_MM / 2 / float(s.pixel_spacing[0])
        for joint in (j for j in JOINTS if not out[j]):  # keep a joint's traces when it has any
            c = centres[joint]
            line = np.stack([np.full(11, c[0]), c[1] + np.linspace(-half, half, 11)], axis=1)
            out[joint] = {k: line for k in range(scan.images.shape[0])}
    return out


def known_polylines(series: Series, contours: Sequence[Mapping[str, Any]]) -> Polylines:
    """Joint lines drawn by people (a snapshot's consensus contours: ``joint``, ``slice_index``,
    ``points_mm`` in patient LPS mm) as slice px (col, row) on ``series``; lines off the series are skipped."""
    out: Polylines = {j: {} for j in JOINTS}
    for c in contours:
        k, points = int(c["slice_index"]), np.asarray(c["points_mm"], dtype=np.float64)
        if c["joint"] in out and 0 <= k < len(series.positions) and points.ndim == 2 and len(points) >= 2:
            out[c["joint"]][k] = patient_to_pixel(
                points[:, :3], series.positions[k], series.orientation, series.pixel_spacing
            )
    return out


def _superior_first(line_mm: F64, orientation: F64) -> F64:
    """The polyline (K, 2) (col mm, row mm) ordered superior end first (patient z = row * orientation[5])."""
    return line_mm[::-1] if (line_mm[-1, 1] - line_mm[0, 1]) * orientation[5] > 0 else line_mm


def _smooth(points: F64, sigma: float) -> F64:
    """Gaussian smoothing (sigma in samples) of a polyline's points, padded by point reflection through
    each end, so both ends stay where they are and a straight line stays exactly straight."""
    pad = min(len(points) - 1, int(np.ceil(4 * sigma)))
    if sigma <= 0 or pad < 1:
        return points
    head, tail = 2 * points[0] - points[pad:0:-1], 2 * points[-1] - points[-2 : -pad - 2 : -1]
    padded = np.concatenate([head, points, tail])
    return ndimage.gaussian_filter1d(padded, sigma, axis=0, mode="nearest")[pad : pad + len(points)]


def _arc_points(line_mm: F64, step_mm: float) -> tuple[F64, float]:
    """Points at ``step_mm`` arc spacing along a polyline (first and last kept) and its length."""
    seg = np.linalg.norm(np.diff(line_mm, axis=0), axis=1)
    line_mm = line_mm[np.concatenate([[True], seg > 1e-6])]
    arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(line_mm, axis=0), axis=1))])
    length = float(arc[-1])
    if len(line_mm) < 2 or length < 1e-3:
        return line_mm[:1], 0.0
    t = np.linspace(0.0, length, max(2, int(np.ceil(length / step_mm)) + 1))
    return np.stack([np.interp(t, arc, line_mm[:, k]) for k in range(2)], axis=1), length


def _resample(line_mm: F64, step_mm: float, smooth_mm: float = 0.0) -> tuple[F64, F64, float]:
    """Points at ``step_mm`` arc spacing along a polyline (smoothed with sigma ``smooth_mm`` first), their
    smoothed unit tangents, and the length."""
    points, length = _arc_points(line_mm, step_mm)
    if length == 0.0:
        return points, np.array([[0.0, 1.0]]), 0.0
    if smooth_mm > 0:
        points, length = _arc_points(_smooth(points, smooth_mm / step_mm), step_mm)
    tangent = np.gradient(points, axis=0)
    tangent = ndimage.gaussian_filter1d(tangent, sigma=max(1.0, 3.0 / step_mm), axis=0, mode="nearest")
    tangent /= np.maximum(np.linalg.norm(tangent, axis=1, keepdims=True), 1e-9)
    return points, tangent, length


def straighten_slice(
    image: F32, line_px: F64, pixel_spacing: F64, orientation: F64, lateral_col: float, config: CropConfig
) -> F32:
    """Sample one slice's channels (C, H, W) on the straightened grid of one joint line (joint mode).

    ``lateral_col`` is +1 when the joint's lateral (iliac) side lies toward increasing image columns.
    Returns (C, size_px, width_px).
    """
    dr, dc = float(pixel_spacing[0]), float(pixel_spacing[1])
    line = _superior_first(np.asarray(line_px, dtype=np.float64) * np.array([dc, dr]), orientation)
    points, tangent, length = _resample(line, 0.5, config.smooth_mm)
    n_along, n_across = config.shape
    along = length / 2 + (np.arange(n_along) - (n_along - 1) / 2) * (config.crop_mm / n_along)
    across = (np.arange(n_across) - (n_across - 1) / 2) * (config.width_mm / n_across)
    arc = np.linspace(0.0, length, len(points))
    idx = np.interp(np.clip(along, 0.0, length), arc, np.arange(len(points)))
    i0 = np.clip(np.floor(idx).astype(int), 0, len(points) - 1)
    i1 = np.minimum(i0 + 1, len(points) - 1)
    w = (idx - i0)[:, None]
    base = points[i0] * (1 - w) + points[i1] * w
    tan = tangent[i0] * (1 - w) + tangent[i1] * w
    tan /= np.maximum(np.linalg.norm(tan, axis=1, keepdims=True), 1e-9)
    outside = (along < 0.0) | (along > length)
    base = base + tan * (along - np.clip(along, 0.0, length))[:, None]  # continue past the ends
    normal = np.stack([tan[:, 1], -tan[:, 0]], axis=1)
    normal *= np.where(normal[:, :1] * lateral_col >= 0, 1.0, -1.0)
    xy = base[:, None, :] + across[None, :, None] * normal[:, None, :]  # (H, W, 2) mm (col, row)
    coords = np.stack([xy[..., 1].ravel() / dr, xy[..., 0].ravel() / dc])
    out = np.empty((image.shape[0], n_along, n_across), dtype=np.float32)
    for c in range(image.shape[0]):
        sampled = ndimage.map_coordinates(image[c], coords, order=1, mode="constant")
        out[c] = sampled.reshape(n_along, n_across)
    if config.zero_outside:
        out[:, outside] = 0.0
    return out


def straighten_joint(scan: MriScan, lines: dict[int, F64], joint: str, config: CropConfig) -> F32:
    """Joint-mode crop (2, n_slices, size_px, width_px) of one joint from its per-slice lines (slice px)."""
    s = scan.series
    lateral_col = -1.0 if mirror_side(joint, float(s.orientation[0])) else 1.0
    vol = scan.images
    out = np.zeros((vol.shape[1], vol.shape[0], *config.shape), dtype=np.float32)
    for k, line in lines.items():
        if 0 <= k < vol.shape[0] and len(line) >= 2:
            out[:, k] = straighten_slice(vol[k], line, s.pixel_spacing, s.orientation, lateral_col, config)
    return fit_slices(out, config.n_slices)


def study_crops(
    folder: str | os.PathLike[str],
    config: CropConfig,
    *,
    use_truth: bool = True,
    predictor: ContourPredictor | None = None,
    known: Sequence[Mapping[str, Any]] = (),
) -> tuple[F32, dict[str, F64]]:
    """Crops (2 joints [left, right], 2, S, H, W) of one study folder and the joint centres used.

    ``use_truth`` takes joint lines / centres from ``folder/truth.json`` when it exists (training crops).
    Otherwise (joint mode) each slice's line is a ``known`` consensus contour where people drew one
    (:func:`known_polylines`), else the ``predictor``'s trace (:func:`located_polylines`).
    """
    scan = load_mri_scan(folder)
    truth_path = Path(folder) / "truth.json"
    truth = load_truth(truth_path) if use_truth and truth_path.exists() else None
    assert truth is None or isinstance(truth, MriTruth)
    if config.mode == "joint":
        if truth is not None:
            lines = truth_polylines(truth)
        else:
            lines = located_polylines(scan, predictor, short_trace_ratio=config.short_trace_ratio)
            for joint, drawn in known_polylines(scan.series, known).items():
                lines[joint] = {**lines[joint], **drawn}
        crops = np.stack([straighten_joint(scan, lines[j], j, config) for j in JOINTS])
        centres = {
            j: np.median(np.stack([(v.min(0) + v.max(0)) / 2 for v in lines[j].values()]), axis=0)
            if lines[j]
            else np.full(2, np.nan)
            for j in JOINTS
        }
        return crops, centres
    centres = truth_centres(truth) if truth is not None else located_centres(scan, predictor)
    crops = np.stack([crop_joint(scan, centres[j], j, config) for j in JOINTS])
    return crops, centres


def cached_crops(
    folder: Path,
    study_id: str,
    config: CropConfig,
    cache_dir: str | os.PathLike[str],
    predictor: ContourPredictor | None = None,
    known: Sequence[Mapping[str, Any]] = (),
    use_truth: bool | None = None,
) -> F32:
    """Crops of a study (:func:`study_crops`), cached as ``<cache_dir>/<study_id>.<tag>.npz`` (key
    ``crops``); the tag names the folder's files (:func:`folder_fingerprint`), the crop config, whether
    truth lines were asked for, the ``predictor``'s weights and the ``known`` contours. ``use_truth``
    defaults to "neither a predictor nor known lines"."""
    use_truth = predictor is None and not known if use_truth is None else use_truth
    tag = f"{folder_fingerprint(folder)}.{config.tag()}" + (".truth" if use_truth else "")
    if predictor is not None:
        tag += f".traced-{predictor.identity}"
    if known:
        tag += "." + hashlib.sha1(json.dumps(list(known), sort_keys=True).encode()).hexdigest()[:10]
    path = Path(cache_dir) / f"{study_id}.{tag}.npz"
    if path.exists():
        with np.load(path) as data:
            return np.asarray(data["crops"], dtype=np.float32)
    crops, _ = study_crops(folder, config, use_truth=use_truth, predictor=predictor, known=known)
    crops = crops.astype(np.float16).astype(np.float32)  # what the cache returns next time
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, crops=crops.astype(np.float16))
    os.replace(tmp, path)
    return crops
