"""Check a set of files before import: each problem names its file; the valid series come back grouped.

Per file: is DICOM (not a symbolic link, not an archive), complete (not truncated), has Study/Series/SOP UIDs,
pixel data in a transfer syntax this server can decode, of a size it can hold (``MAX_ROWS_COLUMNS``,
``MAX_FRAMES``, ``MAX_DECODED_BYTES``), the required modality, and geometry (ImagePositionPatient,
ImageOrientationPatient, PixelSpacing). Headers are read with large values deferred (``DEFER_SIZE``): checking
a file never holds its pixel data in memory. Per series: one FrameOfReferenceUID,
one orientation, distinct slice positions at a regular spacing along the slice normal. A series with a
series-level problem is rejected whole (every file gets a problem); a bad file alone drops only that file.

A DICOM SEG (Segmentation Storage, e.g. a CT study's pelvis bone mask) is not an image series and needs no
particular modality: it is accepted when it defines at least one segment, every frame names a defined segment
and has a position, and it refers to one image series of its own study — among the files imported with it,
or registered before (``known_series``) — with the same FrameOfReferenceUID, orientation and grid, its frames
lying on that series' slices. It comes back as a ValidSeries of modality SEG naming its source series.
"""

from __future__ import annotations

import os
import warnings
import zipfile
from collections import Counter
from collections.abc import Callable, Collection, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.pixels.decoders.base import get_decoder
from pydicom.uid import UID

from labeling.dicom.segmentation import (
    SEG_MODALITY,
    KnownSeries,
    Segmentation,
    SourceSeries,
    is_segmentation,
    read_segmentation,
    segmentation_mismatch,
)

GEOMETRY = ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing")

#: Limits of one file's pixels: a header claiming more (65535 x 65535 x 10^6 frames) is refused before
#: anything decodes it. 16384 columns and 1 GiB decoded hold any MRI or CT series file.
MAX_ROWS_COLUMNS = 16_384
MAX_FRAMES = 10_000
MAX_DECODED_BYTES = 1024**3
#: Values longer than this stay on disk while a header is checked (pixel data, large private blobs).
DEFER_SIZE = 64 * 1024
_UNDEFINED_LENGTH = 0xFFFFFFFF


@dataclass(frozen=True)
class ValidationProblem:
    """Why one file cannot be imported, in words a user can act on."""

    path: Path
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass(frozen=True)
class ValidSeries:
    """A series that passed every check; ``paths`` are ordered along the slice normal."""

    study_uid: str
    series_uid: str
    modality: str
    description: str
    frame_of_reference_uid: str
    paths: tuple[Path, ...]
    spacing_mm: float | None  # between consecutive slice centres; None for a single file
    source_series_uid: str | None = None  # for a SEG: the image series it segments


@dataclass
class ValidationReport:
    """The outcome: valid series by StudyInstanceUID then SeriesInstanceUID, and every problem found."""

    studies: dict[str, dict[str, ValidSeries]] = field(default_factory=dict)
    problems: list[ValidationProblem] = field(default_factory=list)

    @property
    def series(self) -> list[ValidSeries]:
        """Return every valid series, flattened."""
        return [series for by_series in self.studies.values() for series in by_series.values()]

    @property
    def ok(self) -> bool:
        """Return whether no problem was found."""
        return not self.problems


@dataclass(frozen=True)
class _Slice:
    path: Path
    study_uid: str
    series_uid: str
    sop_uid: str
    modality: str
    description: str
    frame_of_reference_uid: str
    orientation: np.ndarray  # (6,)
    position: np.ndarray  # (3,)
    n_frames: int
    rows: int
    columns: int


