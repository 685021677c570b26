"""Agreement statistics of a project (SPEC.md §5), computed from the current readings with ml.consensus.

Per lesion × joint × region: Krippendorff's α and Fleiss' κ between readers' first sessions, with cluster
bootstrap CIs over cases; per reader: sensitivity and specificity against the consensus (from the current
run) and intra-reader κ from repeat sessions; per project: the ICC of a per-case total score. Values that
are undefined (e.g. every reading the same) are None, never NaN.

The bootstraps take seconds on a large project, so the report is computed on the worker
(:func:`agreement_compute`) and stored (:class:`~labeling.models.AgreementReport`); the API serves the newest
stored report, says whether it is current (:func:`agreement_data_hash`) and queues a newer one when it is not
(:func:`agreement_enqueue`).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import defaultdict
from dataclasses import asdict
from datetime import timedelta
from typing import Any, Literal

import numpy as np
from django.db import IntegrityError, transaction
from django.db.models import Count, Max, Sum
from django.utils import timezone

from labeling.models import AgreementReport, Membership, OutboxMessage, Project, Reading, ReadingValue
from labeling.selectors import reader_pseudonyms
from labeling.services.csvcells import csv_text
from labeling.services.outbox import outbox_send
from ml.consensus.agreement import Agreement, fleiss_kappa, icc, intra_reader_kappa, krippendorff_alpha


def _stat(a: Agreement) -> dict[str, Any]:
    return {k: v for k, v in asdict(a).items()}


def _baseline(project: Project) -> str | None:
    """The condition whose reads the report measures: a reader study's first (unaided), else every read."""
    conditions = project.study_conditions
    return conditions[0] if len(conditions) >= 2 else None


def _rows(project: Project) -> list[tuple[int, str, str, str, int, int, int]]:
    """Current readings; in a reader study those of its first condition only: a reader's reads of one case in
    other conditions (aided, T1 + STIR) are neither other readers nor repeat sessions."""
    readings = ReadingValue.objects.filter(reading__project=project, reading__superseded_by__isnull=True)
    baseline = _baseline(project)
    if baseline is not None:
        readings = readings.filter(reading__assignment__condition=baseline)
    return list(
        readings.values_list(
            "reading__case_id", "joint", "region", "lesion", "reading__reader_id", "reading__session", "value"
        ).order_by("reading__case_id", "reading__reader_id", "reading__session")
    )


def _cell(
    rows: list[tuple[int, int, int]], values: tuple[int, ...], ordinal: bool, n_boot: int, seed: int
) -> dict:
    """rows: (case, reader, value) of first sessions for one item type -> α and Fleiss κ."""
    cases = sorted({c for c, _, _ in rows})
    readers = sorted({r for _, r, _ in rows})
    ci, ri = {c: i for i, c in enumerate(cases)}, {r: i for i, r in enumerate(readers)}
    matrix = np.full((len(readers), len(cases)), np.nan)
    for c, r, v in rows:
        matrix[ri[r], ci[c]] = v
    alpha = krippendorff_alpha(
        matrix, level="ordinal" if ordinal else "nominal", value_domain=values, n_boot=n_boot, seed=seed
    )
    per_case = (~np.isnan(matrix)).sum(axis=0)
    common = int(np.bincount(per_case).argmax()) if per_case.size else 0
    keep = per_case == common
    counts = np.stack([(matrix[:, keep] == v).sum(axis=0) for v in values], axis=1) if common >= 2 else None
    fleiss = (
        fleiss_kappa(counts, n_boot=n_boot, seed=seed)
        if counts is not None and len(counts)
        else Agreement(None)
    )
    return {
        "n_cases": len(cases),
        "n_readers": len(readers),
        "alpha": _stat(alpha),
        "fleiss_kappa": _stat(fleiss),
        "fleiss_readers_per_case": common,
    }


