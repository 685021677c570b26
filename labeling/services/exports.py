"""Exports of a project: readings, consensus and adjudications as CSV; readings as DICOM SR (TID 1500).

The SR of a reading is a Comprehensive 3D SR measurement report: one measurement group per joint × region
with the reading's values as qualitative evaluations, and one planar ROI group per contour holding the
polyline as SCOORD3D in the series' frame of reference. The source images are referenced by UID in the
image library and the evidence sequence. Codes come from a private scheme (``99CONCORD``) except the
present/absent values, which are SNOMED CT.
"""

from __future__ import annotations

import logging
import tempfile
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO, Any

import highdicom as hd
import numpy as np
from django.contrib.auth.models import User
from django.db.models import Prefetch
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.uid import generate_uid

from labeling.models import Adjudication, Contour, Instance, ItemPosterior, Project, Reading, Series
from labeling.services.audit import audit_record
from labeling.services.csvcells import csv_text
from labeling.services.deidentification import ExportIdentity

SCHEME = "99CONCORD"
PRESENT = hd.sr.CodedConcept("52101004", "SCT", "Present")
ABSENT = hd.sr.CodedConcept("2667000", "SCT", "Absent")
SR_SERIES_NUMBER = 900

logging.getLogger("highdicom").setLevel(logging.WARNING)  # it logs every module it copies at INFO


