"""Faults of the image stores. The image server (Orthanc) down or silent: 502 "image server unavailable" with
Retry-After, within bounded time, on every /dicomweb/ route and on the frames fast path; an import job pauses
and resumes. The local store's disk full: a clear error, no partial file, the import stops with that reason.

"Down" is a closed port on 127.0.0.1 (connection refused), "silent" a socket that accepts connections and never
answers; the import's resume runs against the real test Orthanc. A full disk is ENOSPC raised by pydicom's
file write (the boundary), after part of the file was written.
"""

from __future__ import annotations

import errno
import os
import socket
import time
from collections.abc import Iterator
from io import BytesIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from pydicom import dcmread
from pydicom.uid import generate_uid
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from labeling.api.dicomweb_auth import decisions
from labeling.api.dicomweb_fastpath import FramesFastPath
from labeling.dicom import DicomStoreFull, DicomStoreUnavailable, DicomWebStore, LocalFolderStore
from labeling.dicom import local as local_store_module
from labeling.dicom.local import INDEX_NAME
from labeling.models import Case, ImportJob
from labeling.services.identity import assignment_study_uid, assignment_uids
from labeling.services.ingest import import_job_create, import_job_run
from tests.labeling.dicom.conftest import orthanc_configured
from tests.labeling.dicom.dicom_factory import make_series, write_mri_study

PATIENT = f"PHANTOM-TEST-FAULTS-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
DOWN_DETAIL = "image server unavailable"


@pytest.fixture
def closed_port() -> int:
    """A port on 127.0.0.1 nothing listens on (connection refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections (the kernel's backlog) and never answers a byte."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(64)
        yield int(server.getsockname()[1])


@pytest.fixture
def reader(world, settings) -> APIClient:
    """The world's reader with a token (so that the DICOMweb decision cache, and the fast path, know them)."""
    settings.DICOMWEB_AUTH_CACHE_S = 60
    decisions.clear()
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=world.reader)[0].key}")
    yield api
    decisions.clear()


def dicomweb_paths(world) -> list[str]:
    """Every route, as the world's reader names their assignment's study: by its pseudonymous UIDs."""
    uids = assignment_uids(world.assignment)
    stored = world.case.study.series.order_by("id").first()
    series = uids.pseudo(stored.series_uid)
    sop = uids.pseudo(stored.instances.order_by("slice_index").first().sop_uid)
    base = f"/dicomweb/studies/{assignment_study_uid(world.assignment)}"
    instance = f"{base}/series/{series}/instances/{sop}"
    return [
        "/dicomweb/studies",
        f"{base}/series",
        f"{base}/metadata",
        f"{base}/series/{series}/metadata",
        f"{instance}/frames/1",
        f"{instance}/rendered",
    ]


def assert_image_server_down(response: Any) -> None:
    assert response.status_code == 502, response.content
    body = response.json()
    assert body["detail"].startswith(DOWN_DETAIL) and body["code"] == "image_server_unavailable"
    assert int(response["Retry-After"]) > 0


@pytest.mark.django_db
def test_an_image_server_that_is_down_is_a_502_with_retry_after_on_every_dicomweb_route(
    world, reader, settings, closed_port
):
    settings.DICOMWEB_URL = f"http://127.0.0.1:{closed_port}/dicom-web"
    for path in dicomweb_paths(world):
        began = time.monotonic()
        response = reader.get(path)
        assert_image_server_down(response)
        assert time.monotonic() - began < 3, path  # refused: answered at once, no retries piling up


@pytest.mark.django_db
def test_an_image_server_that_never_answers_is_a_502_after_the_read_timeout_not_a_hang(
    world, reader, settings, silent_port
):
    settings.DICOMWEB_URL = f"http://127.0.0.1:{silent_port}/dicom-web"
    settings.DICOMWEB_READ_TIMEOUT_S = 0.5
    for path in dicomweb_paths(world)[3:5]:  # metadata (dicomweb-client) and frames (streamed)
        began = time.monotonic()
        response = reader.get(path)
        assert_image_server_down(response)
        assert time.monotonic() - began < 3, path


