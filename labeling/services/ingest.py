"""Import DICOM studies: validate, store the pixels, register Study/Series/Instance rows, add cases.

Sources: files (a folder, an upload, an unpacked zip) or a DICOMweb server searched by QIDO. Every file is
validated first (``labeling.dicom.validate``); a bad file or study becomes a problem naming the file and the
reason, and the other studies go on. A DICOM SEG (e.g. a CT study's pelvis bone mask) is imported with its
study, or later on its own, when it fits an image series of that study; it is stored like any instance and
registered as a Series of modality SEG whose ``source_series`` is that image series (never graded).
Re-importing the same UIDs adds nothing twice; a file whose SOPInstanceUID was imported before with other pixels
(or in another series) is refused with its study, and the stored instance stays as it was. Long imports run as an ImportJob (``import_job_run``, from a
Celery task or the command line) that records its progress; uploads reach a job through
``labeling.services.uploads``.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import uuid
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone
from pydicom import dcmread
from pydicom.dataset import Dataset

from labeling.dicom import (
    DicomNotFound,
    DicomStore,
    DicomStoreError,
    DicomStoreFull,
    DicomStoreUnavailable,
    DicomWebStore,
    store_open,
)
from labeling.dicom.deidentify import DeidentificationRefused, Deidentifier, DeidProfile, refusal_reason
from labeling.dicom.errors import IMAGE_SERVER_UNAVAILABLE
from labeling.dicom.proxy import pooled_session
from labeling.dicom.pseudonyms import pseudonymous_uid
from labeling.dicom.segmentation import SourceSeries
from labeling.dicom.store import json_value, tag_key
from labeling.dicom.validate import ValidationProblem, ValidSeries, validate_files
from labeling.exceptions import Conflict, DomainError, InvalidInput
from labeling.models import Case, ImportJob, Instance, Project, Series, Study, StudyDeidentification
from labeling.services.audit import audit_record
from labeling.services.deidentification import deidentification_record, deidentify_profile
from labeling.services.jobs import Heartbeat, is_alive
from labeling.services.outbox import outbox_send
from labeling.services.studies import case_create, study_check_not_foreign, study_register

logger = logging.getLogger(__name__)

#: (files done, files in total); called after each study and after validation.
Progress = Callable[[int, int], None]
#: (study UID, ids of the cases it added); called once a study is stored and registered.
Imported = Callable[[str, list[int]], None]


@dataclass
class ImportReport:
    """What an import did: study UIDs imported (new or completed) and skipped (known), cases, problems."""

    imported: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    cases: list[int] = field(default_factory=list)
    problems: list[dict[str, str]] = field(default_factory=list)  # {"path": file or study, "reason": ...}
    files: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def merge(self, other: ImportReport) -> None:
        self.imported += other.imported
        self.skipped += other.skipped
        self.cases += other.cases
        self.problems += other.problems
        self.files += other.files


def configured_store() -> DicomStore:
    """The deployment's DICOM store: the DICOMweb server when DICOMWEB_URL is set, else the local folder.

    One per process and configuration, so that the DICOMweb server's connections are pooled and the local
    store's header index is kept between requests (the one factory of the web app, the workers and the proxy).
    """
    timeout = (settings.DICOMWEB_CONNECT_TIMEOUT_S, settings.DICOMWEB_READ_TIMEOUT_S)
    return _store_for(settings.DICOMWEB_URL, str(settings.DICOM_FOLDER), timeout)


@functools.lru_cache(maxsize=4)
def _store_for(dicomweb_url: str, folder: str, timeout: tuple[float, float]) -> DicomStore:
    return store_open(dicomweb_url=dicomweb_url, folder=folder, session=pooled_session(), timeout_s=timeout)


def _same_server(a: DicomStore, b: DicomStore) -> bool:
    return isinstance(a, DicomWebStore) and isinstance(b, DicomWebStore) and a.url == b.url


# --- files --------------------------------------------------------------------------------------------------


def _shown_path(path: Path, root: Path | None) -> str:
    if root is not None:
        try:
            return str(path.relative_to(root))
        except ValueError:
            pass
    return str(path)


def _read(path: Path) -> Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return dcmread(path)


def _shared_group(dataset: Dataset, sequence: str, keyword: str) -> Any:
    """A value of a multi-frame object's shared functional groups (e.g. a SEG's PixelSpacing), else None."""
    shared = dataset.get("SharedFunctionalGroupsSequence")
    items = shared[0].get(sequence) if shared else None
    return items[0].get(keyword) if items else None


def _series_entry(valid: ValidSeries, datasets: Sequence[Dataset]) -> dict[str, Any]:
    """The study_register entry of one validated series; ``datasets`` are in the order of ``valid.paths``."""
    first = datasets[0]
    thickness = first.get("SliceThickness")
    spacing = first.get("PixelSpacing") or _shared_group(first, "PixelMeasuresSequence", "PixelSpacing")
    orientation = first.get("ImageOrientationPatient") or _shared_group(
        first, "PlaneOrientationSequence", "ImageOrientationPatient"
    )
    if thickness in (None, ""):
        thickness = _shared_group(first, "PixelMeasuresSequence", "SliceThickness")
    return {
        "series_uid": valid.series_uid,
        "modality": valid.modality,
        "description": valid.description,
        "frame_of_reference_uid": valid.frame_of_reference_uid,
        "source_series_uid": valid.source_series_uid,
        "rows": int(first.Rows) if "Rows" in first else None,
        "columns": int(first.Columns) if "Columns" in first else None,
        "pixel_spacing_mm": [float(v) for v in spacing] if spacing else None,
        "slice_thickness_mm": float(thickness) if thickness not in (None, "") else valid.spacing_mm,
        "orientation": [float(v) for v in orientation] if orientation else None,
        "instances": [
            {
                "sop_uid": str(ds.SOPInstanceUID),
                "sop_class_uid": str(ds.SOPClassUID),
                "instance_number": int(ds.InstanceNumber)
                if ds.get("InstanceNumber") not in (None, "")
                else None,
                "slice_index": index,
                "position": [float(v) for v in ds.ImagePositionPatient]
                if "ImagePositionPatient" in ds
                else None,
            }
            for index, ds in enumerate(datasets)
        ],
    }


def _missing_sequences(
    project: Project | None, study_uid: str, series: Mapping[str, ValidSeries]
) -> list[str]:
    """The scheme's sequences that neither this import nor the study's registered series provide."""
    if project is None:
        return []
    descriptions = {s.description for s in series.values() if s.modality != Series.SEG}
    descriptions |= set(
        Series.objects.filter(study__study_uid=study_uid).images().values_list("description", flat=True)
    )
    return [name for name in project.scheme.parsed.sequences if name not in descriptions]


def registered_series(series_uid: str, profile: DeidProfile | None = None) -> SourceSeries | None:
    """A registered image series as validation sees a SEG's source (None when unknown or not an image).

    With a de-identification ``profile``, ``series_uid`` is an original UID: the series is found under its
    pseudonym and described with its original UIDs, as the SEG (validated before de-identification) names them.
    """
    wanted = pseudonymous_uid(profile.secret, profile.scope, series_uid) if profile else series_uid
    row = Series.objects.images().select_related("study").filter(series_uid=wanted).first()
    if row is None:
        return None
    instances = list(row.instances.order_by("slice_index").values_list("sop_uid", "position"))
    original: dict[str, str] = {}
    if profile is not None:
        deid = StudyDeidentification.objects.filter(study=row.study).first()
        original = dict(deid.uids) if deid is not None else {}
    real = original.get
    return SourceSeries(
        study_uid=real(row.study.study_uid, row.study.study_uid),
        series_uid=real(row.series_uid, row.series_uid),
        frame_of_reference_uid=real(row.frame_of_reference_uid, row.frame_of_reference_uid),
        rows=row.rows,
        columns=row.columns,
        orientation=tuple(float(v) for v in row.orientation or ()),
        positions=tuple((float(p[0]), float(p[1]), float(p[2])) for _, p in instances if p),
        sop_uids=frozenset(real(sop, sop) for sop, _ in instances),
    )


def _already_done(study_uid: str, series_uids: list[str], n_files: int, project: Project | None) -> bool:
    """Whether every instance is registered and (for a project) the study is already one of its cases."""
    study = Study.objects.filter(study_uid=study_uid).first()
    if study is None:
        return False
    known = Instance.objects.filter(series__study=study, series__series_uid__in=series_uids).count()
    if known < n_files:
        return False
    return project is None or Case.objects.filter(project=project, study=study).exists()


def _deidentifier(series: Mapping[str, ValidSeries], profile: DeidProfile) -> Deidentifier:
    """The study's de-identifier; raises DeidentificationRefused when one of its files cannot be made safe."""
    paths = [path for valid in series.values() for path in valid.paths]
    for path in paths:
        header = dcmread(
            path, stop_before_pixels=True, specific_tags=["BurnedInAnnotation", "SOPInstanceUID"]
        )
        if reason := refusal_reason(header):
            raise DeidentificationRefused(reason)
    first = dcmread(paths[0], stop_before_pixels=True, specific_tags=["PatientID", "PatientName"])
    return Deidentifier(
        profile, patient_id=str(first.get("PatientID", "")), patient_name=str(first.get("PatientName", ""))
    )


