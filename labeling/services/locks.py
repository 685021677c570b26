"""Transaction-scoped locks that let one writer of a project's derived data run at a time.

An advisory lock on PostgreSQL, keyed by (kind, project id), so the kinds do not wait for each other and
nothing else (an edit of the project) waits for them; SQLite, whose write transactions are serial anyway, locks
the project's row.
"""

from __future__ import annotations

from django.db import connection

from labeling.models import Project

CONSENSUS = 0x636F6E73  # "cons": the project's Dawid–Skene runs
CONTOURS = 0x636F6E74  # "cont": its contour consensus


def lock_project(project: Project, kind: int) -> None:
    """Hold the project's ``kind`` lock until the end of the current transaction."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [kind, project.pk])
        return
    Project.objects.select_for_update().get(pk=project.pk)
