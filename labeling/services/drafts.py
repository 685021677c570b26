"""Drafts: what a reader has entered so far, saved as they work; replaced on every save, dropped on submit."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from django.db import transaction

from labeling.exceptions import Conflict, InvalidInput
from labeling.models import Assignment, Draft

MAX_DRAFT_BYTES = 2_000_000


def _rows(value: Any, field: str) -> list[dict[str, Any]]:
    if (
        not isinstance(value, Sequence)
        or isinstance(value, str)
        or not all(isinstance(r, Mapping) for r in value)
    ):
        raise InvalidInput("must be a list of objects", field=field)
    return [dict(r) for r in value]


@transaction.atomic
def draft_save(
    *, assignment: Assignment, values: Sequence[Mapping[str, Any]], contours: Sequence[Mapping[str, Any]]
) -> Draft:
    """Replace the assignment's draft; incomplete values are fine, checking the scheme waits for submit.

    Raises Conflict when the assignment is no longer open.
    """
    locked = Assignment.objects.select_for_update(no_key=True).only("status").get(pk=assignment.pk)
    if locked.status not in (Assignment.Status.OPEN, Assignment.Status.IN_PROGRESS):
        raise Conflict(f"the assignment is {locked.status}; drafts are for open assignments")
    rows, lines = _rows(values, "values"), _rows(contours, "contours")
    if len(json.dumps([rows, lines])) > MAX_DRAFT_BYTES:
        raise InvalidInput(f"a draft is limited to {MAX_DRAFT_BYTES} bytes", field="contours")
    # one upsert (INSERT … ON CONFLICT (assignment) DO UPDATE), not update_or_create's select, savepoints and
    # insert or update; the assignment's row lock above keeps a submit (which drops the draft) out meanwhile
    draft = Draft(assignment=locked, values=rows, contours=lines)
    Draft.objects.bulk_create(
        [draft],
        update_conflicts=True,
        unique_fields=["assignment"],
        update_fields=["values", "contours", "updated_at"],
    )
    return draft