def validate_files(
    paths: Iterable[str | os.PathLike[str]],
    *,
    required_modality: str | Collection[str] | None = None,
    spacing_rtol: float = 0.01,
    known_series: KnownSeries | None = None,
) -> ValidationReport:
    """Validate every file and group the good ones; never raises on bad input, it reports it.

    ``required_modality``: a Modality (``"MR"``) or several; other modalities are problems (a SEG is checked
    against its source series instead). ``spacing_rtol``: allowed relative deviation of a slice gap from the
    series' median gap. ``known_series``: where a SEG's source series is looked up when it is not among
    ``paths`` (without it, such a SEG is a problem).
    """
    allowed = {required_modality} if isinstance(required_modality, str) else required_modality
    report = ValidationReport()
    slices: list[_Slice] = []
    segmentations: list[Segmentation] = []
    for raw_path in paths:
        path = Path(raw_path)
        checked = _check_file(path, allowed)
        if isinstance(checked, ValidationProblem):
            report.problems.append(checked)
        elif isinstance(checked, Segmentation):
            segmentations.append(checked)
        else:
            slices.append(checked)
    unique = _drop_duplicates([*slices, *segmentations], report.problems)
    groups: dict[tuple[str, str], list[_Slice]] = {}
    for item in unique:
        if isinstance(item, _Slice):
            groups.setdefault((item.study_uid, item.series_uid), []).append(item)
    by_path = {item.path: item for item in slices}
    sources: dict[str, SourceSeries] = {}
    for (study_uid, series_uid), members in groups.items():
        series = _check_series(members, spacing_rtol, report.problems)
        if series is not None:
            report.studies.setdefault(study_uid, {})[series_uid] = series
            sources[series_uid] = _source_of(series, [by_path[p] for p in series.paths])
    _check_segmentations(
        [item for item in unique if isinstance(item, Segmentation)],
        sources,
        {series_uid for _, series_uid in groups} | _series_of(report.problems),
        known_series,
        report,
    )
    return report


def _check_file(
    path: Path, allowed_modalities: Collection[str] | None
) -> _Slice | Segmentation | ValidationProblem:
    """Return the slice facts of one file, or the first problem that makes it unusable."""
    if path.is_symlink():
        return ValidationProblem(path, f"{path.name} is a symbolic link: links are not followed")
    if not path.is_file():
        return ValidationProblem(path, f"{path.name} does not exist or is not a regular file")
    try:
        with warnings.catch_warnings():  # damaged values warn; the problems below say it better
            warnings.simplefilter("ignore")
            dataset = dcmread(path, defer_size=DEFER_SIZE)
    except InvalidDicomError:
        if zipfile.is_zipfile(path):
            return ValidationProblem(
                path, f"{path.name} is an archive inside the upload: nested archives are not opened"
            )
        return ValidationProblem(path, f"{path.name} is not a DICOM file (no DICM header)")
    except Exception as exc:  # untrusted bytes: pydicom raises many types on damaged files
        return ValidationProblem(path, f"{path.name} is damaged or truncated and cannot be read ({exc})")
    if cut := _truncated_element(dataset, path.stat().st_size):
        return ValidationProblem(path, f"{path.name} is truncated: the file ends inside element {cut}")
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
        if not str(dataset.get(keyword, "")).strip():
            return ValidationProblem(path, f"{path.name} has no {keyword} (incomplete or truncated file?)")
    if problem := _pixel_problem(dataset):
        return ValidationProblem(path, f"{path.name}: {problem}")
    modality = str(dataset.get("Modality", ""))
    if is_segmentation(dataset):
        geometry = _geometry(dataset)
        if isinstance(geometry, str):
            return ValidationProblem(path, f"{path.name}: {geometry}")
        seg = read_segmentation(path, dataset, orientation=geometry[0])
        return ValidationProblem(path, seg) if isinstance(seg, str) else seg
    if allowed_modalities is not None and modality not in allowed_modalities:
        expected = " or ".join(sorted(allowed_modalities))
        return ValidationProblem(
            path, f"{path.name} has modality {modality or 'none'!r}, expected {expected}"
        )
    geometry = _geometry(dataset)
    if isinstance(geometry, str):
        return ValidationProblem(path, f"{path.name}: {geometry}")
    orientation, position = geometry
    return _Slice(
        path=path,
        study_uid=str(dataset.StudyInstanceUID),
        series_uid=str(dataset.SeriesInstanceUID),
        sop_uid=str(dataset.SOPInstanceUID),
        modality=modality,
        description=str(dataset.get("SeriesDescription", "")),
        frame_of_reference_uid=str(dataset.get("FrameOfReferenceUID", "")),
        orientation=orientation,
        position=position,
        n_frames=int(dataset.get("NumberOfFrames", 1) or 1),
        rows=int(dataset.Rows),
        columns=int(dataset.Columns),
    )


