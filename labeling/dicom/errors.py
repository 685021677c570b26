"""Named failures of DICOM stores; callers catch these, never requests' or pydicom's exceptions."""

from __future__ import annotations


class DicomStoreError(Exception):
    """A DICOM store refused or failed an operation for a reason that a retry will not fix."""


class DicomStoreUnavailable(DicomStoreError):
    """The store could not be reached or answered 5xx/429/timeout: transient, safe to retry."""


class DicomNotFound(DicomStoreError):
    """The study, series, instance or frame asked for does not exist in the store."""


class DicomOperationUnsupported(DicomStoreError):
    """The store cannot do this operation (e.g. delete on a DICOMweb server that is not Orthanc)."""


class DicomInvalidRequest(DicomStoreError, ValueError):
    """The request itself is wrong (an unsupported search key, no frame numbers): the caller must change it."""


class DicomStoreFull(DicomStoreError):
    """The store has no space left (a full disk or quota): nothing of the refused instance was kept."""


#: What an unreachable image server is called in every answer and message a person sees.
IMAGE_SERVER_UNAVAILABLE = "image server unavailable"
