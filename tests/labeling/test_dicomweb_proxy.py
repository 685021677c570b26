"""Concord's /dicomweb/ endpoint, exercised with dicomweb-client: local store and a real Orthanc behind it.

Full path against Orthanc: test series → STOW → QIDO import → proxy → frame bytes equal the source pixels.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import requests
from dicomweb_client.api import DICOMwebClient
from pydicom.uid import generate_uid
from rest_framework.authtoken.models import Token

from labeling.dicom import DicomWebStore
from labeling.dicom.store import json_value
from labeling.models import Assignment, Case
from labeling.services.ingest import import_dicomweb, import_paths
from tests.labeling.dicom.conftest import _ensure_orthanc
from tests.labeling.dicom.dicom_factory import make_series, write_series
from tests.services import missing_service

PATIENT = f"PHANTOM-TEST-PROXY-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"


def mri_datasets(seed: int = 0):
    study_uid, frame = generate_uid(), generate_uid()
    return [
        ds
        for i, description in enumerate(("T1", "STIR"))
        for ds in make_series(
            n_slices=2, rows=16, columns=16, study_uid=study_uid, frame_of_reference_uid=frame,
            description=description, patient_id=PATIENT, seed=seed + i,
        )
    ]  # fmt: skip


def client(base_url: str, user) -> DICOMwebClient:
    headers = {"Authorization": f"Token {Token.objects.get_or_create(user=user)[0].key}"} if user else {}
    dw = DICOMwebClient(url=f"{base_url}/dicomweb", headers=headers)
    dw.host = f"{dw.host}:{dw.port}"  # dicomweb-client drops the port from Host; URLs built from it would too
    return dw


def status_of(call) -> int:
    with pytest.raises(requests.HTTPError) as caught:
        call()
    return caught.value.response.status_code


def assign(world, case: Case, user, status: str = "open") -> Assignment:
    return Assignment.objects.create(project=world.project, case=case, reader=user, session=1, status=status)


@pytest.fixture
def local_setup(world, settings, tmp_path):
    """One MRI study imported into the world's project (local store), assigned to ``world.reader``."""
    settings.DICOMWEB_URL = ""
    settings.DICOM_FOLDER = tmp_path / "store"
    settings.VAR_DIR = tmp_path / "var"
    datasets = mri_datasets()
    paths = write_series(datasets[:2], tmp_path / "in" / "T1") + write_series(
        datasets[2:], tmp_path / "in" / "STIR"
    )
    report = import_paths(actor=None, paths=paths, project=world.project)
    case = Case.objects.get(pk=report.cases[0])
    assign(world, case, world.reader)
    return datasets, case


def test_reader_fetches_frames_metadata_and_rendered_of_an_assigned_study(local_setup, world, live_server):
    datasets, _ = local_setup
    first = datasets[0]
    uids = (first.StudyInstanceUID, first.SeriesInstanceUID, first.SOPInstanceUID)
    dw = client(live_server.url, world.reader)
    assert [json_value(s, "StudyInstanceUID") for s in dw.search_for_studies()] == [uids[0]]
    assert len(dw.search_for_series(uids[0])) == 2
    assert len(dw.search_for_instances(uids[0], uids[1])) == 2
    (frame,) = dw.retrieve_instance_frames(*uids, frame_numbers=[1])
    assert frame == first.PixelData
    frames = dw.retrieve_instance_frames(
        *uids, frame_numbers=[1], media_types=(("application/octet-stream", "*"),)
    )
    assert frames == [first.PixelData]
    metadata = dw.retrieve_series_metadata(uids[0], uids[1])
    assert sorted(json_value(m, "SOPInstanceUID") for m in metadata) == sorted(
        d.SOPInstanceUID for d in datasets[:2]
    )
    assert len(dw.retrieve_study_metadata(uids[0])) == 4
    assert dw.retrieve_instance_rendered(*uids, media_types=("image/png",))[:4] == b"\x89PNG"
    series = dw.retrieve_series(uids[0], uids[1])
    assert sorted(ds.SOPInstanceUID for ds in series) == sorted(d.SOPInstanceUID for d in datasets[:2])
    assert dw.retrieve_instance(*uids).PixelData == first.PixelData
    assert len(dw.retrieve_study(uids[0])) == 4


