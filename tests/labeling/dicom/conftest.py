"""Fixtures for the DICOM store tests: a running Orthanc (started on demand), stores, and a small MR series.

No database and no Django: these tests must pass with the Django pytest plugin on or off.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from pydicom.dataset import Dataset

from labeling.dicom import DicomStore, DicomWebStore, LocalFolderStore
from labeling.dicom.store import json_value
from tests.labeling.dicom.dicom_factory import make_series
from tests.services import missing_service

REPO = Path(__file__).resolve().parents[3]
SERVICES = REPO / "platform" / "services.sh"
#: Every study these tests write belongs to this patient, so leftovers of a killed run can be purged; one
#: patient per pytest-xdist worker, so that one worker's purge never deletes another's studies.
TEST_PATIENT = f"PHANTOM-TEST-DICOM-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"


def _ensure_orthanc() -> str:
    """Start Orthanc through platform/services.sh; return its base URL or why it is unavailable."""
    for action in ("start", "wait"):
        try:
            result = subprocess.run(
                ["bash", str(SERVICES), action, "orthanc"],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise RuntimeError(f"`platform/services.sh {action} orthanc` did not run: {exc}") from exc
        if result.returncode != 0:
            output = (result.stderr or result.stdout).strip()
            raise RuntimeError(f"`platform/services.sh {action} orthanc` failed: {output}")
    return f"http://127.0.0.1:{os.environ.get('ORTHANC_PORT', '8042')}"


def _purge(store: DicomWebStore, patient: str = TEST_PATIENT) -> None:
    """Delete every study of a test patient (left over from this or an interrupted run)."""
    for study in store.search_studies({"PatientID": patient}):
        store.delete_study(json_value(study, "StudyInstanceUID"))


@contextmanager
def orthanc_configured(settings: Any, patient: str, needed_for: str) -> Iterator[DicomWebStore]:
    """The test Orthanc as the configured store (``settings.DICOMWEB_URL``); ``patient``'s studies are
    deleted after. A test module's Django fixture wraps it; Orthanc missing skips, or fails with CI=true."""
    try:
        base = _ensure_orthanc()
    except RuntimeError as exc:
        missing_service(f"Orthanc is required for {needed_for} and is not available: {exc}")
    store = DicomWebStore.for_orthanc(base, max_attempts=1)
    settings.DICOMWEB_URL = store.url
    try:
        yield store
    finally:
        _purge(store, patient)
        for study_uid in _deidentified_studies(patient):  # stored under a pseudonymous PatientID
            store.delete_study(study_uid)


def _deidentified_studies(patient: str) -> list[str]:
    """The stored UIDs of ``patient``'s studies that an import de-identified (Django tests only)."""
    from labeling.models import StudyDeidentification

    rows = StudyDeidentification.objects.filter(original_patient_id=patient)
    try:
        return list(rows.values_list("study__study_uid", flat=True))
    except RuntimeError:  # a test without database access imported nothing through Concord
        return []


@pytest.fixture(scope="session")
def orthanc_url() -> Iterator[str]:
    """Base URL of a running Orthanc, emptied of test studies before and after the session.

    When Orthanc cannot be started the tests are skipped, except under CI=true, where they fail.
    """
    try:
        url = _ensure_orthanc()
    except RuntimeError as exc:
        missing_service(f"Orthanc is required for the DICOMweb tests and is not available: {exc}")
    store = DicomWebStore.for_orthanc(url, max_attempts=1)
    _purge(store)
    yield url
    _purge(store)


@pytest.fixture
def dicomweb_store(orthanc_url: str) -> Iterator[DicomWebStore]:
    """A DicomWebStore on the test Orthanc; studies of the test patient are deleted after each test."""
    store = DicomWebStore.for_orthanc(orthanc_url, max_attempts=1)
    yield store
    _purge(store)


@pytest.fixture
def local_store(tmp_path: Path) -> LocalFolderStore:
    """A LocalFolderStore on an empty temporary folder."""
    return LocalFolderStore(tmp_path / "dicom")


@pytest.fixture(params=["dicomweb", "local"])
def store(request: pytest.FixtureRequest) -> DicomStore:
    """Each DicomStore implementation in turn, for the contract tests."""
    return request.getfixturevalue(f"{request.param}_store")


@pytest.fixture
def mr_series() -> list[Dataset]:
    """Three 32x32 MR slices of one fresh study (Explicit VR Little Endian), owned by the test patient."""
    return make_series(
        n_slices=3, rows=32, columns=32, modality="MR", description="T1", patient_id=TEST_PATIENT
    )