def _import_study(
    *,
    actor: User | None,
    study_uid: str,
    series: Mapping[str, ValidSeries],
    project: Project | None,
    store: DicomStore | None,
    source: str,
    report: ImportReport,
    profile: DeidProfile | None = None,
) -> None:
    """Store and register one validated study (and its case); adds a problem instead when it does not fit.

    With a de-identification ``profile`` the files are stored, and the study registered, under their
    pseudonyms, and the originals are kept in the study's StudyDeidentification; the report names the study
    by its stored UID (problems by the UID of the files, which nothing was stored under).
    """
    try:
        deid = _deidentifier(series, profile) if profile is not None else None
    except DeidentificationRefused as exc:
        report.problems.append(
            {"path": study_uid, "reason": f"study {study_uid}: {exc}; nothing of it was imported"}
        )
        return
    uid = deid.uid if deid is not None else str
    stored_study_uid = uid(study_uid)
    missing = _missing_sequences(project, stored_study_uid, series)
    if missing:
        assert project is not None
        present = sorted(
            {s.description or "no description" for s in series.values() if s.modality != Series.SEG}
        )
        report.problems.append(
            {
                "path": study_uid,
                "reason": f"study {study_uid} lacks the series {missing} that the scheme "
                f"{project.scheme.name} needs (it has {present}); nothing of it was imported",
            }
        )
        return
    try:
        study_check_not_foreign(actor=actor, study_uid=stored_study_uid)
    except Conflict as exc:  # checked before storing: the files must not replace another project's images
        report.problems.append({"path": study_uid, "reason": f"{exc.message}; nothing of it was imported"})
        return
    if store is not None and (refused := _replacements(series, uid, store)):
        report.problems += [
            {"path": path.name, "reason": f"{reason}; nothing of study {study_uid} was imported"}
            for path, reason in refused
        ]
        return
    n_files = sum(len(s.paths) for s in series.values())
    if _already_done(stored_study_uid, [uid(s) for s in series], n_files, project):
        report.skipped.append(stored_study_uid)
        return
    entries, patient_id, description = [], "", ""
    for valid in series.values():
        datasets = [_read(path) for path in valid.paths]
        entry = _series_entry(valid, datasets)
        if deid is not None:
            datasets = [deid.dataset(ds) for ds in datasets]
            entry = _series_entry_deidentified(entry, deid, datasets, profile)
        if store is not None:
            store.store(datasets)  # idempotent: re-storing an instance replaces it
        entries.append(entry)
        patient_id = patient_id or str(datasets[0].get("PatientID", ""))
        description = description or str(datasets[0].get("StudyDescription", ""))
    images = [s.modality for s in series.values() if s.modality != Series.SEG]
    modality = project.scheme.parsed.modality if project else (images or [Series.SEG])[0]
    with transaction.atomic():
        study = study_register(
            actor=actor,
            study_uid=stored_study_uid,
            modality=modality,
            patient_id=patient_id[:64],
            description=description[:200],
            source=source[:200],
            series=entries,
        )
        if deid is not None:
            deidentification_record(
                study=study, project=project, deidentifier=deid, original_study_uid=study_uid
            )
        if project is not None and not Case.objects.filter(project=project, study=study).exists():
            report.cases.append(case_create(actor=actor, project=project, study=study).pk)
    report.imported.append(stored_study_uid)