def test_everything_outside_the_readers_assignments_is_a_404_and_hidden_from_search(
    local_setup, world, live_server, settings
):
    settings.DICOMWEB_AUTH_CACHE_S = 0  # revocation below must take effect at once
    datasets, case = local_setup
    uids = (datasets[0].StudyInstanceUID, datasets[0].SeriesInstanceUID, datasets[0].SOPInstanceUID)
    other = client(live_server.url, world.other_reader)  # assigned to world.case only
    assert other.search_for_studies() == []
    assert status_of(lambda: other.retrieve_instance_frames(*uids, frame_numbers=[1])) == 404
    assert status_of(lambda: other.retrieve_series_metadata(uids[0], uids[1])) == 404
    assert status_of(lambda: other.search_for_series(uids[0])) == 404
    assert status_of(lambda: client(live_server.url, world.outsider).retrieve_study_metadata(uids[0])) == 404
    assert status_of(lambda: client(live_server.url, None).search_for_studies()) == 401
    Assignment.objects.filter(case=case, reader=world.reader).update(status="cancelled")
    assert status_of(lambda: client(live_server.url, world.reader).retrieve_study_metadata(uids[0])) == 404
    adjudicator = client(live_server.url, world.adjudicator)
    assert uids[0] in [json_value(s, "StudyInstanceUID") for s in adjudicator.search_for_studies()]
    assert adjudicator.retrieve_instance_frames(*uids, frame_numbers=[1]) == [datasets[0].PixelData]


def test_session_auth_accept_and_bad_frame_numbers(local_setup, world, client_for):
    datasets, _ = local_setup
    first = datasets[0]
    url = f"/dicomweb/studies/{first.StudyInstanceUID}/series/{first.SeriesInstanceUID}/instances/{first.SOPInstanceUID}"
    from django.test import Client

    browser = Client()
    browser.force_login(world.reader)
    ok = browser.get(f"{url}/frames/1")
    assert ok.status_code == 200 and ok["Content-Type"].startswith(
        'multipart/related; type="application/octet-stream"'
    )
    assert "max-age" in ok["Cache-Control"]
    jpeg = browser.get(f"{url}/frames/1", HTTP_ACCEPT='multipart/related; type="image/jpeg"')
    assert jpeg.status_code == 406
    assert browser.get(f"{url}/frames/2").status_code == 404  # single-frame instance
    assert browser.get("/dicomweb/studies?NoSuchKey=1").status_code == 400


# --- against a real Orthanc ----------------------------------------------------------------------------


@pytest.fixture
def orthanc(settings) -> Iterator[DicomWebStore]:
    """The test Orthanc as the configured store; the proxy test patient's studies are deleted after."""
    try:
        base = _ensure_orthanc()
    except RuntimeError as exc:
        missing_service(f"Orthanc is required for the proxy tests and is not available: {exc}")
    store = DicomWebStore.for_orthanc(base, max_attempts=1)
    settings.DICOMWEB_URL = store.url
    yield store
    for study in store.search_studies({"PatientID": PATIENT}):
        store.delete_study(json_value(study, "StudyInstanceUID"))


