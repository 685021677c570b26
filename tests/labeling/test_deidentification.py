"""De-identification on import (issue 13): what the store holds after an import on the local folder and on a
real Orthanc, the per-project options, the pseudonym mapping (site staff only, audited), and exports."""

from __future__ import annotations

import csv
import datetime
import io
import os
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset

from labeling.models import AuditEvent, Case, Series, Study, StudyDeidentification
from labeling.services.ingest import configured_store, import_paths
from labeling.services.readings import reading_submit
from tests.labeling.dicom.conftest import orthanc_configured
from tests.labeling.dicom.dicom_factory import (
    make_mri_study,
    make_seg,
    make_series,
    write_seg,
    write_series,
    write_study,
)
from tests.labeling.dicom.test_deidentify import _fill, _removing_tags
from tests.labeling.factories import ProjectFactory, full_values, scheme

PATIENT = f"PHANTOM-TEST-DEID-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
TAGS = _removing_tags()


def identified_study(seed: int = 0) -> list[Dataset]:
    """A T1 + STIR study with a distinctive value in every attribute the basic profile removes or replaces."""
    datasets = make_mri_study(n_slices=2, patient_id=PATIENT, seed=seed)
    for ds in datasets:
        description = ds.SeriesDescription
        _fill(ds, TAGS)
        ds.PatientID, ds.PatientName = PATIENT, "Doe^Jane"
        ds.SeriesDescription = description  # a scheme's sequence name (Clean Descriptors keeps it)
        ds.StudyDate, ds.StudyTime = "20260101", "093000"
    return datasets


def uids_of(dataset: Dataset) -> set[str]:
    return {
        str(v)
        for element in dataset.iterall()
        if element.VR == "UI"
        for v in (element.value if isinstance(element.value, list) else [element.value])
    }


def assert_deidentified(stored: Dataset, original: Dataset) -> None:
    """No basic-profile attribute (X/Z/D) keeps its original value; no original UID anywhere; same pixels."""
    for tag in TAGS:
        if original.get(tag) is not None and original[tag].value in ("T1", "STIR"):
            continue  # the Clean Descriptors Option (on by default) keeps a scheme's sequence name
        if tag in original and tag in stored and original[tag].VR != "SQ":
            assert stored[tag].value != original[tag].value, (original[tag].keyword, stored[tag].value)
    assert not (uids_of(stored) - {str(original.SOPClassUID)}) & uids_of(original)
    assert PATIENT not in str(stored) and "Doe^Jane" not in str(stored)
    assert stored.PatientIdentityRemoved == "YES"
    assert bytes(stored.PixelData) == bytes(original.PixelData)


@pytest.fixture
def local(settings, tmp_path) -> Path:
    settings.DICOMWEB_URL = ""
    settings.DICOM_FOLDER = tmp_path / "store"
    settings.VAR_DIR = tmp_path / "var"
    return settings.DICOM_FOLDER


@pytest.fixture(params=["local", "orthanc"])
def any_store(request, settings, tmp_path) -> Iterator[str]:
    """The configured store: the local folder, or the test Orthanc (this file's studies deleted after)."""
    settings.VAR_DIR = tmp_path / "var"
    if request.param == "local":
        settings.DICOMWEB_URL, settings.DICOM_FOLDER = "", tmp_path / "store"
        yield request.param
        return
    with orthanc_configured(settings, PATIENT, "the de-identification tests"):
        yield request.param


@pytest.mark.django_db
def test_an_import_stores_and_registers_the_study_de_identified(any_store, tmp_path):
    project = ProjectFactory()
    datasets = identified_study()
    original_uid = str(datasets[0].StudyInstanceUID)
    report = import_paths(actor=None, paths=write_study(datasets, tmp_path / "in"), project=project)

    assert not report.problems and len(report.imported) == 1
    (stored_uid,) = report.imported
    assert stored_uid != original_uid and stored_uid.startswith("2.25.")
    assert not Study.objects.filter(study_uid=original_uid).exists()
    study = Study.objects.get(study_uid=stored_uid)
    assert study.patient_id.startswith(f"CONCORD-{project.pk}-") and study.description == ""
    assert sorted(study.series.values_list("description", flat=True)) == ["STIR", "T1"]
    mapping = StudyDeidentification.objects.get(study=study)
    assert (mapping.original_study_uid, mapping.original_patient_id) == (original_uid, PATIENT)
    assert mapping.original_patient_name == "Doe^Jane"
    label = Case.objects.get(project=project, study=study).label
    assert stored_uid[-8:] not in label and original_uid[-8:] not in label
    pseudonym = {original: pseudo for pseudo, original in mapping.uids.items()}
    store = configured_store()
    for original in datasets:
        stored = store.instance(
            stored_uid, pseudonym[str(original.SeriesInstanceUID)], pseudonym[str(original.SOPInstanceUID)]
        )
        assert_deidentified(stored, original)
        assert stored.StudyDate != "20260101" and stored.PatientID == study.patient_id
        assert stored.FrameOfReferenceUID == pseudonym[str(original.FrameOfReferenceUID)]

    again = import_paths(actor=None, paths=write_study(datasets, tmp_path / "again"), project=project)
    assert again.skipped == [stored_uid] and Study.objects.count() == 1  # same pseudonyms: nothing twice


