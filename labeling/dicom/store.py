"""The DicomStore interface shared by the DICOMweb and local-folder implementations, plus DICOM JSON helpers."""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, ExplicitVRLittleEndian

if TYPE_CHECKING:
    from labeling.dicom.proxy import Served

#: One DICOM JSON object (PS3.18 F.2): ``{"0020000D": {"vr": "UI", "Value": ["1.2.3"]}, ...}``.
DicomJson = dict[str, Any]
#: QIDO-style match keys: a DICOM keyword (``"PatientID"``) or 8-hex-digit tag, to a match value.
SearchFilters = Mapping[str, str]

_UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")


def is_uid(value: str) -> bool:
    """Return whether ``value`` is a syntactically valid DICOM UID (digits and dots, at most 64 chars)."""
    return len(value) <= 64 and bool(_UID.match(value))


@functools.lru_cache(maxsize=4096)
def tag_key(keyword_or_tag: str) -> str:
    """Return the 8-hex-digit DICOM JSON key for a keyword or tag; raise ValueError if unknown.

    Cached: the local store's QIDO summaries ask it thousands of times per request (170 of a CT study's
    400 ms of metadata before)."""
    if re.fullmatch(r"[0-9A-Fa-f]{8}", keyword_or_tag):
        return keyword_or_tag.upper()
    tag = tag_for_keyword(keyword_or_tag)
    if tag is None:
        raise ValueError(f"unknown DICOM keyword {keyword_or_tag!r}")
    return f"{tag:08X}"


def json_value(item: DicomJson, keyword: str, default: Any = None) -> Any:
    """Return the first value of ``keyword`` in a DICOM JSON object (a PN as its Alphabetic string)."""
    values = item.get(tag_key(keyword), {}).get("Value") or []
    if not values:
        return default
    value = values[0]
    if isinstance(value, dict) and "Alphabetic" in value:
        return value["Alphabetic"]
    return value


def dataset_to_json(dataset: Dataset) -> DicomJson:
    """Return a dataset as DICOM JSON without bulk data (pixel data and large binary values are dropped).

    Matches the shape of DICOMweb metadata, minus ``BulkDataURI`` entries: frames are fetched separately.
    """
    result: DicomJson = dataset.to_json_dict(bulk_data_threshold=1024, bulk_data_element_handler=lambda _: "")
    return {key: value for key, value in result.items() if "BulkDataURI" not in value and key != "7FE00010"}


@runtime_checkable
class DicomStore(Protocol):
    """Where studies live. UIDs are strings; search results and metadata are DICOM JSON objects.

    Reads of a missing object raise DicomNotFound; a transient outage raises DicomStoreUnavailable; every
    other failure DicomStoreError. Search methods return ``[]`` when nothing matches.
    """

    def search_studies(
        self, filters: SearchFilters | None = None, *, limit: int | None = None
    ) -> list[DicomJson]:
        """Return study-level QIDO results matching ``filters`` (e.g. ``{"PatientID": "PHANTOM-*"}``)."""
        ...

    def search_series(
        self,
        study_uid: str | None = None,
        filters: SearchFilters | None = None,
        *,
        limit: int | None = None,
    ) -> list[DicomJson]:
        """Return series-level QIDO results, within one study if ``study_uid`` is given."""
        ...

    def search_instances(
        self,
        study_uid: str | None = None,
        series_uid: str | None = None,
        filters: SearchFilters | None = None,
        *,
        limit: int | None = None,
    ) -> list[DicomJson]:
        """Return instance-level QIDO results, within one study/series if given."""
        ...

    def series_metadata(self, study_uid: str, series_uid: str) -> list[DicomJson]:
        """Return the full metadata of every instance of a series (DICOM JSON, no pixel data)."""
        ...

    def study_metadata(self, study_uid: str) -> list[DicomJson]:
        """Return the full metadata of every instance of a study (DICOM JSON, no pixel data)."""
        ...

    def instance_metadata(self, study_uid: str, series_uid: str, sop_uid: str) -> DicomJson:
        """Return the full metadata of one instance (DICOM JSON, no pixel data)."""
        ...

    def instance(self, study_uid: str, series_uid: str, sop_uid: str) -> Dataset:
        """Return one instance as a pydicom Dataset, pixel data included."""
        ...

    def frames(
        self, study_uid: str, series_uid: str, sop_uid: str, frame_numbers: Sequence[int]
    ) -> list[bytes]:
        """Return the raw pixel bytes of the given 1-based frames, in the stored transfer syntax."""
        ...

    def rendered(
        self, study_uid: str, series_uid: str, sop_uid: str, *, media_type: str = "image/png"
    ) -> bytes:
        """Return one instance rendered as a consumer image (PNG by default)."""
        ...

    # The DICOMweb endpoint's answers, as bodies to send on (see labeling.dicom.proxy).

    #: Whether QIDO matches a backslash-separated list of StudyInstanceUIDs in one search.
    uid_lists: bool

    @property
    def link_root(self) -> str | None:
        """The URL that BulkDataURI/RetrieveURL values in this store's answers start with (None: no links)."""
        ...

    def serve_frames(
        self, study_uid: str, series_uid: str, sop_uid: str, frame_numbers: Sequence[int], accept: str
    ) -> Served:
        """Frames as multipart/related for the ``Accept`` asked (DicomOperationUnsupported when impossible)."""
        ...

    def serve_rendered(
        self,
        study_uid: str,
        series_uid: str,
        sop_uid: str,
        frame_numbers: Sequence[int] | None,
        accept: str,
        query: str | None = None,
    ) -> Served:
        """An instance (or frames) rendered as a consumer image for ``Accept``."""
        ...

    def serve_instances(self, study_uid: str, series_uid: str | None, sop_uid: str | None) -> Served:
        """A study, series or instance as multipart/related; type="application/dicom"."""
        ...

    def store(self, datasets: Sequence[Dataset]) -> list[str]:
        """Store instances; return their SOPInstanceUIDs. Re-storing an instance replaces it, never duplicates."""
        ...

    def delete_study(self, study_uid: str) -> None:
        """Delete a whole study; raise DicomNotFound if absent, DicomOperationUnsupported if impossible."""
        ...


def part10(dataset: Dataset) -> Dataset:
    """Return a shallow copy of ``dataset`` that writes as a DICOM Part 10 file (preamble + complete file meta).

    A missing transfer syntax is taken as Explicit VR Little Endian. The caller's dataset is not modified.
    """
    if "SOPInstanceUID" not in dataset or "SOPClassUID" not in dataset:
        raise ValueError("a dataset to store needs SOPClassUID and SOPInstanceUID")
    copied = copy.copy(dataset)
    meta = FileMetaDataset(getattr(dataset, "file_meta", FileMetaDataset()))
    meta.FileMetaInformationVersion = b"\x00\x01"
    meta.MediaStorageSOPClassUID = dataset.SOPClassUID
    meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
    if "TransferSyntaxUID" not in meta:
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
    if "ImplementationClassUID" not in meta:
        meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    copied.file_meta = meta
    copied.preamble = b"\x00" * 128
    return copied