def test_orthanc_stow_qido_import_proxy_frames_equal_source(orthanc, world, live_server, tmp_path, settings):
    settings.VAR_DIR = tmp_path / "var"
    datasets = mri_datasets(seed=3)
    orthanc.store(datasets)
    report = import_dicomweb(
        actor=world.admin, url=orthanc.url, filters={"PatientID": PATIENT}, project=world.project
    )
    assert report.imported == [datasets[0].StudyInstanceUID] and not report.problems
    assign(world, Case.objects.get(pk=report.cases[0]), world.reader)
    dw = client(live_server.url, world.reader)
    assert [json_value(s, "StudyInstanceUID") for s in dw.search_for_studies()] == [
        datasets[0].StudyInstanceUID
    ]
    for ds in datasets:
        uids = (ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID)
        assert dw.retrieve_instance_frames(*uids, frame_numbers=[1]) == [ds.PixelData]
    metadata = dw.retrieve_series_metadata(datasets[0].StudyInstanceUID, datasets[0].SeriesInstanceUID)
    uris = [m["7FE00010"]["BulkDataURI"] for m in metadata if "BulkDataURI" in m.get("7FE00010", {})]
    assert uris and all(u.startswith(f"{live_server.url}/dicomweb/studies/") for u in uris)
    first = datasets[0]
    uids = (first.StudyInstanceUID, first.SeriesInstanceUID, first.SOPInstanceUID)
    assert dw.retrieve_instance_rendered(*uids, media_types=("image/png",))[:4] == b"\x89PNG"
    assert dw.retrieve_instance_rendered(*uids)[:2] == b"\xff\xd8"  # the server's default: JPEG
    other = client(live_server.url, world.other_reader)
    assert other.search_for_studies() == []
    assert status_of(lambda: other.retrieve_instance_frames(first.StudyInstanceUID, first.SeriesInstanceUID,
                                                           first.SOPInstanceUID, frame_numbers=[1])) == 404  # fmt: skip
    again = import_dicomweb(
        actor=world.admin, url=orthanc.url, filters={"PatientID": PATIENT}, project=world.project
    )
    assert again.skipped == [first.StudyInstanceUID] and again.imported == []
    (instance,) = [d for d in dw.retrieve_series(*uids[:2]) if d.SOPInstanceUID == first.SOPInstanceUID]
    assert instance.PixelData == first.PixelData


def test_orthanc_import_to_the_local_store_copies_the_pixels(orthanc, world, tmp_path):
    datasets = mri_datasets(seed=5)
    orthanc.store(datasets)
    from labeling.dicom import LocalFolderStore

    local = LocalFolderStore(tmp_path / "local")
    report = import_dicomweb(actor=None, url=orthanc.url, filters={"PatientID": PATIENT}, store=local)
    assert report.imported == [datasets[0].StudyInstanceUID]
    first = datasets[0]
    assert local.frames(first.StudyInstanceUID, first.SeriesInstanceUID, first.SOPInstanceUID, [1]) == [
        first.PixelData
    ]


def test_dicomweb_import_api_queues_a_job_that_imports_the_qido_matches(
    orthanc, world, client_for, tmp_path, settings, django_capture_on_commit_callbacks
):
    from unittest import mock

    from labeling.services.ingest import import_job_run
    from labeling.tasks import import_job_run_task

    settings.VAR_DIR = tmp_path / "var"
    datasets = mri_datasets(seed=9)
    orthanc.store(datasets)
    with (
        mock.patch.object(
            import_job_run_task, "delay", side_effect=lambda job_id: import_job_run(job_id=job_id)
        ),
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = client_for(world.admin).post(
            f"/api/projects/{world.project.pk}/imports/dicomweb/",
            {"filters": {"PatientID": PATIENT}},
            format="json",
        )
    assert response.status_code == 202, response.content
    job = (
        client_for(world.admin)
        .get(f"/api/projects/{world.project.pk}/imports/{response.json()['id']}/")
        .json()
    )
    assert job["status"] == "succeeded" and job["done"] == job["total"] == 4
    assert job["report"]["imported"] == [datasets[0].StudyInstanceUID]
    assert Case.objects.filter(project=world.project, study__study_uid=datasets[0].StudyInstanceUID).exists()


def test_import_studies_command_imports_a_qido_query(orthanc, world, tmp_path, settings, capsys):
    from django.core.management import call_command

    settings.VAR_DIR = tmp_path / "var"
    datasets = mri_datasets(seed=11)
    orthanc.store(datasets)
    call_command(
        "import_studies", orthanc.url, "--query", f"PatientID={PATIENT}", "--project", str(world.project.pk)
    )
    assert (
        "imported 1 studies, skipped 0 already known, created 1 cases, 0 problems" in capsys.readouterr().out
    )
    assert Case.objects.filter(project=world.project, study__study_uid=datasets[0].StudyInstanceUID).exists()
