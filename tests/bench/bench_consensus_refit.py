"""Benchmark: consensus refits of a project on PostgreSQL — full, no-op, incremental, and submit → API (issue 16).

Builds an MRI project whose simulated readers have read every case (28 values and ``--contours`` traced joint
lines per reading), plus spare cases with one open assignment each, then prints per project size:

- full refit: ``consensus_refit_project`` from scratch (reading the rows, five Dawid–Skene fits, writing runs,
  posteriors and reader confusions), and the scheduled full refit (``full=True``) at the end;
- no-op refit: the same call with nothing new (target ≤ 0.5 s);
- incremental refit after +1 reading: a reading is submitted (service), then the refit is timed;
- submit → posterior in the API: a reader submits through the API, a real Celery worker runs the queued refit
  (after the debounce, ``--debounce``, the product default), and an adjudicator polls the item's API until
  its posterior appears (target p95 ≤ 2 s).

Throw-away database (test_concord_bench) and Redis database (``--broker``). Speed is printed, not asserted.
Run: ``.venv/bin/python -m tests.bench.bench_consensus_refit [--cases 1200 12000] [--readers 3] [--trials 20]
[--contours 4]``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np


def _populate(n_cases: int, n_readers: int, seed: int, spare: int, contours: int) -> tuple[Any, list[Any]]:
    """The project, and ``spare`` open assignments of reader 0 on cases nobody has read.

    Each reading traces ``contours`` joint lines (left and right joint in turn, 20 points each, a reader a
    millimetre or so off the case's line), as the contour consensus reads them."""
    from django.contrib.auth import get_user_model

    from labeling.models import (
        Assignment,
        Case,
        Contour,
        GradingScheme,
        Membership,
        Project,
        Reading,
        ReadingValue,
        Study,
    )

    rng = np.random.default_rng(seed)
    scheme = GradingScheme.objects.get(name="mri_sij", version=1)  # v2 asks for ratings
    form = scheme.parsed.form_items
    project = Project.objects.create(name=f"refit-bench-{n_cases}", scheme=scheme)
    users = [
        get_user_model().objects.get_or_create(username=f"refit-reader-{r}")[0] for r in range(n_readers)
    ]
    for user in users:
        Membership.objects.create(project=project, user=user, role="reader")
    studies = Study.objects.bulk_create(
        Study(study_uid=f"2.25.9{n_cases}.{i}", modality="MR") for i in range(n_cases + spare)
    )
    cases = Case.objects.bulk_create(Case(project=project, study=s) for s in studies)
    read, extra = cases[:n_cases], cases[n_cases:]
    assignments = Assignment.objects.bulk_create(
        Assignment(project=project, case=c, reader=u, status="submitted") for c in read for u in users
    )
    readings = Reading.objects.bulk_create(
        Reading(
            assignment=a, project=project, case_id=a.case_id, reader_id=a.reader_id, session=1, scheme=scheme
        )
        for a in assignments
    )
    truth = rng.random((n_cases, len(form))) < 0.15
    flips = rng.random((len(readings), len(form))) < 0.1
    rows = (
        ReadingValue(
            reading=r,
            joint=item.joint,
            region=item.region,
            lesion=item.lesion,
            value=int(truth[i // n_readers, j] ^ flips[i, j]),
        )
        for i, r in enumerate(readings)
        for j, item in enumerate(form)
    )
    ReadingValue.objects.bulk_create(rows, batch_size=20000)
    t = np.linspace(0.0, 1.0, 20)
    line = np.stack([30.0 - 6.0 * t, np.zeros_like(t), 40.0 - 40.0 * t], axis=1)

    def traced(k: int) -> list[list[float]]:
        return np.round(line + rng.normal(0.0, 1.0, 3), 3).tolist()

    Contour.objects.bulk_create(
        (
            Contour(
                reading=r,
                joint=("left", "right")[k % 2],
                series_uid=f"2.25.8{n_cases}.{r.case_id}",
                slice_index=k // 2,
                points_mm=(points := traced(k)),
                start_mm=points[0],
                end_mm=points[-1],
            )
            for r in readings
            for k in range(contours)
        ),
        batch_size=5000,
    )
    spares = Assignment.objects.bulk_create(
        Assignment(project=project, case=c, reader=users[0]) for c in extra
    )
    return project, spares


def _quantiles(times: list[float]) -> tuple[float, float]:
    return float(np.percentile(times, 50)), float(np.percentile(times, 95))


def _row(n: int, values: int, step: str, times: list[float]) -> str:
    p50, p95 = _quantiles(times)
    return f"{n:>7} {values:>10}  {step:<34} {len(times):>3} {p50:>8.3f} {p95:>8.3f}"


def _submit_to_api(project: Any, spares: list[Any], trials: int, log: Path) -> list[float]:
    """Seconds from a reader's submit (API) to the item's posterior in the adjudication API, with a worker."""
    from django.contrib.auth import get_user_model
    from rest_framework.test import APIClient

    from labeling.models import Membership
    from tests.labeling.factories import full_values
    from tests.labeling.processes import celery_worker_cmd, process_env, running

    parsed = project.scheme.parsed
    item = parsed.form_items[0]
    adjudicator = get_user_model().objects.create(username=f"refit-adjudicator-{project.pk}")
    Membership.objects.create(project=project, user=adjudicator, role="adjudicator")
    reader = APIClient(HTTP_HOST="127.0.0.1")
    reader.force_authenticate(spares[0].reader)
    judge = APIClient(HTTP_HOST="127.0.0.1")
    judge.force_authenticate(adjudicator)
    values = full_values(parsed, 1)

    def one(assignment: Any, timeout_s: float) -> float:
        url = (
            f"/api/projects/{project.pk}/adjudication/items/{assignment.case_id}/"
            f"{item.joint}/{item.region}/{item.lesion}/"
        )
        assert judge.get(url).json()["posterior"] is None
        start = time.perf_counter()
        response = reader.post(
            f"/api/assignments/{assignment.key}/reading/", {"values": values}, format="json"
        )
        assert response.status_code == 201, response.content
        while time.perf_counter() - start < timeout_s:
            if judge.get(url).json()["posterior"] is not None:
                return time.perf_counter() - start
            time.sleep(0.02)
        raise AssertionError(f"no posterior {timeout_s} s after the submit; see {log}")

    times = []
    with running(celery_worker_cmd("default"), process_env(), log):
        one(spares[0], timeout_s=120.0)  # the worker starts and imports; not counted
        for assignment in spares[1 : trials + 1]:
            times.append(one(assignment, timeout_s=30.0))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", type=int, nargs="+", default=[1200, 12000])
    parser.add_argument("--readers", type=int, default=3)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--contours", type=int, default=4, help="joint lines traced per reading")
    parser.add_argument("--debounce", type=float, default=0.5, help="CONSENSUS_DEBOUNCE_S (product default)")
    parser.add_argument("--broker", default="redis://127.0.0.1:6379/6", help="a Redis database of its own")
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings_test")
    # its own database (test_concord_bench), so a benchmark never collides with a test run
    os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/concord_bench")
    os.environ["CONCORD_TEST_BROKER_URL"] = args.broker  # the worker started below inherits it
    import django

    django.setup()
    from django.conf import settings
    from django.db import connection
    from django.test.utils import setup_databases, teardown_databases

    settings.CONSENSUS_DEBOUNCE_S = args.debounce  # the delay a submit puts on its refit message
    config = setup_databases(verbosity=0, interactive=False)
    try:
        from config.celery import app
        from labeling.models import ItemPosterior
        from labeling.services.consensus import consensus_refit_project
        from labeling.services.readings import reading_submit
        from labeling.services.schemes import schemes_load
        from tests.labeling.factories import full_values

        app.control.purge()
        schemes_load()
        git = os.popen("git rev-parse --short HEAD 2>/dev/null").read().strip() or "?"
        print(
            f"consensus refit bench, commit {git}, {connection.vendor}, {args.readers} readers, "
            f"{args.contours} contours a reading, debounce {args.debounce} s"
        )
        print(f"{'cases':>7} {'values':>10}  {'step':<34} {'n':>3} {'p50 s':>8} {'p95 s':>8}")
        for n in args.cases:
            project, spares = _populate(
                n, args.readers, seed=n, spare=2 * args.trials + 2, contours=args.contours
            )
            start = time.perf_counter()
            runs = consensus_refit_project(project_id=project.pk)
            full = time.perf_counter() - start
            values = sum(r.n_readings for r in runs)
            assert ItemPosterior.objects.filter(run__in=runs).count() == sum(r.n_items for r in runs)
            print(_row(n, values, "full refit", [full]), flush=True)
            noop = []
            for _ in range(args.trials):
                start = time.perf_counter()
                again = consensus_refit_project(project_id=project.pk)
                noop.append(time.perf_counter() - start)
                assert [r.pk for r in again] == [r.pk for r in runs]
            print(_row(n, values, "no-op refit", noop), flush=True)
            incremental = []
            parsed = project.scheme.parsed
            for i, assignment in enumerate(spares[-args.trials :]):
                reading_submit(
                    actor=assignment.reader, assignment=assignment, values=full_values(parsed, i % 2)
                )
                start = time.perf_counter()
                updated = consensus_refit_project(project_id=project.pk)
                incremental.append(time.perf_counter() - start)
                assert all(r.n_incremental == i + 1 for r in updated)
            print(_row(n, values, "incremental refit, +1 reading", incremental), flush=True)
            with tempfile.TemporaryDirectory() as tmp:
                api = _submit_to_api(project, spares, args.trials, Path(tmp) / "worker.log")
            print(_row(n, values, "submit -> posterior in API", api), flush=True)
            start = time.perf_counter()
            scheduled = consensus_refit_project(project_id=project.pk, full=True)
            took = time.perf_counter() - start
            assert all(r.n_incremental == 0 for r in scheduled)
            print(_row(n, values, "scheduled full refit", [took]), flush=True)
    finally:
        teardown_databases(config, verbosity=0)


if __name__ == "__main__":
    main()
