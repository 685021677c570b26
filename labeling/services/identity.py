"""Who may see patient identity in images, and which series descriptions are clean enough to show anyone.

Readers and adjudicators never receive patient-identifying attributes (``labeling.dicom.confidentiality``);
site staff (who administer the stores and the pseudonym mapping) receive the objects as stored. A reader's
assignment is also served under UIDs of its own (``labeling.dicom.pseudonyms``), keyed by a secret derived
from SECRET_KEY: only the server can map them back.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db.models import QuerySet

from labeling.conditions import CONDITIONS
from labeling.dicom.deidentify import patient_pseudonym
from labeling.dicom.pseudonyms import UidMap, pseudonymous_uid
from labeling.exceptions import InvalidInput
from labeling.models import Assignment, Series, Study, parsed_schemes
from labeling.prepared import PreparedQuery


def sees_identity(user: User) -> bool:
    """Whether ``user`` receives DICOM objects as stored (identified): site staff only."""
    return bool(user.is_active and user.is_staff)


#: (time.monotonic() when read, the names) of ``clean_series_descriptions``
_clean_descriptions: tuple[float, frozenset[str]] | None = None


def clean_series_descriptions() -> frozenset[str]:
    """Series descriptions safe to show readers: the sequence names the loaded schemes ask for (T1, STIR).

    Every series served to a reader asks, so the names are read again only after ``SCHEME_NAMES_CACHE_S``."""
    global _clean_descriptions
    now = time.monotonic()
    kept = _clean_descriptions
    if kept is None or now - kept[0] >= settings.SCHEME_NAMES_CACHE_S:
        kept = _clean_descriptions = (
            now,
            frozenset(s for scheme in parsed_schemes() for s in scheme.sequences),
        )
    return kept[1]


def pseudonym_secret() -> bytes:
    """The server's key for every pseudonym (UIDs, patients, date shifts), derived from SECRET_KEY."""
    return hashlib.sha256(b"concord dicom pseudonyms\x00" + str(settings.SECRET_KEY).encode()).digest()


def _scope(assignment_id: int) -> str:
    return f"assignment:{assignment_id}"


def assignment_study_uid(assignment: Assignment) -> str:
    """The StudyInstanceUID under which ``assignment``'s reader fetches its images."""
    return pseudonymous_uid(pseudonym_secret(), _scope(assignment.pk), assignment.case.study.study_uid)


def pseudonymous_studies(assignments: list[tuple[int, str]]) -> dict[str, tuple[int, str]]:
    """Pseudonymous study UID → (assignment id, real study UID), for (assignment id, real study UID) pairs."""
    secret = pseudonym_secret()
    return {pseudonymous_uid(secret, _scope(pk), uid): (pk, uid) for pk, uid in assignments}


def hidden_series(condition_name: str, series: Iterable[tuple[str, str]]) -> set[str]:
    """The series UIDs, of (series UID, description) pairs, that a read in ``condition_name`` is not served
    (a T1-only read: every series but T1, SEG objects included)."""
    cond = CONDITIONS.get(condition_name)
    if cond is None or cond.sequences is None:
        return set()
    return {uid for uid, description in series if not cond.shows_series(description)}


def _study_uids_query(study_uid: str) -> QuerySet[Series, tuple[str, str, str, str | None]]:
    series = Series.objects.filter(study__study_uid=study_uid)
    return series.values_list("series_uid", "frame_of_reference_uid", "description", "instances__sop_uid")


#: Every case opened, and every draft or reading with contours, maps its UIDs: compiled once per process.
_STUDY_UIDS = PreparedQuery(_study_uids_query, study_uid=str)


def assignment_uid_map(assignment_id: int, study_uid: str, *, condition_name: str | None = None) -> UidMap:
    """Every UID of the assignment's study (as Concord registered it) and its pseudonym for that assignment,
    less the series the assignment's condition hides (their UIDs, and their instances', name nothing: 404).

    ``condition_name``: the assignment's condition when the caller holds it (else it is looked up)."""
    rows = _STUDY_UIDS.rows(study_uid=study_uid)  # one per instance (a series without any: one, with None)
    series: dict[str, tuple[str, str]] = {}
    instances: list[tuple[str, str]] = []
    for series_uid, frame_uid, description, sop_uid in rows:
        series.setdefault(series_uid, (frame_uid, description))
        if sop_uid is not None:
            instances.append((series_uid, sop_uid))
    if condition_name is None:
        condition_name = (
            Assignment.objects.filter(pk=assignment_id).values_list("condition", flat=True).first() or ""
        )
    hidden = hidden_series(condition_name, ((uid, d) for uid, (_, d) in series.items()))
    uids = [
        study_uid,
        *(u for uid, (f, _) in series.items() if uid not in hidden for u in (uid, f) if u),
        *(sop for uid, sop in instances if uid not in hidden),
    ]
    return UidMap(pseudonym_secret(), _scope(assignment_id), uids, hidden_series=hidden)


def assignment_uids(assignment: Assignment) -> UidMap:
    """The UID map of ``assignment``'s study under the assignment's own pseudonyms."""
    return assignment_uid_map(
        assignment.pk, assignment.case.study.study_uid, condition_name=assignment.condition
    )


#: The fields of a contour payload that name DICOM objects of the case.
CONTOUR_UID_FIELDS = ("series_uid", "sop_instance_uid")


def contours_to_stored(uids: UidMap, contours: Sequence[Any]) -> list[Any]:
    """A reader's contour payloads (naming series and instances by the assignment's pseudonymous UIDs) with
    the stored UIDs in their place. A UID that names nothing of this assignment is a 400 naming the field
    (and not the UID: readers never learn stored ones); payloads that are no objects pass on unchanged for
    the service to word the error."""
    out: list[Any] = []
    for i, contour in enumerate(contours):
        if not isinstance(contour, Mapping):
            out.append(contour)
            continue
        mapped = dict(contour)
        for field in CONTOUR_UID_FIELDS:
            value = mapped.get(field)
            if isinstance(value, str) and value:
                real = uids.real(value)
                if real is None:
                    raise InvalidInput(
                        "names no series or image of this case", field=f"contours[{i}].{field}"
                    )
                mapped[field] = real
        out.append(mapped)
    return out


def contours_to_pseudonymous(uids: UidMap, contours: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Contours as stored, with the series and instance UIDs the assignment's reader knows them by."""
    out = []
    for contour in contours:
        mapped = dict(contour)
        for field in CONTOUR_UID_FIELDS:
            value = mapped.get(field)
            if isinstance(value, str) and value:
                mapped[field] = uids.pseudo(value)
        out.append(mapped)
    return out


def pseudonymous_patient_id(project_id: int, patient_id: str) -> str:
    """The PatientID that exports of ``project_id`` carry: stable per patient and project (a patient's studies
    stay linked), reversible only on the server (``patient_pseudonyms``)."""
    return patient_pseudonym(pseudonym_secret(), f"project:{project_id}", patient_id)


def patient_pseudonyms(project_id: int) -> dict[str, str]:
    """Pseudonymous PatientID → stored PatientID for the studies of a project (for site staff only)."""
    patients = (
        Study.objects.filter(cases__project_id=project_id).values_list("patient_id", flat=True).distinct()
    )
    return {pseudonymous_patient_id(project_id, patient): patient for patient in patients}