@pytest.mark.django_db
@pytest.mark.parametrize("fault", ["down", "silent"])
def test_the_frames_fast_path_answers_the_same_502_as_django(
    world, reader, settings, closed_port, silent_port, fault
):
    port = closed_port if fault == "down" else silent_port
    settings.DICOMWEB_URL = f"http://127.0.0.1:{port}/dicom-web"
    settings.DICOMWEB_READ_TIMEOUT_S = 0.5
    frames = dicomweb_paths(world)[4]
    assert_image_server_down(reader.get(frames))  # Django authorised the reader and the series, then 502
    handled_by_django: list[str] = []

    def django(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        handled_by_django.append(environ["PATH_INFO"])
        start_response("200 OK", [])
        return [b""]

    answer: dict[str, Any] = {}
    token = Token.objects.get(user=world.reader).key
    began = time.monotonic()
    body = FramesFastPath(django)(
        {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": frames,
            "QUERY_STRING": "",
            "HTTP_AUTHORIZATION": f"Token {token}",
            "wsgi.input": BytesIO(),
        },
        lambda status, headers: answer.update(status=status, headers=dict(headers)),
    )
    assert time.monotonic() - began < 3
    assert handled_by_django == [] and answer["status"].startswith("502")
    assert answer["headers"]["Retry-After"] and DOWN_DETAIL.encode() in b"".join(body)


# --- imports pause and resume ----------------------------------------------------------------------------


@pytest.fixture
def orthanc(settings, tmp_path) -> Iterator[DicomWebStore]:
    settings.VAR_DIR = tmp_path / "var"
    settings.DEIDENTIFY_ON_IMPORT = False
    with orthanc_configured(settings, PATIENT, "the image server fault tests") as store:
        yield store


def mri_folder(folder) -> str:
    return write_mri_study(folder, n_slices=2, patient_id=PATIENT)[0]


@pytest.mark.django_db
def test_an_import_whose_image_server_is_down_pauses_and_resumes_when_it_is_back(
    world, orthanc, settings, tmp_path, closed_port
):
    study_uid = mri_folder(tmp_path / "in")
    job = import_job_create(
        actor=world.admin, project=world.project, source="upload", params={"folder": str(tmp_path / "in")}
    )
    settings.DICOMWEB_URL = f"http://127.0.0.1:{closed_port}/dicom-web"  # Orthanc is down
    with pytest.raises(DicomStoreUnavailable):  # the task retries it (and the recovery step re-sends it)
        import_job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == ImportJob.Status.QUEUED, job.error  # paused: neither failed nor finished
    assert job.error.startswith(f"{DOWN_DETAIL}: paused, will retry")
    assert job.problems == [] and not Case.objects.filter(study__study_uid=study_uid).exists()

    settings.DICOMWEB_URL = orthanc.url  # Orthanc is back
    job = import_job_run(job_id=job.pk)
    assert job.status == ImportJob.Status.SUCCEEDED and job.error == ""
    assert job.report["imported"] == [study_uid] and job.problems == []
    assert Case.objects.filter(project=world.project, study__study_uid=study_uid).exists()
    assert len(orthanc.search_instances(study_uid)) == 4


@pytest.mark.django_db
def test_the_import_command_says_the_image_server_is_unavailable_instead_of_a_traceback(
    world, settings, tmp_path, closed_port
):
    settings.VAR_DIR = tmp_path / "var"
    settings.DEIDENTIFY_ON_IMPORT = False
    settings.DICOMWEB_URL = f"http://127.0.0.1:{closed_port}/dicom-web"
    mri_folder(tmp_path / "in")
    with pytest.raises(CommandError, match=f"^{DOWN_DETAIL}: the import stopped; run the same command again"):
        call_command("import_studies", str(tmp_path / "in"), "--project", str(world.project.pk))


# --- the local store's disk is full -----------------------------------------------------------------------


@pytest.fixture
def full_disk(monkeypatch):
    """pydicom's file write fills the disk after part of the file (the 3rd instance written and later)."""
    real = local_store_module.dcmwrite
    written: list[int] = []

    def write(stream, dataset, **kwargs):
        if len(written) >= 2:
            stream.write(b"\0" * 2048)  # part of the file reached the disk
            raise OSError(errno.ENOSPC, "No space left on device")
        written.append(1)
        return real(stream, dataset, **kwargs)

    monkeypatch.setattr(local_store_module, "dcmwrite", write)


def files_under(root) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_a_full_local_store_is_a_clear_error_and_leaves_no_partial_file(tmp_path, full_disk):
    store = LocalFolderStore(tmp_path / "store")
    datasets = make_series(n_slices=2, rows=16, columns=16, study_uid=generate_uid(), seed=1)
    store.store(datasets)
    kept = files_under(tmp_path / "store")
    other_study = make_series(n_slices=1, rows=16, columns=16, study_uid=generate_uid(), seed=2)
    with pytest.raises(DicomStoreFull) as caught:
        store.store(other_study)
    assert str(caught.value).startswith("the local image store is full (no space left on the disk of")
    assert "was not stored; free disk space, then import again" in str(caught.value)
    assert files_under(tmp_path / "store") == kept  # no temporary file, no empty study/series folder
    assert len(store.search_instances()) == 2


@pytest.mark.django_db
def test_an_import_into_a_full_local_store_fails_with_that_reason_and_writes_nothing_partial(
    world, settings, tmp_path, full_disk
):
    settings.DICOMWEB_URL = ""
    settings.DICOM_FOLDER = tmp_path / "store"
    settings.VAR_DIR = tmp_path / "var"
    settings.DEIDENTIFY_ON_IMPORT = False
    mri_folder(tmp_path / "in")  # 4 instances: the disk is full at the 3rd
    job = import_job_create(
        actor=world.admin, project=world.project, source="upload", params={"folder": str(tmp_path / "in")}
    )
    with pytest.raises(DicomStoreFull):
        import_job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == ImportJob.Status.FAILED and job.error.startswith("the local image store is full")
    root = tmp_path / "store"
    files = [p for p in root.rglob("*") if p.is_file() and not p.name.startswith(INDEX_NAME)]
    assert all(not p.name.startswith(".") and dcmread(p).SOPInstanceUID for p in files)  # whole files only
    assert [d for d in root.rglob("*") if d.is_dir() and not any(d.iterdir())] == []  # no empty folder
    assert not Case.objects.filter(project=world.project).exclude(pk=world.case.pk).exists()
