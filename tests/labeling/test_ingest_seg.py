"""DICOM SEG import: a CT study's SEG is stored with it (local folder and Orthanc), registered as a SEG series
of its source series (never graded), imported later on its own, and rejected with the study when it does not
fit — the problem names the file and the reason, and nothing is written."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset

from labeling.dicom import DicomWebStore, LocalFolderStore
from labeling.models import Assignment, Case, Instance, Membership, Series, Study
from labeling.services.identity import assignment_uids
from labeling.services.ingest import import_dicomweb, import_job_run, import_paths
from tests.labeling.dicom.conftest import orthanc_configured
from tests.labeling.dicom.dicom_factory import make_seg, make_series, write_seg, write_series
from tests.labeling.factories import MembershipFactory, ProjectFactory, UserFactory, scheme

PATIENT = f"PHANTOM-TEST-SEG-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"


@pytest.fixture
def store_dir(settings, tmp_path) -> Path:
    settings.DICOMWEB_URL = ""
    settings.DICOM_FOLDER = tmp_path / "store"
    settings.VAR_DIR = tmp_path / "var"
    settings.DEIDENTIFY_ON_IMPORT = False  # files as received; de-identified: test_deidentification.py
    return settings.DICOM_FOLDER


def ct_and_seg(seed: int = 0) -> tuple[list[Dataset], Dataset]:
    series = make_series(
        n_slices=3, rows=16, columns=16, modality="CT", description="CT SIJ", patient_id=PATIENT, seed=seed
    )
    return series, make_seg(series, seed=seed)


def write_study(folder: Path, series: list[Dataset], seg: Dataset) -> tuple[list[Path], Path]:
    return write_series(series, folder / "CT"), write_seg(seg, folder / "SEG")


def ct_project():
    return ProjectFactory(scheme=scheme("ct_sij"))


def assert_registered(series: list[Dataset], seg: Dataset) -> Series:
    study = Study.objects.get(study_uid=series[0].StudyInstanceUID)
    ct = study.series.get(series_uid=series[0].SeriesInstanceUID)
    row = study.series.get(series_uid=seg.SeriesInstanceUID)
    assert (row.modality, row.description, row.source_series) == ("SEG", "Bone SEG", ct)
    assert (row.rows, row.columns, row.pixel_spacing_mm, row.frame_of_reference_uid) == (
        16,
        16,
        [1.0, 1.0],
        ct.frame_of_reference_uid,
    )
    assert list(row.instances.values_list("sop_uid", "slice_index")) == [(seg.SOPInstanceUID, 0)]
    assert list(study.series.images()) == [ct]  # what readers and viewers are given
    assert list(study.series.order_by("id")) == [ct, row]  # "the first series" of a CT study is the CT
    return row


@pytest.mark.django_db
def test_a_ct_study_and_its_seg_go_to_the_local_store_and_the_seg_is_registered(store_dir, tmp_path):
    project = ct_project()
    series, seg = ct_and_seg()
    ct_paths, seg_path = write_study(tmp_path / "in", series, seg)

    report = import_paths(actor=None, paths=[seg_path, *ct_paths], project=project)

    assert report.imported == [series[0].StudyInstanceUID] and not report.problems
    assert len(report.cases) == 1 and Case.objects.filter(project=project).count() == 1
    assert_registered(series, seg)
    stored = LocalFolderStore(store_dir).instance(
        seg.StudyInstanceUID, seg.SeriesInstanceUID, seg.SOPInstanceUID
    )
    assert stored.Modality == "SEG" and np.array_equal(stored.pixel_array, dcmread(seg_path).pixel_array)
    again = import_paths(actor=None, paths=[seg_path, *ct_paths], project=project)
    assert again.skipped == [series[0].StudyInstanceUID]
    assert Series.objects.count() == 2 and Instance.objects.count() == 4


@pytest.mark.django_db
def test_a_seg_imported_after_its_study_joins_it_without_a_second_case(store_dir, tmp_path):
    project = ct_project()
    series, seg = ct_and_seg()
    ct_paths, seg_path = write_study(tmp_path / "in", series, seg)
    import_paths(actor=None, paths=ct_paths, project=project)

    report = import_paths(actor=None, paths=[seg_path], project=project)

    assert report.imported == [series[0].StudyInstanceUID] and not report.problems and not report.cases
    assert_registered(series, seg)
    assert Case.objects.filter(project=project).count() == 1


@pytest.mark.django_db
def test_the_reader_gets_the_ct_series_and_never_the_seg(store_dir, tmp_path, client_for):
    project = ct_project()
    series, seg = ct_and_seg()
    ct_paths, seg_path = write_study(tmp_path / "in", series, seg)
    (case_id,) = import_paths(actor=None, paths=[seg_path, *ct_paths], project=project).cases
    reader = UserFactory(username="ct-reader")
    MembershipFactory(project=project, user=reader, role=Membership.Role.READER)
    assignment = Assignment.objects.create(project=project, case_id=case_id, reader=reader, session=1)

    shown = client_for(reader).get(f"/api/assignments/{assignment.key}/").json()["series"]

    # a SEG is training data derived from the CT, not something a reader grades or sees
    ct = assignment_uids(assignment).pseudo(series[0].SeriesInstanceUID)  # as the reader knows it
    assert [(s["series_uid"], s["modality"]) for s in shown] == [(ct, "CT")]
    assert Series.objects.filter(series_uid=seg.SeriesInstanceUID, source_series__isnull=False).exists()


@pytest.mark.django_db
def test_a_seg_uploaded_after_its_study_passes_the_upload_check_and_its_job_imports_it(
    store_dir, tmp_path, client_for
):
    project = ct_project()
    admin = UserFactory(username="ct-admin")
    MembershipFactory(project=project, user=admin, role=Membership.Role.ADMIN)
    series, seg = ct_and_seg()
    ct_paths, seg_path = write_study(tmp_path / "in", series, seg)
    import_paths(actor=None, paths=ct_paths, project=project)

    with seg_path.open("rb") as upload:
        response = client_for(admin).post(
            f"/api/projects/{project.pk}/imports/upload/", {"files": [upload]}, format="multipart"
        )
    assert response.status_code == 202, response.content
    job = import_job_run(job_id=response.json()["id"])  # what the queued task runs

    assert job.status == "succeeded" and job.report["imported"] == [series[0].StudyInstanceUID]
    assert_registered(series, seg)


def _frame_of_reference(seg: Dataset) -> None:
    seg.FrameOfReferenceUID = "1.2.3.999"


def _no_segments(seg: Dataset) -> None:
    seg.SegmentSequence = []


def _foreign_series(seg: Dataset) -> None:
    seg.ReferencedSeriesSequence[0].SeriesInstanceUID = "1.2.3.4.5.6"


def _off_slice(seg: Dataset) -> None:
    seg.PerFrameFunctionalGroupsSequence[0].PlanePositionSequence[0].ImagePositionPatient = [0.0, 0.0, 99.0]


SEG_REJECTIONS = [
    ("frame_of_reference", _frame_of_reference, "must share its source series' frame of reference"),
    ("no_segments", _no_segments, "is a SEG without segments"),
    ("foreign_series", _foreign_series, "refers to series 1.2.3.4.5.6, which is neither among the files"),
    ("off_slice", _off_slice, "a SEG's frames must lie on its source series' slices"),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("name", "damage", "message"), SEG_REJECTIONS, ids=[r[0] for r in SEG_REJECTIONS])
def test_a_bad_seg_rejects_its_study_naming_the_file_and_the_other_study_goes_on(
    store_dir, tmp_path, name, damage, message
):
    project = ct_project()
    series, seg = ct_and_seg()
    damage(seg)
    ct_paths, seg_path = write_study(tmp_path / "bad", series, seg)
    good, good_seg = ct_and_seg(seed=5)
    good_paths, good_seg_path = write_study(tmp_path / "good", good, good_seg)

    report = import_paths(
        actor=None, paths=[*ct_paths, seg_path, *good_paths, good_seg_path], project=project
    )

    bad_uid = series[0].StudyInstanceUID
    assert report.imported == [good[0].StudyInstanceUID]
    assert any(p["reason"].startswith("seg.dcm ") and message in p["reason"] for p in report.problems), (
        report.problems
    )
    assert f"study {bad_uid} was not imported: some of its files were rejected (seg.dcm)" in str(
        report.problems
    )
    assert not Study.objects.filter(study_uid=bad_uid).exists()
    assert not (store_dir / bad_uid).exists()
    assert Case.objects.filter(project=project).count() == 1
    assert_registered(good, good_seg)


@pytest.mark.django_db
def test_a_seg_alone_whose_series_was_never_imported_writes_nothing(store_dir, tmp_path):
    _series, seg = ct_and_seg()
    report = import_paths(actor=None, paths=[write_seg(seg, tmp_path / "SEG")], project=ct_project())
    assert report.imported == [] and "neither among the files imported with it nor imported before" in str(
        report.problems
    )
    assert not Study.objects.exists() and not (store_dir.exists() and any(store_dir.iterdir()))


# --- Orthanc ------------------------------------------------------------------------------------------------


@pytest.fixture
def orthanc(settings, tmp_path) -> Iterator[DicomWebStore]:
    """The test Orthanc as the configured store; this file's test patient's studies are deleted after."""
    settings.VAR_DIR = tmp_path / "var"
    settings.DEIDENTIFY_ON_IMPORT = False  # purged by the test patient's own PatientID
    with orthanc_configured(settings, PATIENT, "the SEG import tests") as store:
        yield store


@pytest.mark.django_db
def test_files_with_a_seg_are_stowed_to_orthanc_and_registered(orthanc, tmp_path):
    series, seg = ct_and_seg(seed=2)
    ct_paths, seg_path = write_study(tmp_path / "in", series, seg)

    report = import_paths(actor=None, paths=[*ct_paths, seg_path], project=ct_project())

    assert report.imported == [series[0].StudyInstanceUID] and not report.problems
    assert_registered(series, seg)
    fetched = orthanc.instance(seg.StudyInstanceUID, seg.SeriesInstanceUID, seg.SOPInstanceUID)
    assert fetched.Modality == "SEG" and np.array_equal(fetched.pixel_array, dcmread(seg_path).pixel_array)


@pytest.mark.django_db
def test_a_qido_import_from_orthanc_brings_the_seg_with_its_study(orthanc, tmp_path):
    series, seg = ct_and_seg(seed=3)
    orthanc.store([*series, seg])

    report = import_dicomweb(
        actor=None, url=orthanc.url, filters={"PatientID": PATIENT}, project=ct_project()
    )

    assert report.imported == [series[0].StudyInstanceUID] and not report.problems, report.problems
    assert_registered(series, seg)
