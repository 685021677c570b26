"""Benchmark: the assignment generator on PostgreSQL (10,000 cases × 3 readers + 20% repeats; target < 10 s).

Run: ``make bench`` or ``.venv/bin/python -m tests.bench.bench_assignments [--cases 10000] [--readers 12]``.
Works in a throw-away database (test_concord_bench) that it creates and drops.
"""

from __future__ import annotations

import argparse
import os
import time
from collections import Counter


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--readers", type=int, default=12)
    parser.add_argument("--k", type=int, default=3)
    parser.add_argument("--repeat-fraction", type=float, default=0.2)
    args = parser.parse_args()

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings_test")
    # its own database (test_concord_bench), so a benchmark never collides with a test run
    os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/concord_bench")
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test.utils import setup_databases, teardown_databases

    config = setup_databases(verbosity=0, interactive=False)
    try:
        from labeling.models import Case, GradingScheme, Membership, Project, Study
        from labeling.services.assignments import assignments_generate
        from labeling.services.schemes import schemes_load

        schemes_load()
        scheme = GradingScheme.objects.get(name="mri_sij")
        User = get_user_model()
        print(
            f"{'cases':>8} {'readers':>8} {'assignments':>12} {'repeats':>8} {'load spread':>12} "
            f"{'generate s':>11} {'re-run s':>9}   ({connection.vendor})"
        )
        for n in args.cases:
            project = Project.objects.create(
                name=f"bench-{n}",
                scheme=scheme,
                readers_per_case=args.k,
                repeat_fraction=args.repeat_fraction,
            )
            for r in range(args.readers):
                user, _ = User.objects.get_or_create(username=f"bench-reader-{r}")
                Membership.objects.create(project=project, user=user, role="reader")
            studies = Study.objects.bulk_create(
                Study(study_uid=f"2.25.{n}.{i}", modality="MR") for i in range(n)
            )
            Case.objects.bulk_create(Case(project=project, study=s) for s in studies)
            start = time.perf_counter()
            result = assignments_generate(actor=None, project=project, seed=1)
            took = time.perf_counter() - start
            start = time.perf_counter()
            again = assignments_generate(actor=None, project=project, seed=1)
            rerun = time.perf_counter() - start
            assert again.created == again.created_repeats == 0
            loads = Counter(project.assignments.values_list("reader_id", flat=True))
            print(
                f"{n:>8} {args.readers:>8} {result.created + result.created_repeats:>12} "
                f"{result.created_repeats:>8} {max(loads.values()) - min(loads.values()):>12} "
                f"{took:>11.2f} {rerun:>9.2f}"
            )
    finally:
        teardown_databases(config, verbosity=0)


if __name__ == "__main__":
    main()