def _csv(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    return csv_text(header, rows)  # cells escaped against formula injection


def _pseudonymous(project: Project, identity: ExportIdentity | None) -> ExportIdentity:
    """Exports carry pseudonyms unless the caller passes an identified ``export_identity`` (staff, audited)."""
    return identity or ExportIdentity(project=project, identified=False)


def _current_readings(project: Project) -> Any:
    return (
        Reading.objects.current()
        .filter(project=project)
        .select_related("case__study__deidentification", "reader", "assignment")
        .prefetch_related("values")
        .order_by("case_id", "reader_id", "session", "id")
    )


def readings_csv(*, project: Project, identity: ExportIdentity | None = None) -> str:
    """One row per item × reader × session × condition of the current (not superseded) readings; the
    condition tells a reader study's reads of one case apart (unaided, aided, t1_only, …)."""
    ids = _pseudonymous(project, identity)
    header = [
        "case_id",
        "case_label",
        "study_uid",
        "reader_id",
        "reader",
        "session",
        "condition",
        "reading_id",
        "corrects",
        "submitted_at",
        "joint",
        "region",
        "lesion",
        "value",
    ]
    rows = (
        [
            r.case_id,
            r.case.label,
            ids.uid(r.case.study, r.case.study.study_uid),
            r.reader_id,
            r.reader.username,
            r.session,
            r.assignment.condition,
            r.pk,
            r.supersedes_id or "",
            r.created_at.isoformat(),
            v.joint,
            v.region,
            v.lesion,
            v.value,
        ]
        for r in _current_readings(project)
        for v in r.values.all()
    )
    return _csv(header, rows)


def _adjudicated(project: Project) -> dict[tuple[int, str, str, str], int]:
    """The latest (not superseded) adjudicated value per item."""
    current = Adjudication.objects.filter(project=project, superseded_by__isnull=True)
    return {(a.case_id, a.joint, a.region, a.lesion): a.value for a in current}


def consensus_csv(*, project: Project, identity: ExportIdentity | None = None) -> str:
    """One row per item of each current consensus run: posterior per class, MAP, entropy, adjudicated value."""
    ids = _pseudonymous(project, identity)
    adjudicated = _adjudicated(project)
    posteriors = (
        ItemPosterior.objects.filter(run__project=project, run__is_current=True)
        .select_related("run", "case__study__deidentification")
        .order_by("run__lesion", "case_id", "joint", "region")
    )
    header = [
        "lesion",
        "case_id",
        "case_label",
        "study_uid",
        "joint",
        "region",
        "posterior",
        "map_label",
        "max_posterior",
        "entropy",
        "n_readings",
        "clamped",
        "adjudicated_value",
        "run_id",
        "model",
    ]
    rows = (
        [
            p.run.lesion,
            p.case_id,
            p.case.label,
            ids.uid(p.case.study, p.case.study.study_uid),
            p.joint,
            p.region,
            " ".join(f"{float(x):.6f}" for x in p.posterior),
            p.label,
            f"{p.max_posterior:.6f}",
            f"{p.entropy:.6f}",
            p.n_readings,
            int(p.clamped),
            adjudicated.get((p.case_id, p.joint, p.region, p.run.lesion), ""),
            p.run_id,
            p.run.model,
        ]
        for p in posteriors
    )
    return _csv(header, rows)


def adjudications_csv(*, project: Project, identity: ExportIdentity | None = None) -> str:
    """Every adjudication, with what it supersedes and whether it is current."""
    ids = _pseudonymous(project, identity)
    header = [
        "id",
        "case_id",
        "case_label",
        "study_uid",
        "joint",
        "region",
        "lesion",
        "value",
        "reason",
        "adjudicator",
        "created_at",
        "supersedes",
        "current",
    ]
    items = (
        Adjudication.objects.filter(project=project)
        .select_related("case__study__deidentification", "adjudicator")
        .prefetch_related("superseded_by")
        .order_by("id")
    )
    rows = (
        [
            a.pk,
            a.case_id,
            a.case.label,
            ids.uid(a.case.study, a.case.study.study_uid),
            a.joint,
            a.region,
            a.lesion,
            a.value,
            a.reason,
            a.adjudicator.username,
            a.created_at.isoformat(),
            a.supersedes_id or "",
            int(not hasattr(a, "superseded_by")),
        ]
        for a in items
    )
    return _csv(header, rows)


# --- DICOM SR -----------------------------------------------------------------------------------------------


def _code(kind: str, name: str) -> hd.sr.CodedConcept:
    meaning = name.replace("_", " ")
    return hd.sr.CodedConcept(f"{kind}-{name}"[:16], SCHEME, meaning)


def _value_code(value: int, binary: bool) -> hd.sr.CodedConcept:
    if binary:
        return PRESENT if value else ABSENT
    return hd.sr.CodedConcept(f"grade-{value}", SCHEME, f"grade {value}")


def _evidence(reading: Reading, instances: Sequence[Instance], ids: ExportIdentity) -> list[Dataset]:
    """Minimal datasets of the source images (UIDs, patient as ``ids`` has them) built from Concord's rows."""
    study = reading.case.study
    out = []
    for inst in instances:
        series: Series = inst.series
        ds = Dataset()
        ds.SOPClassUID = inst.sop_class_uid or "1.2.840.10008.5.1.4.1.1.4"
        ds.SOPInstanceUID = ids.uid(study, inst.sop_uid)
        ds.StudyInstanceUID = ids.uid(study, study.study_uid)
        ds.SeriesInstanceUID = ids.uid(study, series.series_uid)
        ds.Modality = series.modality
        # a pseudonym unless staff asked for identified data: exports leave the site
        ds.PatientID = ids.patient_id(study)
        ds.PatientName = f"{ds.PatientID}^"  # one-component name, marked as such
        ds.PatientBirthDate = ""
        ds.PatientSex = ""
        ds.StudyID = ""
        ds.StudyDate = ""
        ds.StudyTime = ""
        ds.AccessionNumber = ""
        ds.ReferringPhysicianName = ""
        out.append(ds)
    return out


def _finding_groups(reading: Reading) -> list[hd.sr.MeasurementsAndQualitativeEvaluations]:
    scheme = reading.scheme.parsed
    by_site: dict[tuple[str, str], list[hd.sr.QualitativeEvaluation]] = {}
    for value in reading.values.all():
        binary = not scheme.lesion_is_ordinal(value.lesion)
        by_site.setdefault((value.joint, value.region), []).append(
            hd.sr.QualitativeEvaluation(_code("lesion", value.lesion), _value_code(value.value, binary))
        )
    groups = []
    for (joint, region), evaluations in sorted(by_site.items()):
        groups.append(
            hd.sr.MeasurementsAndQualitativeEvaluations(
                tracking_identifier=hd.sr.TrackingIdentifier(
                    uid=generate_uid(), identifier=f"{joint} {region}"
                ),
                finding_type=codes.SCT.Finding,
                finding_sites=[
                    hd.sr.FindingSite(
                        anatomic_location=_code("joint", f"{joint}_sij"),
                        topographical_modifier=_code("region", region),
                    )
                ],
                qualitative_evaluations=evaluations,
            )
        )
    return groups


def _contour_groups(
    contours: Sequence[Contour], frames: dict[str, str]
) -> list[hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations]:
    groups = []
    for contour in contours:
        frame_uid = frames.get(contour.series_uid)
        if not frame_uid:
            continue  # a series without a frame of reference cannot carry SCOORD3D
        groups.append(
            hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
                tracking_identifier=hd.sr.TrackingIdentifier(
                    uid=generate_uid(), identifier=f"{contour.joint} joint line, slice {contour.slice_index}"
                ),
                referenced_region=hd.sr.ImageRegion3D(
                    graphic_type=hd.sr.GraphicTypeValues3D.POLYLINE,
                    graphic_data=np.asarray(contour.points_mm, dtype=float),
                    frame_of_reference_uid=frame_uid,
                ),
                finding_type=_code("finding", "joint_line"),
                finding_sites=[hd.sr.FindingSite(anatomic_location=_code("joint", f"{contour.joint}_sij"))],
            )
        )
    return groups


