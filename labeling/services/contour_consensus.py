"""Contour consensus: per case, joint and slice, the readers' open polylines become one precision-weighted
consensus polyline (ml.consensus.contours); each reader gets a contour reliability; slices where readers
disagree by more than the project's threshold are flagged for adjudication. The consensus polylines are
the training target of the contour model.

Rows are a cache derived from the current (not superseded) Contour rows: a slice is recomputed only when
its inputs changed (hash per slice), and slices that lost their contours are removed. A slice's
disagreement is the mean distance of its farthest reader to the consensus, so one reader far off is enough.

A refit reads only the contours of the cases that have readings above the project's mark
(``ContourConsensusMark``), so its cost follows what arrived, not the project's size. It reads every contour
the first time, when asked to (``full``: the scheduled full refit), and when the readings below the mark are
no longer those the mark saw (a reading that committed late, a correction of an old reading). Each reader's
reliability is recomputed from the stored slices whenever one of them changed.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict

import numpy as np
from django.db import transaction
from django.db.models import Q

from labeling.models import (
    Contour,
    ContourConsensus,
    ContourConsensusMark,
    Project,
    ReaderContourReliability,
    Reading,
)
from labeling.selectors import readings_fingerprint, top_reading
from labeling.services.locks import CONTOURS, lock_project
from ml.consensus.contours import contour_consensus

SliceKey = tuple[int, str, int]  # case, joint, slice index
#: The fields that name a slice; a refit rewrites every other field of its row.
_SLICE_FIELDS = ["project", "case", "joint", "slice_index"]


def _slice_hash(entries: list[tuple[int, int, str, list[list[float]]]]) -> str:
    return hashlib.sha256(json.dumps(sorted(entries)).encode()).hexdigest()


@transaction.atomic
def contour_consensus_refit(*, project: Project, full: bool = False) -> dict[str, int]:
    """Recompute the changed slices of the cases read since the last refit (every case when ``full``, or when
    the mark no longer holds) and the readers' reliabilities; returns counts of what it read and changed."""
    lock_project(project, CONTOURS)  # one refit of the project at a time
    mark = ContourConsensusMark.objects.filter(project=project).first()
    top = top_reading(project)
    # taken before the contours are read: a reading that commits meanwhile below ``top`` changes it, so the
    # next refit reads everything again instead of missing that reading
    seen = readings_fingerprint(project, top)
    cases: set[int] | None = None  # None: every case
    if not full and mark is not None:
        below = seen if mark.watermark == top else readings_fingerprint(project, mark.watermark)
        if below == mark.readings:
            cases = set(
                Reading.objects.filter(project=project, pk__gt=mark.watermark, pk__lte=top).values_list(
                    "case_id", flat=True
                )
            )
    contours = Contour.objects.filter(reading__project=project, reading__superseded_by__isnull=True)
    rows = ContourConsensus.objects.filter(project=project)
    if cases is not None:
        contours, rows = contours.filter(reading__case_id__in=cases), rows.filter(case_id__in=cases)
    groups: dict[SliceKey, list[tuple[int, int, str, list[list[float]]]]] = defaultdict(list)
    for case_id, joint, slice_index, series_uid, reader_id, session, points in contours.values_list(
        "reading__case_id",
        "joint",
        "slice_index",
        "series_uid",
        "reading__reader_id",
        "reading__session",
        "points_mm",
    ):
        groups[(case_id, joint, slice_index)].append((reader_id, session, series_uid, points))
    existing = {(row.case_id, row.joint, row.slice_index): row for row in rows}
    stale = [row.pk for key, row in existing.items() if key not in groups]
    ContourConsensus.objects.filter(pk__in=stale).delete()
    threshold = project.contour_disagreement_mm
    fitted_rows: list[ContourConsensus] = []
    for key, entries in groups.items():
        entries.sort()
        digest = _slice_hash(entries)
        row = existing.get(key)
        if row is not None and row.data_hash == digest:
            continue
        fitted = contour_consensus([np.asarray(points, dtype=float) for *_, points in entries])
        farthest = float(fitted.mean_distance_mm.max())  # a slice's disagreement: its farthest reader's
        fitted_rows.append(
            ContourConsensus(
                project=project,
                case_id=key[0],
                joint=key[1],
                slice_index=key[2],
                series_uid=entries[0][2],
                points_mm=np.round(fitted.polyline, 3).tolist(),
                n_contours=len(entries),
                disagreement_mm=farthest,
                flagged=len(entries) > 1 and farthest > threshold,
                data_hash=digest,
                reader_distances=[
                    [reader, session, float(m), float(p)]
                    for (reader, session, *_), m, p in zip(
                        entries, fitted.mean_distance_mm, fitted.p95_distance_mm, strict=True
                    )
                ],
            )
        )
    # one INSERT … ON CONFLICT UPDATE per batch, not a SELECT and a write per slice (a first refit of a large
    # project writes thousands); a slice keeps its row and id
    ContourConsensus.objects.bulk_create(
        fitted_rows,
        batch_size=500,
        update_conflicts=True,
        unique_fields=_SLICE_FIELDS,
        update_fields=[
            f.name
            for f in ContourConsensus._meta.concrete_fields
            if not f.primary_key and f.name not in _SLICE_FIELDS
        ],
    )
    changed = len(fitted_rows)
    if mark is None or mark.disagreement_mm != threshold:
        _flag(project, threshold)  # the project's threshold changed since the slices were flagged
    if changed or stale or cases is None:
        _rate_readers(project)
    ContourConsensusMark.objects.update_or_create(
        project=project, defaults={"watermark": top, "readings": seen, "disagreement_mm": threshold}
    )
    return {
        "slices": len(groups),
        "recomputed": changed,
        "removed": len(stale),
        "read_all": int(cases is None),
    }


@transaction.atomic
def contour_flags_refresh(*, project: Project) -> None:
    """Flag the project's slices by its current threshold, at once (an admin just changed it)."""
    lock_project(project, CONTOURS)
    _flag(project, project.contour_disagreement_mm)
    ContourConsensusMark.objects.filter(project=project).update(
        disagreement_mm=project.contour_disagreement_mm
    )


def _flag(project: Project, threshold: float) -> None:
    """Flag the project's slices by ``threshold``."""
    disagree = Q(n_contours__gt=1, disagreement_mm__gt=threshold)
    slices = ContourConsensus.objects.filter(project=project)
    slices.filter(disagree, flagged=False).update(flagged=True)
    slices.filter(~disagree, flagged=True).update(flagged=False)


def _rate_readers(project: Project) -> None:
    """Each reader's contour reliability, over the stored slices that several readers traced."""
    distances: dict[int, list[tuple[float, float]]] = defaultdict(list)
    for slice_distances in ContourConsensus.objects.filter(project=project, n_contours__gt=1).values_list(
        "reader_distances", flat=True
    ):
        for reader, _session, mean_mm, p95_mm in slice_distances:
            distances[reader].append((mean_mm, p95_mm))
    ReaderContourReliability.objects.filter(project=project).exclude(reader_id__in=distances).delete()
    for reader_id, pairs in distances.items():
        arr = np.asarray(pairs)
        ReaderContourReliability.objects.update_or_create(
            project=project,
            reader_id=reader_id,
            defaults={
                "n_contours": len(arr),
                "mean_mm": float(arr[:, 0].mean()),
                "p95_mm": float(np.percentile(arr[:, 1], 95)),
            },
        )
