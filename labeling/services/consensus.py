"""Consensus refits: readings → ml.consensus → ConsensusRun, ItemPosterior and ReaderConfusion rows.

One Dawid–Skene model per project and lesion type (SPEC.md §4.8), pooling joints and regions; the ordinal
model for graded lesions (mNY). Items are (case, joint, region). Superseded readings are left out, repeat
sessions count as repeated observations, gold cases and adjudications are clamped. A run is keyed by the hash
of its inputs, so an unchanged data set reuses the last run and two refits at once store one run.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
from django.db import IntegrityError, connection, transaction
from numpy.typing import NDArray

from labeling.models import (
    Adjudication,
    ConsensusRun,
    ItemPosterior,
    Project,
    ReaderConfusion,
    Reading,
    ReadingValue,
)
from labeling.services.audit import audit_record
from labeling.services.contour_consensus import contour_consensus_refit
from ml.consensus import Smoothing, fit
from ml.consensus.result import ConsensusResult, ModelName

# Dirichlet pseudo-counts per model (SPEC.md §4.3). The ordinal model has two parameters per reader and is
# pulled toward a wide spread by off-diagonal mass, so it gets diagonal pseudo-counts only (measured on
# simulated readers: 0.84 vs 0.47 accuracy on 60 CT items with (2, 0.5) pseudo-counts).
SMOOTHING: dict[str, Smoothing] = {
    "full": Smoothing(diagonal=1.0, off_diagonal=0.1, prior=1.0),
    "one_coin": Smoothing(diagonal=1.0, off_diagonal=0.1, prior=1.0),
    "ordinal": Smoothing(diagonal=1.0, off_diagonal=0.0, prior=1.0),
}
MAX_ITER, TOL = 500, 1e-7
Int = NDArray[np.int64]


@dataclass(frozen=True)
class LesionData:
    """The flat readings of one lesion type, indexed for ``ml.consensus.fit``."""

    lesion: str
    values: tuple[int, ...]  # the lesion's classes, in order
    regions: list[tuple[str, str]]  # (joint, region) per region code
    item_keys: Int  # (n_items,) case_id * len(regions) + region code
    reader_ids: Int  # (n_readers,) user id per reader index
    items: Int  # (n_readings,)
    readers: Int
    labels: Int
    gold: dict[int, int] = field(default_factory=dict)  # item index -> class index

    @property
    def n_classes(self) -> int:
        return len(self.values)

    def item(self, index: int) -> tuple[int, str, str]:
        """(case_id, joint, region) of item ``index``."""
        case_id, code = divmod(int(self.item_keys[index]), len(self.regions))
        return (case_id, *self.regions[code])

    def data_hash(self, model: str, parameters: dict[str, Any]) -> str:
        order = np.lexsort((self.labels, self.reader_ids[self.readers], self.item_keys[self.items]))
        digest = hashlib.sha256(json.dumps([self.lesion, model, parameters, self.values]).encode())
        for array in (self.item_keys[self.items], self.reader_ids[self.readers], self.labels):
            digest.update(np.ascontiguousarray(array[order], dtype=np.int64).tobytes())
        gold = sorted((int(self.item_keys[i]), c) for i, c in self.gold.items())
        digest.update(json.dumps(gold).encode())
        return digest.hexdigest()


def _region_codes(project: Project, lesion: str) -> list[tuple[str, str]]:
    scheme = project.scheme.parsed
    return [(joint, region) for joint in scheme.joints for region in scheme.regions_for(lesion)]


def lesion_data(project: Project, lesion: str) -> LesionData:
    """Collect the current readings, gold references and adjudications of one lesion type."""
    scheme = project.scheme.parsed
    values = scheme.lesion_values(lesion)
    regions = _region_codes(project, lesion)
    code = {jr: i for i, jr in enumerate(regions)}
    rows = list(
        ReadingValue.objects.filter(
            reading__project=project, lesion=lesion, reading__superseded_by__isnull=True
        ).values_list("reading__case_id", "joint", "region", "reading__reader_id", "value")
    )
    n = len(rows)
    keys = np.fromiter((c * len(regions) + code[(j, r)] for c, j, r, _, _ in rows), np.int64, n)
    reader_raw = np.fromiter((u for *_, u, _ in rows), np.int64, n)
    labels = np.searchsorted(np.asarray(values), np.fromiter((v for *_, v in rows), np.int64, n))
    item_keys, items = np.unique(keys, return_inverse=True)
    reader_ids, readers = np.unique(reader_raw, return_inverse=True)
    data = LesionData(
        lesion,
        values,
        regions,
        item_keys,
        reader_ids,
        items.astype(np.int64),
        readers.astype(np.int64),
        labels.astype(np.int64),
    )
    index = {int(k): i for i, k in enumerate(item_keys)}
    known: dict[int, int] = {}
    for case_id, reference in project.cases.filter(is_gold=True).values_list("id", "reference"):
        for row in reference or ():
            if row["lesion"] == lesion:
                known[case_id * len(regions) + code[(row["joint"], row["region"])]] = values.index(
                    row["value"]
                )
    for case_id, joint, region, value in Adjudication.objects.filter(
        project=project, lesion=lesion, superseded_by__isnull=True
    ).values_list("case_id", "joint", "region", "value"):
        known[case_id * len(regions) + code[(joint, region)]] = values.index(value)  # adjudication wins
    data.gold.update({index[k]: c for k, c in known.items() if k in index})
    return data


POSTERIOR_COLUMNS = (
    "run_id",
    "case_id",
    "joint",
    "region",
    "posterior",
    "label",
    "max_posterior",
    "entropy",
    "n_readings",
    "clamped",
)


def _insert_posteriors(run: ConsensusRun, data: LesionData, result: ConsensusResult, n_per_item: Int) -> None:
    """Write one ItemPosterior per item: COPY on PostgreSQL (a million readings in seconds), else bulk."""
    case_ids, codes = np.divmod(data.item_keys, len(data.regions))
    n = len(data.item_keys)
    rows = zip(
        [run.pk] * n,
        case_ids.tolist(),
        (data.regions[c][0] for c in codes.tolist()),
        (data.regions[c][1] for c in codes.tolist()),
        np.round(result.posterior, 6).tolist(),
        np.asarray(data.values)[result.labels].tolist(),
        result.posterior.max(axis=1).tolist(),
        result.entropy.tolist(),
        n_per_item.tolist(),
        (i in data.gold for i in range(n)),
        strict=True,
    )
    if connection.vendor == "postgresql":
        table = ItemPosterior._meta.db_table
        with (
            connection.cursor() as cursor,
            cursor.cursor.copy(f"COPY {table} ({', '.join(POSTERIOR_COLUMNS)}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row((*row[:4], json.dumps(row[4]), *row[5:]))
        return
    ItemPosterior.objects.bulk_create(
        (ItemPosterior(**dict(zip(POSTERIOR_COLUMNS, row, strict=True))) for row in rows), batch_size=5000
    )


def _store(
    project: Project, data: LesionData, model: ModelName, digest: str, params: dict[str, Any], started: float
) -> ConsensusRun:
    result = fit(
        data.items,
        data.readers,
        data.labels,
        data.n_classes,
        model=model,
        gold=data.gold,
        smoothing=SMOOTHING[model],
        n_items=len(data.item_keys),
        n_readers=len(data.reader_ids),
        max_iter=MAX_ITER,
        tol=TOL,
    )
    n_per_item = np.bincount(data.items, minlength=len(data.item_keys))
    with transaction.atomic():
        Project.objects.select_for_update().get(pk=project.pk)  # one writer per project at a time
        if done := ConsensusRun.objects.filter(project=project, lesion=data.lesion, data_hash=digest).first():
            return done
        ConsensusRun.objects.filter(project=project, lesion=data.lesion, is_current=True).update(
            is_current=False
        )
        run = ConsensusRun.objects.create(
            project=project,
            lesion=data.lesion,
            scheme_id=project.scheme_id,
            model=model,
            data_hash=digest,
            parameters=params,
            n_classes=data.n_classes,
            n_items=len(data.item_keys),
            n_readers=len(data.reader_ids),
            n_readings=len(data.items),
            n_clamped=len(data.gold),
            n_iter=result.n_iter,
            converged=result.converged,
            log_likelihood=float(result.log_likelihood),
            prior=[round(float(p), 6) for p in result.prior],
            duration_s=round(time.perf_counter() - started, 3),
        )
        _insert_posteriors(run, data, result, n_per_item)
        ReaderConfusion.objects.bulk_create(
            ReaderConfusion(
                run=run,
                reader_id=int(user_id),
                matrix=np.round(result.confusion[k], 6).tolist(),
                counts=np.round(result.confusion_counts[k], 3).tolist(),
                n_reads=round(float(result.n_reads[k])),
                bias=None if result.bias is None else float(result.bias[k]),
                spread=None if result.spread is None else float(result.spread[k]),
            )
            for k, user_id in enumerate(data.reader_ids)
        )
        audit_record(
            actor=None,
            action="consensus.refit",
            target=run,
            project=project,
            data={"lesion": data.lesion, "items": run.n_items, "readings": run.n_readings},
        )
    return run


def consensus_refit_lesion(*, project: Project, lesion: str) -> ConsensusRun | None:
    """Fit (or reuse, when the inputs are unchanged) the consensus of one lesion; None without readings."""
    started = time.perf_counter()
    data = lesion_data(project, lesion)
    if len(data.items) == 0:
        return None
    model: ModelName = "ordinal" if project.scheme.parsed.lesion_is_ordinal(lesion) else "full"
    smoothing = SMOOTHING[model]
    params = {
        "smoothing": [smoothing.diagonal, smoothing.off_diagonal, smoothing.prior],
        "max_iter": MAX_ITER,
        "tol": TOL,
    }
    digest = data.data_hash(model, params)
    existing = ConsensusRun.objects.filter(project=project, lesion=lesion, data_hash=digest).first()
    if existing is not None:
        if not existing.is_current:
            with transaction.atomic():
                ConsensusRun.objects.filter(project=project, lesion=lesion, is_current=True).update(
                    is_current=False
                )
                ConsensusRun.objects.filter(pk=existing.pk).update(is_current=True)
        return existing
    try:
        return _store(project, data, model, digest, params, started)
    except IntegrityError:  # a concurrent refit stored the same data first
        return ConsensusRun.objects.get(project=project, lesion=lesion, data_hash=digest)


def consensus_refit_project(*, project_id: int, requested_at: str | None = None) -> list[ConsensusRun]:
    """Refit every lesion type of a project.

    ``requested_at`` (ISO time) debounces: when a reading newer than the request exists, a later task was
    queued for it and this one returns at once.
    """
    project = Project.objects.select_related("scheme").filter(pk=project_id).first()
    if project is None:
        return []
    if (
        requested_at
        and Reading.objects.filter(
            project=project, created_at__gt=datetime.fromisoformat(requested_at)
        ).exists()
    ):
        return []
    runs = [
        consensus_refit_lesion(project=project, lesion=lesion)
        for lesion in project.scheme.parsed.form_lesions
    ]
    contour_consensus_refit(project=project)
    return [run for run in runs if run is not None]
