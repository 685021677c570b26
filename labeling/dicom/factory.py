"""Pick the DicomStore a deployment is configured for; callers pass the configuration in (no Django here)."""

from __future__ import annotations

import os

import requests

from labeling.dicom.dicomweb import DicomWebStore
from labeling.dicom.local import LocalFolderStore
from labeling.dicom.proxy import Timeout
from labeling.dicom.store import DicomStore


def store_open(
    *,
    dicomweb_url: str | None = None,
    folder: str | os.PathLike[str] | None = None,
    orthanc_url: str | None = None,
    timeout_s: Timeout = 30.0,
    session: requests.Session | None = None,
) -> DicomStore:
    """Return a DicomWebStore when ``dicomweb_url`` is set, else a LocalFolderStore on ``folder``.

    ``orthanc_url`` (Orthanc's REST root) enables delete on a DICOMweb store. Raises ValueError when
    neither a URL nor a folder is given. ``session``: the HTTP session (its connection pool) to use. The web
    app and workers open theirs once per process through ``labeling.services.ingest.configured_store``.
    """
    if dicomweb_url:
        return DicomWebStore(
            dicomweb_url, orthanc_url=orthanc_url or None, timeout_s=timeout_s, session=session
        )
    if folder:
        return LocalFolderStore(folder)
    raise ValueError("configure a DICOM store: a DICOMweb URL or a local folder")
