"""A scan's arrays in memory and the interim on-disk format: one ``<scan_id>.npz`` per scan.

npz keys: ``images`` (S, C, H, W) float32; ``pixel_spacing`` (2,) (row, column) mm;
``image_position`` (S, 3) ImagePositionPatient per slice; ``image_orientation`` (6,)
ImageOrientationPatient; optional ``polyline_<side>_<slice:03d>`` (M, 2) truth polylines in slice
pixels (x = column, y = row), start (superior) first. The phantom adapter will produce
:class:`ScanArrays` directly from DICOM + ground-truth JSON.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

F64 = NDArray[np.float64]
_POLY = re.compile(r"^polyline_(left|right)_(\d+)$")


@dataclass(frozen=True)
class ScanArrays:
    """One scan: images (S, C, H, W), geometry, and truth polylines keyed by (slice, side) (may be empty)."""

    scan_id: str
    images: NDArray[np.float32]
    pixel_spacing: F64
    image_position: F64
    image_orientation: F64
    polylines: dict[tuple[int, str], F64] = field(default_factory=dict)

    @property
    def row_dir_x(self) -> float:
        """Patient-x component of the row direction cosine (sign decides which joint is mirrored)."""
        return float(self.image_orientation[0])


def save_npz_scan(path: str | os.PathLike[str], scan: ScanArrays) -> Path:
    """Write a scan as compressed npz; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, NDArray[np.generic]] = {
        "images": np.asarray(scan.images, dtype=np.float32),
        "pixel_spacing": np.asarray(scan.pixel_spacing, dtype=np.float64),
        "image_position": np.asarray(scan.image_position, dtype=np.float64),
        "image_orientation": np.asarray(scan.image_orientation, dtype=np.float64),
    }
    for (slice_index, side), line in scan.polylines.items():
        arrays[f"polyline_{side}_{slice_index:03d}"] = np.asarray(line, dtype=np.float64)
    np.savez_compressed(path, **arrays)  # type: ignore[arg-type]
    return path


def load_npz_scan(path: str | os.PathLike[str]) -> ScanArrays:
    """Read a scan written by :func:`save_npz_scan`; the scan id is the file stem."""
    path = Path(path)
    with np.load(path) as data:
        polylines = {}
        for key in data.files:
            if m := _POLY.match(key):
                polylines[(int(m.group(2)), m.group(1))] = np.asarray(data[key], dtype=np.float64)
        images = np.asarray(data["images"], dtype=np.float32)
        return ScanArrays(
            scan_id=path.stem,
            images=images[:, None] if images.ndim == 3 else images,
            pixel_spacing=np.asarray(data["pixel_spacing"], dtype=np.float64),
            image_position=np.asarray(data["image_position"], dtype=np.float64).reshape(-1, 3),
            image_orientation=np.asarray(data["image_orientation"], dtype=np.float64),
            polylines=polylines,
        )


def load_folder(directory: str | os.PathLike[str]) -> list[ScanArrays]:
    """Load every ``*.npz`` scan in a folder, sorted by name; raises FileNotFoundError when there is none."""
    paths = sorted(Path(directory).glob("*.npz"))
    if not paths:
        raise FileNotFoundError(f"no .npz scans in {directory}")
    return [load_npz_scan(p) for p in paths]
