"""Joint crops and targets for the contour model, decoupled from any file format.

Arrays in, samples out: :func:`samples_from_arrays` takes one scan's slices, its polylines in slice pixel
coordinates (x = column, y = row) and the pixel spacing, crops a fixed-mm square around each joint,
resamples it to a fixed mm/pixel, and (for the patient's right joint, by default) mirrors it so every
crop looks like a left joint. :class:`ContourDataset` turns samples into tensors and targets.
A phantom ground-truth adapter only has to produce these arrays.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray
from scipy import ndimage
from torch.utils.data import Dataset

from ml.contours.field import field_targets
from ml.contours.model import ContourModelConfig

F64 = NDArray[np.float64]
F32 = NDArray[np.float32]


@dataclass(frozen=True)
class CropGeometry:
    """Affine map from crop pixels to slice pixels: ``slice_xy = origin + crop_xy @ matrix.T``."""

    matrix: F64  # (2, 2)
    origin: F64  # (2,)

    def to_slice(self, crop_xy: ArrayLike) -> F64:
        """Crop pixel points (N, 2) -> slice pixel points (N, 2)."""
        return self.origin + np.asarray(crop_xy, dtype=np.float64).reshape(-1, 2) @ self.matrix.T

    def to_crop(self, slice_xy: ArrayLike) -> F64:
        """Slice pixel points (N, 2) -> crop pixel points (N, 2)."""
        q = np.asarray(slice_xy, dtype=np.float64).reshape(-1, 2) - self.origin
        out: F64 = q @ np.linalg.inv(self.matrix).T
        return out


def crop_geometry(
    centre_xy: ArrayLike, pixel_spacing: ArrayLike, config: ContourModelConfig, *, mirror: bool
) -> CropGeometry:
    """Geometry of a ``config.crop_px`` square centred on ``centre_xy`` (slice px), ``config.pixel_mm``
    per crop pixel; ``pixel_spacing`` (row, column) mm; ``mirror`` flips the crop's x axis."""
    dr, dc = np.asarray(pixel_spacing, dtype=np.float64).reshape(2)
    n = config.crop_px
    sx = (-1.0 if mirror else 1.0) * config.pixel_mm / dc
    sy = config.pixel_mm / dr
    matrix = np.diag([sx, sy])
    centre = np.asarray(centre_xy, dtype=np.float64).reshape(2)
    return CropGeometry(matrix, centre - matrix @ np.full(2, (n - 1) / 2.0))


def crop_image(image: ArrayLike, geometry: CropGeometry, size_px: int) -> F32:
    """Resample a (C, H, W) slice into a (C, size, size) crop (bilinear, edge values outside)."""
    img = np.asarray(image, dtype=np.float32)
    v, u = np.mgrid[0:size_px, 0:size_px]
    pts = geometry.to_slice(np.stack([u.ravel(), v.ravel()], axis=1))
    coords = np.stack([pts[:, 1], pts[:, 0]])  # (row, col) for map_coordinates
    out = [
        ndimage.map_coordinates(ch, coords, order=1, mode="nearest").reshape(size_px, size_px) for ch in img
    ]
    return np.stack(out).astype(np.float32)


def normalise_scan(images: ArrayLike) -> F32:
    """Scale each channel of a scan (S, C, H, W) to its 1st..99th percentile range -> roughly [0, 1]."""
    x = np.asarray(images, dtype=np.float32)
    lo, hi = np.percentile(x, [1, 99], axis=(0, 2, 3), keepdims=True)  # one partition for both
    out: F32 = ((x - lo) / np.maximum(hi - lo, 1e-6)).astype(np.float32)
    return out


def mirror_side(side: str, row_dir_x: float = 1.0) -> bool:
    """True for the joint whose crop is mirrored: the patient's right when image columns run to +x."""
    return (side == "right") == (row_dir_x >= 0)


@dataclass(frozen=True)
class JointSample:
    """One joint on one slice: crop (C, n, n), polyline (M, 2) in crop px (None at inference)."""

    image: F32
    polyline: F64 | None
    geometry: CropGeometry
    side: str
    slice_index: int
    scan_id: str = ""