def _replacements(
    series: Mapping[str, ValidSeries], uid: Callable[[str], str], store: DicomStore
) -> list[tuple[Path, str]]:
    """The files that would replace an imported instance, with why: pixels once imported are never replaced.

    A file is refused when its SOPInstanceUID (as stored: ``uid`` maps it to its pseudonym) is registered in
    another series, or stored with other pixel data; the same file again (a re-import) is not. Only the files
    whose UID is known are read whole, one at a time, with the stored copy.
    """
    stored: dict[Path, tuple[str, str, str]] = {}
    for valid in series.values():
        for path in valid.paths:
            header = dcmread(path, stop_before_pixels=True, specific_tags=["SOPInstanceUID"])
            stored[path] = (uid(valid.study_uid), uid(valid.series_uid), uid(str(header.SOPInstanceUID)))
    known = {
        row.sop_uid: row
        for row in Instance.objects.filter(sop_uid__in=[s[2] for s in stored.values()]).select_related(
            "series__study"
        )
    }
    refused = []
    for path, (study_uid, series_uid, sop_uid) in stored.items():
        row = known.get(sop_uid)
        if row is None:
            continue
        if (row.series.study.study_uid, row.series.series_uid) != (study_uid, series_uid):
            refused.append(
                (
                    path,
                    f"{path.name}: its SOPInstanceUID {sop_uid} is already imported in series "
                    f"{row.series.series_uid} of study {row.series.study.study_uid}",
                )
            )
            continue
        try:
            before = store.instance(study_uid, series_uid, sop_uid).get("PixelData")
        except DicomNotFound:
            continue  # registered, but its file is gone: there are no pixels to keep
        if _read(path).get("PixelData") != before:
            refused.append(
                (
                    path,
                    f"{path.name}: its SOPInstanceUID {sop_uid} was imported before with other pixels, "
                    "and pixels once imported are never replaced",
                )
            )
    return refused


