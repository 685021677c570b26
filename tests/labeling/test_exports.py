"""Exports: readings / consensus / adjudications CSV and TID 1500 SRs that reload with highdicom."""

from __future__ import annotations

import csv
import io
import zipfile

import highdicom as hd
import numpy as np
import pytest
from django.core.management import call_command
from pydicom import dcmread

from labeling.models import Assignment, Case, Contour
from labeling.services.adjudication import adjudication_record
from labeling.services.consensus import consensus_refit_project
from labeling.services.deidentification import ExportIdentity
from labeling.services.exports import sr_write
from labeling.services.ingest import import_paths
from labeling.services.readings import reading_submit
from tests.labeling.dicom.dicom_factory import write_mri_study
from tests.labeling.factories import contour, full_values
from tests.services import dciodvfy_errors


@pytest.fixture
def read_project(world, settings, tmp_path):
    """The world's project with an imported MRI case read by two readers (values + one contour each)."""
    settings.DICOMWEB_URL = ""
    settings.DICOM_FOLDER = tmp_path / "store"
    settings.DEIDENTIFY_ON_IMPORT = False  # stored as received: exports must still carry pseudonyms
    _, paths = write_mri_study(tmp_path / "in", size=8)
    case = Case.objects.get(pk=import_paths(actor=None, paths=paths, project=world.project).cases[0])
    t1 = case.study.series.get(description="T1")
    scheme = world.project.scheme.parsed
    for n, reader in enumerate((world.reader, world.other_reader)):
        assignment = Assignment.objects.create(project=world.project, case=case, reader=reader, session=1)
        reading_submit(
            actor=reader,
            assignment=assignment,
            values=full_values(scheme, value=n % 2),
            contours=[contour(t1.series_uid, slice_index=1)],
        )
    consensus_refit_project(project_id=world.project.pk)
    adjudication_record(
        actor=world.adjudicator,
        project=world.project,
        case_id=case.pk,
        joint="left",
        region="iliac_upper",
        lesion="bme",
        value=1,
        reason="clear oedema",
    )
    return case


def rows(body: bytes | str) -> list[dict[str, str]]:
    text = body.decode() if isinstance(body, bytes) else body
    return list(csv.DictReader(io.StringIO(text)))


def test_readings_csv_has_one_row_per_item_reader_and_session(read_project, world, client_for):
    response = client_for(world.admin).get(f"/api/projects/{world.project.pk}/exports/readings.csv")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    table = rows(response.content)
    n_items = len(world.project.scheme.parsed.form_items)
    assert len(table) == 2 * n_items
    mine = [r for r in table if r["reader"] == world.reader.username and r["case_id"] == str(read_project.pk)]
    assert (
        len(mine) == n_items and {r["value"] for r in mine} == {"0"} and {r["session"] for r in mine} == {"1"}
    )
    keys = {(r["reader"], r["session"], r["joint"], r["region"], r["lesion"]) for r in table}
    assert len(keys) == len(table)


def test_consensus_csv_has_posterior_map_entropy_and_adjudicated_value(read_project, world, client_for):
    table = rows(
        client_for(world.admin).get(f"/api/projects/{world.project.pk}/exports/consensus.csv").content
    )
    ours = [r for r in table if r["case_id"] == str(read_project.pk)]
    assert {r["lesion"] for r in ours} >= {"bme", "fat", "erosion"}
    item = next(r for r in ours if (r["lesion"], r["joint"], r["region"]) == ("bme", "left", "iliac_upper"))
    posterior = [float(p) for p in item["posterior"].split()]
    assert len(posterior) == 2 and abs(sum(posterior) - 1) < 1e-5
    assert int(item["map_label"]) == int(np.argmax(posterior)) and float(item["entropy"]) >= 0
    assert item["adjudicated_value"] == "1"
    other = next(r for r in ours if (r["lesion"], r["joint"], r["region"]) == ("fat", "left", "iliac_upper"))
    assert other["adjudicated_value"] == ""


def test_adjudications_csv_lists_every_decision(read_project, world, client_for):
    table = rows(
        client_for(world.admin).get(f"/api/projects/{world.project.pk}/exports/adjudications.csv").content
    )
    (row,) = table
    assert (row["lesion"], row["value"], row["reason"], row["current"]) == ("bme", "1", "clear oedema", "1")


