"""DICOM writing of phantom series (SPEC §6.6) and of the CT pelvis-bone SEG (highdicom).

One file per slice, Explicit VR Little Endian, ``InstanceNumber`` 1..N along the slice normal. UIDs are
derived from the generator name, the seed and the study/series/instance ids (``2.25.<uuid5>`` form), so a seed
reproduces the same UIDs and different seeds or indices give distinct ones.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
from numpy.typing import NDArray
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_data_element, write_file_meta_info
from pydicom.sr.codedict import codes
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, UID, ExplicitVRLittleEndian

from ml.data.geometry import SliceGeometry
from ml.phantoms.schema import GENERATOR_NAME, GENERATOR_VERSION

MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
MANUFACTURER = "Concord"
_UID_NAMESPACE = uuid.UUID("6f1c1f52-2d0e-5b7a-9c1e-0c0ac0ad5a11")
#: Acquisition attributes of the simulated sequences (plausible 1.5 T values; type-2 attributes need a value).
MR_SEQUENCES: dict[str, dict[str, object]] = {
    "T1": {
        "ScanningSequence": "SE",
        "SequenceVariant": "NONE",
        "RepetitionTime": 550.0,
        "EchoTime": 12.0,
        "EchoTrainLength": 1,
    },
    "STIR": {
        "ScanningSequence": ["SE", "IR"],
        "SequenceVariant": "NONE",
        "RepetitionTime": 4000.0,
        "EchoTime": 60.0,
        "EchoTrainLength": 12,
        "InversionTime": 150.0,
    },
}


def make_uid(*parts: object) -> str:
    """Deterministic UID ``2.25.<uuid5>`` from the generator name and ``parts`` (seed, study id, series, instance).

    A name-based UUID (RFC 4122 version 5) in the ``2.25`` arc (PS3.5 B.2): unique for distinct parts,
    identical when a seed is re-run.
    """
    return f"2.25.{uuid.uuid5(_UID_NAMESPACE, '/'.join([GENERATOR_NAME, *(str(p) for p in parts)])).int}"


@dataclass(frozen=True)
class StudyMeta:
    """Patient/study-level attributes shared by every series of one phantom study."""

    patient_id: str
    patient_name: str
    study_instance_uid: str
    study_id: str
    study_date: str
    study_time: str
    frame_of_reference_uid: str
    image_comments: str
    body_part: str = "PELVIS"


def _base_dataset(
    meta: StudyMeta,
    geometry: SliceGeometry,
    *,
    sop_class: str,
    modality: str,
    description: str,
    series_uid: str,
    series_number: int,
) -> Dataset:
    """Attributes common to all slices of one series (Patient, Study, Series, FoR, Equipment, Image, Pixel)."""
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = sop_class
    for prefix in ("Study", "Series", "Content", "Acquisition"):
        setattr(ds, f"{prefix}Date", meta.study_date)
        setattr(ds, f"{prefix}Time", meta.study_time)
    ds.AccessionNumber = ""
    ds.Modality = modality
    ds.Manufacturer = MANUFACTURER
    ds.ManufacturerModelName = GENERATOR_NAME
    ds.SoftwareVersions = GENERATOR_VERSION
    ds.InstitutionName = "Synthetic"
    ds.ReferringPhysicianName = ""
    ds.StudyDescription = "PHANTOM SIJ"
    ds.SeriesDescription = description
    ds.PatientName = meta.patient_name
    ds.PatientID = meta.patient_id
    ds.PatientBirthDate = ""
    ds.PatientSex = "O"
    ds.BodyPartExamined = meta.body_part
    ds.PatientPosition = "HFS"
    ds.StudyInstanceUID = meta.study_instance_uid
    ds.SeriesInstanceUID = series_uid
    ds.StudyID = meta.study_id
    ds.SeriesNumber = series_number
    ds.AcquisitionNumber = 1
    ds.FrameOfReferenceUID = meta.frame_of_reference_uid
    ds.PositionReferenceIndicator = ""
    ds.ImageOrientationPatient = [round(v, 8) for v in geometry.orientation]
    ds.PixelSpacing = [round(geometry.pixel_mm, 6)] * 2
    ds.SliceThickness = round(geometry.slice_thickness_mm, 4)
    ds.SpacingBetweenSlices = round(geometry.spacing_mm, 4)
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = geometry.rows, geometry.cols
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.ImageComments = meta.image_comments
    return ds


def write_series(
    folder: Path,
    pixels: NDArray[np.uint16],
    geometry: SliceGeometry,
    meta: StudyMeta,
    *,
    modality: str,
    description: str,
    series_uid: str,
    series_number: int,
    sop_uids: Sequence[str],
    extra: dict[str, object],
) -> list[Dataset]:
    """Write ``pixels`` (S, H, W) uint16 as S files ``folder/0001.dcm``...; return the datasets in slice order.

    ``extra`` holds modality-specific attributes (MR sequence parameters, CT rescale, window).
    """
    folder.mkdir(parents=True, exist_ok=True)
    sop_class = MR_IMAGE_STORAGE if modality == "MR" else CT_IMAGE_STORAGE
    base = _base_dataset(
        meta,
        geometry,
        sop_class=sop_class,
        modality=modality,
        description=description,
        series_uid=series_uid,
        series_number=series_number,
    )
    for key, value in extra.items():
        setattr(base, key, value)
    base_bytes = [(int(elem.tag), _encode(elem)) for elem in base]
    datasets = []
    for k in range(geometry.n_slices):
        ds = Dataset()
        ds.update(base)  # own element dict: the per-slice attributes below are new elements, not shared ones
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = UID(sop_class)
        ds.file_meta.MediaStorageSOPInstanceUID = UID(sop_uids[k])
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
        ds.file_meta.ImplementationVersionName = f"PYDICOM {'.'.join(pydicom.__version_info__)}"
        ds.SOPInstanceUID = sop_uids[k]
        ds.InstanceNumber = k + 1
        position = geometry.position(k)
        ds.ImagePositionPatient = [round(float(v), 4) for v in position]
        ds.SliceLocation = round(float(position @ geometry.normal), 4)
        ds[0x7FE00010] = DataElement(0x7FE00010, "OW", np.ascontiguousarray(pixels[k], dtype="<u2").tobytes())
        own = [(int(elem.tag), _encode(elem)) for elem in ds if elem.tag not in base]
        _write_file(folder / f"{k + 1:04d}.dcm", ds.file_meta, sorted(base_bytes + own))
        datasets.append(ds)
    return datasets


def _encode(elem: DataElement) -> bytes:
    """Explicit VR little endian encoding of one (non-sequence) data element, as pydicom writes it."""
    fp = DicomBytesIO()
    fp.is_little_endian, fp.is_implicit_VR = True, False
    write_data_element(fp, elem)
    return bytes(fp.getvalue())


def _write_file(path: Path, file_meta: FileMetaDataset, elements: list[tuple[int, bytes]]) -> None:
    """Write preamble, file meta group and pre-encoded elements (sorted by tag).

    Encoding the shared elements once per series instead of once per file makes writing ~5x faster than
    ``Dataset.save_as``; the bytes are the same pydicom encodings.
    """
    meta = DicomBytesIO()
    meta.is_little_endian, meta.is_implicit_VR = True, False
    write_file_meta_info(meta, file_meta, enforce_standard=True)
    with path.open("wb") as fp:
        fp.write(b"\0" * 128 + b"DICM" + bytes(meta.getvalue()))
        fp.write(b"".join(data for _, data in elements))


def mr_extra(sequence: str, max_value: int) -> dict[str, object]:
    """MR Image module attributes for ``sequence`` (``T1`` or ``STIR``)."""
    extra: dict[str, object] = {
        "ImageType": ["ORIGINAL", "PRIMARY", "OTHER"],
        "ScanOptions": "",
        "MRAcquisitionType": "2D",
        "ImagedNucleus": "1H",
        "MagneticFieldStrength": 1.5,
        "WindowCenter": max_value // 2,
        "WindowWidth": max_value,
    }
    extra.update(MR_SEQUENCES[sequence])
    return extra


def ct_extra(slope: float, intercept: float) -> dict[str, object]:
    """CT Image module attributes with the given rescale."""
    return {
        "ImageType": ["ORIGINAL", "PRIMARY", "AXIAL"],
        "KVP": 120,
        "ConvolutionKernel": "BONE",
        "RescaleIntercept": intercept,
        "RescaleSlope": slope,
        "RescaleType": "HU",
        "WindowCenter": 400,
        "WindowWidth": 1800,
    }


SEGMENT_LABELS = {1: "sacrum", 2: "left ilium", 3: "right ilium"}


def write_pelvis_seg(
    path: Path,
    source: Sequence[Dataset],
    labels: NDArray[np.uint8],
    *,
    series_uid: str,
    sop_uid: str,
    comments: str,
    date: str,
    time: str,
) -> hd.seg.Segmentation:
    """Write a BINARY SEG of the pelvic bones; ``labels`` (S, H, W) holds 0 or a key of SEGMENT_LABELS."""
    descriptions = [
        hd.seg.SegmentDescription(
            segment_number=number,
            segment_label=label,
            segmented_property_category=codes.SCT.Tissue,
            segmented_property_type=codes.SCT.Sacrum if number == 1 else codes.SCT.Ilium,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL,
            anatomic_regions=[codes.SCT.Pelvis],
        )
        for number, label in SEGMENT_LABELS.items()
    ]
    seg = hd.seg.Segmentation(
        source_images=list(source),
        pixel_array=labels,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=series_uid,
        series_number=100,
        sop_instance_uid=sop_uid,
        instance_number=1,
        manufacturer=MANUFACTURER,
        manufacturer_model_name=GENERATOR_NAME,
        software_versions=GENERATOR_VERSION,
        device_serial_number="0",
        series_description="Pelvis bone SEG",
        content_label="PELVIS",
    )
    seg.ImageComments = comments
    _freeze_clock_and_uids(seg, date, time, make_uid(sop_uid, "dimension-organization"))
    path.parent.mkdir(parents=True, exist_ok=True)
    seg.save_as(path)
    return seg


def _freeze_clock_and_uids(seg: Dataset, date: str, time: str, dimension_uid: str) -> None:
    """Replace highdicom's wall-clock times and random dimension UID so a seed reproduces the file byte for byte."""
    for prefix in ("Content", "Series", "InstanceCreation"):
        if f"{prefix}Date" in seg:
            setattr(seg, f"{prefix}Date", date)
        if f"{prefix}Time" in seg:
            setattr(seg, f"{prefix}Time", time)
    for item in seg.get("ContributingEquipmentSequence", []):
        if "ContributionDateTime" in item:
            item.ContributionDateTime = date + time
    for item in [*seg.DimensionOrganizationSequence, *seg.DimensionIndexSequence]:
        item.DimensionOrganizationUID = dimension_uid