def _total_score_icc(rows: list[tuple[int, str, str, str, int, int, int]], n_boot: int, seed: int) -> dict:
    """ICC of each reader's per-case total (sum of all values of the first session)."""
    totals: dict[int, dict[int, int]] = defaultdict(dict)
    for case, _, _, _, reader, session, value in rows:
        if session == 1:
            totals[case][reader] = totals[case].get(reader, 0) + value
    sets = {tuple(sorted(t)) for t in totals.values()}
    k = min((len(s) for s in sets), default=0)
    if k < 2 or len(totals) < 2:
        return {
            "form": None,
            "icc": _stat(Agreement(None)),
            "n_cases": 0,
            "undefined_reason": "not enough cases read by 2+ readers",
        }
    same_readers = len(sets) == 1
    data = np.array([[t[r] for r in sorted(t)[:k]] for t in totals.values()], dtype=float)
    form: Literal["ICC1", "ICC2"] = "ICC2" if same_readers else "ICC1"  # readers differ: one-way model
    result = icc(data, form=form, n_boot=n_boot, seed=seed)
    return {
        "form": form,
        "readers_per_case": k,
        "icc": _stat(result),
        "n_cases": len(data),
        "undefined_reason": None if result.value is not None else "total scores do not vary between cases",
    }


def agreement_report(*, project: Project, n_boot: int = 200, seed: int = 0) -> dict[str, Any]:
    """The whole agreement report of a project as plain data (JSON-ready)."""
    scheme = project.scheme.parsed
    rows = _rows(project)
    names = reader_pseudonyms(project=project)
    by_item: dict[tuple[str, str, str], list[tuple[int, int, int]]] = defaultdict(list)
    by_lesion: dict[str, list[tuple[int, int, int, int]]] = defaultdict(list)
    item_code: dict[tuple[int, str, str], int] = {}
    case_of_code: list[int] = []  # bootstrap clusters: a case's joints and regions are resampled together
    for case, joint, region, lesion, reader, session, value in rows:
        if session == 1:
            by_item[(joint, region, lesion)].append((case, reader, value))
        code = item_code.setdefault((case, joint, region), len(item_code))
        if code == len(case_of_code):
            case_of_code.append(case)
        by_lesion[lesion].append((code, reader, session, value))
    cells = []
    for item in scheme.form_items:
        cell_rows = by_item.get(item.key, [])
        stats = (
            _cell(cell_rows, item.values, scheme.lesion_is_ordinal(item.lesion), n_boot, seed)
            if cell_rows
            else None
        )
        cells.append(
            {
                "lesion": item.lesion,
                "joint": item.joint,
                "region": item.region,
                **(
                    stats
                    or {
                        "n_cases": 0,
                        "n_readers": 0,
                        "alpha": _stat(Agreement(None)),
                        "fleiss_kappa": _stat(Agreement(None)),
                        "fleiss_readers_per_case": 0,
                    }
                ),
            }
        )
    intra = []
    for lesion in scheme.form_lesions:
        data = np.array(by_lesion.get(lesion, []), dtype=np.int64).reshape(-1, 4)
        if not len(data):
            continue
        weights: Literal["quadratic"] | None = "quadratic" if scheme.lesion_is_ordinal(lesion) else None
        intra_results = intra_reader_kappa(
            data[:, 0],
            data[:, 1],
            data[:, 2],
            data[:, 3],
            weights=weights,
            n_boot=n_boot,
            seed=seed,
            groups=np.asarray(case_of_code, dtype=np.int64),
            alpha_ci=False,  # the report shows κ only
        )
        for result in intra_results:
            if result.n_sessions >= 2:
                intra.append(
                    {
                        "lesion": lesion,
                        "reader": names.get(result.reader, "Reader ?"),
                        "sessions": result.n_sessions,
                        "kappa": _stat(result.kappa),
                    }
                )
    readers = []
    for run in project.consensus_runs.filter(is_current=True).prefetch_related("confusions"):
        for c in run.confusions.all():
            matrix = np.asarray(c.matrix)
            readers.append(
                {
                    "lesion": run.lesion,
                    "reader": names.get(c.reader_id, "Reader ?"),
                    "n_reads": c.n_reads,
                    "confusion": c.matrix,
                    "counts": c.counts,
                    "sensitivity": float(matrix[-1, -1]) if run.n_classes == 2 else None,
                    "specificity": float(matrix[0, 0]) if run.n_classes == 2 else None,
                    "bias": c.bias,
                    "spread": c.spread,
                }
            )
    return {
        "project": project.pk,
        "n_boot": n_boot,
        "cells": cells,
        "intra_reader": intra,
        "readers": readers,
        "total_score": _total_score_icc(rows, n_boot, seed),
    }


#: Bump when the report's content changes, so stored reports of older code are computed again.
REPORT_VERSION = 1
COMPUTE_TASK = "labeling.tasks.agreement_compute_task"
#: A queued computation not finished after this long (a worker killed mid-way) no longer holds back a new one.
PENDING_FOR = timedelta(minutes=10)


