"""Concord's /dicomweb/ endpoint, exercised with dicomweb-client: local store and a real Orthanc behind it.

Full path against Orthanc: test series → STOW → QIDO import → proxy → frame bytes equal the source pixels.
"""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Callable, Iterator
from functools import partial
from io import BytesIO
from typing import Any

import pytest
import requests
from dicomweb_client.api import DICOMwebClient
from django.test import Client
from pydicom.dataset import Dataset
from rest_framework.authtoken.models import Token

from config.celery import app
from labeling.api.dicomweb_auth import decisions
from labeling.api.dicomweb_fastpath import FramesFastPath
from labeling.dicom import DicomWebStore
from labeling.dicom.cache import DecisionCache
from labeling.dicom.store import json_value
from labeling.models import Assignment, Case, Instance, Membership, Series
from labeling.services.identity import assignment_study_uid, assignment_uids
from labeling.services.ingest import import_dicomweb, import_paths
from tests.labeling.dicom.conftest import orthanc_configured
from tests.labeling.dicom.dicom_factory import make_mri_study, write_study
from tests.labeling.dicom.stub_dicomweb import StubDicomWeb, serving
from tests.labeling.factories import ProjectFactory
from tests.labeling.processes import celery_worker_cmd, process_env, running, wait_until

PATIENT = f"PHANTOM-TEST-PROXY-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"


@pytest.fixture(autouse=True)
def _stored_as_received(settings):
    """Files stored as received: these tests compare the proxy's answers with the files' own UIDs."""
    settings.DEIDENTIFY_ON_IMPORT = False


def mri_datasets(seed: int = 0) -> list[Dataset]:
    """A T1 + STIR study of two slices a series, of the proxy tests' patient."""
    return make_mri_study(n_slices=2, patient_id=PATIENT, seed=seed)


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


def read_as(assignment: Assignment, ds) -> tuple[str, str, str]:
    """Study, series and instance UIDs of ``ds`` as the reader of ``assignment`` addresses them: the
    assignment's pseudonymous UIDs, the only ones that reach its study for a reader (issue 13)."""
    uids = assignment_uids(assignment)
    return uids.pseudo(ds.StudyInstanceUID), uids.pseudo(ds.SeriesInstanceUID), uids.pseudo(ds.SOPInstanceUID)


def stored(ds) -> tuple[str, str, str]:
    """Study, series and instance UIDs of ``ds`` as stored (staff, project admins and adjudicators)."""
    return ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID


@pytest.fixture
def local_setup(world, settings, tmp_path):
    """One MRI study imported into the world's project (local store), assigned to ``world.reader``."""
    settings.DICOMWEB_URL = ""
    settings.DICOM_FOLDER = tmp_path / "store"
    settings.VAR_DIR = tmp_path / "var"
    datasets = mri_datasets()
    report = import_paths(actor=None, paths=write_study(datasets, tmp_path / "in"), project=world.project)
    case = Case.objects.get(pk=report.cases[0])
    assign(world, case, world.reader)
    return datasets, case


def test_reader_fetches_frames_metadata_and_rendered_of_an_assigned_study(local_setup, world, live_server):
    datasets, case = local_setup
    first = datasets[0]
    dw = client(live_server.url, world.reader)
    assignment = Assignment.objects.get(reader=world.reader, case=case)
    pseudo = assignment_uids(assignment).pseudo
    uids = read_as(assignment, first)  # what the reader's assignment API hands the viewer
    # a search names the reader's assignment by its own pseudonymous UID, never the stored one
    assert (
        [json_value(s, "StudyInstanceUID") for s in dw.search_for_studies()]
        == [assignment_study_uid(assignment)]
        == [uids[0]]
    )
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
        pseudo(d.SOPInstanceUID) for d in datasets[:2]
    )
    assert len(dw.retrieve_study_metadata(uids[0])) == 4
    assert dw.retrieve_instance_rendered(*uids, media_types=("image/png",))[:4] == b"\x89PNG"
    series = dw.retrieve_series(uids[0], uids[1])
    assert sorted(ds.SOPInstanceUID for ds in series) == sorted(
        pseudo(d.SOPInstanceUID) for d in datasets[:2]
    )
    assert dw.retrieve_instance(*uids).PixelData == first.PixelData
    assert len(dw.retrieve_study(uids[0])) == 4


