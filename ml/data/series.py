"""The one series loader: DICOM series and SEG objects into arrays with their geometry (pydicom only).

Shared by :mod:`ml.lesions` (MRI T1 + STIR), :mod:`ml.ctgrade` (CT + pelvis SEG) and the contour pipeline
(a snapshot's T1 files). Geometry comes from
ImagePositionPatient / ImageOrientationPatient (SPEC §6.6), never from assumed axes; slices are sorted
along the slice normal, so index 0 is the first position along ``row_dir x col_dir``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from numpy.typing import NDArray

F32 = NDArray[np.float32]
F64 = NDArray[np.float64]


def folder_fingerprint(folder: Path) -> str:
    """A short hash of a study folder's files (relative path, size, modification time): caches of what was
    computed from the folder key on it, so a folder rewritten with other studies (another phantom seed into
    the same ``--out``) is never answered from the old files' cache."""
    digest = hashlib.sha1()
    for path in sorted(p for p in Path(folder).rglob("*") if p.is_file()):
        stat = path.stat()
        digest.update(f"{path.relative_to(folder)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:10]


@dataclass(frozen=True)
class Series:
    """One image series: ``pixels`` (S, H, W) float32 (rescaled: HU for CT), geometry per slice.

    ``pixel_spacing`` (2,) is (row, column) mm; ``positions`` (S, 3) ImagePositionPatient in LPS mm;
    ``orientation`` (6,) the row and column direction cosines; ``spacing_mm`` the mean step along the
    normal; ``sop_instance_uids`` in slice order.
    """

    pixels: F32
    pixel_spacing: F64
    positions: F64
    orientation: F64
    spacing_mm: float
    series_instance_uid: str
    sop_instance_uids: tuple[str, ...]

    @property
    def normal(self) -> F64:
        """Slice normal (3,) = row_dir x col_dir."""
        return np.asarray(np.cross(self.orientation[:3], self.orientation[3:]), dtype=np.float64)


def load_series(folder: str | os.PathLike[str]) -> Series:
    """Read every ``*.dcm`` of one series folder, sorted along the slice normal; FileNotFoundError when it
    holds none.

    Pixel values are ``stored * RescaleSlope + RescaleIntercept`` when the rescale tags are present.
    """
    paths = sorted(Path(folder).glob("*.dcm"))
    if not paths:
        raise FileNotFoundError(f"no DICOM files in {folder}")
    return load_series_files(paths, sort=True)


def load_series_files(paths: Sequence[str | os.PathLike[str]], *, sort: bool = False) -> Series:
    """Read a series from its files, in the given order (a snapshot lists them in slice order, which its
    contours' ``slice_index`` refers to) or, with ``sort``, along the slice normal."""
    if not paths:
        raise FileNotFoundError("a series without files")
    datasets = [pydicom.dcmread(p) for p in paths]
    orientation = np.asarray([float(v) for v in datasets[0].ImageOrientationPatient], dtype=np.float64)
    normal = np.cross(orientation[:3], orientation[3:])
    positions = np.asarray([[float(v) for v in d.ImagePositionPatient] for d in datasets], dtype=np.float64)
    if sort:
        order = np.argsort(positions @ normal, kind="stable")
        datasets = [datasets[i] for i in order]
        positions = positions[order]
    pixels = np.empty((len(datasets), *datasets[0].pixel_array.shape), dtype=np.float32)
    # stored * slope + intercept in float32, in place: one volume, no per-slice copies, stack or astype
    for k, d in enumerate(datasets):
        pixels[k] = d.pixel_array
        slope, intercept = float(getattr(d, "RescaleSlope", 1.0)), float(getattr(d, "RescaleIntercept", 0.0))
        np.multiply(pixels[k], np.float32(slope), out=pixels[k])
        np.add(pixels[k], np.float32(intercept), out=pixels[k])
    steps = np.abs(np.diff(positions @ normal))
    return Series(
        pixels=pixels,
        pixel_spacing=np.asarray([float(v) for v in datasets[0].PixelSpacing], dtype=np.float64),
        positions=positions,
        orientation=orientation,
        spacing_mm=float(np.mean(steps))
        if steps.size
        else float(getattr(datasets[0], "SliceThickness", 1.0)),
        series_instance_uid=str(datasets[0].SeriesInstanceUID),
        sop_instance_uids=tuple(str(d.SOPInstanceUID) for d in datasets),
    )


def load_seg_labels(path: str | os.PathLike[str], series: Series) -> NDArray[np.uint8]:
    """Read a BINARY/FRACTIONAL DICOM SEG onto the grid of ``series`` as a label map (S, H, W) uint8.

    Each frame is placed on the source slice whose position along the normal is nearest to the frame's
    ImagePositionPatient; voxel value = ReferencedSegmentNumber (later segments win on overlap).
    """
    seg = pydicom.dcmread(path)
    frames = np.asarray(seg.pixel_array)
    frames = frames[None] if frames.ndim == 2 else frames
    out = np.zeros(series.pixels.shape, dtype=np.uint8)
    heights = series.positions @ series.normal
    for index, item in enumerate(seg.PerFrameFunctionalGroupsSequence):
        number = int(item.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
        ipp = np.asarray([float(v) for v in item.PlanePositionSequence[0].ImagePositionPatient])
        k = int(np.argmin(np.abs(heights - ipp @ series.normal)))
        out[k][frames[index] > 0] = number
    return out
