"""Slice-stack geometry in patient LPS coordinates and open-curve helpers.

Conventions used by the phantom generator and every pixel <-> patient mapping of ml:

* Patient coordinates are DICOM LPS in mm: +x toward the patient's left, +y posterior, +z superior.
* A slice stack is given by its row direction (along a row, i.e. increasing column index), its column
  direction (down a column, increasing row index), the first slice's ImagePositionPatient and the step along
  the slice normal ``row_dir x col_dir``. Slice ``k`` (0-based) has InstanceNumber ``k + 1``.
* In-plane pixel coordinates are ``(col, row)`` = ``(x_px, y_px)`` with pixel centres on integers; in-plane
  millimetres ``(u, v)`` are ``(col * pixel_mm, row * pixel_mm)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ml.data.series import Series

FloatArray = NDArray[np.floating[Any]]
F64 = NDArray[np.float64]
BoolArray = NDArray[np.bool_]


@dataclass(frozen=True)
class SliceGeometry:
    """Geometry of an evenly spaced stack of square-pixel slices.

    Attributes:
        rows, cols: matrix size.
        n_slices: number of slices.
        pixel_mm: in-plane spacing (square pixels).
        slice_thickness_mm: nominal thickness.
        spacing_mm: distance between slice centres along the normal.
        row_dir, col_dir: unit vectors (3,) of ImageOrientationPatient.
        origin: ImagePositionPatient (3,) of slice 0 (centre of its top-left pixel).
    """

    rows: int
    cols: int
    n_slices: int
    pixel_mm: float
    slice_thickness_mm: float
    spacing_mm: float
    row_dir: tuple[float, float, float]
    col_dir: tuple[float, float, float]
    origin: tuple[float, float, float]

    @property
    def normal(self) -> FloatArray:
        """Slice normal (3,) = row_dir x col_dir; slices are stepped along it."""
        return np.cross(np.asarray(self.row_dir), np.asarray(self.col_dir))

    @property
    def orientation(self) -> list[float]:
        """ImageOrientationPatient as 6 floats."""
        return [float(v) for v in (*self.row_dir, *self.col_dir)]

    def position(self, k: int) -> FloatArray:
        """ImagePositionPatient (3,) of slice ``k``."""
        out: FloatArray = np.asarray(self.origin) + k * self.spacing_mm * self.normal
        return out

    def px_to_patient(self, k: int | FloatArray, px: FloatArray) -> FloatArray:
        """Map in-plane pixel coordinates ``px`` (..., 2) as (col, row) on slice(s) ``k`` to LPS mm (..., 3)."""
        px = np.asarray(px, dtype=float)
        k_arr = np.asarray(k, dtype=float)[..., None]
        out: FloatArray = (
            np.asarray(self.origin)
            + k_arr * self.spacing_mm * self.normal
            + px[..., :1] * self.pixel_mm * np.asarray(self.row_dir)
            + px[..., 1:2] * self.pixel_mm * np.asarray(self.col_dir)
        )
        return out

    def patient_to_px(self, xyz: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Map LPS mm (..., 3) to ((..., 2) pixel (col, row), (...,) fractional slice index)."""
        rel = np.asarray(xyz, dtype=float) - np.asarray(self.origin)
        col = rel @ np.asarray(self.row_dir) / self.pixel_mm
        row = rel @ np.asarray(self.col_dir) / self.pixel_mm
        k = rel @ self.normal / self.spacing_mm
        return np.stack([col, row], axis=-1), k

    def to_dict(self) -> dict[str, object]:
        """JSON-ready description, including per-slice ImagePositionPatient."""
        return {
            "rows": self.rows,
            "cols": self.cols,
            "n_slices": self.n_slices,
            "pixel_mm": self.pixel_mm,
            "slice_thickness_mm": self.slice_thickness_mm,
            "spacing_mm": self.spacing_mm,
            "image_orientation_patient": self.orientation,
            "image_positions_patient": [self.position(k).round(4).tolist() for k in range(self.n_slices)],
        }

    @staticmethod
    def from_dict(data: dict[str, object]) -> SliceGeometry:
        """Inverse of :meth:`to_dict`."""
        iop = [float(v) for v in data["image_orientation_patient"]]  # type: ignore[attr-defined]
        ipps = data["image_positions_patient"]
        return SliceGeometry(
            rows=int(data["rows"]),  # type: ignore[call-overload]
            cols=int(data["cols"]),  # type: ignore[call-overload]
            n_slices=int(data["n_slices"]),  # type: ignore[call-overload]
            pixel_mm=float(data["pixel_mm"]),  # type: ignore[arg-type]
            slice_thickness_mm=float(data["slice_thickness_mm"]),  # type: ignore[arg-type]
            spacing_mm=float(data["spacing_mm"]),  # type: ignore[arg-type]
            row_dir=(iop[0], iop[1], iop[2]),
            col_dir=(iop[3], iop[4], iop[5]),
            origin=tuple(float(v) for v in ipps[0]),  # type: ignore[index,arg-type]
        )