def test_everything_outside_the_readers_assignments_is_a_404_and_hidden_from_search(
    local_setup, world, live_server, settings
):
    settings.DICOMWEB_AUTH_CACHE_S = 0  # revocation below must take effect at once
    datasets, case = local_setup
    uids = stored(datasets[0])
    # the reader's own UIDs for the study: another reader, or an outsider, who learnt them gets nothing more
    read = read_as(Assignment.objects.get(case=case, reader=world.reader), datasets[0])
    other = client(live_server.url, world.other_reader)  # assigned to world.case only
    outsider = client(live_server.url, world.outsider)
    assert other.search_for_studies() == []
    for names in (uids, read):
        assert status_of(lambda names=names: other.retrieve_instance_frames(*names, frame_numbers=[1])) == 404
        assert status_of(lambda names=names: other.retrieve_series_metadata(*names[:2])) == 404
        assert status_of(lambda names=names: other.search_for_series(names[0])) == 404
        assert status_of(lambda names=names: outsider.retrieve_study_metadata(names[0])) == 404
    assert status_of(lambda: client(live_server.url, None).search_for_studies()) == 401
    reader = client(live_server.url, world.reader)
    assert len(reader.retrieve_study_metadata(read[0])) == 4
    Assignment.objects.filter(case=case, reader=world.reader).update(status="cancelled")
    assert reader.search_for_studies() == []
    assert status_of(lambda: reader.retrieve_study_metadata(read[0])) == 404
    assert status_of(lambda: reader.retrieve_instance_frames(*read, frame_numbers=[1])) == 404
    adjudicator = client(live_server.url, world.adjudicator)
    assert uids[0] in [json_value(s, "StudyInstanceUID") for s in adjudicator.search_for_studies()]
    assert adjudicator.retrieve_instance_frames(*uids, frame_numbers=[1]) == [datasets[0].PixelData]


def test_session_auth_accept_and_bad_frame_numbers(local_setup, world, client_for):
    datasets, case = local_setup
    study, series, sop = read_as(Assignment.objects.get(case=case, reader=world.reader), datasets[0])
    url = f"/dicomweb/studies/{study}/series/{series}/instances/{sop}"

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
    with orthanc_configured(settings, PATIENT, "the proxy tests") as store:
        yield store


def test_orthanc_stow_qido_import_proxy_frames_equal_source(orthanc, world, live_server, tmp_path, settings):
    settings.VAR_DIR = tmp_path / "var"
    datasets = mri_datasets(seed=3)
    orthanc.store(datasets)
    report = import_dicomweb(
        actor=world.admin, url=orthanc.url, filters={"PatientID": PATIENT}, project=world.project
    )
    assert report.imported == [datasets[0].StudyInstanceUID] and not report.problems
    assignment = assign(world, Case.objects.get(pk=report.cases[0]), world.reader)
    dw = client(live_server.url, world.reader)
    assert [json_value(s, "StudyInstanceUID") for s in dw.search_for_studies()] == [
        assignment_study_uid(assignment)
    ]
    adjudicator = client(live_server.url, world.adjudicator)  # the stored UIDs: same pixels
    for ds in datasets:
        assert dw.retrieve_instance_frames(*read_as(assignment, ds), frame_numbers=[1]) == [ds.PixelData]
        assert adjudicator.retrieve_instance_frames(*stored(ds), frame_numbers=[1]) == [ds.PixelData]
    first = datasets[0]
    uids = read_as(assignment, first)
    metadata = dw.retrieve_series_metadata(*uids[:2])
    uris = [m["7FE00010"]["BulkDataURI"] for m in metadata if "BulkDataURI" in m.get("7FE00010", {})]
    assert uris and all(u.startswith(f"{live_server.url}/dicomweb/studies/{uids[0]}/") for u in uris)
    assert dw.retrieve_instance_rendered(*uids, media_types=("image/png",))[:4] == b"\x89PNG"
    assert dw.retrieve_instance_rendered(*uids)[:2] == b"\xff\xd8"  # the server's default: JPEG
    other = client(live_server.url, world.other_reader)
    assert other.search_for_studies() == []
    for names in (uids, stored(first)):
        assert status_of(lambda names=names: other.retrieve_instance_frames(*names, frame_numbers=[1])) == 404
    again = import_dicomweb(
        actor=world.admin, url=orthanc.url, filters={"PatientID": PATIENT}, project=world.project
    )
    assert again.skipped == [first.StudyInstanceUID] and again.imported == []
    (instance,) = [d for d in dw.retrieve_series(*uids[:2]) if d.SOPInstanceUID == uids[2]]
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


