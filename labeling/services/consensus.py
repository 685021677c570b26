"""Consensus refits: readings → ml.consensus → ConsensusRun, ItemPosterior and ReaderConfusion rows.

One Dawid–Skene model per project and lesion type (SPEC.md §4.8), pooling joints and regions; the ordinal
model for graded lesions (mNY). Items are (case, joint, region). Superseded readings are left out, repeat
sessions count as repeated observations, gold cases and adjudications are clamped. A run is keyed by the hash
of its inputs, so an unchanged data set reuses the last run and two refits at once store one run.

Refits are incremental (issue 16). A run records a watermark (the highest reading id it has seen), the highest
adjudication id of its lesion, and a fingerprint of what lies below them (the ids of the current readings and
adjudications, gold references, scheme and parameters), and keeps its fit's state: the table of distinct reading
patterns and the parameters. A refit with nothing above the marks and an unchanged fingerprint returns the run at
once. New readings and adjudications (and nothing else) are an incremental refit: only their cases' values are
read, the changed items move from their old pattern (readings, known class) to their new one in the table, EM on
the table resumes from the run's parameters (the same fixed point as a full fit from that warm start), and the run
is updated in place: the changed items' posteriors (one upsert), the readers' matrices, prior, marks. Anything
else (a correction or deletion below the watermark, a gold change, a new scheme or parameters, a run without
state) is a full refit, and beat fits every run with incremental updates in full again (``consensus_full_refits_due``),
so the posteriors of unchanged items, which an incremental refit does not rewrite, cannot drift. Writers of a
project take one lock (an advisory lock on PostgreSQL), so two refits at once store one result.
"""

from __future__ import annotations

import hashlib
import io
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import scipy.sparse as sp
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, F, Max, Q, QuerySet, Sum
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
from labeling.selectors import readings_fingerprint, top_reading
from labeling.services.audit import audit_record
from labeling.services.contour_consensus import contour_consensus_refit
from labeling.services.locks import CONSENSUS, lock_project
from labeling.services.readings import consensus_enqueue
from ml.consensus import Patterns, Smoothing, WarmStart, fit_patterns, patterns, update_patterns
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


def _known(
    project: Project,
    lesion: str,
    values: tuple[int, ...],
    regions: list[tuple[str, str]],
    case_ids: list[int] | None = None,
    as_of: int | None = None,
) -> dict[int, int]:
    """Item key -> class index of the lesion's gold references and current adjudications (adjudication wins).

    ``case_ids``: only these cases (an incremental refit), else the whole project. ``as_of``: the adjudications
    that were current when the highest adjudication id was ``as_of``.
    """
    code = {jr: i for i, jr in enumerate(regions)}
    gold = project.cases.filter(is_gold=True)
    adjudications = _adjudications_as_of(project, lesion, as_of)
    if case_ids is not None:
        gold = gold.filter(pk__in=case_ids)
        adjudications = adjudications.filter(case_id__in=case_ids)
    known: dict[int, int] = {}
    for case_id, reference in gold.values_list("id", "reference"):
        for row in reference or ():
            if row["lesion"] == lesion:
                known[case_id * len(regions) + code[(row["joint"], row["region"])]] = values.index(
                    row["value"]
                )
    for case_id, joint, region, value in adjudications.values_list("case_id", "joint", "region", "value"):
        known[case_id * len(regions) + code[(joint, region)]] = values.index(value)
    return known


def _adjudications_as_of(project: Project, lesion: str, as_of: int | None) -> QuerySet[Adjudication]:
    """The lesion's adjudications that were current when the highest adjudication id was ``as_of`` (None: now)."""
    adjudications = Adjudication.objects.filter(project=project, lesion=lesion)
    if as_of is None:
        return adjudications.filter(superseded_by__isnull=True)
    return adjudications.filter(Q(superseded_by__isnull=True) | Q(superseded_by__pk__gt=as_of), pk__lte=as_of)


