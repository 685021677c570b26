"""Submitting readings and their contours; corrections supersede, nothing is overwritten."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from labeling.conditions import condition
from labeling.exceptions import Conflict, DomainError, InvalidInput
from labeling.models import (
    Assignment,
    CalibrationShown,
    Contour,
    Draft,
    Instance,
    Project,
    Reading,
    ReadingValue,
)
from labeling.schemes import SchemeError
from labeling.selectors import calibration_report_and_cases
from labeling.services.audit import audit_record
from labeling.services.outbox import outbox_send
from labeling.services.projects import require_active

MAX_CONTOUR_POINTS = 2000


def _point(value: Any, field: str) -> list[float]:
    if (
        not isinstance(value, Sequence)
        or isinstance(value, str)
        or len(value) != 3
        or not all(isinstance(c, int | float) and not isinstance(c, bool) and math.isfinite(c) for c in value)
    ):
        raise InvalidInput("must be a point [x, y, z] of finite numbers in millimetres", field=field)
    return [float(c) for c in value]


def _check_contours(assignment: Assignment, contours: Sequence[Mapping[str, Any]]) -> list[Contour]:
    """Validate contour payloads against the scheme's joints and the case's series; build unsaved rows."""
    if not contours:
        return []
    joints = assignment.project.scheme.parsed.joints
    slices = {
        (uid, idx): sop
        for uid, idx, sop in Instance.objects.filter(series__study=assignment.case.study_id).values_list(
            "series__series_uid", "slice_index", "sop_uid"
        )
    }
    rows, seen = [], set()
    for i, c in enumerate(contours):
        where = f"contours[{i}]"
        if not isinstance(c, Mapping):
            raise InvalidInput("must be an object", field=where)
        if c.get("joint") not in joints:
            raise InvalidInput(f"{c.get('joint')!r} is not one of {joints}", field=f"{where}.joint")
        series_uid, slice_index = c.get("series_uid"), c.get("slice_index")
        if not isinstance(series_uid, str) or not series_uid:
            raise InvalidInput("must name the series the contour was drawn on", field=f"{where}.series_uid")
        if isinstance(slice_index, bool) or not isinstance(slice_index, int) or slice_index < 0:
            raise InvalidInput("must be a slice index (0, 1, ...)", field=f"{where}.slice_index")
        if slices and (series_uid, slice_index) not in slices:
            # the message names no UID: readers know the series by pseudonyms, never the stored UID
            raise InvalidInput(
                f"slice {slice_index} of that series is not part of this case",
                field=f"{where}.slice_index",
            )
        points = c.get("points_mm")
        if (
            not isinstance(points, Sequence)
            or isinstance(points, str)
            or not 2 <= len(points) <= MAX_CONTOUR_POINTS
        ):
            raise InvalidInput(
                f"must be an open polyline of 2 to {MAX_CONTOUR_POINTS} points", field=f"{where}.points_mm"
            )
        points = [_point(p, f"{where}.points_mm[{j}]") for j, p in enumerate(points)]
        key = (c["joint"], series_uid, slice_index)
        if key in seen:
            raise InvalidInput("a joint has one contour per slice", field=where)
        seen.add(key)
        rows.append(
            Contour(
                joint=c["joint"],
                series_uid=series_uid,
                slice_index=slice_index,
                sop_instance_uid=str(c.get("sop_instance_uid") or slices.get((series_uid, slice_index), "")),
                points_mm=points,
                start_mm=points[0],
                end_mm=points[-1],
            )
        )
    return rows


def _write_reading(
    *,
    assignment: Assignment,
    values: Sequence[Mapping[str, Any]],
    contours: Sequence[Mapping[str, Any]],
    supersedes: Reading | None,
    reason: str,
    duration_s: float | None,
) -> Reading:
    checked = assignment.project.scheme.parsed.validate_reading(values)
    contour_rows = _check_contours(assignment, contours)
    reading = Reading.objects.create(
        assignment=assignment,
        project_id=assignment.project_id,
        case_id=assignment.case_id,
        reader_id=assignment.reader_id,
        session=assignment.session,
        scheme_id=assignment.project.scheme_id,
        supersedes=supersedes,
        reason=reason,
        duration_s=duration_s,
    )
    value_rows = ReadingValue.objects.bulk_create(
        ReadingValue(
            reading=reading,
            joint=item.joint,
            region=item.region,
            lesion=item.lesion,
            value=value,
            rating=rating,
        )
        for item, value, rating in checked
    )
    for row in contour_rows:
        row.reading = reading
    Contour.objects.bulk_create(contour_rows)
    # for this request's answer (``selectors.reading_submitted_for_reader``): what was written, in hand
    reading.rows_written = (value_rows, contour_rows)  # type: ignore[attr-defined]
    return reading


CONSENSUS_REFIT_TASK = "labeling.tasks.consensus_refit_task"


def consensus_enqueue(project_id: int, *, debounce: bool = True, full: bool = False) -> None:
    """Queue a consensus refit of the project with the current transaction (outbox; debounced by default).

    The message is a row of this transaction: a broker that is down delays the refit, never the request.
    ``full``: fit every lesion from all its readings, not incrementally (beat's scheduled full refit).
    """
    if full:
        outbox_send(CONSENSUS_REFIT_TASK, args=(project_id, None, True))
        return
    if not debounce:
        outbox_send(CONSENSUS_REFIT_TASK, args=(project_id,))
        return
    outbox_send(
        CONSENSUS_REFIT_TASK,
        args=(project_id, timezone.now().isoformat()),
        delay_s=settings.CONSENSUS_DEBOUNCE_S,
    )


def _stored_again(
    assignment: Assignment, values: Sequence[Mapping[str, Any]], contours: Sequence[Mapping[str, Any]]
) -> Reading | None:
    """The assignment's submitted reading when ``values`` and ``contours`` are exactly it, else None.

    A client that got no answer, or a 503 from a database that went down around the commit (which may have
    happened), sends the same reading again: it is answered with the stored one, nothing written twice.
    """
    original = Reading.objects.filter(assignment=assignment, supersedes__isnull=True).first()
    if original is None:
        return None
    try:
        checked = assignment.project.scheme.parsed.validate_reading(values)
        sent_contours = _check_contours(assignment, contours)
    except (DomainError, SchemeError):
        return None
    sent = {(item.joint, item.region, item.lesion, value, rating) for item, value, rating in checked}
    stored = set(original.values.values_list("joint", "region", "lesion", "value", "rating"))

    def shape(c: Contour) -> tuple[Any, ...]:
        return (c.joint, c.series_uid, c.slice_index, tuple(tuple(map(float, p)) for p in c.points_mm))

    same_contours = sorted(map(shape, sent_contours)) == sorted(map(shape, original.contours.all()))
    return original if sent == stored and same_contours else None


@transaction.atomic
def reading_submit(
    *,
    actor: User,
    assignment: Assignment,
    values: Sequence[Mapping[str, Any]],
    contours: Sequence[Mapping[str, Any]] = (),
    duration_s: float | None = None,
) -> Reading:
    """Record a complete reading for an open assignment and close it.

    Locks the assignment row. The same reading again (a client's retry) returns the stored one. Raises
    Conflict when it is already submitted with other values or contours (or cancelled), InvalidInput
    (or SchemeError) naming the offending field when the reading does not fit the scheme.
    """
    assignment = (
        Assignment.objects.select_for_update(of=("self",), no_key=True)
        .select_related("project__scheme", "case")
        .get(pk=assignment.pk)
    )
    if assignment.status == Assignment.Status.SUBMITTED:
        stored = _stored_again(assignment, values, contours)
        if stored is not None:
            return stored
        raise Conflict("this assignment has been submitted already; submit a correction instead")
    if assignment.status == Assignment.Status.CANCELLED:
        raise Conflict("this assignment was cancelled")
    require_active(assignment.project)
    reading = _write_reading(
        assignment=assignment,
        values=values,
        contours=contours,
        supersedes=None,
        reason="",
        duration_s=duration_s,
    )
    now = timezone.now()
    assignment.status = Assignment.Status.SUBMITTED
    assignment.started_at = assignment.started_at or now
    assignment.submitted_at = now
    assignment.save(update_fields=["status", "started_at", "submitted_at"])
    Draft.objects.filter(assignment=assignment).delete()
    for repeat in assignment.repeats.all():  # the washout clock of a blinded repeat starts now
        repeat.not_before = now + timedelta(days=repeat.washout_days)
        repeat.save(update_fields=["not_before"])
    conditions = assignment.project.study_conditions
    if (
        assignment.project.reader_study_design == assignment.project.ReaderStudyDesign.SEQUENTIAL
        and assignment.condition in conditions[:-1]
    ):
        # paper (b)'s design: the unaided read is done, now the same reader reads the case again at once in
        # the next condition (with the AI output)
        following = conditions[conditions.index(assignment.condition) + 1]
        Assignment.objects.get_or_create(
            project=assignment.project,
            case=assignment.case,
            reader=assignment.reader,
            session=assignment.session,
            condition=following,
            defaults={"order_key": assignment.order_key, "aided": condition(following).ai},
        )
    consensus_enqueue(assignment.project_id)
    # last: the audit chain's lock is held from here to COMMIT, and every other audited write waits for it
    audit_record(
        actor=actor,
        action="reading.submit",
        target=reading,
        project=assignment.project,
        data={"assignment": assignment.pk, "values": len(values), "contours": len(contours)},
    )
    return reading


@transaction.atomic
def reading_correct(
    *,
    actor: User,
    reading: Reading,
    values: Sequence[Mapping[str, Any]],
    contours: Sequence[Mapping[str, Any]] = (),
    reason: str,
) -> Reading:
    """Supersede a reading with a corrected one; both stay. Only the current reading can be corrected."""
    if not reason.strip():
        raise InvalidInput("a correction needs a reason", field="reason")
    locked = (
        Assignment.objects.select_for_update(of=("self",), no_key=True)
        .select_related("project__scheme", "case")
        .get(pk=reading.assignment_id)
    )
    if Reading.objects.filter(supersedes=reading).exists():
        raise Conflict("this reading has been corrected already; correct the newest version")
    if CalibrationShown.objects.filter(reader_id=reading.reader_id, case_id=reading.case_id).exists():
        raise Conflict(
            "you have seen the consensus of this case in your calibration; its reading can no longer be corrected"
        )
    correction = _write_reading(
        assignment=locked,
        values=values,
        contours=contours,
        supersedes=reading,
        reason=reason.strip(),
        duration_s=None,
    )
    audit_record(
        actor=actor,
        action="reading.correct",
        target=correction,
        project=locked.project,
        data={"supersedes": reading.pk, "reason": reason.strip()},
    )
    consensus_enqueue(locked.project_id)
    return correction


@transaction.atomic
def calibration_show(*, reader: User, project: Project) -> list[dict[str, Any]]:
    """The reader's calibration report; the cases it shows the consensus of are recorded, and from then on
    the reader's readings of them can no longer be corrected (a correction would no longer be blind)."""
    report, cases = calibration_report_and_cases(reader=reader, project=project)
    CalibrationShown.objects.bulk_create(
        [CalibrationShown(project=project, reader=reader, case_id=case_id) for case_id in sorted(cases)],
        ignore_conflicts=True,
    )
    return report
