"""Benchmark: the reader hot paths of the API in-process (worklist, next case, draft save, submit).

Run: ``make bench-api-hot`` or ``.venv/bin/python -m tests.bench.bench_api_hot [--cases 2000] [--rounds 300]``.

Django's test client (token authentication, as the browser app and the load scenario use it) against a seeded
project of ``--cases`` cases on PostgreSQL: ``--readers`` readers (200, as in ``make bench-load``) with three
readers per case (a worklist of ~30 cases and the image cases), the first ``--image-cases`` cases with
registered T1 and STIR series (they come first in every reader's worklist, so "next case" serves a case with
images), and ``--pre-read`` cases already read by three other readers (the readings, audit and outbox tables
are not empty). Each round takes the next reader and times, in the order a reader's client sends them: the
worklist, "next case" (the case's data and draft), a draft save (every value of the form and one contour) and
the submit of that reading. Prints p50/p95 ms and the SQL queries per request of each; ``--profile`` keeps a
cProfile of the rounds.

Persistent connections: the test client sends Django's request_started/finished signals, so each request
closes its database connection when ``CONN_MAX_AGE`` is 0 (``--conn-max-age``; default: ``DB_CONN_MAX_AGE``
of the environment, else 300, as config/settings.py). Works in a throw-away database (``<DATABASE_URL's
name>_apihot``, with the test prefix) that it creates and drops.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import Any

PATHS = ("worklist", "next case", "draft save", "submit")


def _database_url() -> str:
    """DATABASE_URL with ``_apihot`` appended to its database name: a benchmark never takes a test's database."""
    url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/concord")
    base, _, name = url.rpartition("/")
    name, sep, query = name.partition("?")
    return f"{base}/{name}_apihot{sep}{query}"


def seed(args: argparse.Namespace) -> dict[str, Any]:
    """The project, its readers (with tokens) and assignments; returns what the rounds need."""
    import numpy as np
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    from labeling.models import Assignment, Case, GradingScheme, Instance, Membership, Project, Series, Study
    from labeling.services.schemes import schemes_load
    from tests.bench.seed_reads import submitted_reads, worklists
    from tests.labeling.factories import full_values

    rng = np.random.default_rng(16)
    schemes_load()
    scheme = GradingScheme.objects.filter(name="mri_sij").latest("pk")
    project = Project.objects.create(name="api hot paths", scheme=scheme, readers_per_case=3)
    users = get_user_model().objects

    def people(prefix: str, n: int) -> list[Any]:
        made = [users.create(username=f"{prefix}-{i}", password="!") for i in range(n)]
        Membership.objects.bulk_create(
            Membership(project=project, user=u, role=Membership.Role.READER) for u in made
        )
        return made

    readers = people("hot-reader", args.readers)
    Token.objects.bulk_create(Token(user=u, key=Token.generate_key()) for u in readers)

    # image cases: T1 and STIR of --slices instances each, registered (no pixels needed in-process)
    studies = Study.objects.bulk_create(
        Study(study_uid=f"2.25.1601.{i}", modality="MR", patient_id=f"HOT-{i}")
        for i in range(args.image_cases)
    )
    series = Series.objects.bulk_create(
        Series(
            study=st,
            series_uid=f"2.25.1602.{i}.{k}",
            modality="MR",
            description=desc,
            frame_of_reference_uid=f"2.25.1603.{i}",
        )
        for i, st in enumerate(studies)
        for k, desc in enumerate(("T1", "STIR"))
    )
    Instance.objects.bulk_create(
        (
            Instance(series=s, sop_uid=f"{s.series_uid}.{j}", slice_index=j, instance_number=j + 1)
            for s in series
            for j in range(args.slices)
        ),
        batch_size=5000,
    )
    image_cases = Case.objects.bulk_create(
        Case(project=project, study=st, label=f"hot-image-{i}") for i, st in enumerate(studies)
    )
    # the bulk: imageless studies, 3 readers each, in a random worklist order after the image cases
    n_bulk = max(0, args.cases - args.image_cases - args.pre_read)
    worklists(project, readers, image_cases, n_bulk, rng=rng, uid_prefix="2.25.1604.", label="hot-")
    seed_readers = people("hot-seed-reader", 3)
    submitted_reads(project, seed_readers, args.pre_read, rng=rng, flip=0.15, uid_prefix="2.25.1605.")
    tokens = dict(Token.objects.values_list("user_id", "key"))
    return {
        "project_id": project.pk,
        "tokens": [tokens[u.pk] for u in readers],
        "values": full_values(scheme.parsed, 0),
        "n_cases": Case.objects.filter(project=project).count(),
        "n_assignments": Assignment.objects.filter(project=project).count(),
    }