def test_sr_reloads_with_highdicom_with_findings_contours_and_source_references(
    read_project, world, tmp_path
):
    paths = sr_write(actor=world.admin, project=world.project, folder=tmp_path / "sr")
    assert len(paths) == 2
    reading = read_project.readings.get(reader=world.reader)
    path = next(p for p in paths if f"-r{reading.pk}." in p.name)
    sr = hd.sr.Comprehensive3DSR.from_dataset(dcmread(path))
    pseudonyms = ExportIdentity(project=world.project, identified=False)  # stored as received: pseudonyms
    assert sr.StudyInstanceUID == pseudonyms.uid(read_project.study, read_project.study.study_uid)
    assert sr.StudyInstanceUID != read_project.study.study_uid
    groups = sr.content.get_planar_roi_measurement_groups()
    (roi,) = groups
    region = roi.roi
    assert region.graphic_type == hd.sr.GraphicTypeValues3D.POLYLINE
    saved = Contour.objects.get(reading=reading)
    np.testing.assert_allclose(region.value, np.asarray(saved.points_mm), atol=1e-4)
    frame = read_project.study.series.get(description="T1").frame_of_reference_uid
    assert region.frame_of_reference_uid == pseudonyms.uid(read_project.study, frame) != frame
    evaluations = [
        item
        for group in sr.content.get_image_measurement_groups()
        for item in group.get_qualitative_evaluations()
    ]
    assert len(evaluations) == reading.values.count()
    evidence = {
        ref.ReferencedSOPInstanceUID
        for study in sr.CurrentRequestedProcedureEvidenceSequence
        for series in study.ReferencedSeriesSequence
        for ref in series.ReferencedSOPSequence
    }
    assert pseudonyms.uid(read_project.study, saved.sop_instance_uid) in evidence
    assert saved.sop_instance_uid not in evidence
    for written in paths:  # a valid Comprehensive 3D SR IOD, as an archive would check it
        assert not (errors := dciodvfy_errors(written)), f"{written.name}: {errors}"


def test_sr_api_returns_a_zip_and_the_command_writes_everything(read_project, world, client_for, tmp_path):
    response = client_for(world.admin).post(f"/api/projects/{world.project.pk}/exports/sr/")
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    names = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content))).namelist()
    assert len(names) == 2 and all(n.startswith("sr/") and n.endswith(".dcm") for n in names)
    call_command("export_project", str(world.project.pk), str(tmp_path / "out"), stdout=io.StringIO())
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == ["adjudications.csv", "consensus.csv", "readings.csv", "sr"]
    assert len(list((tmp_path / "out" / "sr").iterdir())) == 2


def test_sr_file_names_never_come_from_case_labels(read_project, world, client_for, tmp_path):
    """Issue 13, hole 4: a label with ``/`` or ``..`` escaped the export folder (or gave a 500)."""
    for label in ("../../escaped", "a/b", "..", "/etc/x"):
        read_project.label = label
        read_project.save(update_fields=["label"])
        folder = tmp_path / "deep" / "sr"
        paths = sr_write(actor=world.admin, project=world.project, folder=folder)
        assert len(paths) == 2
        assert sorted(p.parent for p in paths) == [folder, folder], label
        assert sorted(p.name for p in folder.iterdir()) == sorted(p.name for p in paths), label
        assert not (tmp_path / "escaped").exists() and not (tmp_path / "deep" / "escaped").exists()
        response = client_for(world.admin).post(f"/api/projects/{world.project.pk}/exports/sr/")
        assert response.status_code == 200, label
        names = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content))).namelist()
        assert all(n.startswith("sr/case") and n.count("/") == 1 and ".." not in n for n in names), names


FORMULAS = ['=HYPERLINK("http://x")', "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)", "\tTAB", "\rCR"]


def test_csv_exports_escape_cells_a_spreadsheet_would_run_as_formulas(read_project, world, client_for):
    """Issue 13, hole 5: a label, username or reason starting with = + - @ was a formula in a spreadsheet."""
    read_project.label = FORMULAS[0]
    read_project.save(update_fields=["label"])
    world.reader.username = FORMULAS[1]
    world.reader.save(update_fields=["username"])
    adjudication_record(
        actor=world.adjudicator,
        project=world.project,
        case_id=read_project.pk,
        joint="left",
        region="iliac_upper",
        lesion="bme",
        value=0,
        reason=FORMULAS[3],
    )
    client = client_for(world.admin)
    base = f"/api/projects/{world.project.pk}/exports"
    cells = [
        cell
        for name in ("readings", "consensus", "adjudications")
        for row in rows(client.get(f"{base}/{name}.csv").content)
        for cell in row.values()
    ]
    assert "'" + FORMULAS[0] in cells and "'" + FORMULAS[1] in cells and "'" + FORMULAS[3] in cells
    dangerous = [
        c for c in cells if c[:1] in ("=", "+", "@", "\t", "\r") or (c[:1] == "-" and not _number(c))
    ]
    assert dangerous == []
    from labeling.services.csvcells import csv_cell

    assert [csv_cell(v) for v in FORMULAS] == ["'" + v for v in FORMULAS]
    assert [csv_cell(v) for v in ("-0.25", "+3", "-1e-3", 7, "plain")] == ["-0.25", "+3", "-1e-3", 7, "plain"]


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def test_sr_exports_carry_a_patient_pseudonym_not_the_stored_patient(read_project, world, tmp_path):
    from labeling.services.identity import patient_pseudonyms, pseudonymous_patient_id

    study = read_project.study
    for path in sr_write(actor=world.admin, project=world.project, folder=tmp_path / "sr"):
        sr = dcmread(path)
        assert study.patient_id not in str(sr.PatientID) and study.patient_id not in str(sr.PatientName)
        assert sr.PatientID == pseudonymous_patient_id(world.project.pk, study.patient_id)
        assert not sr.get("StudyDate") and not sr.get("PatientBirthDate")
        assert patient_pseudonyms(world.project.pk)[sr.PatientID] == study.patient_id  # staff can map it back