def _series_entry_deidentified(
    entry: dict[str, Any], deid: Deidentifier, datasets: Sequence[Dataset], profile: DeidProfile | None
) -> dict[str, Any]:
    """A study_register entry (built from the original files) under the pseudonyms of the stored ones.

    The description stays only when it is known to be clean (a scheme's sequence name, e.g. T1): Concord
    needs it to tell the sequences apart, whatever the Clean Descriptors Option did to the stored file.
    """
    clean = profile.clean_descriptions if profile is not None else frozenset()
    return {
        **entry,
        "series_uid": deid.uid(entry["series_uid"]),
        "frame_of_reference_uid": deid.uid(entry["frame_of_reference_uid"])
        if entry["frame_of_reference_uid"]
        else "",
        "source_series_uid": deid.uid(entry["source_series_uid"]) if entry["source_series_uid"] else None,
        "description": entry["description"] if entry["description"] in clean else "",
        "instances": [
            {**inst, "sop_uid": str(ds.SOPInstanceUID)}
            for inst, ds in zip(entry["instances"], datasets, strict=True)
        ],
    }


def import_paths(
    *,
    actor: User | None,
    paths: Iterable[str | os.PathLike[str]],
    project: Project | None = None,
    store: DicomStore | None = None,
    store_pixels: bool = True,
    source: str = "files",
    root: Path | None = None,
    progress: Progress | None = None,
    on_imported: Imported | None = None,
) -> ImportReport:
    """Validate files, then store, register and (for a project) add as cases every valid study.

    ``store``: where the pixels go (default: the configured store); ``store_pixels=False`` when the files
    came from that store. A project requires its scheme's modality and series (MRI: T1 and STIR). Problems are
    reported per file (validation) or per study (missing series, store refused it), and the rest goes on. A
    store that cannot be reached (DicomStoreUnavailable) or is full (DicomStoreFull) is no study's problem:
    it is raised, and the studies stored before it stay imported (a rerun skips them).
    """
    files = [Path(p) for p in paths]
    report = ImportReport(files=len(files))
    modality = project.scheme.parsed.modality if project else None
    profile = deidentify_profile(project)
    validation = validate_files(
        files, required_modality=modality, known_series=functools.partial(registered_series, profile=profile)
    )
    report.problems += [{"path": _shown_path(p.path, root), "reason": p.reason} for p in validation.problems]
    done = len(validation.problems)
    if progress:
        progress(done, len(files))
    # de-identified files are new objects: stored even when the originals came from the store itself
    target = (store or configured_store()) if store_pixels or profile is not None else None
    tainted = _tainted_studies(validation.problems, validation.studies)
    for study_uid, series in validation.studies.items():
        if study_uid in tainted:
            names = ", ".join(sorted(tainted[study_uid])[:5])
            report.problems.append(
                {
                    "path": study_uid,
                    "reason": f"study {study_uid} was not imported: some of its files were rejected ({names})",
                }
            )
            done += sum(len(s.paths) for s in series.values())
            continue
        n_imported, n_cases = len(report.imported), len(report.cases)
        try:
            _import_study(
                actor=actor,
                study_uid=study_uid,
                series=series,
                project=project,
                store=target,
                source=source,
                report=report,
                profile=profile,
            )
        except (DicomStoreUnavailable, DicomStoreFull):
            raise  # not this study's fault: the whole import pauses (unreachable) or stops (disk full)
        except (DicomStoreError, DomainError) as exc:
            reason = getattr(exc, "message", None) or str(exc)
            report.problems.append({"path": study_uid, "reason": f"study {study_uid}: {reason}"})
        if on_imported and len(report.imported) > n_imported:
            on_imported(study_uid, report.cases[n_cases:])
        done += sum(len(s.paths) for s in series.values())
        if progress:
            progress(done, len(files))
    return report