def lesion_data(
    project: Project, lesion: str, *, watermark: int | None = None, adjudication_mark: int | None = None
) -> LesionData:
    """Collect the current readings (up to reading id ``watermark``), gold and adjudications (current when the
    highest adjudication id was ``adjudication_mark``) of one lesion."""
    scheme = project.scheme.parsed
    values = scheme.lesion_values(lesion)
    regions = _region_codes(project, lesion)
    code = {jr: i for i, jr in enumerate(regions)}
    rows_query = ReadingValue.objects.filter(
        reading__project=project, lesion=lesion, reading__superseded_by__isnull=True
    )
    if watermark is not None:
        rows_query = rows_query.filter(reading_id__lte=watermark)
    rows = list(rows_query.values_list("reading__case_id", "joint", "region", "reading__reader_id", "value"))
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
    known = _known(project, lesion, values, regions, as_of=adjudication_mark)
    data.gold.update({index[k]: c for k, c in known.items() if k in index})
    return data


@dataclass(frozen=True)
class FitState:
    """What an incremental refit resumes from: the run's pattern table, its readers, its parameters.

    ``table`` is per pattern (``inverse`` = arange); column ``k * K + label`` belongs to user ``reader_ids[k]``.
    """

    table: Patterns
    reader_ids: Int
    warm: WarmStart

    def dump(self) -> bytes:
        counts = self.table.counts
        arrays: dict[str, NDArray[Any]] = {
            "data": counts.data,
            "indices": counts.indices,
            "indptr": counts.indptr,
            "shape": np.asarray(counts.shape, dtype=np.int64),
            "weight": self.table.weight,
            "clamp": self.table.clamp,
            "has_readings": self.table.has_readings,
            "reader_ids": self.reader_ids,
            "confusion": self.warm.confusion,
            "prior": self.warm.prior,
        }
        for name in ("bias", "spread", "skill"):
            if (value := getattr(self.warm, name)) is not None:
                arrays[name] = value
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)  # type: ignore[arg-type]
        return buffer.getvalue()

    @classmethod
    def load(cls, raw: bytes | memoryview) -> FitState:
        with np.load(io.BytesIO(bytes(raw)), allow_pickle=False) as npz:
            a = {name: npz[name] for name in npz.files}
        shape = (int(a["shape"][0]), int(a["shape"][1]))
        counts = sp.csr_matrix((a["data"], a["indices"], a["indptr"]), shape=shape)
        n = shape[0]
        table = Patterns(counts, a["weight"], a["clamp"], np.arange(n, dtype=np.int64), a["has_readings"])
        warm = WarmStart(a["confusion"], a["prior"], a.get("bias"), a.get("spread"), a.get("skill"))
        return cls(table, a["reader_ids"].astype(np.int64), warm)

    def widened(self, n_readers: int, n_classes: int) -> Patterns:
        """The table with columns for ``n_readers`` readers (new readers have no readings in it)."""
        counts = self.table.counts
        wide = sp.csr_matrix(
            (counts.data, counts.indices, counts.indptr), shape=(counts.shape[0], n_readers * n_classes)
        )
        return Patterns(
            wide, self.table.weight, self.table.clamp, self.table.inverse, self.table.has_readings
        )


def _model_name(name: str) -> ModelName:
    if name not in ("full", "one_coin", "ordinal"):
        raise ValueError(f"unknown consensus model {name!r}")
    return name  # type: ignore[return-value]


def _fit(
    table: Patterns, n_readers: int, n_classes: int, model: ModelName, init: WarmStart | None = None
) -> ConsensusResult:
    return fit_patterns(
        table,
        n_readers,
        n_classes,
        model=model,
        smoothing=SMOOTHING[model],
        max_iter=MAX_ITER,
        tol=TOL,
        init=init,
    )


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
POSTERIOR_UPDATED = ["posterior", "label", "max_posterior", "entropy", "n_readings", "clamped"]


def _posterior_rows(
    run: ConsensusRun,
    item_keys: Int,
    regions: list[tuple[str, str]],
    values: tuple[int, ...],
    posterior: NDArray[np.float64],
    labels: Int,
    entropy: NDArray[np.float64],
    n_per_item: Int,
    clamped: Iterable[bool],
) -> Iterable[tuple[Any, ...]]:
    """One row of ``POSTERIOR_COLUMNS`` per item."""
    case_ids, codes = np.divmod(item_keys, len(regions))
    n = len(item_keys)
    return zip(
        [run.pk] * n,
        case_ids.tolist(),
        (regions[c][0] for c in codes.tolist()),
        (regions[c][1] for c in codes.tolist()),
        np.round(posterior, 6).tolist(),
        np.asarray(values)[labels].tolist(),
        posterior.max(axis=1).tolist(),
        entropy.tolist(),
        n_per_item.tolist(),
        clamped,
        strict=True,
    )


