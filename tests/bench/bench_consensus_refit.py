"""Benchmark: end-to-end consensus refit of a project on PostgreSQL (target: 1,000,000 reading values ≤ 15 s).

Builds an MRI project whose simulated readers have read every case (28 values per reading), then times
``consensus_refit_project`` — reading the rows, five Dawid–Skene fits, writing runs, posteriors and reader
confusions — and the no-op refit that follows (unchanged data hash). Throw-away database; prints a table.
Run: ``.venv/bin/python -m tests.bench.bench_consensus_refit [--cases 1200 12000] [--readers 3]``.
"""

from __future__ import annotations

import argparse
import os
import time


def _populate(n_cases: int, n_readers: int, seed: int) -> object:
    import numpy as np
    from django.contrib.auth import get_user_model

    from labeling.models import (
        Assignment,
        Case,
        GradingScheme,
        Membership,
        Project,
        Reading,
        ReadingValue,
        Study,
    )

    rng = np.random.default_rng(seed)
    scheme = GradingScheme.objects.get(name="mri_sij")
    form = scheme.parsed.form_items
    project = Project.objects.create(name=f"refit-bench-{n_cases}", scheme=scheme)
    users = [
        get_user_model().objects.get_or_create(username=f"refit-reader-{r}")[0] for r in range(n_readers)
    ]
    for user in users:
        Membership.objects.create(project=project, user=user, role="reader")
    studies = Study.objects.bulk_create(
        Study(study_uid=f"2.25.9{n_cases}.{i}", modality="MR") for i in range(n_cases)
    )
    cases = Case.objects.bulk_create(Case(project=project, study=s) for s in studies)
    assignments = Assignment.objects.bulk_create(
        Assignment(project=project, case=c, reader=u, status="submitted") for c in cases for u in users
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
    return project


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", type=int, nargs="+", default=[1200, 12000])
    parser.add_argument("--readers", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings_test")
    # its own database (test_concord_bench), so a benchmark never collides with a test run
    os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/concord_bench")
    import django

    django.setup()
    from django.db import connection
    from django.test.utils import setup_databases, teardown_databases

    config = setup_databases(verbosity=0, interactive=False)
    try:
        from labeling.models import ItemPosterior
        from labeling.services.consensus import consensus_refit_project
        from labeling.services.schemes import schemes_load

        schemes_load()
        print(
            f"{'cases':>7} {'values':>10} {'items':>8} {'refit s':>8} {'no-op s':>8}   ({connection.vendor})"
        )
        for n in args.cases:
            project = _populate(n, args.readers, seed=n)
            start = time.perf_counter()
            runs = consensus_refit_project(project_id=project.pk)
            took = time.perf_counter() - start
            start = time.perf_counter()
            again = consensus_refit_project(project_id=project.pk)
            noop = time.perf_counter() - start
            assert [r.pk for r in again] == [r.pk for r in runs]
            values = sum(r.n_readings for r in runs)
            items = ItemPosterior.objects.filter(run__in=runs).count()
            print(f"{n:>7} {values:>10} {items:>8} {took:>8.2f} {noop:>8.2f}")
    finally:
        teardown_databases(config, verbosity=0)


if __name__ == "__main__":
    main()