def _tainted_studies(
    problems: Iterable[ValidationProblem], studies: Mapping[str, Mapping[str, ValidSeries]]
) -> dict[str, set[str]]:
    """Study UID → names of its rejected files: a study is imported whole or not at all.

    A rejected file belongs to the study its header names, or, when it cannot be read, to the studies whose
    files share its folder (uploads and exports keep one series per folder).
    """
    by_folder: dict[Path, set[str]] = {}
    for study_uid, series in studies.items():
        for valid in series.values():
            for path in valid.paths:
                by_folder.setdefault(path.parent, set()).add(study_uid)
    tainted: dict[str, set[str]] = {}
    for problem in problems:
        owners = set(by_folder.get(problem.path.parent, set()))
        try:
            header = dcmread(problem.path, stop_before_pixels=True, specific_tags=["StudyInstanceUID"])
            if str(header.get("StudyInstanceUID", "")) in studies:
                owners = {str(header.StudyInstanceUID)}
        except Exception:  # unreadable bytes: the folder decides
            pass
        for owner in owners:
            tainted.setdefault(owner, set()).add(problem.path.name)
    return tainted


def dicom_files_under(folder: Path) -> list[Path]:
    """Every regular file under ``folder`` (hidden files and folders excluded), sorted."""
    found = []
    for base, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [Path(base, n) for n in sorted(names) if not n.startswith(".")]
    return found


# --- DICOMweb -----------------------------------------------------------------------------------------------


def _search_filters(filters: Mapping[str, str]) -> dict[str, str]:
    checked = {}
    for key, value in filters.items():
        try:
            tag_key(key)
        except ValueError:
            raise InvalidInput(f"{key!r} is not a DICOM attribute keyword or tag", field="filters") from None
        checked[key] = str(value)
    return checked