def _insert_posteriors(run: ConsensusRun, rows: Iterable[tuple[Any, ...]]) -> None:
    """Write one ItemPosterior per row: COPY on PostgreSQL (a million readings in seconds), else bulk."""
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


def _upsert_posteriors(rows: Iterable[tuple[Any, ...]]) -> None:
    """Insert or overwrite the rows' ItemPosteriors in one statement (INSERT … ON CONFLICT DO UPDATE)."""
    ItemPosterior.objects.bulk_create(
        [ItemPosterior(**dict(zip(POSTERIOR_COLUMNS, row, strict=True))) for row in rows],
        update_conflicts=True,
        unique_fields=["run", "case", "joint", "region"],
        update_fields=POSTERIOR_UPDATED,
    )


def _confusions(run: ConsensusRun, reader_ids: Int, result: ConsensusResult) -> list[ReaderConfusion]:
    return [
        ReaderConfusion(
            run=run,
            reader_id=int(user_id),
            matrix=np.round(result.confusion[k], 6).tolist(),
            counts=np.round(result.confusion_counts[k], 3).tolist(),
            n_reads=round(float(result.n_reads[k])),
            bias=None if result.bias is None else float(result.bias[k]),
            spread=None if result.spread is None else float(result.spread[k]),
        )
        for k, user_id in enumerate(reader_ids)
    ]


def _top_adjudication(project: Project, lesion: str) -> int:
    """The highest adjudication id of the project's lesion (0 without adjudications)."""
    found = Adjudication.objects.filter(project=project, lesion=lesion).aggregate(top=Max("id"))["top"]
    return int(found or 0)


def _adjudications_fingerprint(project: Project, lesion: str, mark: int) -> list[int]:
    """(count, Σ id, Σ id²) of the lesion's adjudications that were current at adjudication id ``mark``."""
    totals = _adjudications_as_of(project, lesion, mark).aggregate(
        n=Count("id"), s=Sum("id"), s2=Sum(F("id") * F("id"))
    )
    return [int(totals["n"] or 0), int(totals["s"] or 0), int(totals["s2"] or 0)]


def _others_digest(project: Project, lesion: str, model: str, params: dict[str, Any]) -> str:
    """Hash of what a fit depends on besides readings and adjudications: gold cases, scheme, model."""
    gold = list(project.cases.filter(is_gold=True).order_by("pk").values_list("pk", "reference"))
    payload = [project.scheme_id, lesion, model, params, gold]
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def _pattern_table(data: LesionData) -> tuple[Patterns, Patterns]:
    """The data's patterns (``inverse`` per item) and the same table per pattern (kept in the run's state)."""
    pats = patterns(
        data.items,
        data.readers,
        data.labels,
        data.n_classes,
        gold=data.gold,
        n_items=len(data.item_keys),
        n_readers=len(data.reader_ids),
    )
    table = Patterns(
        pats.counts, pats.weight, pats.clamp, np.arange(pats.weight.size, dtype=np.int64), pats.has_readings
    )
    return pats, table


def _store(
    project: Project,
    data: LesionData,
    model: ModelName,
    digest: str,
    params: dict[str, Any],
    started: float,
    fingerprint: dict[str, Any],
    watermark: int,
) -> ConsensusRun:
    pats, table = _pattern_table(data)
    result = _fit(table, len(data.reader_ids), data.n_classes, model)
    state = FitState(table, data.reader_ids, result.warm_start()).dump()
    n_per_item = np.bincount(data.items, minlength=len(data.item_keys))
    with transaction.atomic():
        lock_project(project, CONSENSUS)  # one writer per project at a time
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
            watermark=watermark,
            fingerprint=fingerprint,
            state=state,
        )
        inverse = pats.inverse
        _insert_posteriors(
            run,
            _posterior_rows(
                run,
                data.item_keys,
                data.regions,
                data.values,
                result.posterior[inverse],
                result.labels[inverse],
                result.entropy[inverse],
                n_per_item,
                (i in data.gold for i in range(len(data.item_keys))),
            ),
        )
        ReaderConfusion.objects.bulk_create(_confusions(run, data.reader_ids, result))
        audit_record(
            actor=None,
            action="consensus.refit",
            target=run,
            project=project,
            data={"lesion": data.lesion, "items": run.n_items, "readings": run.n_readings},
        )
    return run