@pytest.mark.django_db(transaction=True)
def test_dicomweb_import_api_queues_a_job_that_a_real_worker_runs_with_progress(
    orthanc, world, client_for, tmp_path
):
    app.control.purge()
    datasets = mri_datasets(seed=9)
    orthanc.store(datasets)
    env = process_env(
        DICOMWEB_URL=orthanc.url, CONCORD_VAR_DIR=str(tmp_path / "var"), DEIDENTIFY_ON_IMPORT="false"
    )
    admin = client_for(world.admin)
    with running(celery_worker_cmd("default"), env, tmp_path / "worker.log"):
        response = admin.post(
            f"/api/projects/{world.project.pk}/imports/dicomweb/",
            {"filters": {"PatientID": PATIENT}},
            format="json",
        )
        assert response.status_code == 202, response.content
        url = f"/api/projects/{world.project.pk}/imports/{response.json()['id']}/"
        seen: list[tuple[str, int, int]] = []

        def finished() -> bool:
            job = admin.get(url).json()
            seen.append((job["status"], job["done"], job["total"]))
            return job["status"] in ("succeeded", "failed")

        wait_until(finished, timeout_s=120, what="the worker to run the import job")
    assert seen[-1] == ("succeeded", 4, 4), (tmp_path / "worker.log").read_text()[-2000:]
    done = [d for _, d, _ in seen]
    assert done == sorted(done)  # progress only moves forward
    job = admin.get(url).json()
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


# --- the frames fast path (config.wsgi) -------------------------------------------------------------------
# It serves only what the full Django path has just authorised. The live server runs that full path in a
# thread of this process, so its decisions land in the per-process cache the fast path reads; the fast path is
# then called as WSGI with an inner app that records whether a request fell through to Django.

FELL_THROUGH = b"django answered"


class Recorder:
    """The inner WSGI app: notes each request that reached it and answers a marker."""

    def __init__(self) -> None:
        self.paths: list[str] = []

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        self.paths.append(environ["PATH_INFO"])
        start_response("599 Fell Through", [("Content-Type", "text/plain")])
        return [FELL_THROUGH]


def call(app: FramesFastPath, path: str, **environ: str) -> tuple[str, dict[str, str], bytes]:
    answer: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        answer.update(status=status, headers=dict(headers))

    body = app(
        {"REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": "", "wsgi.input": BytesIO(), **environ},
        start_response,
    )
    try:
        data = b"".join(body)
    finally:
        getattr(body, "close", lambda: None)()
    return answer["status"], answer["headers"], data


@pytest.fixture
def imported(orthanc, world, settings, tmp_path):
    settings.VAR_DIR = tmp_path / "var"
    settings.DICOMWEB_AUTH_CACHE_S = 60
    decisions.clear()
    datasets = mri_datasets(seed=7)
    orthanc.store(datasets)
    report = import_dicomweb(
        actor=None, url=orthanc.url, filters={"PatientID": PATIENT}, project=world.project
    )
    assign(world, Case.objects.get(pk=report.cases[0]), world.reader)
    yield datasets
    decisions.clear()


def reader_assignment(world, imported) -> Assignment:
    """``world.reader``'s assignment of the imported study."""
    return Assignment.objects.get(reader=world.reader, case__study__study_uid=imported[0].StudyInstanceUID)


def frame_path(ds, frame: str = "1") -> str:
    """The frame of ``ds`` under its stored UIDs (the path of site staff, project admins and adjudicators)."""
    return (
        f"/dicomweb/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}/instances/"
        f"{ds.SOPInstanceUID}/frames/{frame}"
    )


