"""Contour consensus: per case, joint and slice, the readers' open polylines become one precision-weighted
consensus polyline (ml.consensus.contours); each reader gets a contour reliability; slices where readers
disagree by more than the project's threshold are flagged for adjudication. The consensus polylines are
the training target of the contour model.

Rows are a cache derived from the current (not superseded) Contour rows: a slice is recomputed only when
its inputs changed (hash per slice), and slices that lost their contours are removed. A slice's
disagreement is the mean distance of its farthest reader to the consensus, so one reader far off is enough.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from typing import Any

import numpy as np
from django.db import transaction

from labeling.models import Contour, ContourConsensus, Project, ReaderContourReliability
from ml.consensus.contours import contour_consensus

SliceKey = tuple[int, str, int]  # case, joint, slice index


def _slice_hash(entries: list[tuple[int, int, str, list[list[float]]]]) -> str:
    return hashlib.sha256(json.dumps(sorted(entries)).encode()).hexdigest()


@transaction.atomic
def contour_consensus_refit(*, project: Project) -> dict[str, int]:
    """Recompute changed slices and every reader's reliability; returns counts of what changed."""
    groups: dict[SliceKey, list[tuple[int, int, str, list[list[float]]]]] = defaultdict(list)
    for case_id, joint, slice_index, series_uid, reader_id, session, points in Contour.objects.filter(
        reading__project=project, reading__superseded_by__isnull=True
    ).values_list(
        "reading__case_id",
        "joint",
        "slice_index",
        "series_uid",
        "reading__reader_id",
        "reading__session",
        "points_mm",
    ):
        groups[(case_id, joint, slice_index)].append((reader_id, session, series_uid, points))
    existing = {
        (row.case_id, row.joint, row.slice_index): row
        for row in ContourConsensus.objects.select_for_update().filter(project=project)
    }
    stale = [row.pk for key, row in existing.items() if key not in groups]
    ContourConsensus.objects.filter(pk__in=stale).delete()
    distances: dict[int, list[tuple[float, float]]] = defaultdict(list)
    changed = 0
    threshold = project.contour_disagreement_mm
    for key, entries in groups.items():
        entries.sort()
        digest = _slice_hash(entries)
        row = existing.get(key)
        if row is None or row.data_hash != digest:
            fitted = contour_consensus([np.asarray(points, dtype=float) for *_, points in entries])
            values: dict[str, Any] = {
                "series_uid": entries[0][2],
                "points_mm": np.round(fitted.polyline, 3).tolist(),
                "n_contours": len(entries),
                "disagreement_mm": float(fitted.mean_distance_mm.max()),  # the farthest reader
                "flagged": len(entries) > 1 and float(fitted.mean_distance_mm.max()) > threshold,
                "data_hash": digest,
                "reader_distances": [
                    [reader, session, float(m), float(p)]
                    for (reader, session, *_), m, p in zip(
                        entries, fitted.mean_distance_mm, fitted.p95_distance_mm, strict=True
                    )
                ],
            }
            row, _ = ContourConsensus.objects.update_or_create(
                project=project, case_id=key[0], joint=key[1], slice_index=key[2], defaults=values
            )
            changed += 1
        elif row.flagged != (row.n_contours > 1 and row.disagreement_mm > threshold):
            row.flagged = not row.flagged  # the project's threshold changed
            row.save(update_fields=["flagged"])
        if row.n_contours > 1:
            for reader, _session, mean_mm, p95_mm in row.reader_distances:
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
    return {"slices": len(groups), "recomputed": changed, "removed": len(stale)}
