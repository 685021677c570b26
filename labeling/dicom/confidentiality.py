"""What a reader or adjudicator may receive of a DICOM object: an allowlist, not a list of what to remove. Django-free.

PS3.15 Annex E's Basic Application Level Confidentiality Profile lists the attributes that can identify a
patient (names, IDs, dates and times, institutions, devices, free-text descriptions, UIDs …). Rather than
remove that list (and miss whatever a modality or a later edition adds), the reader's view keeps only the
attributes a viewer needs to display and measure the images: the SOP class, modality, numbering, the
image-plane and image-pixel description, rescale and window values, and the QIDO counts. None of them is on
the Annex E list except the four UIDs, whose Annex E action is U (replace with a consistent UID); a series
description is kept only when it is one of the ``clean_descriptions`` given (the scheme's sequence names,
e.g. ``T1``/``STIR``), which is the Clean Descriptors option's "replace with values of similar meaning known
not to contain identifying information". Sequences are kept only where the allowlist names them (the
enhanced multi-frame functional groups), and their items are filtered the same way.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

from pydicom.dataset import Dataset, FileMetaDataset

from labeling.dicom.store import DicomJson, tag_key

#: Attributes a reader's viewer needs; everything else is withheld.
READER_KEYWORDS = (
    # which object, which series, in which order
    "SOPClassUID",
    "SOPInstanceUID",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "FrameOfReferenceUID",
    "Modality",
    "SeriesNumber",
    "InstanceNumber",
    "ImageType",
    "AcquisitionNumber",
    # image plane
    "ImagePositionPatient",
    "ImageOrientationPatient",
    "PixelSpacing",
    "SliceThickness",
    "SpacingBetweenSlices",
    "SliceLocation",
    # image pixel
    "Rows",
    "Columns",
    "SamplesPerPixel",
    "PhotometricInterpretation",
    "BitsAllocated",
    "BitsStored",
    "HighBit",
    "PixelRepresentation",
    "PlanarConfiguration",
    "PixelAspectRatio",
    "NumberOfFrames",
    "SmallestImagePixelValue",
    "LargestImagePixelValue",
    "PixelData",
    # display
    "RescaleIntercept",
    "RescaleSlope",
    "RescaleType",
    "WindowCenter",
    "WindowWidth",
    "VOILUTFunction",
    # multi-frame functional groups (geometry and pixel values per frame)
    "SharedFunctionalGroupsSequence",
    "PerFrameFunctionalGroupsSequence",
    "PlanePositionSequence",
    "PlaneOrientationSequence",
    "PixelMeasuresSequence",
    "PixelValueTransformationSequence",
    "FrameVOILUTSequence",
    "FrameContentSequence",
    "DimensionIndexValues",
    "StackID",
    "InStackPositionNumber",
    "TemporalPositionIndex",
    # QIDO-RS result counts
    "ModalitiesInStudy",
    "NumberOfStudyRelatedSeries",
    "NumberOfStudyRelatedInstances",
    "NumberOfSeriesRelatedInstances",
)
READER_TAGS = frozenset(tag_key(keyword) for keyword in READER_KEYWORDS)
_SERIES_DESCRIPTION = tag_key("SeriesDescription")
#: File meta attributes a Part 10 copy keeps (the transfer syntax is needed to read the pixels).
_META_KEYWORDS = (
    "FileMetaInformationVersion",
    "MediaStorageSOPClassUID",
    "MediaStorageSOPInstanceUID",
    "TransferSyntaxUID",
)
#: DICOM JSON key of the transfer syntax, which some servers (Orthanc) put in metadata.
_TRANSFER_SYNTAX = tag_key("TransferSyntaxUID")


def reader_json(item: DicomJson, clean_descriptions: Collection[str] = ()) -> DicomJson:
    """One DICOM JSON object as a reader may see it (see module); the input is not modified."""
    out: DicomJson = {}
    for key, entry in item.items():
        if key == _SERIES_DESCRIPTION:
            values = entry.get("Value") or []
            if len(values) == 1 and values[0] in clean_descriptions:
                out[key] = {"vr": entry.get("vr", "LO"), "Value": list(values)}
            continue
        if key not in READER_TAGS and key != _TRANSFER_SYNTAX:
            continue
        if entry.get("vr") == "SQ":
            items = entry.get("Value") or []
            out[key] = {"vr": "SQ", "Value": [reader_json(child, clean_descriptions) for child in items]}
        else:
            out[key] = dict(entry)
    return out


def reader_jsons(items: Iterable[DicomJson], clean_descriptions: Collection[str] = ()) -> list[DicomJson]:
    return [reader_json(item, clean_descriptions) for item in items]


def reader_dataset(dataset: Dataset, clean_descriptions: Collection[str] = ()) -> Dataset:
    """A copy of ``dataset`` (pixels included) holding only what a reader may see, with a minimal file meta."""
    out = _filtered(dataset, clean_descriptions)
    meta = FileMetaDataset()
    source = getattr(dataset, "file_meta", FileMetaDataset())
    for keyword in _META_KEYWORDS:
        if keyword in source:
            meta[keyword] = source[keyword]
    out.file_meta = meta
    return out


def _filtered(dataset: Dataset, clean_descriptions: Collection[str]) -> Dataset:
    out = Dataset()
    for element in dataset:
        key = f"{element.tag:08X}"
        if key == _SERIES_DESCRIPTION:
            if str(element.value) in clean_descriptions:
                out.add(element)
            continue
        if key not in READER_TAGS:
            continue
        if element.VR == "SQ":
            out.add_new(element.tag, "SQ", [_filtered(item, clean_descriptions) for item in element.value])
        else:
            out.add(element)
    return out