def import_dicomweb(
    *,
    actor: User | None,
    url: str,
    filters: Mapping[str, str],
    project: Project | None = None,
    store: DicomStore | None = None,
    progress: Progress | None = None,
    on_imported: Imported | None = None,
) -> ImportReport:
    """Import the studies a QIDO search on ``url`` finds: fetch each study's instances, then ``import_paths``.

    When ``url`` is the configured DICOMweb server itself, the pixels are already in place and are not stored
    again, unless the project de-identifies (then the de-identified copies are stored beside the originals). Raises DicomStoreUnavailable when the server cannot be reached (the job may be retried).
    """
    source_store = DicomWebStore(url)
    target = store or configured_store()
    copy_pixels = not _same_server(source_store, target) or deidentify_profile(project) is not None
    studies = source_store.search_studies(_search_filters(filters))
    total = sum(int(json_value(s, "NumberOfStudyRelatedInstances", 0) or 0) for s in studies)
    report, done = ImportReport(), 0
    workdir = Path(settings.VAR_DIR) / "imports" / f"dicomweb-{uuid.uuid4().hex}"
    try:
        for study in studies:
            study_uid = str(json_value(study, "StudyInstanceUID"))
            folder = workdir / study_uid
            folder.mkdir(parents=True)
            for index, item in enumerate(source_store.search_instances(study_uid)):
                dataset = source_store.instance(
                    study_uid,
                    str(json_value(item, "SeriesInstanceUID")),
                    str(json_value(item, "SOPInstanceUID")),
                )
                dataset.save_as(folder / f"{index:06d}.dcm", enforce_file_format=True)
            part = import_paths(
                actor=actor,
                paths=dicom_files_under(folder),
                project=project,
                store=target,
                store_pixels=copy_pixels,
                source=f"dicomweb:{url}",
                root=workdir,
                on_imported=on_imported,
            )
            report.merge(part)
            done += part.files
            shutil.rmtree(folder, ignore_errors=True)
            if progress:
                progress(done, max(total, done))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return report


# --- jobs ---------------------------------------------------------------------------------------------------


@transaction.atomic
def import_job_create(
    *, actor: User | None, project: Project | None, source: str, params: dict[str, Any], total: int = 0
) -> ImportJob:
    """Record a queued import (audited)."""
    job = ImportJob.objects.create(
        project=project, created_by=actor, source=source[:500], params=params, total=total
    )
    audit_record(actor=actor, action="import.create", target=job, project=project, data={"source": source})
    return job


def _job_progress(job_id: int) -> Progress:
    def update(done: int, total: int) -> None:
        ImportJob.objects.filter(pk=job_id).update(done=done, total=total)

    return update


def _import_job_claim(job_id: int) -> ImportJob | None:
    """Mark the job running for this worker (row-locked); None when it is finished or a live worker has it."""
    with transaction.atomic():
        job = ImportJob.objects.select_for_update().get(pk=job_id)
        if job.status in (ImportJob.Status.SUCCEEDED, ImportJob.Status.FAILED):
            return None  # a redelivered or re-dispatched task after the end
        now = timezone.now()
        alive = is_alive(job.heartbeat_at, stale_after_s=settings.JOB_HEARTBEAT_STALE_S, now=now)
        if job.status == ImportJob.Status.RUNNING and alive:
            return None  # another worker is on it
        job.status, job.heartbeat_at, job.attempts = ImportJob.Status.RUNNING, now, job.attempts + 1
        job.started_at = job.started_at or now
        job.save(update_fields=["status", "heartbeat_at", "attempts", "started_at"])
    return ImportJob.objects.select_related("project__scheme", "created_by").get(pk=job_id)