def _truncated_element(dataset: Dataset, file_size: int) -> str | None:
    """Return the tag of an element whose value is shorter than its declared length (the file was cut).

    A deferred value (not read) is cut when it would end past the end of the file.
    """
    for part in (dataset.file_meta, dataset):
        for tag in part.keys():  # noqa: SIM118 - iterating a Dataset would decode the raw elements
            raw = part.get_item(tag, keep_deferred=True)
            length, value = getattr(raw, "length", None), getattr(raw, "value", None)
            if length is None or length == _UNDEFINED_LENGTH:
                continue
            if isinstance(value, bytes) and len(value) < length:
                return str(tag)
            tell = getattr(raw, "value_tell", None)
            if value is None and tell is not None and tell + length > file_size:
                return str(tag)
    return None


def _pixel_bytes(dataset: Dataset) -> int | None:
    """The length of the stored pixel data without reading it; None when encapsulated (compressed)."""
    raw = dataset.get_item("PixelData", keep_deferred=True)
    length = getattr(raw, "length", None)
    if length is None:
        value = getattr(raw, "value", None)
        return len(value) if isinstance(value, bytes) else None
    return None if length == _UNDEFINED_LENGTH else int(length)


def _decodable(syntax: UID) -> bool:
    try:
        return bool(get_decoder(syntax).is_available)
    except NotImplementedError:  # no decoder exists for it at all (video syntaxes)
        return False


def _syntax_problem(dataset: Dataset) -> str | None:
    """Why the transfer syntax is unusable: unknown, or compressed in a way no installed decoder reads."""
    syntax = dataset.file_meta.get("TransferSyntaxUID")
    if syntax is None:
        return None  # pydicom read it as the default (Implicit VR Little Endian)
    syntax = UID(str(syntax))
    if not syntax.is_transfer_syntax:
        return f"unknown transfer syntax {syntax}"
    if not _decodable(syntax):
        return f"pixel data in {syntax.name} ({syntax}), which this server cannot decode"
    return None


