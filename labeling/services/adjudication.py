"""Adjudication: an adjudicator's final class for an uncertain item, clamped in the next consensus refit."""

from __future__ import annotations

import math
from typing import Any

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction

from labeling.exceptions import Conflict, Forbidden, InvalidInput, NotFound
from labeling.models import Adjudication, Case, ContourAdjudication, Project, Reading
from labeling.selectors import contour_dispute, is_blinded, reader_pseudonyms
from labeling.services.audit import audit_record
from labeling.services.readings import consensus_enqueue


@transaction.atomic
def adjudication_record(
    *,
    actor: User,
    project: Project,
    case_id: int,
    joint: str,
    region: str,
    lesion: str,
    value: int,
    reason: str,
) -> Adjudication:
    """Record the final class of one item; a later decision on the same item supersedes this one."""
    case = Case.objects.filter(project=project, pk=case_id).first()
    if case is None:
        raise NotFound("no such case in this project")
    if is_blinded(user=actor, project_id=project.pk):
        raise NotFound("hidden while you have cases to read in this project (blinding)")
    if (
        not project.readers_may_adjudicate_own_cases
        and Reading.objects.filter(case=case, reader=actor).exists()
    ):
        raise Forbidden("you read this case yourself; another adjudicator must decide it")
    scheme = project.scheme.parsed
    item = next((i for i in scheme.form_items if i.key == (joint, region, lesion)), None)
    if item is None:
        raise InvalidInput(f"{joint}/{region}/{lesion} is not an item of {scheme.name}", field="region")
    if value not in item.values:
        raise InvalidInput(f"{value!r} is not one of {list(item.values)}", field="value")
    if not reason.strip():
        raise InvalidInput("an adjudication needs a reason", field="reason")
    previous = (
        Adjudication.objects.select_for_update(of=("self",), no_key=True)
        .filter(
            project=project, case=case, joint=joint, region=region, lesion=lesion, superseded_by__isnull=True
        )
        .first()
    )
    try:
        with transaction.atomic():  # a savepoint: the clash below leaves the outer transaction usable
            adjudication = Adjudication.objects.create(
                project=project,
                case=case,
                joint=joint,
                region=region,
                lesion=lesion,
                value=value,
                reason=reason.strip(),
                adjudicator=actor,
                supersedes=previous,
            )
    except IntegrityError:
        # another decision on this item was committed between our read and our insert: one current per item
        raise Conflict(
            "another adjudication of this item was recorded at the same time; reload the item and decide again"
        ) from None
    audit_record(
        actor=actor,
        action="adjudication.record",
        target=adjudication,
        project=project,
        data={
            "case": case.pk,
            "item": f"{joint}/{region}/{lesion}",
            "value": value,
            "supersedes": previous.pk if previous else None,
        },
    )
    consensus_enqueue(project.pk)
    return adjudication


MAX_LINE_POINTS = 500


def _polyline(points: Any) -> list[list[float]]:
    if not isinstance(points, list) or not 2 <= len(points) <= MAX_LINE_POINTS:
        raise InvalidInput(f"a joint line needs 2 to {MAX_LINE_POINTS} points", field="points_mm")
    out = []
    for p in points:
        if (
            not isinstance(p, list | tuple)
            or len(p) != 3
            or not all(isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x) for x in p)
        ):
            raise InvalidInput("each point is [x, y, z] in mm, finite numbers", field="points_mm")
        out.append([float(x) for x in p])
    return out


@transaction.atomic
def contour_adjudication_record(
    *,
    actor: User,
    project: Project,
    case_id: int,
    joint: str,
    slice_index: int,
    source: str,
    reason: str,
    reader: str = "",
    points_mm: Any = None,
) -> ContourAdjudication:
    """Record the final joint line of one slice: a reader's line (``reader``, their pseudonym), the consensus
    line, or a line drawn by the adjudicator (``points_mm``). A later decision on the slice supersedes it; the
    current decision is the gold line the contour models train and are evaluated on."""
    if is_blinded(user=actor, project_id=project.pk):
        raise NotFound("hidden while you have cases to read in this project (blinding)")
    dispute = contour_dispute(
        project=project, case_id=case_id, joint=joint, slice_index=slice_index, adjudicator=actor
    )
    if not reason.strip():
        raise InvalidInput("an adjudication needs a reason", field="reason")
    source_reader = None
    if source == ContourAdjudication.Source.READER:
        names = {name: user_id for user_id, name in reader_pseudonyms(project=project).items()}
        chosen = [r for r in dispute["readers"] if r["reader"] == reader]
        if not chosen or reader not in names:
            raise InvalidInput(f"{reader!r} drew no line on this slice", field="reader")
        line = chosen[-1]["points_mm"]  # the reader's latest session
        source_reader = names[reader]
    elif source == ContourAdjudication.Source.CONSENSUS:
        if dispute["consensus"] is None:
            raise InvalidInput("this slice has no consensus line", field="choice")
        line = dispute["consensus"]
    elif source == ContourAdjudication.Source.DRAWN:
        line = _polyline(points_mm)
    else:
        raise InvalidInput(
            f"choice must be one of {', '.join(ContourAdjudication.Source.values)}", field="choice"
        )
    case = Case.objects.get(pk=case_id)
    previous = (
        ContourAdjudication.objects.select_for_update(of=("self",), no_key=True)
        .filter(project=project, case=case, joint=joint, slice_index=slice_index, superseded_by__isnull=True)
        .first()
    )
    try:
        with transaction.atomic():
            decision = ContourAdjudication.objects.create(
                project=project,
                case=case,
                joint=joint,
                series_uid=dispute["series_uid"],
                slice_index=slice_index,
                source=source,
                source_reader_id=source_reader,
                points_mm=line,
                reason=reason.strip(),
                adjudicator=actor,
                supersedes=previous,
            )
    except IntegrityError:
        raise Conflict(
            "another decision on this slice was recorded at the same time; reload it and decide again"
        ) from None
    audit_record(
        actor=actor,
        action="contour_adjudication.record",
        target=decision,
        project=project,
        data={
            "case": case.pk,
            "joint": joint,
            "slice": slice_index,
            "source": source,
            "reader": reader or None,
            "supersedes": previous.pk if previous else None,
        },
    )
    return decision