def agreement_data_hash(project: Project) -> str:
    """A fingerprint of everything the report reads, cheap enough for every request: the set of current
    readings (readings are never edited: a correction supersedes one with a newer id), the current consensus
    runs, the readers (their pseudonyms), the scheme and the compared condition."""
    readings = Reading.objects.filter(project=project, superseded_by__isnull=True).aggregate(
        n=Count("id"), top=Max("id"), total=Sum("id")
    )
    payload = {
        "version": REPORT_VERSION,
        "scheme": project.scheme_id,
        "baseline": _baseline(project),
        "readings": readings,
        "runs": sorted(project.consensus_runs.filter(is_current=True).values_list("id", flat=True)),
        "readers": sorted(
            project.memberships.filter(role=Membership.Role.READER).values_list("user_id", flat=True)
        ),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def agreement_lookup(*, project: Project, n_boot: int) -> tuple[str, AgreementReport | None]:
    """The fingerprint of the current inputs and the newest stored report at ``n_boot`` (current or not)."""
    return agreement_data_hash(project), AgreementReport.objects.filter(
        project=project, n_boot=n_boot
    ).first()


def agreement_enqueue(*, project: Project, n_boot: int, stored: AgreementReport | None) -> None:
    """Queue a newer report on the worker (with the current transaction), unless one queued after ``stored``
    was computed is still pending: an admin page that asks every few seconds queues one computation."""
    since = timezone.now() - PENDING_FOR
    if stored is not None:
        since = max(since, stored.as_of)
    pending = OutboxMessage.objects.filter(task=COMPUTE_TASK, args=[project.pk, n_boot], created_at__gt=since)
    if not pending.exists():
        outbox_send(COMPUTE_TASK, args=(project.pk, n_boot))


def agreement_compute(*, project_id: int, n_boot: int) -> AgreementReport | None:
    """Compute and store the project's report unless the stored one is current; None if no project.

    Idempotent and safe to run twice at once: a report of older data never replaces one of newer data.
    """
    project = Project.objects.select_related("scheme").filter(pk=project_id).first()
    if project is None:
        return None
    as_of = timezone.now()
    digest, stored = agreement_lookup(project=project, n_boot=n_boot)
    if stored is not None and stored.data_hash == digest:
        return stored
    started = time.perf_counter()
    result = agreement_report(project=project, n_boot=n_boot)
    fields = {
        "data_hash": digest,
        "as_of": as_of,
        "result": result,
        "duration_s": round(time.perf_counter() - started, 3),
    }
    try:
        with transaction.atomic():
            return AgreementReport.objects.create(project=project, n_boot=n_boot, **fields)
    except IntegrityError:  # stored meanwhile: replace it only with a report of newer data
        AgreementReport.objects.filter(project=project, n_boot=n_boot, as_of__lt=as_of).update(**fields)
    return AgreementReport.objects.get(project=project, n_boot=n_boot)


def agreement_csv(report: dict[str, Any]) -> str:
    """One row per lesion × joint × region and statistic, then the ICC of the total score."""
    header = [
        "lesion",
        "joint",
        "region",
        "statistic",
        "value",
        "ci_low",
        "ci_high",
        "n",
        "n_cases",
        "n_readers",
    ]
    rows: list[list[Any]] = []
    for cell in report["cells"]:
        for name in ("alpha", "fleiss_kappa"):
            s = cell[name]
            rows.append(
                [
                    cell["lesion"],
                    cell["joint"],
                    cell["region"],
                    name,
                    s["value"],
                    s["ci_low"],
                    s["ci_high"],
                    s["n"],
                    cell["n_cases"],
                    cell["n_readers"],
                ]
            )
    for row in report["intra_reader"]:
        s = row["kappa"]
        rows.append(
            [
                row["lesion"],
                "",
                "",
                f"intra_reader_kappa:{row['reader']}",
                s["value"],
                s["ci_low"],
                s["ci_high"],
                s["n"],
                "",
                "",
            ]
        )
    total = report["total_score"]
    s = total["icc"]
    rows.append(
        [
            "total_score",
            "",
            "",
            total["form"] or "icc",
            s["value"],
            s["ci_low"],
            s["ci_high"],
            s["n"],
            total["n_cases"],
            "",
        ]
    )
    return csv_text(header, rows, lineterminator="\r\n")