@pytest.mark.django_db
def test_a_project_that_turns_it_off_stores_files_as_received(local, tmp_path):
    project = ProjectFactory(deidentify="off")
    datasets = identified_study(seed=3)
    report = import_paths(actor=None, paths=write_study(datasets, tmp_path / "in"), project=project)
    assert report.imported == [datasets[0].StudyInstanceUID]
    stored = configured_store().instance(
        datasets[0].StudyInstanceUID, datasets[0].SeriesInstanceUID, datasets[0].SOPInstanceUID
    )
    assert stored.PatientName == "Doe^Jane" and not StudyDeidentification.objects.exists()


@pytest.mark.django_db
def test_shifted_dates_move_back_by_the_patient_offset_on_import(local, tmp_path, settings):
    settings.DEIDENTIFY_ON_IMPORT = False  # the project's own choice wins over the site default
    project = ProjectFactory(deidentify="on", deidentify_dates="shift")
    datasets = identified_study(seed=5)
    (stored_uid,) = import_paths(
        actor=None, paths=write_study(datasets, tmp_path / "in"), project=project
    ).imported
    mapping = StudyDeidentification.objects.get(study__study_uid=stored_uid)
    assert mapping.profile["dates"] == "shift" and mapping.date_shift_days > 0
    pseudonym = {original: pseudo for pseudo, original in mapping.uids.items()}
    first = datasets[0]
    stored = configured_store().instance(
        stored_uid, pseudonym[first.SeriesInstanceUID], pseudonym[first.SOPInstanceUID]
    )
    expected = datetime.date(2026, 1, 1) - datetime.timedelta(days=mapping.date_shift_days)
    assert stored.StudyDate == f"{expected:%Y%m%d}" and stored.StudyTime == "093000"
    assert stored.LongitudinalTemporalInformationModified == "MODIFIED"


@pytest.mark.django_db
def test_a_seg_imported_later_fits_its_de_identified_series(local, tmp_path):
    project = ProjectFactory(scheme=scheme("ct_sij"))
    series = make_series(n_slices=3, rows=16, columns=16, modality="CT", description="CT", patient_id=PATIENT)
    seg = make_seg(series)
    (stored_uid,) = import_paths(
        actor=None, paths=write_series(series, tmp_path / "in" / "CT"), project=project
    ).imported
    later = import_paths(actor=None, paths=[write_seg(seg, tmp_path / "in" / "SEG")], project=project)

    assert not later.problems, later.problems
    ct = Series.objects.get(study__study_uid=stored_uid, modality="CT")
    stored_seg = Series.objects.get(study__study_uid=stored_uid, modality=Series.SEG)
    assert stored_seg.source_series == ct and stored_seg.series_uid != seg.SeriesInstanceUID
    instance = stored_seg.instances.get()
    fetched = configured_store().instance(stored_uid, stored_seg.series_uid, instance.sop_uid)
    assert fetched.ReferencedSeriesSequence[0].SeriesInstanceUID == ct.series_uid
    referenced = {
        i.ReferencedSOPInstanceUID for i in fetched.ReferencedSeriesSequence[0].ReferencedInstanceSequence
    }
    assert referenced == set(ct.instances.values_list("sop_uid", flat=True))