def _model_params(project: Project, lesion: str) -> tuple[ModelName, dict[str, Any]]:
    model: ModelName = "ordinal" if project.scheme.parsed.lesion_is_ordinal(lesion) else "full"
    smoothing = SMOOTHING[model]
    params = {
        "smoothing": [smoothing.diagonal, smoothing.off_diagonal, smoothing.prior],
        "max_iter": MAX_ITER,
        "tol": TOL,
    }
    return model, params


def _refit_full(
    project: Project, lesion: str, model: ModelName, params: dict[str, Any], others: str, started: float
) -> ConsensusRun | None:
    """Fit the lesion from all its current readings (or reuse the run of the same data)."""
    watermark, mark = top_reading(project), _top_adjudication(project, lesion)
    fingerprint = {
        "readings": readings_fingerprint(project, watermark),
        "adjudication_mark": mark,
        "adjudications": _adjudications_fingerprint(project, lesion, mark),
        "others": others,
    }
    data = lesion_data(project, lesion, watermark=watermark, adjudication_mark=mark)
    if len(data.items) == 0:
        return None
    digest = data.data_hash(model, params)
    existing = ConsensusRun.objects.filter(project=project, lesion=lesion, data_hash=digest).first()
    if existing is None:
        try:
            return _store(project, data, model, digest, params, started, fingerprint, watermark)
        except IntegrityError:  # a concurrent refit stored the same data first
            existing = ConsensusRun.objects.get(project=project, lesion=lesion, data_hash=digest)
    state = existing.state
    if state is None:  # a run from before incremental refits: its fit's state, for the next refit
        _, table = _pattern_table(data)
        result = _fit(table, len(data.reader_ids), data.n_classes, model)
        state = FitState(table, data.reader_ids, result.warm_start()).dump()
    with transaction.atomic():
        lock_project(project, CONSENSUS)
        ConsensusRun.objects.filter(project=project, lesion=lesion, is_current=True).exclude(
            pk=existing.pk
        ).update(is_current=False)
        ConsensusRun.objects.filter(pk=existing.pk).update(
            is_current=True, watermark=watermark, fingerprint=fingerprint, state=state
        )
    existing.refresh_from_db()
    return existing


def _refit_incremental(project: Project, lesion: str, others: str) -> ConsensusRun | None:
    """Bring the lesion's current run up to date with the readings and adjudications above its marks; None when a
    full fit is due.

    Only the cases of the new readings and adjudications are read. Their items leave their old pattern and join
    their new one, EM on the pattern table resumes from the run's parameters, and their posteriors are upserted.
    """
    started = time.perf_counter()
    with transaction.atomic():
        lock_project(project, CONSENSUS)
        run = ConsensusRun.objects.filter(project=project, lesion=lesion, is_current=True).first()
        if run is None or run.state is None or "adjudication_mark" not in run.fingerprint:
            return None
        top, top_adjudication = top_reading(project), _top_adjudication(project, lesion)
        mark, adjudication_mark = run.watermark, run.fingerprint["adjudication_mark"]
        if mark >= top and adjudication_mark >= top_adjudication:
            return run  # nothing new, or a concurrent refit got here first
        arrived = list(
            Reading.objects.filter(project=project, pk__gt=mark, pk__lte=top).values_list(
                "pk", "case_id", "supersedes_id", "superseded_by"
            )
        )
        if any(old is not None and old <= mark for _, _, old, _ in arrived):
            return None  # a correction of a reading the run has seen: its old pattern is gone
        decided = list(
            Adjudication.objects.filter(
                project=project, lesion=lesion, pk__gt=adjudication_mark, pk__lte=top_adjudication
            ).values_list("pk", "case_id", "supersedes_id", "superseded_by")
        )
        used = [(pk, case_id) for pk, case_id, _, newer in arrived if newer is None]
        ids = np.asarray([pk for pk, _ in used], dtype=np.int64)
        readings_fp = _add_ids(run.fingerprint["readings"], ids, 1)
        adjudications_fp = _add_ids(
            run.fingerprint["adjudications"],
            np.asarray([pk for pk, *_, newer in decided if newer is None or newer > top_adjudication]),
            1,
        )
        adjudications_fp = _add_ids(
            adjudications_fp,
            np.asarray([old for _, _, old, _ in decided if old is not None and old <= adjudication_mark]),
            -1,
        )
        run.fingerprint = {
            "readings": readings_fp,
            "adjudication_mark": top_adjudication,
            "adjudications": adjudications_fp,
            "others": others,
        }
        run.data_hash = hashlib.sha256(
            f"{run.data_hash}+{mark}..{top}+{adjudication_mark}..{top_adjudication}".encode()
        ).hexdigest()
        run.watermark = top
        cases = sorted({case_id for _, case_id in used} | {case_id for _, case_id, *_ in decided})
        rows = list(
            ReadingValue.objects.filter(reading__project=project, lesion=lesion, reading__case_id__in=cases)
            .filter(
                Q(reading_id__in=ids.tolist()) | Q(reading_id__lte=mark, reading__superseded_by__isnull=True)
            )
            .values_list("reading__case_id", "joint", "region", "reading__reader_id", "value", "reading_id")
        )
        changed = 0
        if rows:
            try:
                changed = _update_fit(
                    project, lesion, run, rows, cases, mark, (adjudication_mark, top_adjudication)
                )
            except ValueError:  # an old pattern the table does not hold: the run's state is not this data's
                return None
        run.n_incremental += 1
        run.save()
        audit_record(
            actor=None,
            action="consensus.update",
            target=run,
            project=project,
            data={
                "lesion": lesion,
                "items": changed,
                "readings": len(used),
                "adjudications": len(decided),
                "watermark": top,
                "duration_s": round(time.perf_counter() - started, 3),
            },
        )
    return run


