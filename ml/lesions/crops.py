"""Per-joint MRI crops (SPEC §7.2): T1 + STIR as 2 channels over all slices, (C=2, S, H, W).

A crop is a fixed-mm square (``crop_mm``) around the joint centre, resampled to ``size_px`` pixels
(bilinear), on every slice; the patient's right joint is mirrored so every crop looks like a left joint
(iliac side toward the same crop edge), and rows are flipped when the image's column direction points
superior, so row 0 is always the superior edge. The slice axis is centre-cropped or zero-padded to
``n_slices``. Intensities are scaled per scan and channel to the 1st..99th percentiles.

Joint centres: from the truth polylines for training crops (phantoms), else from the contour model
(``ml.contours.ContourPredictor``, median of the traced polylines' box centres) when a checkpoint is given,
else from the intensity locator ``ml.contours.locate.locate_joints`` (median over slices).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from ml.contours.data import mirror_side, normalise_scan
from ml.contours.files import ScanArrays
from ml.contours.infer import ContourPredictor
from ml.contours.locate import locate_joints
from ml.lesions.series import Series, load_series
from ml.phantoms.schema import JOINTS
from ml.phantoms.truth import MriTruth, load_truth

F32 = NDArray[np.float32]
F64 = NDArray[np.float64]
SEQUENCES = ("T1", "STIR")


@dataclass(frozen=True)
class CropConfig:
    """Crop geometry, stored in the model card so inference rebuilds identical crops."""

    crop_mm: float = 80.0
    size_px: int = 48
    n_slices: int = 16

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CropConfig:
        """Inverse of :meth:`to_dict`, ignoring unknown keys."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

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


def study_crops(
    folder: str | os.PathLike[str],
    config: CropConfig,
    *,
    use_truth: bool = True,
    predictor: ContourPredictor | None = None,
) -> tuple[F32, dict[str, F64]]:
    """Crops (2 joints [left, right], 2, S, n, n) of one study folder and the centres used.

    ``use_truth`` takes centres from ``folder/truth.json`` when it exists (training crops).
    """
    scan = load_mri_scan(folder)
    truth_path = Path(folder) / "truth.json"
    if use_truth and truth_path.exists():
        truth = load_truth(truth_path)
        assert isinstance(truth, MriTruth)
        centres = truth_centres(truth)
    else:
        centres = located_centres(scan, predictor)
    crops = np.stack([crop_joint(scan, centres[j], j, config) for j in JOINTS])
    return crops, centres


def cached_crops(folder: Path, study_id: str, config: CropConfig, cache_dir: str | os.PathLike[str]) -> F32:
    """Training crops of a study, cached as ``<cache_dir>/<study_id>.<config tag>.npz`` (key ``crops``)."""
    path = Path(cache_dir) / f"{study_id}.{config.tag()}.npz"
    if path.exists():
        with np.load(path) as data:
            return np.asarray(data["crops"], dtype=np.float32)
    crops, _ = study_crops(folder, config)
    crops = crops.astype(np.float16).astype(np.float32)  # what the cache returns next time
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, crops=crops.astype(np.float16))
    os.replace(tmp, path)
    return crops