def test_authorised_frames_stream_from_orthanc_without_django(imported, world, live_server):
    """The stored UIDs' fast path: an adjudicator's viewer (a reader's is below, under pseudonymous UIDs)."""
    t1 = imported[0]
    token = Token.objects.get_or_create(user=world.adjudicator)[0].key
    auth = {"HTTP_AUTHORIZATION": f"Token {token}"}
    inner = Recorder()
    app = FramesFastPath(inner)

    # before Django has seen this adjudicator and series, the request goes to Django
    assert call(app, frame_path(t1), **auth)[2] == FELL_THROUGH
    client(live_server.url, world.adjudicator).retrieve_instance_frames(*stored(t1), frame_numbers=[1])
    inner.paths.clear()
    for ds in imported[:2]:  # both slices of the series Django authorised
        status, headers, body = call(app, frame_path(ds), **auth)
        assert status == "200 OK" and headers["Content-Type"].startswith("multipart/related")
        assert ds.PixelData in body and int(headers["Content-Length"]) == len(body)
        assert "max-age" in headers["Cache-Control"]
    assert inner.paths == []

    stir = imported[2]  # same study, a series Django has not authorised for this adjudicator yet
    other_token = Token.objects.get_or_create(user=world.other_reader)[0].key
    # the reader of the study, authenticated by Django just now, asks under the stored UIDs: a 404 there, and
    # the fast path (which knows the token, and the series for the adjudicator only) leaves it to Django
    reader_token = Token.objects.get_or_create(user=world.reader)[0].key
    reader = {"Authorization": f"Token {reader_token}"}
    assert requests.get(live_server.url + frame_path(t1), headers=reader, timeout=30).status_code == 404
    unknown_instance = frame_path(t1).replace(t1.SOPInstanceUID, f"{t1.SOPInstanceUID}.9")
    for path, extra in [
        (frame_path(stir), auth),
        (frame_path(t1), {"HTTP_AUTHORIZATION": f"Token {other_token}"}),
        (frame_path(t1), {"HTTP_AUTHORIZATION": f"Token {reader_token}"}),
        (frame_path(t1), {"HTTP_AUTHORIZATION": "Token not-a-token"}),
        (frame_path(t1), {"HTTP_AUTHORIZATION": f"Bearer {token}"}),
        (frame_path(t1), {}),
        (unknown_instance, auth),  # Orthanc answers 404: Django words the error
        (frame_path(t1).replace("/frames/1", "/metadata"), auth),
        (frame_path(t1, "0"), auth),
    ]:
        assert call(app, path, **extra)[2] == FELL_THROUGH, path
    assert call(app, frame_path(t1), QUERY_STRING="x=1", **auth)[2] == FELL_THROUGH


def pseudonymous_frame_path(assignment: Assignment, ds, frame: str = "1") -> str:
    """The frame of ``ds`` as the reader of ``assignment`` addresses it (the assignment's own UIDs)."""
    uids = assignment_uids(assignment)
    study, series, sop = (
        uids.pseudo(u) for u in (ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID)
    )
    return f"/dicomweb/studies/{study}/series/{series}/instances/{sop}/frames/{frame}"


def test_a_readers_frames_under_pseudonymous_uids_take_the_fast_path_once_django_authorised_them(
    imported, world, live_server
):
    """Before: the fast path knew stored UIDs only, so every frame a reader's viewer fetched under the
    assignment's pseudonymous UIDs went through Django. Now the first one leaves its mapping behind."""
    assignment = reader_assignment(world, imported)
    t1 = imported[0]
    token = Token.objects.get_or_create(user=world.reader)[0].key
    auth = {"HTTP_AUTHORIZATION": f"Token {token}"}
    inner = Recorder()
    app = FramesFastPath(inner)
    assert call(app, pseudonymous_frame_path(assignment, t1), **auth)[2] == FELL_THROUGH
    warm = requests.get(
        live_server.url + pseudonymous_frame_path(assignment, t1), headers={"Authorization": f"Token {token}"}
    )
    assert warm.status_code == 200 and t1.PixelData in warm.content
    # Orthanc names each frame part by its own URL (stored UIDs): the reader's answer does not
    assert t1.SOPInstanceUID.encode() not in warm.content and b"Content-Location" not in warm.content
    inner.paths.clear()
    for ds in imported[:2]:  # both slices of the series Django authorised, under the reader's UIDs
        status, _, body = call(app, pseudonymous_frame_path(assignment, ds), **auth)
        assert status == "200 OK" and ds.PixelData in body, ds.SOPInstanceUID
        text = body.decode("latin-1")
        assert ds.SOPInstanceUID not in text and ds.StudyInstanceUID not in text  # no stored UID comes back
    assert inner.paths == []

    other_token = Token.objects.get_or_create(user=world.other_reader)[0].key
    path = pseudonymous_frame_path(assignment, imported[1])
    unknown = path.replace("/frames/1", "").rsplit("/", 1)[0] + f"/{t1.SOPInstanceUID}/frames/1"  # stored UID
    for candidate, extra in [
        (pseudonymous_frame_path(assignment, imported[2]), auth),  # the STIR series: not authorised yet
        (path, {"HTTP_AUTHORIZATION": f"Token {other_token}"}),  # another reader, same pseudonyms
        (unknown, auth),  # a stored instance UID inside the pseudonymous series: Django words the 404
        (path, {}),
    ]:
        assert call(app, candidate, **extra)[2] == FELL_THROUGH, candidate
    assert (
        requests.get(live_server.url + unknown, headers={"Authorization": f"Token {token}"}).status_code
        == 404
    )

    assignment.status = Assignment.Status.CANCELLED  # the same revocation as for stored UIDs
    assignment.save()
    assert call(app, path, **auth)[2] == FELL_THROUGH
    assert (
        requests.get(live_server.url + path, headers={"Authorization": f"Token {token}"}).status_code == 404
    )


