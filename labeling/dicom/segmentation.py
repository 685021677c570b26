"""DICOM SEG checks for import (no Django): what a SEG must hold on its own, and how it must fit the image
series it segments. Reasons are plain text naming the file; ``labeling.dicom.validate`` makes them problems.

Accepted: Segmentation Storage, BINARY or FRACTIONAL, at least one segment, every frame naming a defined
segment and placed by an ImagePositionPatient, one source series (ReferencedSeriesSequence) of the SEG's own
study with the same FrameOfReferenceUID, orientation and pixel grid, every frame lying on one of its slices.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset

SEGMENTATION_STORAGE = "1.2.840.10008.5.1.4.1.1.66.4"
SEG_MODALITY = "SEG"


@dataclass(frozen=True)
class SourceSeries:
    """An image series a SEG may refer to: one of the same import, or one registered before.

    ``positions``: ImagePositionPatient of each slice (mm); ``orientation``: ImageOrientationPatient (6).
    """

    study_uid: str
    series_uid: str
    frame_of_reference_uid: str
    rows: int | None
    columns: int | None
    orientation: tuple[float, ...]
    positions: tuple[tuple[float, float, float], ...]
    sop_uids: frozenset[str]


#: Look up a series registered before this import by SeriesInstanceUID (None when unknown).
KnownSeries = Callable[[str], SourceSeries | None]


@dataclass(frozen=True)
class Segmentation:
    """What import needs to know of one SEG file; ``frame_positions``: ImagePositionPatient per frame."""

    path: Path
    study_uid: str
    series_uid: str
    sop_uid: str
    description: str
    frame_of_reference_uid: str
    source_series_uid: str
    source_sop_uids: frozenset[str]
    rows: int
    columns: int
    orientation: np.ndarray  # (6,)
    frame_positions: np.ndarray  # (F, 3)


def is_segmentation(dataset: Dataset) -> bool:
    """Whether a dataset is a DICOM SEG (by Modality or SOP class)."""
    return str(dataset.get("Modality", "")) == SEG_MODALITY or (
        str(dataset.get("SOPClassUID", "")) == SEGMENTATION_STORAGE
    )


def read_segmentation(path: Path, dataset: Dataset, orientation: np.ndarray) -> Segmentation | str:
    """Return the facts of a SEG that stands on its own (segments, frames, one source series), or why not
    (a reason naming the file). ``orientation``: its checked ImageOrientationPatient (6,)."""
    name = path.name
    sop_class = str(dataset.get("SOPClassUID", ""))
    if sop_class != SEGMENTATION_STORAGE:
        return f"{name} is a SEG of SOP class {sop_class or 'none'}; only Segmentation Storage is supported"
    kind = str(dataset.get("SegmentationType", ""))
    if kind not in ("BINARY", "FRACTIONAL"):
        return f"{name} has SegmentationType {kind or 'none'!r}; only BINARY or FRACTIONAL can be imported"
    segments = {int(item.get("SegmentNumber", 0) or 0) for item in dataset.get("SegmentSequence", [])}
    if not segments:
        return f"{name} is a SEG without segments (SegmentSequence is empty)"
    frame_of_reference_uid = str(dataset.get("FrameOfReferenceUID", "")).strip()
    if not frame_of_reference_uid:
        return f"{name} is a SEG without a FrameOfReferenceUID"
    referenced = dataset.get("ReferencedSeriesSequence", [])
    source_uids = {str(item.get("SeriesInstanceUID", "")) for item in referenced} - {""}
    if not source_uids:
        return f"{name} is a SEG that names no source series (ReferencedSeriesSequence is missing)"
    if len(source_uids) > 1:
        return f"{name} refers to {len(source_uids)} series; only a SEG of one source series is supported"
    frames = _frame_positions(dataset, segments)
    if isinstance(frames, str):
        return f"{name}: {frames}"
    return Segmentation(
        path=path,
        study_uid=str(dataset.StudyInstanceUID),
        series_uid=str(dataset.SeriesInstanceUID),
        sop_uid=str(dataset.SOPInstanceUID),
        description=str(dataset.get("SeriesDescription", "")),
        frame_of_reference_uid=frame_of_reference_uid,
        source_series_uid=source_uids.pop(),
        source_sop_uids=frozenset(
            str(instance.get("ReferencedSOPInstanceUID", ""))
            for item in referenced
            for instance in item.get("ReferencedInstanceSequence", [])
        )
        - {""},
        rows=int(dataset.Rows),
        columns=int(dataset.Columns),
        orientation=orientation,
        frame_positions=frames,
    )


def _frame_positions(dataset: Dataset, segments: set[int]) -> np.ndarray | str:
    """Return each frame's ImagePositionPatient (F, 3), or why the frames cannot be placed or labelled."""
    n_frames = int(dataset.get("NumberOfFrames", 0) or 0)
    per_frame = dataset.get("PerFrameFunctionalGroupsSequence", [])
    if n_frames < 1:
        return "the SEG has no frames (no segment is present in its pixel data)"
    if len(per_frame) != n_frames:
        return f"the SEG has {n_frames} frames but {len(per_frame)} per-frame functional groups"
    shared = (dataset.get("SharedFunctionalGroupsSequence") or [Dataset()])[0]
    positions = []
    for number, group in enumerate(per_frame, start=1):
        identification = group.get("SegmentIdentificationSequence") or shared.get(
            "SegmentIdentificationSequence"
        )
        segment = int(identification[0].get("ReferencedSegmentNumber", 0) or 0) if identification else 0
        if segment not in segments:
            return (
                f"frame {number} refers to segment {segment}, which the SEG's SegmentSequence does not define"
            )
        plane = group.get("PlanePositionSequence") or shared.get("PlanePositionSequence")
        try:
            position = [float(v) for v in plane[0].ImagePositionPatient]
        except (AttributeError, IndexError, TypeError, ValueError):
            return f"frame {number} has no ImagePositionPatient"
        if len(position) != 3:
            return f"frame {number} has an ImagePositionPatient without 3 values"
        positions.append(position)
    return np.asarray(positions, dtype=np.float64)


