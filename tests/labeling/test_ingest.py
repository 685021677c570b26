"""Ingestion: validation first, pixels to the store, Study/Series/Instance rows and cases, jobs, API, CLI."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from unittest import mock

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from pydicom import dcmread
from pydicom.uid import generate_uid

from labeling.dicom import LocalFolderStore
from labeling.models import AuditEvent, Case, ImportJob, Instance, OutboxMessage, Series, Study
from labeling.services.ingest import import_job_run, import_paths
from tests.labeling.dicom.dicom_factory import make_series, write_series
from tests.labeling.factories import ProjectFactory, scheme


@pytest.fixture
def store_dir(settings, tmp_path) -> Path:
    settings.DICOMWEB_URL = ""
    settings.DICOM_FOLDER = tmp_path / "store"
    settings.VAR_DIR = tmp_path / "var"
    # ingestion of files as received; the de-identified import: tests/labeling/test_deidentification.py
    settings.DEIDENTIFY_ON_IMPORT = False
    return settings.DICOM_FOLDER


def mri_files(
    folder: Path, *, n_slices: int = 3, sequences=("T1", "STIR"), seed: int = 0
) -> tuple[str, list[Path]]:
    """Write one MRI study (one series per sequence) under ``folder``; return its UID and files."""
    study_uid, frame = generate_uid(), generate_uid()
    paths = []
    for i, description in enumerate(sequences):
        series = make_series(
            n_slices=n_slices,
            rows=16,
            columns=16,
            study_uid=study_uid,
            frame_of_reference_uid=frame,
            description=description,
            seed=seed + i,
        )
        paths += write_series(list(reversed(series)), folder / study_uid / description)
    return study_uid, paths


def nothing_written(study_uid: str) -> bool:
    return not Study.objects.filter(study_uid=study_uid).exists() and not Case.objects.exists()


@pytest.mark.django_db
def test_import_registers_geometry_orders_slices_stores_pixels_and_creates_the_case(store_dir, tmp_path):
    project = ProjectFactory()
    study_uid, paths = mri_files(tmp_path / "in", n_slices=4)
    report = import_paths(actor=None, paths=paths, project=project)
    assert report.imported == [study_uid] and not report.problems
    study = Study.objects.get(study_uid=study_uid)
    assert sorted(study.series.values_list("description", flat=True)) == ["STIR", "T1"]
    t1 = study.series.get(description="T1")
    assert (t1.rows, t1.columns, t1.pixel_spacing_mm, t1.slice_thickness_mm) == (16, 16, [1.0, 1.0], 3.0)
    instances = list(t1.instances.order_by("slice_index"))
    assert [i.slice_index for i in instances] == [0, 1, 2, 3]
    # files were written last slice first; rows follow the normal (+y for this coronal orientation)
    assert [i.position[1] for i in instances] == [0.0, 3.0, 6.0, 9.0]
    assert [i.instance_number for i in instances] == [1, 2, 3, 4]
    assert Case.objects.get(project=project, study=study).label
    assert len(LocalFolderStore(store_dir).search_instances(study_uid)) == 8
    assert AuditEvent.objects.filter(action="study.register").count() == 1


@pytest.mark.django_db
def test_reimport_of_the_same_uids_creates_nothing_twice(store_dir, tmp_path):
    project = ProjectFactory()
    study_uid, paths = mri_files(tmp_path / "in")
    import_paths(actor=None, paths=paths, project=project)
    counts = (Study.objects.count(), Series.objects.count(), Instance.objects.count(), Case.objects.count())
    again = import_paths(actor=None, paths=paths, project=project)
    assert again.skipped == [study_uid] and again.imported == []
    assert counts == (
        Study.objects.count(),
        Series.objects.count(),
        Instance.objects.count(),
        Case.objects.count(),
    )


def _not_dicom(paths: list[Path]) -> None:
    paths[0].write_bytes(b"just some text, not an image")


def _truncated(paths: list[Path]) -> None:
    data = paths[0].read_bytes()
    paths[0].write_bytes(data[: len(data) - 300])


def _drop(keyword: str):
    def change(paths: list[Path]) -> None:
        ds = dcmread(paths[0])
        delattr(ds, keyword)
        ds.save_as(paths[0])

    return change


def _set(keyword: str, value, which: int = 0):
    def change(paths: list[Path]) -> None:
        ds = dcmread(paths[which])
        setattr(ds, keyword, value)
        ds.save_as(paths[which])

    return change


def _shift_last(paths: list[Path]) -> None:
    ds = dcmread(paths[0])  # files are written in reverse: paths[0] is the last slice
    ds.ImagePositionPatient = [
        ds.ImagePositionPatient[0],
        ds.ImagePositionPatient[1] - 5.0,
        ds.ImagePositionPatient[2],
    ]
    ds.save_as(paths[0])


REJECTIONS = [
    ("not_dicom", _not_dicom, "is not a DICOM file"),
    ("truncated", _truncated, "truncated"),
    ("missing_geometry", _drop("ImagePositionPatient"), "missing geometry: ImagePositionPatient"),
    ("mixed_frames", _set("FrameOfReferenceUID", "1.2.3.4.5"), "mixed FrameOfReferenceUID within a series"),
    ("wrong_modality", _set("Modality", "CT"), "has modality 'CT', expected MR"),
    ("inconsistent_spacing", _shift_last, "inconsistent slice spacing"),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("name", "damage", "message"), REJECTIONS, ids=[r[0] for r in REJECTIONS])
def test_each_bad_input_is_reported_by_file_and_the_other_study_goes_on(
    store_dir, tmp_path, name, damage, message
):
    project = ProjectFactory()
    bad_uid, bad_paths = mri_files(tmp_path / "bad")  # T1 files first
    good_uid, good_paths = mri_files(tmp_path / "good", seed=7)
    damage(bad_paths)
    report = import_paths(actor=None, paths=[*bad_paths, *good_paths], project=project)
    assert report.imported == [good_uid]
    assert any(message in p["reason"] and bad_paths[0].name in p["reason"] for p in report.problems), (
        report.problems
    )
    assert f"study {bad_uid} was not imported: some of its files were rejected" in str(report.problems)
    assert not Study.objects.filter(study_uid=bad_uid).exists()
    assert not (store_dir / bad_uid).exists()
    assert Case.objects.filter(study__study_uid=good_uid).count() == 1


@pytest.mark.django_db
def test_mri_study_without_stir_is_rejected_whole(store_dir, tmp_path):
    project = ProjectFactory()
    study_uid, paths = mri_files(tmp_path / "in", sequences=("T1",))
    report = import_paths(actor=None, paths=paths, project=project)
    (problem,) = report.problems
    assert problem["path"] == study_uid
    assert "lacks the series ['STIR'] that the scheme mri_sij needs (it has ['T1'])" in problem["reason"]
    assert (nothing_written(study_uid) and not store_dir.exists()) or not any(store_dir.iterdir())


@pytest.mark.django_db
def test_ct_study_is_refused_by_an_mri_project_and_accepted_by_a_ct_project(store_dir, tmp_path):
    series = make_series(n_slices=3, rows=16, columns=16, modality="CT", description="CT SIJ")
    paths = write_series(series, tmp_path / "ct")
    mri = import_paths(actor=None, paths=paths, project=ProjectFactory())
    assert mri.imported == [] and "expected MR" in mri.problems[0]["reason"]
    ct = import_paths(actor=None, paths=paths, project=ProjectFactory(scheme=scheme("ct_sij")))
    assert ct.imported == [series[0].StudyInstanceUID] and len(ct.cases) == 1


# --- jobs, API and CLI ---------------------------------------------------------------------------------


def _zip(paths: list[Path], root: Path) -> io.BytesIO:
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w") as bundle:
        for path in paths:
            bundle.write(path, arcname=str(path.relative_to(root)))
    data.seek(0)
    data.name = "study.zip"
    return data


@pytest.mark.django_db
def test_upload_of_a_zip_queues_a_job_that_imports_with_progress(world, client_for, store_dir, tmp_path):
    study_uid, paths = mri_files(tmp_path / "in")
    client = client_for(world.admin)
    response = client.post(
        f"/api/projects/{world.project.pk}/imports/upload/",
        {"files": [_zip(paths, tmp_path / "in")]},
        format="multipart",
    )
    assert response.status_code == 202, response.content
    message = OutboxMessage.objects.get()  # written with the job, in its transaction
    assert (message.task, message.args) == ("labeling.tasks.import_job_run_task", [response.json()["id"]])
    import_job_run(job_id=response.json()["id"])  # what the worker does with it
    job = client.get(f"/api/projects/{world.project.pk}/imports/{response.json()['id']}/").json()
    assert job["status"] == "succeeded" and job["done"] == job["total"] == 6
    assert job["report"]["imported"] == [study_uid] and len(job["report"]["cases"]) == 1
    listed = client.get(f"/api/projects/{world.project.pk}/imports/").json()["results"]
    assert [j["id"] for j in listed] == [job["id"]]
    assert not list((store_dir.parent / "var" / "imports").iterdir())  # the upload folder was removed


def _bad_zip() -> io.BytesIO:
    data = io.BytesIO(b"PK\x03\x04 this is not really a zip")
    data.name = "broken.zip"
    return data


def _slip_zip() -> io.BytesIO:
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w") as bundle:
        bundle.writestr("../../escape.dcm", b"x")
    data.seek(0)
    data.name = "slip.zip"
    return data


def _text_file() -> io.BytesIO:
    data = io.BytesIO(b"hello")
    data.name = "notes.txt"
    return data


UPLOAD_REJECTIONS = [
    ("no_files", lambda: {}, "upload at least one DICOM file or a zip of them"),
    ("damaged_zip", lambda: {"files": [_bad_zip()]}, "broken.zip is not a readable zip archive"),
    ("zip_slip", lambda: {"files": [_slip_zip()]}, "member '../../escape.dcm' has an unsafe path"),
    (
        "nothing_importable",
        lambda: {"files": [_text_file()]},
        "no importable DICOM series in the upload: notes.txt is not a DICOM file",
    ),
]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("name", "body", "message"), UPLOAD_REJECTIONS, ids=[r[0] for r in UPLOAD_REJECTIONS]
)
def test_upload_rejections_say_why_and_write_nothing(world, client_for, store_dir, name, body, message):
    response = client_for(world.admin).post(
        f"/api/projects/{world.project.pk}/imports/upload/", body(), format="multipart"
    )
    assert response.status_code == 400
    assert message in response.json()["detail"]
    assert not ImportJob.objects.exists() and not OutboxMessage.objects.exists()
    imports = store_dir.parent / "var" / "imports"
    assert not imports.exists() or not list(imports.iterdir())
    assert not (store_dir.parent / "escape.dcm").exists()


@pytest.mark.django_db
def test_upload_of_too_many_loose_files_asks_for_a_zip(world, client_for, store_dir, settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FILES = 2
    files = [_text_file() for _ in range(3)]
    response = client_for(world.admin).post(
        f"/api/projects/{world.project.pk}/imports/upload/", {"files": files}, format="multipart"
    )
    assert response.status_code == 400
    assert response.json()["detail"] == "more than 2 files in one upload: send a zip of them instead"
    assert not ImportJob.objects.exists()


DICOMWEB_REJECTIONS = [
    ("", {"filters": {"PatientID": "X"}}, "no DICOMweb server is configured"),
    ("http://127.0.0.1:1/dicom-web", {"filters": {"NoSuchKey": "X"}}, "'NoSuchKey' is not a DICOM attribute"),
    (
        "http://127.0.0.1:1/dicom-web",
        {"filters": {}, "url": "http://evil.example/"},
        "is not a configured DICOMweb",
    ),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("configured", "body", "message"), DICOMWEB_REJECTIONS)
def test_dicomweb_import_rejections(world, client_for, settings, configured, body, message):
    settings.DICOMWEB_URL = configured
    response = client_for(world.admin).post(
        f"/api/projects/{world.project.pk}/imports/dicomweb/", body, format="json"
    )
    assert response.status_code == 400 and message in response.json()["detail"]
    assert not ImportJob.objects.exists() and not OutboxMessage.objects.exists()


@pytest.mark.django_db
def test_job_rerun_is_a_no_op_and_an_unreachable_server_requeues(world, store_dir, tmp_path):
    from labeling.dicom import DicomStoreUnavailable
    from labeling.services.ingest import import_job_create

    mri_files(tmp_path / "in")
    job = import_job_create(
        actor=None, project=world.project, source="t", params={"folder": str(tmp_path / "in")}
    )
    assert import_job_run(job_id=job.pk).status == "succeeded"
    with mock.patch("labeling.services.ingest.import_paths") as again:
        assert import_job_run(job_id=job.pk).status == "succeeded"
    again.assert_not_called()
    down = import_job_create(
        actor=None,
        project=world.project,
        source="t",
        params={"url": "http://127.0.0.1:9/dicom-web", "filters": {}},
    )
    with pytest.raises(DicomStoreUnavailable):
        import_job_run(job_id=down.pk)
    down.refresh_from_db()
    assert down.status == "queued" and "will retry" in down.error


@pytest.mark.django_db
def test_import_studies_command_imports_a_folder_into_a_project(world, store_dir, tmp_path, capsys):
    study_uid, _ = mri_files(tmp_path / "in")
    (tmp_path / "in" / "readme.txt").write_text("not dicom")
    call_command("import_studies", str(tmp_path / "in"), "--project", str(world.project.pk))
    out, err = capsys.readouterr()
    assert "imported 1 studies, skipped 0 already known, created 1 cases, 1 problems" in out
    assert "readme.txt is not a DICOM file" in err
    assert Case.objects.filter(project=world.project, study__study_uid=study_uid).exists()
    with pytest.raises(CommandError, match="--query applies to a DICOMweb URL only"):
        call_command("import_studies", str(tmp_path / "in"), "--query", "PatientID=X")


def test_dicom_reindex_finds_files_dropped_into_the_local_store(store_dir, capsys):
    study_uid, _ = mri_files(store_dir / "dropped", n_slices=2)

    call_command("dicom_reindex")

    assert "4 files, 4 read, 0 removed" in capsys.readouterr().out
    assert len(LocalFolderStore(store_dir).search_instances(study_uid)) == 4


def test_dicom_reindex_refuses_a_dicomweb_store(settings):
    settings.DICOMWEB_URL = "http://127.0.0.1:1/dicom-web"
    with pytest.raises(CommandError, match="not a local folder"):
        call_command("dicom_reindex")