def test_a_browser_session_authorised_by_django_is_served_by_the_fast_path(imported, world, live_server):
    """A reader's browser: the viewer asks for the assignment's frames under its pseudonymous UIDs."""
    t1 = imported[0]
    assignment = reader_assignment(world, imported)
    browser = Client()
    browser.force_login(world.reader)
    session_key = browser.cookies["sessionid"].value
    inner = Recorder()
    app = FramesFastPath(inner)
    cookie = {"HTTP_COOKIE": f"csrftoken=x; sessionid={session_key}"}
    first = pseudonymous_frame_path(assignment, t1)
    assert call(app, first, **cookie)[2] == FELL_THROUGH
    warm = requests.get(live_server.url + first, cookies={"sessionid": session_key}, timeout=30)
    assert warm.status_code == 200
    status, _, body = call(app, pseudonymous_frame_path(assignment, imported[1]), **cookie)
    assert status == "200 OK" and imported[1].PixelData in body
    assert inner.paths == [first]  # only the first frame went through Django
    assert call(app, first, HTTP_COOKIE="sessionid=someone-else")[2] == FELL_THROUGH
    assert call(app, frame_path(imported[1]), **cookie)[2] == FELL_THROUGH  # stored UIDs: Django's 404


@pytest.fixture
def frame_cache_on(settings, tmp_path):
    settings.FRAME_CACHE_MB = 64
    settings.FRAME_CACHE_DIR = tmp_path / "frame-cache"


def test_frames_fetched_once_are_answered_from_the_frame_cache_after_the_same_checks(
    imported, world, live_server, orthanc, frame_cache_on
):
    """Issue 16: every frame went to Orthanc, which parses the DICOM file again for each. Now the fast path
    keeps what it fetched: the next request of the frame, by any caller the full path authorised, is answered
    from local disk, even once the image server no longer has it; a reader's copy names no stored UID."""
    t1, t1b = imported[0], imported[1]
    assignment = reader_assignment(world, imported)
    app, reader, reader_path = warm_fast_path(
        imported, world, live_server, token=Token.objects.get_or_create(user=world.reader)[0].key
    )
    adjudicator_token = Token.objects.get_or_create(user=world.adjudicator)[0].key
    app, adjudicator, stored_path = warm_fast_path(
        imported, world, live_server, frame_path, token=adjudicator_token
    )
    before = {
        path: call(app, path, **who) for path, who in ((reader_path, reader), (stored_path, adjudicator))
    }
    orthanc.delete_study(t1.StudyInstanceUID)  # from now on only the cache has these pixels

    for path, who in ((reader_path, reader), (stored_path, adjudicator)):
        status, headers, body = call(app, path, **who)
        assert status == "200 OK" and t1b.PixelData in body and body == before[path][2], path
        assert {k: headers[k] for k in ("Content-Type", "Cache-Control", "Vary")} == {
            k: before[path][1][k] for k in ("Content-Type", "Cache-Control", "Vary")
        }
        assert int(headers["Content-Length"]) == len(body)
    reader_body = call(app, reader_path, **reader)[2].decode("latin-1")
    assert t1b.SOPInstanceUID not in reader_body and "Content-Location" not in reader_body

    other = {"HTTP_AUTHORIZATION": f"Token {Token.objects.get_or_create(user=world.other_reader)[0].key}"}
    for path, who in [
        (reader_path, other),  # cached, but not this reader's: the checks come first
        (reader_path, {}),
        (stored_path, reader),  # the reader may not use the stored UIDs, cached or not
        (pseudonymous_frame_path(assignment, t1), reader),  # Django's first frame: never kept, gone upstream
    ]:
        assert call(app, path, **who)[2] == FELL_THROUGH, path