def centred_geometry(
    *,
    rows: int,
    cols: int,
    n_slices: int,
    pixel_mm: float,
    slice_thickness_mm: float,
    spacing_mm: float,
    row_dir: FloatArray,
    col_dir: FloatArray,
    centre: FloatArray,
) -> SliceGeometry:
    """Build a stack whose centre voxel sits at ``centre`` (3,) LPS mm."""
    row_dir = np.asarray(row_dir, float) / np.linalg.norm(row_dir)
    col_dir = np.asarray(col_dir, float) / np.linalg.norm(col_dir)
    normal = np.cross(row_dir, col_dir)
    origin = (
        np.asarray(centre, float)
        - (cols - 1) / 2 * pixel_mm * row_dir
        - (rows - 1) / 2 * pixel_mm * col_dir
        - (n_slices - 1) / 2 * spacing_mm * normal
    )
    return SliceGeometry(
        rows=rows,
        cols=cols,
        n_slices=n_slices,
        pixel_mm=float(pixel_mm),
        slice_thickness_mm=float(slice_thickness_mm),
        spacing_mm=float(spacing_mm),
        row_dir=(float(row_dir[0]), float(row_dir[1]), float(row_dir[2])),
        col_dir=(float(col_dir[0]), float(col_dir[1]), float(col_dir[2])),
        origin=(float(origin[0]), float(origin[1]), float(origin[2])),
    )


def bezier(control: FloatArray, t: FloatArray) -> FloatArray:
    """Evaluate a cubic Bezier curve with control points (4, 2) at parameters t (n,) -> (n, 2)."""
    t = np.asarray(t, float)[:, None]
    c = np.asarray(control, float)
    out: FloatArray = (
        (1 - t) ** 3 * c[0] + 3 * (1 - t) ** 2 * t * c[1] + 3 * (1 - t) * t**2 * c[2] + t**3 * c[3]
    )
    return out


def arc_lengths(points: FloatArray) -> FloatArray:
    """Cumulative arc length (n,) of a polyline (n, d), starting at 0."""
    seg = np.linalg.norm(np.diff(points, axis=0), axis=1)
    return np.concatenate([[0.0], np.cumsum(seg)])


def resample_polyline(points: FloatArray, n: int) -> FloatArray:
    """Resample a polyline (m, d) to ``n`` points equally spaced in arc length (n, d)."""
    s = arc_lengths(points)
    target = np.linspace(0.0, s[-1], n)
    return np.stack([np.interp(target, s, points[:, i]) for i in range(points.shape[1])], axis=1)


def resample_by_spacing(points: FloatArray, spacing: float) -> FloatArray:
    """Resample a polyline (m, d) at about ``spacing`` arc-length steps, keeping both ends -> (n, d)."""
    length = float(arc_lengths(points)[-1])
    return resample_polyline(points, max(2, int(np.ceil(length / spacing)) + 1))


def unit_tangents(points: FloatArray) -> FloatArray:
    """Unit tangent (n, d) at each vertex of a polyline (n, d), oriented first -> last point."""
    tangent = np.gradient(points, axis=0)
    out: FloatArray = tangent / np.maximum(np.linalg.norm(tangent, axis=1, keepdims=True), 1e-12)
    return out


# --- pixel <-> patient mm of real series (DICOM attributes) ---------------------------------------------


def pixel_to_patient(
    points_xy: ArrayLike,
    image_position: ArrayLike,
    image_orientation: ArrayLike,
    pixel_spacing: ArrayLike,
) -> F64:
    """Map in-plane pixel points (N, 2) (x = column, y = row) to patient LPS mm (N, 3).

    DICOM: mm = IPP + col * dc * rowdir + row * dr * coldir, with ImageOrientationPatient =
    rowdir (3) + coldir (3) and PixelSpacing = (dr, dc) = (row spacing, column spacing).
    """
    p = np.asarray(points_xy, dtype=np.float64).reshape(-1, 2)
    ipp = np.asarray(image_position, dtype=np.float64).reshape(3)
    iop = np.asarray(image_orientation, dtype=np.float64).reshape(6)
    dr, dc = np.asarray(pixel_spacing, dtype=np.float64).reshape(2)
    return ipp + np.outer(p[:, 0] * dc, iop[:3]) + np.outer(p[:, 1] * dr, iop[3:])


def patient_to_pixel(
    points_mm: ArrayLike,
    image_position: ArrayLike,
    image_orientation: ArrayLike,
    pixel_spacing: ArrayLike,
) -> F64:
    """Inverse of :func:`pixel_to_patient` for points (N, 3) on (or projected onto) the slice plane."""
    q = np.asarray(points_mm, dtype=np.float64).reshape(-1, 3) - np.asarray(image_position, dtype=np.float64)
    iop = np.asarray(image_orientation, dtype=np.float64).reshape(6)
    dr, dc = np.asarray(pixel_spacing, dtype=np.float64).reshape(2)
    return np.stack([q @ iop[:3] / dc, q @ iop[3:] / dr], axis=1)


def voxel_to_patient(series: Series, kji: F64) -> F64:
    """Native voxel index (..., 3) as (slice k, row j, col i) -> patient LPS mm (..., 3)."""
    k, j, i = kji[..., 0:1], kji[..., 1:2], kji[..., 2:3]
    dr, dc = series.pixel_spacing
    return np.asarray(
        series.positions[0]
        + k * series.spacing_mm * series.normal
        + i * dc * series.orientation[:3]
        + j * dr * series.orientation[3:],
        dtype=np.float64,
    )


def patient_to_voxel(series: Series, xyz: F64) -> F64:
    """Patient LPS mm (..., 3) -> native voxel index (..., 3) (k, j, i), fractional."""
    rel = np.asarray(xyz, dtype=np.float64) - series.positions[0]
    dr, dc = series.pixel_spacing
    return np.stack(
        [
            rel @ series.normal / series.spacing_mm,
            rel @ series.orientation[3:] / dr,
            rel @ series.orientation[:3] / dc,
        ],
        axis=-1,
    )
