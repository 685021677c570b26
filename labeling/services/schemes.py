"""Load the grading scheme files of the repository into the database."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from django.db import transaction

from labeling.exceptions import Conflict
from labeling.models import GradingScheme
from labeling.schemes import scheme_files, scheme_load_file


def _content_hash(definition: dict) -> str:
    return hashlib.sha256(json.dumps(definition, sort_keys=True).encode()).hexdigest()


@transaction.atomic
def schemes_load(paths: list[Path] | None = None) -> list[GradingScheme]:
    """Create a row for every scheme file not yet loaded; idempotent.

    Raises Conflict when a file changes a version already loaded: versions are immutable, add a new one.
    """
    rows = []
    for path in scheme_files() if paths is None else paths:
        scheme = scheme_load_file(path)
        digest = _content_hash(dict(scheme.definition))
        row, created = GradingScheme.objects.get_or_create(
            name=scheme.name,
            version=scheme.version,
            defaults={"modality": scheme.modality, "definition": scheme.definition, "content_hash": digest},
        )
        if not created and row.content_hash != digest:
            raise Conflict(
                f"{path.name} changes {scheme.name} v{scheme.version}, which is already loaded; "
                "published versions are immutable, add a new version instead"
            )
        rows.append(row)
    return rows