def _pixel_problem(dataset: Dataset) -> str | None:
    """Return why the pixel data is unusable (absent or shorter than Rows x Columns x frames), else None."""
    if "PixelData" not in dataset:
        return "no pixel data (not an image, or the file is truncated)"
    if problem := _syntax_problem(dataset):
        return problem
    try:
        rows, columns = int(dataset.Rows), int(dataset.Columns)
        samples, bits = int(dataset.get("SamplesPerPixel", 1) or 1), int(dataset.BitsAllocated)
        frames = int(dataset.get("NumberOfFrames", 1) or 1)
    except (AttributeError, TypeError, ValueError):
        return "Rows, Columns or BitsAllocated missing or invalid"
    if min(rows, columns, samples, bits, frames) < 1:
        return f"invalid image size (Rows {rows}, Columns {columns}, frames {frames}, BitsAllocated {bits})"
    decoded = rows * columns * samples * frames * -(-bits // 8)
    if max(rows, columns) > MAX_ROWS_COLUMNS or frames > MAX_FRAMES or decoded > MAX_DECODED_BYTES:
        return (
            f"image too large: {rows} x {columns} pixels x {frames} frame(s) would decode to "
            f"{decoded / 1024**2:,.0f} MiB (limits: {MAX_ROWS_COLUMNS} rows or columns, {MAX_FRAMES} frames, "
            f"{MAX_DECODED_BYTES // 1024**2} MiB)"
        )
    actual = _pixel_bytes(dataset)
    if actual is None:
        return None  # encapsulated: fragment lengths are checked by the decoder, not here
    expected = rows * columns * samples * bits * frames // 8
    if actual < expected:
        return f"pixel data is truncated ({actual} of {expected} bytes)"
    return None


def _geometry(dataset: Dataset) -> tuple[np.ndarray, np.ndarray] | str:
    """Return (orientation (6,), position (3,)) of the first frame, or what is missing or invalid."""
    sources = [dataset]
    for keyword in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence"):
        if dataset.get(keyword):  # enhanced multi-frame: geometry lives in functional groups
            groups = dataset[keyword][0]
            for nested in ("PlanePositionSequence", "PlaneOrientationSequence", "PixelMeasuresSequence"):
                if groups.get(nested):
                    sources.append(groups[nested][0])
    values: dict[str, Sequence[float]] = {}
    for keyword in GEOMETRY:
        found = next((s.get(keyword) for s in sources if s.get(keyword) is not None), None)
        if found is not None:
            values[keyword] = found
    missing = [keyword for keyword in GEOMETRY if keyword not in values]
    if missing:
        return f"missing geometry: {', '.join(missing)}"
    try:
        position = np.asarray([float(v) for v in values["ImagePositionPatient"]])
        orientation = np.asarray([float(v) for v in values["ImageOrientationPatient"]])
        spacing = np.asarray([float(v) for v in values["PixelSpacing"]])
    except (TypeError, ValueError):
        return "geometry values are not numbers"
    if position.shape != (3,) or orientation.shape != (6,) or spacing.shape != (2,):
        return "geometry has the wrong number of values (IPP 3, IOP 6, PixelSpacing 2)"
    row, column = orientation[:3], orientation[3:]
    unit = np.allclose([np.linalg.norm(row), np.linalg.norm(column)], 1.0, atol=1e-3)
    if not unit or abs(float(row @ column)) > 1e-3 or not np.all(spacing > 0):
        return "invalid geometry (ImageOrientationPatient not orthonormal or PixelSpacing not positive)"
    return orientation, position


def _drop_duplicates(
    slices: list[_Slice | Segmentation], problems: list[ValidationProblem]
) -> list[_Slice | Segmentation]:
    """Keep the first file of each SOPInstanceUID; the others are problems."""
    first: dict[str, _Slice | Segmentation] = {}
    for item in slices:
        if item.sop_uid in first:
            other = first[item.sop_uid].path.name
            problems.append(
                ValidationProblem(item.path, f"{item.path.name} duplicates {other} (same SOPInstanceUID)")
            )
        else:
            first[item.sop_uid] = item
    return list(first.values())


def _check_series(
    members: list[_Slice], spacing_rtol: float, problems: list[ValidationProblem]
) -> ValidSeries | None:
    """Return the series if its files are consistent; otherwise add a problem for every file and return None."""
    label = f"series {members[0].series_uid} ({members[0].description or 'no description'})"
    culprits = _mixed(members, "FrameOfReferenceUID", lambda s: s.frame_of_reference_uid)
    culprits = culprits or _mixed(
        members, "ImageOrientationPatient", lambda s: tuple(np.round(s.orientation, 3))
    )
    spacing_mm: float | None = None
    if not culprits and len(members) > 1:
        if any(item.n_frames > 1 for item in members):
            culprits = {
                m.path: f"{m.path.name} is one of several multi-frame files in {label}" for m in members
            }
        else:
            members, spacing_mm, culprits = _order_and_space(members, spacing_rtol)
    if culprits:
        first = next(iter(culprits.values()))
        for item in members:
            reason = culprits.get(item.path) or f"{item.path.name} is in {label}, rejected because {first}"
            problems.append(ValidationProblem(item.path, reason))
        return None
    return ValidSeries(
        study_uid=members[0].study_uid,
        series_uid=members[0].series_uid,
        modality=members[0].modality,
        description=members[0].description,
        frame_of_reference_uid=members[0].frame_of_reference_uid,
        paths=tuple(item.path for item in members),
        spacing_mm=spacing_mm,
    )


def _mixed(members: list[_Slice], name: str, key: Callable[[_Slice], Hashable]) -> dict[Path, str]:
    """Return a reason per file whose ``key`` value differs from the series' most common one."""
    values = [key(item) for item in members]
    common, count = Counter(values).most_common(1)[0]
    if count == len(members):
        return {}
    return {
        item.path: f"{item.path.name} has {name} {_shown(value)}, unlike {count} other file(s) of its series "
        f"({_shown(common)}): mixed {name} within a series"
        for item, value in zip(members, values, strict=True)
        if value != common
    }


def _shown(value: Hashable) -> str:
    """Return a UID as is and an orientation tuple as a plain list of floats."""
    return str([float(v) for v in value]) if isinstance(value, tuple) else str(value)


def _order_and_space(
    members: list[_Slice], rtol: float
) -> tuple[list[_Slice], float | None, dict[Path, str]]:
    """Sort slices along the normal; return them, the median spacing and a reason per misplaced file."""
    normal = np.cross(members[0].orientation[:3], members[0].orientation[3:])
    ordered = sorted(members, key=lambda item: float(item.position @ normal))
    depths = np.asarray([float(item.position @ normal) for item in ordered])
    gaps = np.diff(depths)
    median = float(np.median(gaps))
    culprits: dict[Path, str] = {}
    for index, gap in enumerate(gaps):
        before, after = ordered[index].path.name, ordered[index + 1].path.name
        if gap < 1e-3:
            culprits[ordered[index + 1].path] = f"{after} has the same slice position as {before}"
        elif abs(gap - median) > max(rtol * median, 1e-3):
            culprits[ordered[index + 1].path] = (
                f"{after} is {gap:.3f} mm from {before}, but the series' slice spacing is {median:.3f} mm: "
                "inconsistent slice spacing"
            )
    return ordered, median, culprits


# --- DICOM SEG ----------------------------------------------------------------------------------------------


def _series_of(problems: list[ValidationProblem]) -> set[str]:
    """SeriesInstanceUIDs of the rejected files whose header can still be read."""
    found = set()
    for problem in problems:
        try:
            header = dcmread(problem.path, stop_before_pixels=True, specific_tags=["SeriesInstanceUID"])
            found.add(str(header.get("SeriesInstanceUID", "")))
        except Exception:  # unreadable bytes name no series
            pass
    return found - {""}


def _source_of(series: ValidSeries, members: list[_Slice]) -> SourceSeries:
    return SourceSeries(
        study_uid=series.study_uid,
        series_uid=series.series_uid,
        frame_of_reference_uid=series.frame_of_reference_uid,
        rows=members[0].rows,
        columns=members[0].columns,
        orientation=tuple(float(v) for v in members[0].orientation),
        positions=tuple((float(m.position[0]), float(m.position[1]), float(m.position[2])) for m in members),
        sop_uids=frozenset(m.sop_uid for m in members),
    )


def _check_segmentations(
    segmentations: list[Segmentation],
    sources: dict[str, SourceSeries],
    seen_series: set[str],
    known_series: KnownSeries | None,
    report: ValidationReport,
) -> None:
    """Check each SEG against its source series; add the good ones as SEG series after the image series."""
    groups: dict[tuple[str, str], list[Segmentation]] = {}
    for seg in segmentations:
        source = sources.get(seg.source_series_uid)
        if source is None and seg.source_series_uid not in seen_series and known_series is not None:
            source = known_series(seg.source_series_uid)
        reason = segmentation_mismatch(seg, source, rejected=seg.source_series_uid in seen_series)
        if reason is not None:
            report.problems.append(ValidationProblem(seg.path, f"{seg.path.name} {reason}"))
        else:
            groups.setdefault((seg.study_uid, seg.series_uid), []).append(seg)
    for (study_uid, series_uid), members in groups.items():
        label = f"SEG series {series_uid}"
        reason = None
        if series_uid in seen_series or series_uid in sources:
            reason = f"is in {label}, which has the SeriesInstanceUID of an image series"
        elif len({m.source_series_uid for m in members}) > 1:
            reason = f"is in {label}, whose SEGs refer to different source series"
        if reason is not None:
            report.problems += [ValidationProblem(m.path, f"{m.path.name} {reason}") for m in members]
            continue
        report.studies.setdefault(study_uid, {})[series_uid] = ValidSeries(
            study_uid=study_uid,
            series_uid=series_uid,
            modality=SEG_MODALITY,
            description=members[0].description,
            frame_of_reference_uid=members[0].frame_of_reference_uid,
            paths=tuple(m.path for m in members),
            spacing_mm=None,
            source_series_uid=members[0].source_series_uid,
        )
