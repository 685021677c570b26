"""Small, valid synthetic DICOM series for tests (pydicom only, Explicit VR Little Endian).

Follows SPEC §6.6: MR/CT Image Storage, fresh UIDs, PHANTOM- patient ids, coronal MR / axial CT orientation,
IPP stepped along the slice normal with InstanceNumber 1..N. Reusable by any test::

    series = make_series(n_slices=3, rows=32, columns=32, modality="MR", description="T1")
    paths = write_series(series, tmp_path / "T1")
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, ExplicitVRLittleEndian, generate_uid

SOP_CLASS = {"MR": "1.2.840.10008.5.1.4.1.1.4", "CT": "1.2.840.10008.5.1.4.1.1.2"}
ORIENTATION = {"MR": (1.0, 0.0, 0.0, 0.0, 0.0, -1.0), "CT": (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)}


def slice_normal(orientation: Sequence[float]) -> np.ndarray:
    """Return the unit normal (row x column direction) of an ImageOrientationPatient."""
    normal = np.cross(np.asarray(orientation[:3], float), np.asarray(orientation[3:], float))
    return normal / np.linalg.norm(normal)


def make_series(
    *,
    n_slices: int = 3,
    rows: int = 32,
    columns: int = 32,
    modality: str = "MR",
    description: str = "T1",
    study_uid: str | None = None,
    frame_of_reference_uid: str | None = None,
    patient_id: str = "PHANTOM-0001",
    spacing_mm: float = 3.0,
    pixel_spacing_mm: tuple[float, float] = (1.0, 1.0),
    seed: int = 0,
) -> list[Dataset]:
    """Return ``n_slices`` single-frame datasets of one series, uint16 pixels from ``seed``, ordered 1..N."""
    rng = np.random.default_rng(seed)
    study_uid = study_uid or generate_uid()
    series_uid = generate_uid()
    frame_of_reference_uid = frame_of_reference_uid or generate_uid()
    orientation = ORIENTATION[modality]
    normal = slice_normal(orientation)
    datasets = []
    for index in range(n_slices):
        ds = Dataset()
        ds.SOPClassUID = SOP_CLASS[modality]
        ds.SOPInstanceUID = generate_uid()
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = series_uid
        ds.FrameOfReferenceUID = frame_of_reference_uid
        ds.Modality = modality
        ds.SeriesDescription = description
        ds.SeriesNumber = 1 if modality == "CT" else (1 if description == "T1" else 2)
        ds.StudyDate, ds.StudyTime, ds.StudyID = "20260101", "120000", "1"
        ds.AccessionNumber = ""
        ds.ReferringPhysicianName = ""
        ds.PatientID, ds.PatientName = patient_id, f"{patient_id}^Synthetic"
        ds.PatientBirthDate, ds.PatientSex = "", "O"
        ds.InstanceNumber = index + 1
        ds.ImageOrientationPatient = list(orientation)
        ds.ImagePositionPatient = [
            round(float(v), 4) for v in (-16.0, 0.0, 16.0) + normal * spacing_mm * index
        ]
        ds.PixelSpacing = list(pixel_spacing_mm)
        ds.SliceThickness = spacing_mm
        ds.SpacingBetweenSlices = spacing_mm
        ds.Rows, ds.Columns = rows, columns
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
        if modality == "CT":
            ds.RescaleSlope, ds.RescaleIntercept = 1, -1024
        ds.ImageComments = f"concord test factory, seed {seed}"
        ds.PixelData = rng.integers(0, 4096, size=(rows, columns), dtype="<u2").tobytes()
        ds.file_meta = _file_meta(ds)
        datasets.append(ds)
    return datasets


def _file_meta(ds: Dataset) -> FileMetaDataset:
    meta = FileMetaDataset()
    meta.FileMetaInformationVersion = b"\x00\x01"
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    return meta


def write_series(datasets: Sequence[Dataset], folder: Path) -> list[Path]:
    """Write each dataset as ``folder/<InstanceNumber>.dcm`` (Part 10); return the paths in order."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for ds in datasets:
        path = folder / f"{int(ds.InstanceNumber):04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def write_study(datasets: Sequence[Dataset], folder: Path) -> list[Path]:
    """Write each series of ``datasets`` as ``folder/<SeriesDescription>`` (first seen first); return the paths."""
    by_series: dict[str, list[Dataset]] = {}
    for ds in datasets:
        by_series.setdefault(str(ds.SeriesDescription), []).append(ds)
    return [path for name, group in by_series.items() for path in write_series(group, folder / name)]


def make_mri_study(
    *,
    n_slices: int = 3,
    size: int = 16,
    patient_id: str = "PHANTOM-0001",
    seed: int = 0,
    study_uid: str | None = None,
) -> list[Dataset]:
    """Return one MRI study, T1 then STIR (pixels from ``seed`` and ``seed + 1``) in one frame of reference."""
    study_uid, frame = study_uid or generate_uid(), generate_uid()
    return [
        ds
        for i, description in enumerate(("T1", "STIR"))
        for ds in make_series(
            n_slices=n_slices,
            rows=size,
            columns=size,
            study_uid=study_uid,
            frame_of_reference_uid=frame,
            description=description,
            patient_id=patient_id,
            seed=seed + i,
        )
    ]


def write_mri_study(
    folder: Path,
    *,
    n_slices: int = 3,
    size: int = 16,
    patient_id: str = "PHANTOM-0001",
    seed: int = 0,
) -> tuple[str, list[Path]]:
    """Write :func:`make_mri_study`'s study under ``folder/<study UID>/<sequence>``; return its UID and files."""
    datasets = make_mri_study(n_slices=n_slices, size=size, patient_id=patient_id, seed=seed)
    study_uid = str(datasets[0].StudyInstanceUID)
    return study_uid, write_study(datasets, folder / study_uid)


def make_seg(
    source: Sequence[Dataset], *, segments: Sequence[str] = ("sacrum", "ilium"), seed: int = 0
) -> Dataset:
    """Return a BINARY DICOM SEG (highdicom) of ``source`` (one series) with one segment per label.

    Segment ``n`` covers a random blob of every slice, so each segment has a frame on each slice.
    """
    import highdicom as hd
    from pydicom.sr.codedict import codes

    rng = np.random.default_rng(seed)
    rows, columns = int(source[0].Rows), int(source[0].Columns)
    labels = np.zeros((len(source), rows, columns), dtype=np.uint8)
    for number in range(1, len(segments) + 1):
        labels[(rng.random(labels.shape) < 0.3) & (labels == 0)] = number
    descriptions = [
        hd.seg.SegmentDescription(
            segment_number=number,
            segment_label=label,
            segmented_property_category=codes.SCT.Tissue,
            segmented_property_type=codes.SCT.Bone,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL,
        )
        for number, label in enumerate(segments, start=1)
    ]
    seg = hd.seg.Segmentation(
        source_images=list(source),
        pixel_array=labels,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=generate_uid(),
        series_number=100,
        sop_instance_uid=generate_uid(),
        instance_number=1,
        manufacturer="Concord tests",
        manufacturer_model_name="dicom_factory",
        software_versions="1",
        device_serial_number="0",
        series_description="Bone SEG",
    )
    return seg


def write_seg(seg: Dataset, folder: Path) -> Path:
    """Write a SEG as ``folder/seg.dcm``; return its path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "seg.dcm"
    seg.save_as(path, enforce_file_format=True)
    return path
