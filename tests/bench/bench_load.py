"""Load bench (``make bench-load``; issue 16, "Load"): simulated readers, adjudicators and admins against the
production-shaped stack, then a burst without think time; prints a table.

The stack, all on 127.0.0.1 and all this script's own: gunicorn (config/gunicorn.conf.py, gthread; production
settings, DEBUG off), a Celery worker and beat, a Redis on a free port as the broker, a PostgreSQL database of its
own (``<DATABASE_URL's name>_load``, created, migrated and dropped here) and the checkout's Orthanc
(platform/services.sh on ORTHANC_PORT; stopped again if this script started it).

The project (mri_sij, >= ``--cases`` cases): ``--image-studies`` small phantom MR studies (T1 + STIR) stored in
Orthanc and imported, which every reader reads first (so every case a reader opens has images in a run of a few
cases); the rest registered in bulk without images (their series list is empty, nothing to fetch), each for 3
readers; ``--pre-read`` further cases already read by 3 other readers, fitted once before the run, so that the
adjudicators' queue is not empty.

The load run: ``--readers`` readers (a case every ``--case-s`` seconds, a draft save every ~``--draft-s``, every
frame of both series through /dicomweb/, every third frame also straight from Orthanc in the same run),
``--adjudicators`` adjudicators (queue -> item -> decision every 15-45 s), ``--admins`` admins (agreement and a
refit every 30-60 s), for ``--minutes``; they arrive evenly over the first ``--ramp-s`` seconds (default 20: 11 new
users a second at the full size, a worst case; every API miss of the full-size runs falls in it). Then the burst: ``--burst-users`` readers ramped up one a second, no think
time, no images, for ``--burst-s``; the saturation throughput is the highest requests/s of a 5-s window before
the first window whose API p95 passes 150 ms or that has an error.

Afterwards: every reading the API acknowledged (201) is in the database exactly once, and the consensus covers
them all (the current runs' watermark reaches the last reading, the refit state's ``covered_until`` its time,
the outbox is empty), waited for at most ``--settle-s``.

The issue's full size: ``--readers 200 --adjudicators 20 --admins 2 --minutes 10`` (``--case-s 120 240``).
The soak (``make bench-soak``): ``--readers 100 --minutes 30 --sample-s 30``, which adds the resource curve of
tests/bench/soak.py (memory of web, worker, database and Redis; open connections) and its flatness verdict.
Run: ``.venv/bin/python -m tests.bench.bench_load [--readers 50 --minutes 2 --burst-s 60]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.bench import soak
from tests.bench.seed_reads import submitted_reads, worklists
from tests.bench.stack import ROOT, Stack, free_port, wait_for

SERVICES = ROOT / "platform" / "services.sh"
PATIENT_PREFIX = "PHANTOM-LOAD-"
API_NAMES = {"worklist": "worklist", "next case": "next case", "draft save": "draft save", "submit": "submit"}
API_TARGET_MS = 150.0
FRAMES_RATIO = 1.2
STEADY_AFTER_S = 120.0  # the arrival herd: every user starts within 20 s and opens a case with its frames


def orthanc(action: str) -> int:
    return subprocess.run(
        ["bash", str(SERVICES), action, "orthanc"], capture_output=True, timeout=90
    ).returncode


def database(admin_url: str, name: str, action: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        if action == "drop":
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> "
                "pg_backend_pid()",
                (name,),
            )
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        if action == "create":
            conn.execute(f'CREATE DATABASE "{name}"')


# --- the data ----------------------------------------------------------------------------------------------


def seed(args: argparse.Namespace, web: str, orthanc_url: str, folder: Path) -> dict[str, Any]:
    """The project, its users and assignments, the image studies; returns the locust seed."""
    import numpy as np
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    from labeling.dicom import DicomWebStore
    from labeling.models import (
        Case,
        GradingScheme,
        Membership,
        Project,
    )
    from labeling.services.consensus import consensus_refit_project
    from labeling.services.ingest import import_dicomweb
    from labeling.services.schemes import schemes_load
    from tests.labeling.dicom.dicom_factory import make_series
    from tests.labeling.factories import full_values

    rng = np.random.default_rng(16)
    schemes_load()
    scheme = GradingScheme.objects.filter(name="mri_sij").latest("pk")
    project = Project.objects.create(name="load bench", scheme=scheme, readers_per_case=3)
    users = get_user_model().objects

    def people(prefix: str, n: int, role: str) -> list[Any]:
        made = [users.create(username=f"{prefix}-{i}", password="!") for i in range(n)]
        Membership.objects.bulk_create(Membership(project=project, user=u, role=role) for u in made)
        return made

    readers = people("load-reader", args.readers, Membership.Role.READER)
    seed_readers = people("load-seed-reader", 3, Membership.Role.READER)
    adjudicators = people("load-adjudicator", max(1, args.adjudicators), Membership.Role.ADJUDICATOR)
    admins = people("load-admin", max(1, args.admins), Membership.Role.ADMIN)
    Token.objects.bulk_create(
        Token(user=u, key=Token.generate_key()) for u in readers + adjudicators + admins
    )

    # images: small phantom studies stored in Orthanc and imported (stored UIDs: no de-identification)
    store = DicomWebStore.for_orthanc(orthanc_url, max_attempts=1)
    direct_frames = []
    for s in range(args.image_studies):
        t1 = make_series(
            n_slices=args.slices,
            rows=256,
            columns=256,
            description="T1",
            patient_id=f"{PATIENT_PREFIX}{s}",
            seed=2 * s,
        )
        stir = make_series(
            n_slices=args.slices,
            rows=256,
            columns=256,
            description="STIR",
            patient_id=f"{PATIENT_PREFIX}{s}",
            study_uid=t1[0].StudyInstanceUID,
            frame_of_reference_uid=t1[0].FrameOfReferenceUID,
            seed=2 * s + 1,
        )
        store.store(t1 + stir)
        direct_frames += [
            f"{orthanc_url}/dicom-web/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}/instances/"
            f"{ds.SOPInstanceUID}/frames/1"
            for ds in t1 + stir
        ]
        import_dicomweb(
            actor=None,
            url=f"{orthanc_url}/dicom-web",
            filters={"PatientID": f"{PATIENT_PREFIX}{s}"},
            project=project,
        )
    image_cases = list(Case.objects.filter(project=project))
    # the bulk: studies without images, 3 readers each, in a random worklist order after the image cases
    n_bulk = max(0, args.cases - len(image_cases) - args.pre_read)
    worklists(
        project,
        readers,
        image_cases,
        n_bulk,
        rng=rng,
        uid_prefix=f"2.25.{rng.integers(1 << 62)}",
        label="load-",
    )

    # already read (3 other readers, some disagreement): the adjudication queue has items from the start
    submitted_reads(
        project,
        seed_readers,
        args.pre_read,
        rng=rng,
        flip=0.15,
        uid_prefix=f"2.25.{rng.integers(1 << 62)}9",
        label="load-read-",
    )
    consensus_refit_project(project_id=project.pk, full=True)
    tokens = dict(Token.objects.values_list("user_id", "key"))
    return {
        "web": web,
        "project_id": project.pk,
        "readers": [tokens[u.pk] for u in readers],
        "adjudicators": [tokens[u.pk] for u in adjudicators],
        "admins": [tokens[u.pk] for u in admins],
        "n_readers": args.readers,
        "n_adjudicators": args.adjudicators,
        "n_admins": args.admins,
        "values": [full_values(scheme.parsed, 0), full_values(scheme.parsed, 1)],
        "direct_frames": direct_frames,
        "case_s": list(args.case_s),
        "draft_s": args.draft_s,
        "agreement_boot": args.agreement_boot,
        "burst": False,
        "n_cases": Case.objects.filter(project=project).count(),
        "n_image_cases": len(image_cases),
    }


def orthanc_cleanup(orthanc_url: str) -> None:
    """Delete this bench's studies (PatientID PHANTOM-LOAD-*), those of an interrupted run too. Orthanc's own
    /tools/find: a QIDO wildcard sent through dicomweb-client arrives percent-encoded (%2A) and matches nothing."""
    import requests

    found = requests.post(
        f"{orthanc_url}/tools/find",
        json={"Level": "Study", "Query": {"PatientID": f"{PATIENT_PREFIX}*"}},
        timeout=30,
    )
    found.raise_for_status()
    for orthanc_id in found.json():
        requests.delete(f"{orthanc_url}/studies/{orthanc_id}", timeout=30).raise_for_status()


# --- runs --------------------------------------------------------------------------------------------------


def run_locust(
    folder: Path,
    seed_data: dict[str, Any],
    tag: str,
    users: int,
    rate: float,
    seconds: int,
    env: dict[str, str],
) -> tuple[list[tuple[float, str, float, bool, int]], list[str]]:
    seed_file, samples, acks = (
        folder / f"seed-{tag}.json",
        folder / f"samples-{tag}.json",
        folder / f"acks-{tag}.json",
    )
    seed_file.write_text(json.dumps(seed_data))
    cmd = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(ROOT / "tests" / "bench" / "load_locustfile.py"),
        "--headless",
        "--only-summary",
        "--users",
        str(users),
        "--spawn-rate",
        str(rate),
        "--run-time",
        f"{seconds}s",
        "--stop-timeout",
        "30",
        "--exit-code-on-error",
        "0",
        "--loglevel",
        "WARNING",
    ]
    locust_env = {**env, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), env["CALLER_PYTHONPATH"]) if p)}
    locust_env |= {"LOAD_SEED": str(seed_file), "LOAD_SAMPLES": str(samples), "LOAD_ACKS": str(acks)}
    with (folder / f"locust-{tag}.log").open("wb") as log:
        subprocess.run(
            cmd, cwd=ROOT, env=locust_env, stdout=log, stderr=subprocess.STDOUT, timeout=seconds + 180
        )
    return [tuple(s) for s in json.loads(samples.read_text())], json.loads(acks.read_text())  # type: ignore[misc]


def soak_sampler(stack: Stack, url: str, db_name: str, every_s: float) -> soak.Sampler | None:
    """The soak's sampler over this run's processes and database, or None when ``every_s`` is 0."""
    if every_s <= 0:
        return None
    import psycopg

    def backends() -> list[int]:
        with psycopg.connect(url, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", (db_name,)
            ).fetchall()
        return [pid for (pid,) in rows]

    return soak.Sampler(
        pids=lambda: {name: proc.pid for name, proc in stack.procs.items() if proc.poll() is None},
        db_backends=backends,
        web_port=stack.web_port,
        every_s=every_s,
    )


def warm_up(web: str, seed_data: dict[str, Any]) -> None:
    """A few API calls per gunicorn worker, so that the first users do not pay for its lazy imports."""
    import requests

    auth = {"Authorization": f"Token {seed_data['admins'][0]}"}
    for _ in range(16):
        requests.get(f"{web}/api/projects/{seed_data['project_id']}/", headers=auth, timeout=60)
        requests.get(
            f"{web}/api/projects/{seed_data['project_id']}/adjudication/queue/", headers=auth, timeout=60
        )


def settle(project_id: int, timeout_s: float) -> tuple[bool, float]:
    """Wait until the consensus covers every reading and the outbox is empty; (covered, seconds waited)."""
    from django.db import connection
    from django.db.models import Max

    from labeling.models import ConsensusRefitState, ConsensusRun, OutboxMessage, Reading

    began = time.monotonic()

    def covered() -> bool:
        last = Reading.objects.filter(project_id=project_id).aggregate(i=Max("id"), t=Max("created_at"))
        runs = ConsensusRun.objects.filter(project_id=project_id, is_current=True)
        state = ConsensusRefitState.objects.filter(project_id=project_id).first()
        ok = (
            runs.exists()
            and all(r.watermark >= last["i"] for r in runs)
            and state is not None
            and state.covered_until is not None
            and state.covered_until >= last["t"]
            and not OutboxMessage.objects.filter(sent_at__isnull=True).exists()
        )
        connection.close()
        return ok

    try:
        wait_for(covered, timeout_s=timeout_s, what="consensus covering every reading", every_s=1.0)
        return True, time.monotonic() - began
    except TimeoutError:
        return False, time.monotonic() - began


def stored_reading_keys(project_id: int) -> list[str]:
    from labeling.models import Reading

    return list(
        Reading.objects.filter(project_id=project_id, assignment__reader__username__startswith="load-reader-")
        .filter(supersedes__isnull=True)
        .values_list("assignment__key", flat=True)
    )


# --- the table ---------------------------------------------------------------------------------------------


def report(
    args: argparse.Namespace,
    seed_data: dict[str, Any],
    load: list[tuple[float, str, float, bool, int]],
    burst: list[tuple[float, str, float, bool, int]],
    consistency: Any,
    settled: tuple[bool, float],
    commit: str,
) -> None:
    from tests.bench.load_check import percentile, saturation, windows

    print()
    print(
        f"load bench at {commit}: {args.readers} readers, {args.adjudicators} adjudicators, {args.admins} admins "
        f"for {args.minutes:g} min, arriving over {args.ramp_s:g} s (case every {args.case_s[0]:g}-{args.case_s[1]:g} s, draft every "
        f"~{args.draft_s:g} s); project of {seed_data['n_cases']:,} cases ({seed_data['n_image_cases']} with "
        f"images in Orthanc); gunicorn {args.web_workers} workers x {os.environ.get('WEB_THREADS', '8')} threads, "
        f"{os.cpu_count()} CPUs shared with the load generator"
    )
    names = sorted({s[1] for s in load}, key=lambda n: (n not in API_NAMES, n))
    print(f"{'request':24s} {'n':>7s} {'errors':>6s} {'p50 ms':>8s} {'p95 ms':>8s} {'max ms':>8s}  target")
    p95: dict[str, float] = {}
    for name in names:
        times = [s[2] for s in load if s[1] == name]
        errors = sum(1 for s in load if s[1] == name and s[3])
        p95[name] = percentile(times, 0.95)
        target = ""
        if name in API_NAMES:
            target = f"p95 <= {API_TARGET_MS:.0f}: {'met' if p95[name] <= API_TARGET_MS else 'MISSED'}"
        print(
            f"{name:24s} {len(times):7d} {errors:6d} {percentile(times, 0.5):8.1f} {p95[name]:8.1f} "
            f"{max(times):8.1f}  {target}"
        )
    errors = sum(1 for s in load if s[3])
    print(f"{'all':24s} {len(load):7d} {errors:6d}  target 0 errors: {'met' if not errors else 'MISSED'}")
    first = min((s[0] for s in load), default=0.0)
    if load:
        # Every reader arrives in the first 20 s and opens a case with all its frames at once; past that herd
        # the pace is the issue's. Both are reported: the table above is the whole run.
        start = first + STEADY_AFTER_S
        print(f"steady state (requests started >= {STEADY_AFTER_S:.0f} s after the first):")
        for name in API_NAMES:
            times = [s[2] for s in load if s[1] == name and s[0] >= start]
            if times:
                late = percentile(times, 0.95)
                print(
                    f"  {name:22s} {len(times):7d} {percentile(times, 0.5):15.1f} {late:8.1f} {max(times):8.1f}  "
                    f"p95 <= {API_TARGET_MS:.0f}: {'met' if late <= API_TARGET_MS else 'MISSED'}"
                )
    for what, since in (("", 0.0), (" in steady state", STEADY_AFTER_S)):
        proxy = [s[2] for s in load if s[1] == "frame (proxy)" and s[0] >= first + since]
        direct = [s[2] for s in load if s[1] == "frame (orthanc direct)" and s[0] >= first + since]
        if proxy and direct:
            ratio = percentile(proxy, 0.95) / percentile(direct, 0.95)
            verdict = "met" if ratio <= FRAMES_RATIO else "MISSED"
            print(
                f"frames proxy / Orthanc direct{what}: p95 {ratio:.2f} = {percentile(proxy, 0.95):.1f} / "
                f"{percentile(direct, 0.95):.1f} ms (target <= {FRAMES_RATIO}: {verdict}), "
                f"p50 {percentile(proxy, 0.5) / percentile(direct, 0.5):.2f}"
            )
    print(
        f"acknowledged readings (201): {consistency.acknowledged}, stored: {consistency.stored}; missing "
        f"{len(consistency.missing)}, stored twice {len(consistency.duplicated)}, acknowledged twice "
        f"{len(consistency.acknowledged_twice)}, stored but not acknowledged {len(consistency.unacknowledged)}"
        f" -> {'exactly once: yes' if consistency.ok else 'exactly once: NO'}"
    )
    print(
        f"consensus covering every reading (watermark, covered_until, outbox empty): "
        f"{'yes' if settled[0] else 'NO'} ({settled[1]:.1f} s after the run)"
    )
    if burst:
        rows = windows(burst, set(API_NAMES), 5.0)
        print()
        print(
            f"burst: readers without think time or images, 1 more a second up to {min(args.burst_users, args.readers)}, {args.burst_s} s"
        )
        print(f"{'from s':>6s} {'users':>5s} {'req/s':>7s} {'errors':>6s} {'API p95 ms':>10s}")
        for w in rows:
            print(f"{w.start_s:6.0f} {w.users:5d} {w.rps:7.1f} {w.errors:6d} {w.p95_ms:10.1f}")
        best, broke = saturation(rows, API_TARGET_MS)
        peak = max(rows, key=lambda w: w.rps)
        if broke is None:
            said = f"not reached: {best:.1f} req/s with p95 <= {API_TARGET_MS:.0f} ms and no errors (raise --burst-users)"
        elif best == 0:
            said = (
                f"below {broke.rps:.1f} req/s: the first window ({broke.users} users) already had API p95 "
                f"{broke.p95_ms:.0f} ms and {broke.errors} errors"
            )
        else:
            said = (
                f"{best:.1f} req/s; the first window past API p95 {API_TARGET_MS:.0f} ms or with errors began at "
                f"{broke.start_s:.0f} s ({broke.users} users, {broke.rps:.1f} req/s, p95 {broke.p95_ms:.0f} ms, "
                f"{broke.errors} errors)"
            )
        print(f"saturation throughput: {said}")
        print(f"peak throughput: {peak.rps:.1f} req/s at {peak.users} users (API p95 {peak.p95_ms:.0f} ms)")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--readers", type=int, default=50)
    parser.add_argument("--adjudicators", type=int, default=5)
    parser.add_argument("--admins", type=int, default=2)
    parser.add_argument("--minutes", type=float, default=2.0)
    parser.add_argument(
        "--ramp-s", type=float, default=20.0, help="seconds over which all users of the load run arrive"
    )
    parser.add_argument("--case-s", type=float, nargs=2, default=(120.0, 240.0))
    parser.add_argument("--draft-s", type=float, default=10.0)
    parser.add_argument("--cases", type=int, default=2000, help="cases of the project, at least")
    parser.add_argument(
        "--image-studies", type=int, default=6, help="cases with images, read first by every reader"
    )
    parser.add_argument("--slices", type=int, default=12, help="slices of each series (256x256, 16 bit)")
    parser.add_argument("--pre-read", type=int, default=300, help="cases already read (adjudication queue)")
    parser.add_argument(
        "--agreement-boot", type=int, default=200, help="n_boot of the admins' agreement calls"
    )
    parser.add_argument("--burst-users", type=int, default=40)
    parser.add_argument("--burst-s", type=int, default=60, help="0: no burst")
    parser.add_argument("--web-workers", type=int, default=4)
    parser.add_argument("--settle-s", type=float, default=180.0)
    parser.add_argument(
        "--sample-s", type=float, default=0.0, help="> 0: sample memory and connections this often (the soak)"
    )
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="concord-load-"))
    redis_port, web_port = free_port(), free_port()
    orthanc_url = f"http://127.0.0.1:{os.environ.get('ORTHANC_PORT', '8042')}"
    base, name = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/concord").rsplit("/", 1)
    db_name = f"{name}_load"
    caller_path = os.environ.get("PYTHONPATH", "")  # the locust process's only (where locust may live)
    broker = f"redis://127.0.0.1:{redis_port}/0"
    os.environ.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        SECRET_KEY=secrets.token_urlsafe(48),
        DEBUG="false",
        DATABASE_URL=f"{base}/{db_name}",
        CELERY_BROKER_URL=broker,
        CELERY_RESULT_BACKEND=broker,
        CACHE_URL=f"rediscache://127.0.0.1:{redis_port}/1",
        CONCORD_VAR_DIR=str(folder / "var"),
        DICOMWEB_URL=f"{orthanc_url}/dicom-web",
        DEIDENTIFY_ON_IMPORT="false",
        LOG_LEVEL="WARNING",
        PYTHONPATH=str(ROOT),
        CALLER_PYTHONPATH=caller_path,
    )
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False
    ).stdout.strip()
    stack = Stack(
        folder,
        dict(os.environ),
        web_port,
        redis_port,
        tag="load",
        web_workers=args.web_workers,
        worker_concurrency=2,
        loglevel="WARNING",
    )
    orthanc_was_up = orthanc("status") == 0
    database(f"{base}/postgres", db_name, "create")
    load: list[tuple[float, str, float, bool, int]] = []
    burst: list[tuple[float, str, float, bool, int]] = []
    try:
        stack.start("redis")
        wait_for(stack.redis_up, timeout_s=30, what="Redis answer")
        if not orthanc_was_up:
            orthanc("start")
        if orthanc("wait") != 0:
            raise RuntimeError(f"Orthanc does not answer at {orthanc_url}")
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
            cwd=ROOT,
            env=stack.env,
            check=True,
        )
        import django

        django.setup()
        from django.db import connection

        from tests.bench.load_check import readings_consistency

        orthanc_cleanup(orthanc_url)
        began = time.monotonic()
        seed_data = seed(args, f"http://127.0.0.1:{web_port}", orthanc_url, folder)
        print(f"seeded {seed_data['n_cases']:,} cases in {time.monotonic() - began:.0f} s", flush=True)
        connection.close()
        for proc in ("web", "worker", "beat"):
            stack.start(proc)
        wait_for(stack.web_up, timeout_s=90, what="answer of gunicorn")
        warm_up(f"http://127.0.0.1:{web_port}", seed_data)
        total = args.readers + args.adjudicators + args.admins
        sampler = soak_sampler(stack, os.environ["DATABASE_URL"], db_name, args.sample_s)
        if sampler:
            sampler.start()
        try:
            load, acks = run_locust(
                folder,
                seed_data,
                "load",
                total,
                max(1.0, total / max(args.ramp_s, 1.0)),
                int(args.minutes * 60),
                stack.env,
            )
        finally:
            if sampler:
                sampler.stop()
        burst_acks: list[str] = []
        burst_users = min(args.burst_users, args.readers)  # one token each
        if args.burst_s:
            burst, burst_acks = run_locust(
                folder,
                {**seed_data, "burst": True, "n_readers": burst_users},
                "burst",
                burst_users,
                1.0,
                args.burst_s,
                stack.env,
            )
        settled = settle(seed_data["project_id"], args.settle_s)
        consistency = readings_consistency(acks + burst_acks, stored_reading_keys(seed_data["project_id"]))
        connection.close()
        report(args, seed_data, load, burst, consistency, settled, commit)
        if sampler:
            (folder / "soak.json").write_text(json.dumps(sampler.rows))
            soak.report(sampler.rows, every_n=max(1, round(120 / args.sample_s)))
    finally:
        stack.stop_all()
        with contextlib.suppress(Exception):
            orthanc_cleanup(orthanc_url)
        if not orthanc_was_up:
            orthanc("stop")
        with contextlib.suppress(Exception):
            from django.db import connections

            connections.close_all()
        database(f"{base}/postgres", db_name, "drop")
        print(f"logs in {folder}")


if __name__ == "__main__":
    main()