def test_a_readers_series_metadata_is_kept_for_the_series_next_reader(
    imported, world, live_server, orthanc, frame_cache_on
):
    """Issue 16: a series' metadata cost the image server a read of every file of the series, for every reader
    who opened it. Now the first reader's answer is kept: the next reader of the case is answered under their
    own pseudonymous UIDs without the image server; once the study gained an object, the entry is not used."""
    t1 = imported[0]
    first = reader_assignment(world, imported)
    second = assign(world, first.case, world.other_reader)
    series = [ds for ds in imported if ds.SeriesInstanceUID == t1.SeriesInstanceUID]
    metadata = client(live_server.url, world.reader).retrieve_series_metadata(*read_as(first, t1)[:2])
    assert len(metadata) == len(series)
    orthanc.delete_study(t1.StudyInstanceUID)  # from now on only the cache has the metadata

    kept = client(live_server.url, world.other_reader).retrieve_series_metadata(*read_as(second, t1)[:2])
    assert sorted(json_value(ds, "SOPInstanceUID") for ds in kept) == sorted(
        read_as(second, ds)[2] for ds in series
    )
    assert not {ds.SOPInstanceUID for ds in series} & {json_value(ds, "SOPInstanceUID") for ds in kept}

    Instance.objects.create(  # an import into the study: the UID map, and so the entry's key, changes
        series=Series.objects.get(series_uid=t1.SeriesInstanceUID), sop_uid="2.25.16161616", slice_index=99
    )
    decisions.clear()  # the readers' UID maps are cached for DICOMWEB_AUTH_CACHE_S
    again = client(live_server.url, world.other_reader)
    assert status_of(lambda: again.retrieve_series_metadata(*read_as(second, t1)[:2])) == 404


def test_a_frame_cache_that_cannot_be_written_still_serves_every_frame(
    imported, world, live_server, settings, tmp_path, caplog
):
    (tmp_path / "a-file").write_text("not a folder")
    settings.FRAME_CACHE_MB = 64
    settings.FRAME_CACHE_DIR = tmp_path / "a-file" / "frame-cache"
    token = Token.objects.get_or_create(user=world.reader)[0].key
    with caplog.at_level("WARNING", logger="labeling.dicom.frame_cache"):
        app, reader, path = warm_fast_path(imported, world, live_server, token=token)  # 200 with the pixels
        status, _, body = call(app, path, **reader)
    assert status == "200 OK" and imported[1].PixelData in body
    assert "frame cache" in caplog.text


def test_a_kept_frame_is_asked_of_the_image_server_again_after_its_lifetime(
    stub_upstream, world, settings, frame_cache_on
):
    settings.FRAME_CACHE_TTL_S = 0.3
    token = Token.objects.get_or_create(user=world.reader)[0]
    decisions.put(("study", world.reader.pk, "1.2", "3.4"), True)  # as if Django had just authorised it
    decisions.put(("token", token.key), (world.reader, token))
    app = FramesFastPath(Recorder())
    path = "/dicomweb/studies/1.2/series/3.4/instances/5.6/frames/1"
    answers = [call(app, path, HTTP_AUTHORIZATION=f"Token {token.key}") for _ in range(3)]
    assert len(stub_upstream.requests) == 1 and all(a == answers[0] for a in answers)
    assert answers[0][0] == "200 OK" and b"FRAME" in answers[0][2]
    time.sleep(0.4)
    assert call(app, path, HTTP_AUTHORIZATION=f"Token {token.key}")[0] == "200 OK"
    assert len(stub_upstream.requests) == 2