def segmentation_mismatch(seg: Segmentation, source: SourceSeries | None, *, rejected: bool) -> str | None:
    """Return why a SEG does not fit its source series (the reason follows the file name), else None."""
    uid = seg.source_series_uid
    if source is None:
        if rejected:
            return f"refers to series {uid}, which was rejected (see the problems of its files)"
        return (
            f"refers to series {uid}, which is neither among the files imported with it nor imported before"
        )
    if source.study_uid != seg.study_uid:
        return f"refers to series {uid} of study {source.study_uid}, not of its own study {seg.study_uid}"
    if source.frame_of_reference_uid != seg.frame_of_reference_uid:
        return (
            f"has FrameOfReferenceUID {seg.frame_of_reference_uid}, but its source series {uid} has "
            f"{source.frame_of_reference_uid}: a SEG must share its source series' frame of reference"
        )
    if missing := sorted(seg.source_sop_uids - source.sop_uids):
        return f"refers to {len(missing)} instance(s) that are not in its source series {uid} (e.g. {missing[0]})"
    if (source.rows, source.columns) != (seg.rows, seg.columns):
        return (
            f"has {seg.rows}x{seg.columns} frames, but its source series {uid} has {source.rows}x"
            f"{source.columns} images: only a SEG on the pixel grid of its source series can be imported"
        )
    if len(source.orientation) == 6 and not np.allclose(seg.orientation, source.orientation, atol=1e-3):
        return f"is oriented {[float(v) for v in seg.orientation]}, unlike its source series {uid}"
    slices = np.asarray(source.positions, dtype=np.float64)
    if not len(slices):
        return None  # a registered series without positions: nothing to place the frames on
    gaps = np.linalg.norm(np.diff(slices, axis=0), axis=1) if len(slices) > 1 else np.array([1.0])
    tolerance = max(0.1 * float(np.min(gaps)), 0.01)
    distances = np.linalg.norm(seg.frame_positions[:, None, :] - slices[None, :, :], axis=2).min(axis=1)
    worst = int(np.argmax(distances))
    if distances[worst] > tolerance:
        return (
            f"frame {worst + 1} lies {distances[worst]:.2f} mm from the nearest slice of its source series "
            f"{uid}: a SEG's frames must lie on its source series' slices"
        )
    return None