def run(args: argparse.Namespace, seeded: dict[str, Any]) -> dict[str, dict[str, list[float]]]:
    """``--rounds`` rounds (after ``--warmup`` untimed ones); per path the times (ms) and query counts."""
    from django.db import connection, reset_queries
    from django.test.utils import CaptureQueriesContext
    from rest_framework.test import APIClient

    project = seeded["project_id"]
    clients = []
    for token in seeded["tokens"]:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
        clients.append(client)
    results: dict[str, dict[str, list[float]]] = {p: {"ms": [], "queries": []} for p in PATHS}

    def timed(path: str, keep: bool, client: Any, url: str, data: Any, expect: int) -> Any:
        reset_queries()  # the log holds 9,000 queries at most: a full one counts nothing new
        with CaptureQueriesContext(connection) as queries:
            start = time.perf_counter()
            response = client.get(url) if data is None else client.post(url, data, format="json")
            took = (time.perf_counter() - start) * 1000
        if response.status_code != expect:
            raise SystemExit(
                f"{path}: {response.status_code} {getattr(response, 'data', response.content)!r}"
            )
        if args.sql and i == args.warmup + args.rounds - 1:
            print(f"--- {path}: {len(queries)} queries")
            for q in queries.captured_queries:
                print(f"  {q['sql'][:300]}")
        if keep:
            results[path]["ms"].append(took)
            results[path]["queries"].append(len(queries))
        return response

    for i in range(args.warmup + args.rounds):
        keep = i >= args.warmup
        client = clients[i % len(clients)]
        timed("worklist", keep, client, f"/api/projects/{project}/worklist/", None, 200)
        opened = timed("next case", keep, client, f"/api/projects/{project}/worklist/next/", {}, 200)
        key = opened.data["key"]
        series = opened.data["series"]
        contours = (
            [
                {
                    "joint": "left",
                    "series_uid": series[0]["series_uid"],
                    "slice_index": 1,
                    "points_mm": [[30.0, 0.0, 40.0], [28.0, 0.0, 20.0], [24.0, 0.0, 0.0]],
                }
            ]
            if series
            else []
        )
        reading = {"values": seeded["values"], "contours": contours}
        timed("draft save", keep, client, f"/api/assignments/{key}/draft/save/", reading, 200)
        submitted = {**reading, "duration_s": 90.0}
        timed("submit", keep, client, f"/api/assignments/{key}/reading/", submitted, 201)
    return results


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def report(
    args: argparse.Namespace, seeded: dict[str, Any], results: dict[str, dict[str, list[float]]]
) -> None:
    load = os.getloadavg()
    print(
        f"{seeded['n_cases']:,} cases, {seeded['n_assignments']:,} assignments, {args.readers} readers; "
        f"{args.rounds} rounds (+{args.warmup} warm-up); CONN_MAX_AGE {args.conn_max_age}; "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    print(f"| {'path':<10} | {'p50 ms':>7} | {'p95 ms':>7} | {'max ms':>7} | {'queries':>7} |")
    print(f"|{'-' * 12}|{'-' * 9}|{'-' * 9}|{'-' * 9}|{'-' * 9}|")
    for path in PATHS:
        ms, queries = results[path]["ms"], results[path]["queries"]
        low, high = int(min(queries)), int(max(queries))
        counted = f"{low}" if low == high else f"{low}-{high}"
        print(
            f"| {path:<10} | {statistics.median(ms):>7.1f} | {percentile(ms, 95):>7.1f} | {max(ms):>7.1f} "
            f"| {counted:>7} |"
        )


def _purge_broker() -> None:
    """Drop the messages the submits published (no worker runs here): the keys under this run's prefix."""
    from django.conf import settings

    prefix = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("global_keyprefix")
    if not prefix or not str(settings.CELERY_BROKER_URL).startswith("redis://"):
        return
    try:
        import redis

        client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
        keys = list(client.scan_iter(match=f"{prefix}*"))
        if keys:
            client.delete(*keys)
    except Exception as exc:  # best effort: a broker that is gone has nothing to clean
        print(f"(broker not cleaned: {exc})")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cases", type=int, default=2000)
    parser.add_argument("--readers", type=int, default=200)
    parser.add_argument("--image-cases", type=int, default=40)
    parser.add_argument("--slices", type=int, default=20)
    parser.add_argument("--pre-read", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--sql", action="store_true", help="print the SQL of each path's last request")
    parser.add_argument("--profile", metavar="FILE", help="cProfile the rounds into FILE (times are slower)")
    parser.add_argument("--conn-max-age", type=int, default=int(os.environ.get("DB_CONN_MAX_AGE", 300)))
    args = parser.parse_args()

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings_test")
    os.environ["DATABASE_URL"] = _database_url()
    import django

    django.setup()
    from django.db import connection
    from django.test.utils import setup_databases, setup_test_environment, teardown_databases

    setup_test_environment()  # the test client's host (testserver) is allowed
    config = setup_databases(verbosity=0, interactive=False)
    try:
        began = time.monotonic()
        seeded = seed(args)
        print(f"seeded in {time.monotonic() - began:.0f} s", flush=True)
        # as config/settings.py would set it; takes effect from the next connection
        connection.settings_dict["CONN_MAX_AGE"] = args.conn_max_age
        connection.settings_dict["CONN_HEALTH_CHECKS"] = args.conn_max_age > 0
        connection.close()
        if args.profile:
            import cProfile

            with cProfile.Profile() as profile:
                results = run(args, seeded)
            profile.dump_stats(args.profile)
            print(f"profile of every round in {args.profile} (python -m pstats {args.profile})")
        else:
            results = run(args, seeded)
        report(args, seeded, results)
    finally:
        _purge_broker()
        connection.close()
        teardown_databases(config, verbosity=0)


if __name__ == "__main__":
    main()