def test_without_a_decision_cache_every_frame_goes_through_django(imported, world, live_server, settings):
    settings.DICOMWEB_AUTH_CACHE_S = 0  # revocation takes effect at once, at the price of the fast path
    t1 = imported[0]
    assignment = reader_assignment(world, imported)
    token = Token.objects.get_or_create(user=world.reader)[0].key
    reader = client(live_server.url, world.reader)
    assert reader.retrieve_instance_frames(*read_as(assignment, t1), frame_numbers=[1]) == [t1.PixelData]
    app = FramesFastPath(Recorder())
    for path in (pseudonymous_frame_path(assignment, t1), pseudonymous_frame_path(assignment, imported[1])):
        assert call(app, path, HTTP_AUTHORIZATION=f"Token {token}")[2] == FELL_THROUGH


# --- hole 13: the fast path serves exactly the Django route, and forgets a decision when a right goes ------------


@pytest.fixture
def stub_upstream(settings, tmp_path) -> Iterator[StubDicomWeb]:
    with serving() as server:
        settings.DICOMWEB_URL = server.url
        settings.DICOMWEB_AUTH_CACHE_S = 60
        settings.VAR_DIR = tmp_path / "var"
        decisions.clear()
        yield server
    decisions.clear()


def test_the_fast_path_serves_exactly_what_the_django_frames_route_accepts(stub_upstream, world):
    from django.urls import Resolver404, resolve

    from labeling.api.dicomweb_views import FramesApi

    token = Token.objects.get_or_create(user=world.reader)[0]
    long_uid = ".".join(["1"] * 40)  # 79 characters: the route takes it, the old pattern did not
    study, series = "1.2", "3.4"
    decisions.put(("study", world.reader.pk, study, series), True)  # as if Django had just authorised it
    decisions.put(("token", token.key), (world.reader, token))
    base = f"/dicomweb/studies/{study}/series/{series}/instances"
    paths = {
        f"{base}/../frames/1": False,
        f"{base}/./frames/1": False,
        f"{base}/5..6/frames/1": False,
        f"{base}/5.6./frames/1": False,
        f"{base}/.5/frames/1": False,
        f"{base}/5.6/frames/0": False,  # routed, but Django answers 400
        f"{base}/5.6/frames/1,0": False,
        f"{base}/5.6/frames/1/": False,
        f"{base}/5.6/frames/1": True,
        f"{base}/5.6/frames/1,2": True,
        f"{base}/{long_uid}/frames/1": True,
    }
    app = FramesFastPath(Recorder())
    for path, served in paths.items():
        try:
            routed = resolve(path).func.view_class is FramesApi  # type: ignore[attr-defined]
        except Resolver404:
            routed = False
        assert routed or not served, path
        stub_upstream.requests.clear()
        status, _, body = call(app, path, HTTP_AUTHORIZATION=f"Token {token.key}")
        assert (status == "200 OK") is served, path
        assert (body == FELL_THROUGH) is not served, path
        assert bool(stub_upstream.requests) is served, path  # nothing the route refuses reaches the server


def warm_fast_path(
    imported, world, live_server, path: Callable[[Any], str] | None = None, **credentials: str
) -> tuple[FramesFastPath, dict[str, str], str]:
    """Authorise a T1 series through Django, and check the fast path then serves its frames; returns the app,
    the credentials and the path of the second T1 frame. ``path`` names a frame (default: as the reader's
    viewer does, under the assignment's pseudonymous UIDs)."""
    if path is None:
        assignment = reader_assignment(world, imported)
        path = partial(pseudonymous_frame_path, assignment)
    if "token" in credentials:
        environ = {"HTTP_AUTHORIZATION": f"Token {credentials['token']}"}
        warm = requests.get(
            live_server.url + path(imported[0]),
            headers={"Authorization": environ["HTTP_AUTHORIZATION"]},
            timeout=30,
        )
    else:
        environ = {"HTTP_COOKIE": f"sessionid={credentials['session']}"}
        warm = requests.get(
            live_server.url + path(imported[0]), cookies={"sessionid": credentials["session"]}, timeout=30
        )
    assert warm.status_code == 200
    app = FramesFastPath(Recorder())
    status, _, body = call(app, path(imported[1]), **environ)
    assert status == "200 OK" and imported[1].PixelData in body
    return app, environ, path(imported[1])


def test_logout_ends_fast_path_service_of_that_session_at_once(imported, world, live_server):
    browser = Client()
    browser.force_login(world.reader)
    app, cookie, path = warm_fast_path(
        imported, world, live_server, session=browser.cookies["sessionid"].value
    )
    browser.logout()
    assert call(app, path, **cookie)[2] == FELL_THROUGH
    assert requests.get(
        live_server.url + path,
        cookies={"sessionid": cookie["HTTP_COOKIE"].split("=")[1]},
        timeout=30,
    ).status_code in (401, 403)


