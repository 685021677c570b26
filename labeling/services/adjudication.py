"""Adjudication: an adjudicator's final class for an uncertain item, clamped in the next consensus refit."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction

from labeling.exceptions import Conflict, Forbidden, InvalidInput, NotFound
from labeling.models import Adjudication, Case, Project, Reading
from labeling.selectors import is_blinded
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
        Adjudication.objects.select_for_update(of=("self",))
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