class _Imported:
    """The studies (and cases) each attempt of a job imported, kept in the job's row as they happen, so that a
    job resumed after its worker died reports what an undisturbed run reports (not "skipped, already there")."""

    def __init__(self, job: ImportJob) -> None:
        self.job_id = job.pk
        earlier = job.report if job.status == ImportJob.Status.RUNNING else {}
        self.imported: list[str] = list(earlier.get("imported", []))
        self.cases: list[int] = list(earlier.get("cases", []))

    def __call__(self, study_uid: str, cases: list[int]) -> None:
        self.imported.append(study_uid)
        self.cases += cases
        ImportJob.objects.filter(pk=self.job_id).update(
            report={"imported": self.imported, "cases": self.cases, "partial": True}
        )

    def complete(self, report: ImportReport) -> ImportReport:
        """The final report: studies imported by an earlier attempt count as imported, not skipped."""
        before = [uid for uid in self.imported if uid not in report.imported]
        report.imported = before + report.imported
        report.skipped = [uid for uid in report.skipped if uid not in before]
        report.cases = [c for c in self.cases if c not in report.cases] + report.cases
        return report


def import_job_run(*, job_id: int, progress: Progress | None = None) -> ImportJob:
    """Run a queued import; a finished job is returned as it is (a redelivered task does nothing twice).

    The job is claimed under a row lock and its heartbeat kept fresh while it runs (``labeling.services.jobs``):
    a second delivery while a live worker has it returns at once; a job whose worker died (stale heartbeat) is
    run again, and since imports are idempotent by UID it ends as an undisturbed run would. A store outage puts
    the job back to queued and re-raises for the task to retry; any other error fails the job with the reason.
    """
    job = _import_job_claim(job_id)
    if job is None:
        return ImportJob.objects.get(pk=job_id)
    imported = _Imported(job)
    every_s = max(settings.JOB_HEARTBEAT_STALE_S / 4, 0.2)
    with Heartbeat(ImportJob, job.pk, every_s=every_s, status=ImportJob.Status.RUNNING):
        report = _import_job_work(job, progress, imported)
    report = imported.complete(report)
    report.problems = list(job.params.get("problems", [])) + report.problems  # archive members not unpacked
    with transaction.atomic():
        ImportJob.objects.filter(pk=job.pk).update(
            status=ImportJob.Status.SUCCEEDED,
            error="",  # a pause on the way ("image server unavailable") is over
            report=report.as_dict(),
            problems=report.problems,
            done=report.files,
            total=report.files,
            finished_at=timezone.now(),
            heartbeat_at=None,
        )
        job.refresh_from_db()
        audit_record(
            actor=job.created_by,
            action="import.finish",
            target=job,
            project=job.project,
            data={k: len(v) for k, v in report.as_dict().items() if isinstance(v, list)},
        )
    if job.params.get("cleanup"):
        shutil.rmtree(job.params["folder"], ignore_errors=True)
    return job


def _import_job_work(job: ImportJob, progress: Progress | None, imported: _Imported) -> ImportReport:
    track = _job_progress(job.pk)

    def both(done: int, total: int) -> None:
        track(done, total)
        if progress:
            progress(done, total)

    try:
        if "url" in job.params:
            return import_dicomweb(
                actor=job.created_by,
                url=job.params["url"],
                filters=job.params.get("filters", {}),
                project=job.project,
                progress=both,
                on_imported=imported,
            )
        folder = Path(job.params["folder"])
        return import_paths(
            actor=job.created_by,
            paths=dicom_files_under(folder),
            project=job.project,
            source=job.source,
            root=folder,
            progress=both,
            on_imported=imported,
        )
    except DicomStoreUnavailable as exc:  # transient: the task retries, and the rerun skips finished studies
        ImportJob.objects.filter(pk=job.pk).update(
            status=ImportJob.Status.QUEUED, error=import_paused_message(exc), heartbeat_at=None
        )
        raise
    except (DicomStoreError, DomainError, OSError) as exc:
        ImportJob.objects.filter(pk=job.pk).update(
            status=ImportJob.Status.FAILED,
            error=str(exc)[:5000],
            finished_at=timezone.now(),
            heartbeat_at=None,
        )
        raise