def test_a_deleted_token_ends_fast_path_service_at_once(imported, world, live_server):
    token = Token.objects.get_or_create(user=world.reader)[0]
    app, auth, path = warm_fast_path(imported, world, live_server, token=token.key)
    Token.objects.filter(user=world.reader).delete()
    assert call(app, path, **auth)[2] == FELL_THROUGH
    assert (
        requests.get(
            live_server.url + path,
            headers={"Authorization": auth["HTTP_AUTHORIZATION"]},
            timeout=30,
        ).status_code
        == 401
    )


@pytest.mark.parametrize("change", ["membership removed", "membership changed", "assignment cancelled"])
def test_losing_the_reader_role_or_the_assignment_ends_fast_path_service_at_once(
    imported, world, live_server, change
):
    token = Token.objects.get_or_create(user=world.reader)[0]
    app, auth, path = warm_fast_path(imported, world, live_server, token=token.key)
    membership = Membership.objects.get(project=world.project, user=world.reader, role=Membership.Role.READER)
    if change == "membership removed":
        membership.delete()
    elif change == "membership changed":
        membership.role = Membership.Role.ADMIN
        membership.project = ProjectFactory()  # moved to another project: no longer a reader of this one
        membership.save()
    else:
        assignment = Assignment.objects.get(
            reader=world.reader, case__study__study_uid=imported[0].StudyInstanceUID
        )
        assignment.status = Assignment.Status.CANCELLED
        assignment.save()
    assert call(app, path, **auth)[2] == FELL_THROUGH
    response = requests.get(
        live_server.url + path, headers={"Authorization": auth["HTTP_AUTHORIZATION"]}, timeout=30
    )
    # a removed membership also revokes the user's token (issue 13, hole 8): 401, not just 404
    assert response.status_code == (401 if change == "membership removed" else 404)


def test_losing_the_adjudicator_role_ends_fast_path_service_of_stored_uids_at_once(
    imported, world, live_server
):
    token = Token.objects.get_or_create(user=world.adjudicator)[0]
    app, auth, path = warm_fast_path(imported, world, live_server, path=frame_path, token=token.key)
    membership = Membership.objects.get(project=world.project, user=world.adjudicator)
    membership.role = Membership.Role.READER  # a reader of the project, with no assignment of this study
    membership.save()
    assert call(app, path, **auth)[2] == FELL_THROUGH
    response = requests.get(
        live_server.url + path, headers={"Authorization": auth["HTTP_AUTHORIZATION"]}, timeout=30
    )
    assert response.status_code == 404


def test_a_revocation_in_one_web_process_reaches_the_caches_of_the_others(tmp_path):
    epoch = tmp_path / "var" / "dicomweb-decisions.epoch"
    here, other = (DecisionCache(lambda: 60.0, lambda: epoch) for _ in range(2))  # two gunicorn workers
    other.put(("session", "abc"), 7)
    here.put(("session", "abc"), 7)
    assert other.get(("session", "abc")) == 7
    here.revoke()  # e.g. the logout request was handled by this worker
    assert here.get(("session", "abc")) is None and other.get(("session", "abc")) is None
    stale = other.begin()  # a decision started before a revocation is not kept
    here.revoke()
    other.put(("session", "abc"), 7, since=stale)
    assert other.get(("session", "abc")) is None


def test_the_image_server_keeps_its_pixels_when_a_file_with_their_uid_is_stored_behind_concords_back(orthanc):
    """Pixels once stored are never replaced: Concord's imports refuse such a file, and the image server of
    the dev, CI and compose stacks refuses it too (Orthanc's ``OverwriteInstances`` off), so a frame the
    frame cache kept is always the image server's. With overwriting on, the second STOW replaced the pixels."""
    first = mri_datasets(seed=13)[0]
    orthanc.store([first])
    changed = copy.deepcopy(first)
    changed.PixelData = bytes(b ^ 0xFF for b in first.PixelData)
    orthanc.store([changed])  # STOW-RS, as any DICOM sender could: answered as stored, and ignored
    assert orthanc.frames(*stored(first), [1]) == [first.PixelData]
