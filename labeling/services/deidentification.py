"""De-identification on import, the server-side mapping behind its pseudonyms, and the identifiers exports carry.

A project's profile (``deidentify_profile``) is the site default (``DEIDENTIFY_*`` settings) with the project's
own choices over it. Pseudonyms are scoped per project (``project:<id>``; ``site`` for an import without a
project) and keyed by the server's secret, so the same original always gets the same pseudonym in a project
(re-imports add nothing twice), a patient cannot be linked across projects, and only the server can map a
pseudonym back: ``StudyDeidentification`` rows, which site staff read through ``deidentification_mapping``
(audited on every read).

Exports carry the same pseudonyms: a study stored de-identified is exported as stored; a study stored as
received is exported under the pseudonyms its import would have given it. Staff may ask for identified
exports (audited).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction

from labeling.dicom.deidentify import (
    DATES_OPTIONS,
    DatesOption,
    DeidentificationRefused,
    Deidentifier,
    DeidProfile,
)
from labeling.dicom.pseudonyms import pseudonymous_uid
from labeling.exceptions import Forbidden
from labeling.models import Project, Study, StudyDeidentification
from labeling.services.audit import audit_record
from labeling.services.identity import (
    clean_series_descriptions,
    pseudonym_secret,
    pseudonymous_patient_id,
    sees_identity,
)

__all__ = [
    "DeidentificationRefused",
    "Deidentifier",
    "ExportIdentity",
    "deidentification_mapping",
    "deidentification_record",
    "deidentify_profile",
    "deidentify_scope",
    "export_identity",
    "stored_uid",
]


def deidentify_scope(project: Project | None) -> str:
    return f"project:{project.pk}" if project is not None else "site"


def deidentify_profile(project: Project | None) -> DeidProfile | None:
    """The profile an import into ``project`` (None: no project) applies, or None when files are kept as received."""
    mode = project.deidentify if project is not None else "site"
    if mode == "off" or (mode == "site" and not settings.DEIDENTIFY_ON_IMPORT):
        return None
    dates = project.deidentify_dates if project is not None else "site"
    dates = settings.DEIDENTIFY_DATES if dates == "site" else dates
    if dates not in DATES_OPTIONS:
        raise ImproperlyConfigured(f"DEIDENTIFY_DATES must be one of {DATES_OPTIONS}, not {dates!r}")
    clean = project.deidentify_clean_descriptors if project is not None else None
    return DeidProfile(
        secret=pseudonym_secret(),
        scope=deidentify_scope(project),
        dates=cast(DatesOption, dates),
        clean_descriptors=settings.DEIDENTIFY_CLEAN_DESCRIPTORS if clean is None else clean,
        clean_descriptions=clean_series_descriptions(),
    )


def stored_uid(project: Project | None, original: str) -> str:
    """The UID under which an import into ``project`` stores the object ``original`` names.

    A forward computation (it needs the original): what a caller holding the files uses to find them once
    imported, e.g. the demo loader. Returns ``original`` when the project keeps files as received.
    """
    profile = deidentify_profile(project)
    return pseudonymous_uid(profile.secret, profile.scope, original) if profile else original


@transaction.atomic
def deidentification_record(
    *, study: Study, project: Project | None, deidentifier: Deidentifier, original_study_uid: str
) -> StudyDeidentification:
    """Keep (or extend, for a later import into the same study) the originals behind a study's pseudonyms."""
    result = deidentifier.result
    uids = {pseudo: original for original, pseudo in result.uids.items()}
    row, created = StudyDeidentification.objects.select_for_update().get_or_create(
        study=study,
        defaults={
            "project": project,
            "scope": deidentifier.profile.scope,
            "profile": deidentifier.profile.options(),
            "original_study_uid": original_study_uid,
            "original_patient_id": result.original_patient_id[:64],
            "original_patient_name": result.original_patient_name[:324],
            "date_shift_days": result.shift_days,
            "uids": uids,
        },
    )
    if not created and not uids.items() <= row.uids.items():
        row.uids = {**row.uids, **uids}
        row.save(update_fields=["uids"])
    return row


def deidentification_mapping(
    *, actor: User, project: Project, study_uid: str | None = None
) -> list[StudyDeidentification]:
    """The originals behind the pseudonyms of ``project``'s studies (one, with ``study_uid``); staff only.

    Every read is an audit event naming who read which studies. Raises Forbidden for anyone but site staff.
    """
    if not sees_identity(actor):
        raise Forbidden("only site administrators can read the pseudonym mapping")
    rows = StudyDeidentification.objects.filter(study__cases__project=project).select_related("study")
    if study_uid:
        rows = rows.filter(study__study_uid=study_uid)
    found = list(rows.distinct().order_by("id"))
    audit_record(
        actor=actor,
        action="deidentification.read",
        target=project,
        project=project,
        data={"studies": [row.study.study_uid for row in found][:1000], "count": len(found)},
    )
    return found


@dataclass
class ExportIdentity:
    """The identifiers an export of one project carries: pseudonyms, or (staff, audited) the originals."""

    project: Project
    identified: bool

    def _deid(self, study: Study) -> StudyDeidentification | None:
        try:
            return study.deidentification
        except StudyDeidentification.DoesNotExist:
            return None

    def uid(self, study: Study, uid: str) -> str:
        """The export's form of one of ``study``'s UIDs (study, series, instance or frame of reference)."""
        if not uid:
            return uid
        deid = self._deid(study)
        if self.identified:
            return str(deid.uids.get(uid, uid)) if deid is not None else uid
        if deid is not None:
            return uid  # stored de-identified: already a pseudonym
        return pseudonymous_uid(pseudonym_secret(), deidentify_scope(self.project), uid)

    def patient_id(self, study: Study) -> str:
        deid = self._deid(study)
        if self.identified:
            return deid.original_patient_id if deid is not None else study.patient_id
        if deid is not None:
            return study.patient_id
        return pseudonymous_patient_id(self.project.pk, study.patient_id)


def export_identity(*, actor: User | None, project: Project, identified: bool, export: str) -> ExportIdentity:
    """How an export identifies studies; ``identified`` needs site staff and is audited.

    Raises Forbidden when anyone else asks for identified data.
    """
    if identified:
        if actor is None or not sees_identity(actor):
            raise Forbidden("only site administrators can export identified data", field="identified")
        audit_record(
            actor=actor,
            action="export.identified",
            target=project,
            project=project,
            data={"export": export},
        )
    return ExportIdentity(project=project, identified=identified)