def _add_ids(fingerprint: list[int], ids: NDArray[Any], sign: int) -> list[int]:
    """A (count, Σ id, Σ id²) fingerprint with ``ids`` added (sign 1) or taken away (sign -1)."""
    ids = ids.astype(np.int64)
    n, total, squares = fingerprint
    return [n + sign * len(ids), total + sign * int(ids.sum()), squares + sign * int((ids * ids).sum())]


def _update_fit(
    project: Project,
    lesion: str,
    run: ConsensusRun,
    rows: list[tuple[Any, ...]],
    cases: list[int],
    mark: int,
    adjudication_marks: tuple[int, int],
) -> int:
    """Move the items of ``rows`` to their new patterns, refit from the run's parameters, write them.

    An item's old pattern: its readings up to reading id ``mark`` and its class known at the first adjudication
    mark; its new one: every row and the class known at the second. Sets the run's fit fields (not saved);
    returns the number of items written. Raises ValueError when an old pattern is not in the run's table.
    """
    assert run.state is not None  # checked by the caller
    state = FitState.load(run.state)
    values = project.scheme.parsed.lesion_values(lesion)
    regions = _region_codes(project, lesion)
    code = {jr: i for i, jr in enumerate(regions)}
    n_classes = len(values)
    reader_ids = state.reader_ids.tolist()
    position = {int(u): k for k, u in enumerate(reader_ids)}
    for *_, user_id, _, _ in rows:
        if user_id not in position:  # a reader new to this lesion: a column block at the end
            position[user_id] = len(reader_ids)
            reader_ids.append(user_id)
    n = len(rows)
    keys = np.fromiter((c * len(regions) + code[(j, r)] for c, j, r, *_ in rows), np.int64, n)
    readers = np.fromiter((position[u] for *_, u, _, _ in rows), np.int64, n)
    labels = np.searchsorted(np.asarray(values), np.fromiter((v for *_, v, _ in rows), np.int64, n))
    seen = np.fromiter((pk <= mark for *_, pk in rows), np.bool_, n)
    item_keys, items = np.unique(keys, return_inverse=True)
    m, width = len(item_keys), len(reader_ids) * n_classes
    cols = readers * n_classes + labels

    def rows_of(mask: NDArray[np.bool_]) -> sp.csr_matrix:
        ones = np.ones(int(mask.sum()), dtype=np.int64)
        matrix = sp.csr_matrix((ones, (items[mask], cols[mask])), shape=(m, width))
        matrix.sum_duplicates()
        return matrix

    new_rows, old_rows = rows_of(np.ones(n, dtype=np.bool_)), rows_of(seen)
    had = np.bincount(items[seen], minlength=m) > 0
    known_then, known_now = (
        _known(project, lesion, values, regions, case_ids=cases, as_of=as_of) for as_of in adjudication_marks
    )
    old_clamp = np.fromiter((known_then.get(int(k), -1) for k in item_keys), np.int64, m)
    clamp = np.fromiter((known_now.get(int(k), -1) for k in item_keys), np.int64, m)
    table, where = update_patterns(
        state.widened(len(reader_ids), n_classes), old_rows[had], old_clamp[had], new_rows, clamp
    )
    result = _fit(table, len(reader_ids), n_classes, _model_name(run.model), init=state.warm)
    user_ids = np.asarray(reader_ids, dtype=np.int64)
    run.state = FitState(table, user_ids, result.warm_start()).dump()
    _upsert_posteriors(
        _posterior_rows(
            run,
            item_keys,
            regions,
            values,
            result.posterior[where],
            result.labels[where],
            result.entropy[where],
            np.asarray(new_rows.sum(axis=1)).ravel().astype(np.int64),
            (c >= 0 for c in clamp.tolist()),
        )
    )
    ReaderConfusion.objects.bulk_create(
        _confusions(run, user_ids, result),
        update_conflicts=True,
        unique_fields=["run", "reader"],
        update_fields=["matrix", "counts", "n_reads", "bias", "spread"],
    )
    per_pattern = np.asarray(table.counts.sum(axis=1)).ravel()
    run.n_items = int(table.weight.sum())
    run.n_readers = len(reader_ids)
    run.n_readings = round(float(table.weight @ per_pattern))
    run.n_clamped = int(table.weight[table.clamp >= 0].sum())
    run.n_iter = result.n_iter
    run.converged = result.converged
    run.log_likelihood = float(result.log_likelihood)
    run.prior = [round(float(p), 6) for p in result.prior]
    return m


