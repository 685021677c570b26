"""Adapter: phantom study folder (T1/ + STIR/ DICOM + truth.json) -> ``ml.contours`` ScanArrays.

``ml.contours`` trains on :class:`ml.contours.files.ScanArrays` (its docstring expects "the phantom adapter
will produce ScanArrays directly from DICOM + ground-truth JSON"); this is that adapter, kept here until
``ml.contours`` grows its own.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ml.contours.files import ScanArrays
from ml.data.truth import MriTruth, load_truth
from ml.lesions.crops import load_mri_scan


def phantom_scan(folder: str | os.PathLike[str]) -> ScanArrays:
    """Images (S, 2, H, W) [T1, STIR] normalised, geometry from DICOM, truth polylines (slice px (col, row))."""
    scan = load_mri_scan(folder)
    polylines = {}
    truth_path = Path(folder) / "truth.json"
    if truth_path.exists():
        truth = load_truth(truth_path)
        assert isinstance(truth, MriTruth)
        polylines = {(r.slice_index, r.joint): r.polyline_px() for r in truth.slices}
    s = scan.series
    return ScanArrays(
        Path(folder).name,
        scan.images,
        s.pixel_spacing,
        s.positions,
        s.orientation,
        {k: np.asarray(v, np.float64) for k, v in polylines.items()},
    )