@pytest.mark.django_db
def test_burned_in_annotation_is_refused_with_nothing_stored(local, tmp_path):
    project = ProjectFactory()
    datasets = identified_study(seed=7)
    datasets[1].BurnedInAnnotation = "YES"
    report = import_paths(actor=None, paths=write_study(datasets, tmp_path / "in"), project=project)
    assert report.imported == [] and "burned-in annotation" in report.problems[0]["reason"]
    assert not Study.objects.exists() and not (local.exists() and any(local.rglob("*.dcm")))


# --- the mapping: site staff only, every read audited --------------------------------------------------------


@pytest.fixture
def imported(world, local, tmp_path) -> tuple[Case, list[Dataset]]:
    datasets = identified_study(seed=9)
    report = import_paths(actor=None, paths=write_study(datasets, tmp_path / "in"), project=world.project)
    return Case.objects.get(pk=report.cases[0]), datasets


def test_the_mapping_is_read_by_site_staff_only_and_each_read_is_audited(world, client_for, imported):
    case, datasets = imported
    url = f"/api/projects/{world.project.pk}/deidentification/"
    for user in (world.admin, world.adjudicator, world.reader):
        assert client_for(user).get(url).status_code == 403
    assert client_for(world.outsider).get(url).status_code == 404
    assert not AuditEvent.objects.filter(action="deidentification.read").exists()

    for n in (1, 2):
        response = client_for(world.staff).get(url, {"study_uid": case.study.study_uid})
        assert response.status_code == 200
        (row,) = response.json()
        assert row["study_uid"] == case.study.study_uid
        assert row["original_study_uid"] == datasets[0].StudyInstanceUID
        assert (row["original_patient_id"], row["original_patient_name"]) == (PATIENT, "Doe^Jane")
        assert row["uids"][case.study.study_uid] == datasets[0].StudyInstanceUID
        events = AuditEvent.objects.filter(action="deidentification.read", actor=world.staff)
        assert events.count() == n and events.last().data["studies"] == [case.study.study_uid]


# --- exports: pseudonyms unless staff ask (audited) ------------------------------------------------------------


def _read(world, case: Case) -> None:
    assignment = world.assignment.__class__.objects.create(
        project=world.project, case=case, reader=world.other_reader, session=1
    )
    reading_submit(
        actor=world.other_reader, assignment=assignment, values=full_values(world.project.scheme.parsed)
    )


def _study_uids(body: bytes) -> set[str]:
    return {row["study_uid"] for row in csv.DictReader(io.StringIO(body.decode()))}


def test_exports_carry_pseudonyms_and_identified_ones_need_staff_and_are_audited(world, client_for, imported):
    case, datasets = imported
    world.assignment.delete()  # nobody of the world is still reading: exports are not blinded
    world.other_assignment.delete()
    _read(world, case)
    base = f"/api/projects/{world.project.pk}/exports"
    original = datasets[0].StudyInstanceUID

    plain = client_for(world.admin).get(f"{base}/readings.csv")
    assert plain.status_code == 200 and _study_uids(plain.content) == {case.study.study_uid}
    assert original.encode() not in plain.content and PATIENT.encode() not in plain.content
    assert client_for(world.admin).get(f"{base}/readings.csv", {"identified": "true"}).status_code == 403
    assert client_for(world.admin).post(f"{base}/sr/?identified=true").status_code == 403
    assert not AuditEvent.objects.filter(action="export.identified").exists()

    identified = client_for(world.staff).get(f"{base}/readings.csv", {"identified": "true"})
    assert identified.status_code == 200 and _study_uids(identified.content) == {original}
    archive = client_for(world.staff).post(f"{base}/sr/?identified=true")
    with zipfile.ZipFile(io.BytesIO(b"".join(archive.streaming_content))) as bundle:
        (name,) = bundle.namelist()
        sr = dcmread(io.BytesIO(bundle.read(name)))
    assert sr.StudyInstanceUID == original and sr.PatientID == PATIENT
    events = AuditEvent.objects.filter(action="export.identified", actor=world.staff)
    assert [e.data["export"] for e in events.order_by("id")] == ["readings.csv", "sr"]

    pseudonymous = client_for(world.staff).post(f"{base}/sr/")
    with zipfile.ZipFile(io.BytesIO(b"".join(pseudonymous.streaming_content))) as bundle:
        sr = dcmread(io.BytesIO(bundle.read(bundle.namelist()[0])))
    assert sr.StudyInstanceUID == case.study.study_uid and sr.PatientID == case.study.patient_id != PATIENT
    assert events.count() == 2  # a pseudonymous export is not an identified one
