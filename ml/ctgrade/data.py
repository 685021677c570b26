"""CT volumes, pelvis labels, joint centres and per-joint grading crops (SPEC §7.3).

* Segmentation grid: the HU volume resampled (linear) to a fixed ``seg_shape`` (z, y, x); labels
  0 background, 1 sacrum, 2 ilium (either side). Side is decided afterwards from patient x relative to
  the sacrum (LPS: +x = patient left), so the network need not tell two mirror-image ilia apart.
* Joint centre: centroid of the ilium voxels of one side within ``touch_vox`` voxels of the sacrum.
* Grading crop: a box ``box_mm`` (z, y, x) around the centre, resampled isotropic at ``voxel_mm``
  (trilinear), the patient's right joint mirrored in x so lateral is always +x; HU clipped to the bone
  window ``window_hu`` and scaled to [0, 1].
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

from ml.config import load_config
from ml.data.geometry import patient_to_voxel, voxel_to_patient
from ml.data.series import Series, folder_fingerprint, load_seg_labels, load_series
from ml.vocab import JOINTS

F32 = NDArray[np.float32]
F64 = NDArray[np.float64]
U8 = NDArray[np.uint8]


@dataclass(frozen=True)
class CtCropConfig:
    """Grading-crop and segmentation-grid settings (card ``extra.crop_config``)."""

    box_mm: tuple[float, float, float] = (48.0, 60.0, 48.0)
    voxel_mm: float = 1.5
    window_hu: tuple[float, float] = (-200.0, 1300.0)
    seg_shape: tuple[int, int, int] = (32, 64, 64)
    touch_vox: int = 2

    def __post_init__(self) -> None:
        if min(self.crop_shape) < 32:
            # DenseNet-121 downsamples by 32 (stem stride 2, max-pool, three transitions)
            raise ValueError(f"crop {self.crop_shape} voxels: every side must be >= 32 for DenseNet-121")

    @property
    def crop_shape(self) -> tuple[int, int, int]:
        """Crop size in voxels (z, y, x)."""
        z, y, x = (round(b / self.voxel_mm) for b in self.box_mm)
        return z, y, x

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CtCropConfig:
        """Inverse of :meth:`to_dict`; ConfigError (a ValueError) naming a key it does not have."""
        return load_config(cls, data)

    def tag(self) -> str:
        """Short hash naming cache files built with this config."""
        return hashlib.sha1(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:10]


@dataclass(frozen=True)
class CtScan:
    """One CT study: HU series and, when the study has ``SEG/``, its label map on the series grid."""

    series: Series
    labels: U8 | None


def load_ct_scan(folder: str | os.PathLike[str], *, labels: bool = True) -> CtScan:
    """Read ``folder/CT`` (+ ``folder/SEG/*.dcm`` if present and ``labels``); SEG segments 2/3 (ilia) both
    become 2. ``labels`` False: the SEG is not read (``CtScan.labels`` None), as when a segmenter finds the
    joints."""
    series = load_series(Path(folder) / "CT")
    seg = sorted((Path(folder) / "SEG").glob("*.dcm")) if labels else []
    if not seg:
        return CtScan(series, None)
    raw = load_seg_labels(seg[0], series)
    return CtScan(series, np.where(raw >= 2, 2, raw).astype(np.uint8))


def window(hu: F32, window_hu: tuple[float, float]) -> F32:
    """Clip HU to the window and scale to [0, 1]."""
    lo, hi = window_hu
    return ((np.clip(hu, lo, hi) - lo) / (hi - lo)).astype(np.float32)


def to_seg_grid(volume: np.ndarray, shape: tuple[int, int, int], order: int = 1) -> np.ndarray:
    """Resample a (S, H, W) volume to ``shape`` (order 1 for images, 0 for labels)."""
    factors = [t / s for t, s in zip(shape, volume.shape, strict=True)]
    out = ndimage.zoom(volume, factors, order=order, mode="nearest", grid_mode=True)
    return np.asarray(out[: shape[0], : shape[1], : shape[2]])


def joint_centres(series: Series, seg_labels: np.ndarray, touch_vox: int = 2) -> dict[str, F64]:
    """Centre (patient mm) of each joint from labels on the seg grid (0 bg, 1 sacrum, 2 ilium).

    The centre is the centroid of the joint space: background voxels within ``touch_vox`` of both the
    sacrum and an ilium; a fused joint (no space) falls back to the ilium voxels touching the sacrum,
    then to the whole ilium of that side. Raises ValueError when the sacrum or an ilium is missing.
    """
    scale = np.asarray(series.pixels.shape, dtype=np.float64) / np.asarray(seg_labels.shape)
    sacrum, ilium = seg_labels == 1, seg_labels == 2
    if not sacrum.any():
        raise ValueError("no sacrum in the segmentation")
    near_sacrum = ndimage.binary_dilation(sacrum, iterations=touch_vox)
    near_ilium = ndimage.binary_dilation(ilium, iterations=touch_vox)
    candidates = [(seg_labels == 0) & near_sacrum & near_ilium, near_sacrum & ilium, ilium]
    mid_x = _to_mm(series, np.argwhere(sacrum).astype(np.float64).mean(0), scale)[0]
    out = {}
    for joint in JOINTS:
        for mask in candidates:
            points = np.argwhere(mask).astype(np.float64)
            mm = _to_mm(series, points, scale) if len(points) else np.zeros((0, 3))
            mine = mm[(mm[:, 0] > mid_x) == (joint == "left")]
            if len(mine) >= 4:
                out[joint] = mine.mean(0)
                break
        else:
            raise ValueError(f"no {joint} ilium in the segmentation")
    return out


def _to_mm(series: Series, seg_index: F64, scale: F64) -> F64:
    """Seg-grid voxel index (..., 3) -> patient mm (..., 3) (voxel centres, grid_mode zoom)."""
    return voxel_to_patient(series, (np.asarray(seg_index) + 0.5) * scale - 0.5)


def crop_joint(series: Series, centre_mm: F64, joint: str, config: CtCropConfig) -> F32:
    """Isotropic grading crop (1, z, y, x) of one joint, HU windowed to [0, 1], right joint mirrored."""
    nz, ny, nx = config.crop_shape
    v = config.voxel_mm
    gz, gy, gx = ((np.arange(n) - (n - 1) / 2) * v for n in (nz, ny, nx))
    sign = -1.0 if joint == "right" else 1.0  # lateral = +x in the crop for both joints
    z, y, x = np.meshgrid(gz, gy, sign * gx, indexing="ij")
    xyz = np.asarray(centre_mm)[None, None, None, :] + np.stack([x, y, z], axis=-1)
    kji = patient_to_voxel(series, xyz).reshape(-1, 3).T
    hu = ndimage.map_coordinates(series.pixels, kji, order=1, mode="nearest").reshape(nz, ny, nx)
    return window(hu.astype(np.float32), config.window_hu)[None]


def study_inputs(
    folder: str | os.PathLike[str], config: CtCropConfig
) -> tuple[F32, F32, U8 | None, dict[str, F64]]:
    """Seg-grid image (1, *seg_shape), grading crops (2, 1, z, y, x) [left, right] at centres from the
    study's SEG (the truth masks), the seg-grid labels (or None without SEG), and the centres used."""
    scan = load_ct_scan(folder)
    image = window(to_seg_grid(scan.series.pixels, config.seg_shape), config.window_hu)[None]
    if scan.labels is None:
        raise ValueError(f"{folder} has no SEG; use the segmentation model for centres")
    labels = to_seg_grid(scan.labels, config.seg_shape, order=0).astype(np.uint8)
    centres = joint_centres(scan.series, labels, config.touch_vox)
    crops = np.stack([crop_joint(scan.series, centres[j], j, config) for j in JOINTS])
    return image, crops, labels, centres


def cached_inputs(
    folder: Path, study_id: str, config: CtCropConfig, cache_dir: str | os.PathLike[str]
) -> dict[str, np.ndarray]:
    """:func:`study_inputs` through an npz cache ``<cache_dir>/<study_id>.<files>.<tag>.npz`` (image, crops,
    labels), keyed by the folder's files (:func:`folder_fingerprint`) and the crop config."""
    path = Path(cache_dir) / f"{study_id}.{folder_fingerprint(folder)}.{config.tag()}.npz"
    if not path.exists():
        image, crops, labels, _ = study_inputs(folder, config)
        assert labels is not None  # study_inputs raises without a SEG
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        np.savez_compressed(
            tmp, image=image.astype(np.float16), crops=crops.astype(np.float16), labels=labels
        )
        os.replace(tmp, path)
    with np.load(path) as data:
        return {
            "image": data["image"].astype(np.float32),
            "crops": data["crops"].astype(np.float32),
            "labels": data["labels"].astype(np.int64),
        }
