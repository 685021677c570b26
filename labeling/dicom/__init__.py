"""The only code that talks to DICOM stores: a DICOMweb server or a local folder. Django-free.

Everything takes base URLs and folder paths as arguments; nothing here reads Django settings.
"""

from labeling.dicom.dicomweb import DicomWebStore, dicomweb_raw_get
from labeling.dicom.errors import (
    DicomInvalidRequest,
    DicomNotFound,
    DicomOperationUnsupported,
    DicomStoreError,
    DicomStoreFull,
    DicomStoreUnavailable,
)
from labeling.dicom.factory import store_open
from labeling.dicom.local import LocalFolderStore
from labeling.dicom.store import DicomJson, DicomStore, SearchFilters

__all__ = [
    "DicomInvalidRequest",
    "DicomJson",
    "DicomNotFound",
    "DicomOperationUnsupported",
    "DicomStore",
    "DicomStoreError",
    "DicomStoreFull",
    "DicomStoreUnavailable",
    "DicomWebStore",
    "LocalFolderStore",
    "SearchFilters",
    "dicomweb_raw_get",
    "store_open",
]
