"""Study references (by DICOM UID) and the cases readers open."""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction

from labeling.exceptions import Conflict, InvalidInput
from labeling.models import Case, Instance, Project, Series, Study
from labeling.selectors import study_list_for_user
from labeling.services.audit import audit_record
from labeling.services.projects import require_active

SERIES_FIELDS = (
    "modality",
    "description",
    "frame_of_reference_uid",
    "rows",
    "columns",
    "pixel_spacing_mm",
    "slice_thickness_mm",
    "orientation",
)


def study_check_not_foreign(*, actor: User | None, study_uid: str) -> None:
    """Conflict when ``study_uid`` is known but outside what a (non-staff) ``actor`` may touch.

    Registering or importing a known UID would otherwise hand a project admin another project's study (and
    let their files replace its instances in the store). Commands (no actor) and staff may.
    """
    if actor is None or not actor.is_authenticated or actor.is_staff:
        return
    if not Study.objects.filter(study_uid=study_uid).exists():
        return
    if not study_list_for_user(user=actor).filter(study_uid=study_uid).exists():
        raise Conflict(
            f"study {study_uid} is already registered outside your projects; ask a site administrator",
            field="study_uid",
        )


@transaction.atomic
def study_register(
    *,
    actor: User | None,
    study_uid: str,
    modality: str,
    patient_id: str = "",
    description: str = "",
    source: str = "",
    series: Sequence[Mapping[str, Any]] = (),
) -> Study:
    """Record a study, its series and instances by UID; re-registering the same UIDs adds nothing twice.

    A SEG's entry names its image series as ``source_series_uid`` (registered before it, in this call or an
    earlier one); InvalidInput when that series is not part of the study.
    """
    study_check_not_foreign(actor=actor, study_uid=study_uid)
    study, created = Study.objects.get_or_create(
        study_uid=study_uid,
        defaults={
            "modality": modality,
            "patient_id": patient_id,
            "description": description,
            "source": source,
            "registered_by": actor if actor is not None and actor.is_authenticated else None,
        },
    )
    for entry in series:  # a SEG's entry comes after its source series' entry (or the source is known)
        source_series = None
        if source_uid := entry.get("source_series_uid"):
            source_series = Series.objects.filter(series_uid=source_uid, study=study).first()
            if source_series is None:
                raise InvalidInput(
                    f"SEG series {entry['series_uid']} refers to series {source_uid}, "
                    f"which is not a series of study {study_uid}",
                    field="series",
                )
        row, _ = Series.objects.get_or_create(
            series_uid=entry["series_uid"],
            defaults={
                "study": study,
                "source_series": source_series,
                **{k: entry[k] for k in SERIES_FIELDS if k in entry},
            },
        )
        if row.study_id != study.pk:
            raise Conflict(f"series {entry['series_uid']} belongs to another study", field="series")
        existing = set(row.instances.values_list("sop_uid", flat=True))
        Instance.objects.bulk_create(
            [
                Instance(
                    series=row,
                    sop_uid=inst["sop_uid"],
                    sop_class_uid=inst.get("sop_class_uid", ""),
                    instance_number=inst.get("instance_number"),
                    slice_index=inst["slice_index"],
                    position=inst.get("position"),
                )
                for inst in entry.get("instances", ())
                if inst["sop_uid"] not in existing
            ]
        )
    if created:
        audit_record(
            actor=actor,
            action="study.register",
            target=study,
            data={"study_uid": study_uid, "series": len(series)},
        )
    return study


MODALITY_NAMES = {"MR": "MRI", "CT": "CT"}


def modality_name(modality: str) -> str:
    """ "MRI" for MR, as people say it; other modalities as DICOM spells them."""
    return MODALITY_NAMES.get(modality, modality)


def _study_name(study: Study) -> str:
    """How a person recognises a study: its patient ID and description, not its UID."""
    parts = [p for p in (study.patient_id, study.description) if p]
    return f"study {' – '.join(parts)}" if parts else "this study"


def _check_study_fits(project: Project, study: Study) -> None:
    scheme = project.scheme.parsed
    if study.modality != scheme.modality:
        raise InvalidInput(
            f"{_study_name(study)} is a {modality_name(study.modality)} study; project {project.name!r} grades "
            f"{modality_name(scheme.modality)} studies only (scheme {project.scheme.name})",
            field="study_uid",
        )
    descriptions = set(study.series.values_list("description", flat=True))
    missing = [s for s in scheme.sequences if s not in descriptions]
    if missing and descriptions:
        raise InvalidInput(
            f"{_study_name(study)} lacks the series {', '.join(missing)} that scheme {project.scheme.name} needs",
            field="study_uid",
        )


@transaction.atomic
def case_create(
    *,
    actor: User | None,
    project: Project,
    study: Study,
    label: str = "",
    is_gold: bool = False,
    reference: list[dict[str, Any]] | None = None,
) -> Case:
    """Add a study to a project as a case; a gold case needs reference values that fit the scheme."""
    require_active(project)
    _check_study_fits(project, study)
    if reference is not None:
        project.scheme.parsed.validate_values(reference)
    if is_gold and reference is None:
        raise InvalidInput("a gold case needs reference values", field="reference")
    if Case.objects.filter(project=project, study=study).exists():
        raise Conflict(f"{_study_name(study)} is already a case of this project", field="study_uid")
    case = Case.objects.create(
        project=project,
        study=study,
        # never derived from the study's UIDs or patient: a label is shown to readers
        label=label or f"case-{secrets.token_hex(4)}",
        is_gold=is_gold,
        reference=reference,
    )
    audit_record(
        actor=actor,
        action="case.create",
        target=case,
        project=project,
        data={"study_uid": study.study_uid, "is_gold": is_gold},
    )
    return case


@transaction.atomic
def case_update(*, actor: User, case: Case, **changes: Any) -> Case:
    """Change a case's label, gold flag or reference values."""
    if changes.get("reference") is not None:
        case.project.scheme.parsed.validate_values(changes["reference"])
    for key, value in changes.items():
        setattr(case, key, value)
    if case.is_gold and case.reference is None:
        raise InvalidInput("a gold case needs reference values", field="reference")
    case.save(update_fields=list(changes) or None)
    audit_record(
        actor=actor,
        action="case.update",
        target=case,
        project=case.project,
        data={k: v for k, v in changes.items() if k != "reference"},
    )
    return case


@transaction.atomic
def case_delete(*, actor: User, case: Case) -> None:
    """Remove a case no one has read; one with readings is kept (409)."""
    if case.readings.exists():
        raise Conflict("the case has readings and cannot be deleted")
    audit_record(
        actor=actor,
        action="case.delete",
        target=case,
        project=case.project,
        data={"study_uid": case.study.study_uid},
    )
    case.delete()