IMPORT_JOB_TASK = "labeling.tasks.import_job_run_task"


def import_paused_message(exc: DicomStoreUnavailable) -> str:
    """The error a queued job shows while its image server is away (it will retry, and resume)."""
    return f"{IMAGE_SERVER_UNAVAILABLE}: paused, will retry and resume where it stopped ({exc})"[:5000]


def import_job_enqueue(job: ImportJob) -> None:
    """Queue the job's task with the current transaction (outbox): sent after commit, or by the next drain."""
    ImportJob.objects.filter(pk=job.pk).update(dispatched_at=timezone.now())
    outbox_send(IMPORT_JOB_TASK, args=(job.pk,))


def import_dicomweb_queue(
    *, actor: User, project: Project, filters: Mapping[str, str], url: str | None = None
) -> ImportJob:
    """Queue an import of the studies a QIDO search finds on ``url`` (default: the configured server).

    Only the configured server and those in the DICOM_IMPORT_SOURCES setting may be named (no arbitrary
    URLs from a request). Raises InvalidInput for an unknown source, no source, or a bad filter key.
    """
    allowed = [u.rstrip("/") for u in [settings.DICOMWEB_URL, *settings.DICOM_IMPORT_SOURCES] if u]
    chosen = (url or settings.DICOMWEB_URL or "").rstrip("/")
    if not chosen:
        raise InvalidInput("no DICOMweb server is configured (DICOMWEB_URL); name a source", field="url")
    if chosen not in allowed:
        raise InvalidInput(f"{chosen} is not a configured DICOMweb import source", field="url")
    checked = _search_filters(filters)
    with transaction.atomic():
        job = import_job_create(
            actor=actor,
            project=project,
            source=f"dicomweb:{chosen}",
            params={"url": chosen, "filters": checked},
        )
        import_job_enqueue(job)
    return job


REDISPATCH_ACTION = "import.redispatch"


def import_jobs_recover(*, now: datetime | None = None) -> list[int]:
    """Queue again the import jobs nobody works on; return their ids.

    Lost: running with a heartbeat older than ``JOB_HEARTBEAT_STALE_S`` (its worker died, e.g. ``kill -9``)
    and no message sent since that attempt began, or queued (or running) with its last dispatch older than
    ``JOB_REDISPATCH_AFTER_S`` (a message lost with a broker, or a store outage that outlasted the retries). A
    message that was not lost after all does no harm: the task claims the job under a row lock and returns when
    it is finished or a live worker holds it. Rows another caller is examining are skipped (``skip_locked``).
    """
    now = now or timezone.now()
    stale_before = now - timedelta(seconds=settings.JOB_HEARTBEAT_STALE_S)
    dispatched_before = now - timedelta(seconds=settings.JOB_REDISPATCH_AFTER_S)
    last_sent = Coalesce(F("dispatched_at"), F("created_at"))
    dead = Q(status=ImportJob.Status.RUNNING) & (
        Q(heartbeat_at__isnull=True) | Q(heartbeat_at__lt=stale_before)
    )
    consumed = Q(dispatched_at__isnull=True) | Q(dispatched_at__lt=F("heartbeat_at"))
    recovered = []
    with transaction.atomic():
        jobs = (
            ImportJob.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("project")
            .annotate(last_sent=last_sent)
            .filter(
                (dead & (consumed | Q(last_sent__lt=dispatched_before)))
                | Q(status=ImportJob.Status.QUEUED, last_sent__lt=dispatched_before)
            )
            .order_by("pk")
        )
        for job in jobs:
            quiet_from = job.heartbeat_at if job.status == ImportJob.Status.RUNNING else job.last_sent
            why = f"{job.status} for {(now - (quiet_from or job.created_at)).total_seconds():.0f} s with no worker"
            audit_record(
                actor=None, action=REDISPATCH_ACTION, target=job, project=job.project, data={"why": why}
            )
            import_job_enqueue(job)
            recovered.append(job.pk)
    if recovered:
        logger.warning("re-dispatched import jobs %s", recovered)
    return recovered