def samples_from_arrays(
    images: ArrayLike,
    polylines: Mapping[tuple[int, str], ArrayLike],
    pixel_spacing: ArrayLike,
    config: ContourModelConfig,
    *,
    centres: Mapping[tuple[int, str], ArrayLike] | None = None,
    row_dir_x: float = 1.0,
    jitter_mm: float = 0.0,
    rng: np.random.Generator | None = None,
    scan_id: str = "",
    normalise: bool = True,
) -> list[JointSample]:
    """Crop every (slice, side) of a scan into a :class:`JointSample`.

    ``images`` (S, C, H, W) (or (S, H, W) for one channel); ``polylines`` maps (slice index, "left" |
    "right") to an ordered (M, 2) polyline, start (superior) first, in slice px; ``pixel_spacing`` is
    (row, column) mm. Crops centre on ``centres[key]`` when given, else on the polyline's bounding-box
    centre, shifted by a uniform random ``jitter_mm`` (training augmentation). ``row_dir_x`` is the
    patient-x component of the row direction cosine (decides which side is mirrored). Keys of
    ``centres`` without a polyline give inference samples (``polyline`` None). The first
    ``config.in_channels`` channels are used; ValueError when there are fewer.
    """
    vol = np.asarray(images, dtype=np.float32)
    vol = vol[:, None] if vol.ndim == 3 else vol
    if vol.ndim != 4 or vol.shape[1] < config.in_channels:
        raise ValueError(f"images must be (S, C >= {config.in_channels}, H, W), got {vol.shape}")
    if normalise:
        vol = normalise_scan(vol)
    rng = rng or np.random.default_rng(0)
    keys = sorted(set(polylines) | set(centres or {}))
    samples = []
    for key in keys:
        slice_index, side = key
        line = np.asarray(polylines[key], dtype=np.float64) if key in polylines else None
        if centres is not None and key in centres:
            centre = np.asarray(centres[key], dtype=np.float64)
        elif line is not None:
            centre = (line.min(0) + line.max(0)) / 2.0
        else:
            continue
        if jitter_mm:
            dr, dc = np.asarray(pixel_spacing, dtype=np.float64).reshape(2)
            centre = centre + rng.uniform(-jitter_mm, jitter_mm, 2) / np.array([dc, dr])
        geom = crop_geometry(centre, pixel_spacing, config, mirror=mirror_side(side, row_dir_x))
        crop = crop_image(vol[slice_index, : config.in_channels], geom, config.crop_px)
        crop_line = geom.to_crop(line) if line is not None else None
        samples.append(JointSample(crop, crop_line, geom, side, slice_index, scan_id))
    return samples


class ContourDataset(Dataset[dict[str, torch.Tensor]]):
    """Samples with polylines -> dicts of ``input`` (C, n, n), ``field`` (2, n, n), ``heatmap`` (2, n, n)
    and ``weight`` (n, n). Targets are built once and cached. ``augment`` applies a random intensity
    gain/offset (drawn from torch's global RNG, so seeded runs repeat exactly)."""

    def __init__(
        self,
        samples: Sequence[JointSample],
        config: ContourModelConfig,
        *,
        augment: bool = False,
        near_weight: float = 4.0,
    ) -> None:
        self.samples = [s for s in samples if s.polyline is not None and len(s.polyline) >= 2]
        self.config, self.augment, self.near_weight = config, augment, near_weight
        self._cache: dict[int, dict[str, torch.Tensor]] = {}

    def __len__(self) -> int:
        return len(self.samples)

    def targets(self, index: int) -> dict[str, torch.Tensor]:
        """Field, heatmap and weight tensors of one sample (cached)."""
        if index not in self._cache:
            s, n = self.samples[index], self.config.crop_px
            assert s.polyline is not None
            t = field_targets(
                s.polyline,
                (n, n),
                band_px=self.config.band_px,
                sigma_px=self.config.sigma_px,
                band_pull=self.config.band_pull,
            )
            weight = t.mask * (1.0 + self.near_weight * (t.distance <= 2 * self.config.band_px))
            self._cache[index] = {
                "field": torch.from_numpy(t.field),
                "heatmap": torch.from_numpy(t.heatmaps),
                "weight": torch.from_numpy(weight.astype(np.float32)),
            }
        return self._cache[index]

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        image = torch.from_numpy(self.samples[index].image)
        if self.augment:
            gain = 0.8 + 0.4 * torch.rand(())
            image = image * gain + 0.1 * (torch.rand(()) - 0.5)
        return {"input": image, **self.targets(index)}