def reading_sr(reading: Reading, identity: ExportIdentity | None = None) -> hd.sr.Comprehensive3DSR:
    """Build the TID 1500 measurement report of one reading (values and contours), pseudonymous by default."""
    ids = _pseudonymous(reading.case.project, identity)
    series = {s.series_uid: s for s in reading.case.study.series.all()}
    contours = list(reading.contours.all())
    contour_sops = {c.sop_instance_uid for c in contours if c.sop_instance_uid}
    instances = list(
        Instance.objects.filter(series__study=reading.case.study)
        .select_related("series")
        .filter(sop_uid__in=contour_sops)
    )
    if not instances:  # no contour: reference the first image of each image series
        instances = [
            inst
            for s in reading.case.study.series.images()
            for inst in Instance.objects.filter(series=s).select_related("series")[:1]
        ]
    evidence = _evidence(reading, instances, ids)
    study = reading.case.study
    frames = {uid: ids.uid(study, s.frame_of_reference_uid) for uid, s in series.items()}
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(
            observer_person_context=hd.sr.ObserverContext(
                observer_type=codes.DCM.Person,
                observer_identifying_attributes=hd.sr.PersonObserverIdentifyingAttributes(
                    name=f"reader{reading.reader_id}^session{reading.session}"
                ),
            )
        ),
        procedure_reported=_code("procedure", f"{reading.scheme.name}"),
        imaging_measurements=[*_finding_groups(reading), *_contour_groups(contours, frames)],
        referenced_images=evidence if evidence and all("Rows" in ds for ds in evidence) else None,
    )
    return hd.sr.Comprehensive3DSR(
        evidence=evidence,
        content=report,
        series_instance_uid=generate_uid(),
        series_number=SR_SERIES_NUMBER,
        sop_instance_uid=generate_uid(),
        instance_number=1,
        manufacturer="Concord",
        is_complete=True,
        series_description=f"Concord reading {reading.pk}",
    )


def sr_write(
    *, actor: User | None, project: Project, folder: Path, identity: ExportIdentity | None = None
) -> list[Path]:
    """Write one SR per current reading of the project under ``folder``; returns the files (audited)."""
    folder.mkdir(parents=True, exist_ok=True)
    readings = (
        _current_readings(project)
        .select_related("scheme")
        .prefetch_related("contours", Prefetch("case__study__series", queryset=Series.objects.order_by("id")))
    )
    written = []
    for reading in readings:
        sr = reading_sr(reading, identity)
        # named from ids only: a case label is free text ("../x", "a/b") and must never become a path
        path = (
            folder / f"case{reading.case_id}-reader{reading.reader_id}-s{reading.session}-r{reading.pk}.dcm"
        )
        sr.save_as(path, enforce_file_format=True)
        written.append(path)
    audit_record(
        actor=actor, action="export.sr", target=project, project=project, data={"reports": len(written)}
    )
    return written


def sr_zip(*, actor: User | None, project: Project, identity: ExportIdentity | None = None) -> IO[bytes]:
    """Return an open temporary file holding a zip of the project's SRs (positioned at its start)."""
    spooled = tempfile.TemporaryFile()  # noqa: SIM115 - handed to the caller open
    with tempfile.TemporaryDirectory() as tmp:
        paths = sr_write(actor=actor, project=project, folder=Path(tmp), identity=identity)
        with zipfile.ZipFile(spooled, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
            for path in paths:
                bundle.write(path, arcname=f"sr/{path.name}")
    spooled.seek(0)
    return spooled


def project_export(
    *, actor: User | None, project: Project, folder: Path, identity: ExportIdentity | None = None
) -> dict[str, Any]:
    """Write readings.csv, consensus.csv, adjudications.csv and sr/*.dcm under ``folder``; return a summary.

    Pseudonymous unless ``identity`` is an identified ``export_identity`` (staff, audited).
    """
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "readings.csv").write_text(readings_csv(project=project, identity=identity))
    (folder / "consensus.csv").write_text(consensus_csv(project=project, identity=identity))
    (folder / "adjudications.csv").write_text(adjudications_csv(project=project, identity=identity))
    reports = sr_write(actor=actor, project=project, folder=folder / "sr", identity=identity)
    return {"folder": str(folder), "sr": len(reports)}