def _memoised(memo: dict[int, list[int]], project: Project, watermark: int) -> list[int]:
    if watermark not in memo:
        memo[watermark] = readings_fingerprint(project, watermark)
    return memo[watermark]


def consensus_refit_lesion(
    *, project: Project, lesion: str, full: bool = False, memo: dict[int, list[int]] | None = None
) -> ConsensusRun | None:
    """Bring the consensus of one lesion up to date; None without readings.

    Nothing new since the current run: the run, at once. Only new readings: an incremental refit. Otherwise, or
    with ``full`` while the run has incremental updates: a full fit (an unchanged data set reuses its run).
    ``memo``: reading fingerprints by watermark, shared by the lesions of one project refit.
    """
    memo = {} if memo is None else memo
    started = time.perf_counter()
    model, params = _model_params(project, lesion)
    others = _others_digest(project, lesion, model, params)
    current = (
        ConsensusRun.objects.filter(project=project, lesion=lesion, is_current=True).defer("state").first()
    )
    if (
        current is not None
        and current.fingerprint.get("others") == others
        and current.fingerprint.get("readings") == _memoised(memo, project, current.watermark)
        and "adjudication_mark" in current.fingerprint
        and current.fingerprint["adjudications"]
        == _adjudications_fingerprint(project, lesion, current.fingerprint["adjudication_mark"])
    ):
        if current.watermark >= top_reading(project) and current.fingerprint[
            "adjudication_mark"
        ] >= _top_adjudication(project, lesion):
            if not (full and current.n_incremental):
                return current
        elif not full and (run := _refit_incremental(project, lesion, others)) is not None:
            return run
    run = _refit_full(project, lesion, model, params, others, started)
    if run is None:
        return None
    # readings that arrived while the full fit ran
    return _refit_incremental(project, lesion, others) or run


def consensus_refit_project(
    *, project_id: int, requested_at: str | None = None, full: bool = False
) -> list[ConsensusRun]:
    """Refit every lesion type of a project (incrementally unless ``full``).

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
    memo: dict[int, list[int]] = {}
    runs = [
        consensus_refit_lesion(project=project, lesion=lesion, full=full, memo=memo)
        for lesion in project.scheme.parsed.form_lesions
    ]
    contour_consensus_refit(project=project, full=full)
    return [run for run in runs if run is not None]


def consensus_full_refits_due() -> list[int]:
    """Queue a full refit of every project whose current runs have incremental updates; return their ids.

    Beat runs this every ``CONSENSUS_FULL_REFIT_EVERY_S``: the posteriors of items an incremental refit did not
    touch were computed with older parameters, and a full fit makes every run reproducible from its rows again.
    """
    due = sorted(
        set(
            ConsensusRun.objects.filter(is_current=True, n_incremental__gt=0).values_list(
                "project_id", flat=True
            )
        )
    )
    for project_id in due:
        with transaction.atomic():
            consensus_enqueue(project_id, debounce=False, full=True)
    return due
