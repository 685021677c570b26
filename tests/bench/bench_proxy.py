"""Benchmark: latency of one frame fetched through Concord's /dicomweb/ proxy vs straight from Orthanc.

Run: ``.venv/bin/python -m tests.bench.bench_proxy [--clients 20] [--requests 40] [--workers 4 --threads 4]``.
Needs Orthanc (``bash platform/services.sh start orthanc``) and PostgreSQL. It works in a throw-away database
(test_concord_proxybench), STOWs a small MR study (512×512, 16-bit) to Orthanc, imports it by QIDO, assigns it
to a reader (tokens for the reader and an adjudicator), starts gunicorn on 127.0.0.1 with DICOMWEB_URL pointing at Orthanc and the web
process's own settings (config/gunicorn.conf.py, whose workers and threads the options override), and then lets
``--clients`` threads each fetch ``--requests`` frames (a bounded loop, round-robin over the slices) from
each target in turn. Target: the proxy adds at most 20 % at p95.

Two proxy targets: the stored UIDs, as an adjudicator (site staff and project admins fetch them the same way; a
reader reaches the study only under their assignment's UIDs), and the reader's own assignment under its
pseudonymous UIDs (``labeling.dicom.pseudonyms``), which is what the
reading view fetches.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
PATIENT = "PHANTOM-BENCH-PROXY"
ACCEPT = 'multipart/related; type="application/octet-stream"; transfer-syntax=*'


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run_clients(
    urls: list[str], headers: dict[str, str], clients: int, per_client: int
) -> tuple[list[float], float]:
    """Each client: its own session, ``per_client`` sequential GETs; returns latencies (s) and wall time."""

    def client(index: int) -> list[float]:
        session = requests.Session()
        times = []
        for n in range(per_client):
            url = urls[(index + n) % len(urls)]
            start = time.perf_counter()
            response = session.get(url, headers={**headers, "Accept": ACCEPT}, timeout=60)
            body = response.content
            times.append(time.perf_counter() - start)
            if response.status_code != 200 or len(body) < 512 * 512 * 2:
                raise RuntimeError(f"GET {url}: HTTP {response.status_code}, {len(body)} bytes")
        return times

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        latencies = [t for times in pool.map(client, range(clients)) for t in times]
    return latencies, time.perf_counter() - start


def wait_for(url: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            requests.get(url, timeout=2)
            return
        except requests.RequestException:
            time.sleep(0.3)
    raise RuntimeError(f"{url} did not come up")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--requests", type=int, default=40, help="frames per client per target")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds per target")
    parser.add_argument("--slices", type=int, default=8)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument(
        "--frame-cache-mb",
        type=float,
        default=2048,
        help="the proxy's frame cache (0: none, every frame from Orthanc)",
    )
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--port", type=int, default=0, help="default: a free port")
    parser.add_argument("--orthanc", default="http://127.0.0.1:8042")
    args = parser.parse_args()

    if not args.port:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            args.port = probe.getsockname()[1]
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings_test")
    os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/concord_proxybench")
    dicomweb = f"{args.orthanc}/dicom-web"
    os.environ["DICOMWEB_URL"] = dicomweb
    # stored as received (no de-identification on import): the bench addresses the files by their own UIDs
    os.environ["DEIDENTIFY_ON_IMPORT"] = "false"
    import django

    django.setup()
    from django.db import connection
    from django.test.utils import setup_databases, teardown_databases
    from rest_framework.authtoken.models import Token

    from labeling.dicom import DicomWebStore
    from labeling.dicom.store import json_value
    from labeling.models import Assignment, Membership
    from labeling.services.identity import assignment_uids
    from labeling.services.ingest import import_dicomweb
    from tests.labeling.dicom.dicom_factory import make_series
    from tests.labeling.factories import MembershipFactory, ProjectFactory, UserFactory

    store = DicomWebStore.for_orthanc(args.orthanc, max_attempts=1)
    for old in store.search_studies({"PatientID": PATIENT}):
        store.delete_study(json_value(old, "StudyInstanceUID"))
    config = setup_databases(verbosity=0, interactive=False)
    db = connection.settings_dict
    server = None
    frame_cache_dir = tempfile.mkdtemp(prefix="concord-frame-cache-")
    try:
        datasets = make_series(
            n_slices=args.slices, rows=512, columns=512, description="T1", patient_id=PATIENT
        )
        stir = make_series(
            n_slices=args.slices,
            rows=512,
            columns=512,
            description="STIR",
            patient_id=PATIENT,
            study_uid=datasets[0].StudyInstanceUID,
            frame_of_reference_uid=datasets[0].FrameOfReferenceUID,
        )
        store.store(datasets + stir)
        project = ProjectFactory()
        reader = UserFactory(username="bench-reader")
        MembershipFactory(project=project, user=reader, role=Membership.Role.READER)
        adjudicator = UserFactory(username="bench-adjudicator")
        MembershipFactory(project=project, user=adjudicator, role=Membership.Role.ADJUDICATOR)
        report = import_dicomweb(actor=None, url=dicomweb, filters={"PatientID": PATIENT}, project=project)
        case = project.cases.get(pk=report.cases[0])
        assignment = Assignment.objects.create(project=project, case=case, reader=reader, session=1)
        uids = assignment_uids(assignment)
        token = Token.objects.create(user=reader).key
        adjudicator_token = Token.objects.create(user=adjudicator).key
        connection.close()

        env = dict(os.environ)
        env.update(
            DJANGO_SETTINGS_MODULE="config.settings_test",
            DATABASE_URL=f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
            DICOMWEB_URL=dicomweb,
            PYTHONPATH=str(ROOT),
            # a fresh frame cache, which the warm-up fills (or none, with 0)
            FRAME_CACHE_MB=str(args.frame_cache_mb),
            FRAME_CACHE_DIR=frame_cache_dir,
        )
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "-c",
                "config/gunicorn.conf.py",
                "config.wsgi",
                "-b",
                f"127.0.0.1:{args.port}",
                "-w",
                str(args.workers),
                "--threads",
                str(args.threads),
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            env=env,
            start_new_session=True,
        )
        wait_for(f"http://127.0.0.1:{args.port}/api/schemes/")

        def frame_urls(base: str) -> list[str]:
            return [
                f"{base}/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}/instances/"
                f"{ds.SOPInstanceUID}/frames/1"
                for ds in datasets
            ]

        def reader_frame_urls(base: str) -> list[str]:
            return [
                f"{base}/studies/{uids.pseudo(ds.StudyInstanceUID)}/series/{uids.pseudo(ds.SeriesInstanceUID)}"
                f"/instances/{uids.pseudo(ds.SOPInstanceUID)}/frames/1"
                for ds in datasets
            ]

        proxy = f"http://127.0.0.1:{args.port}/dicomweb"
        targets = {
            "orthanc (direct)": (frame_urls(dicomweb), {}),
            "concord proxy": (frame_urls(proxy), {"Authorization": f"Token {adjudicator_token}"}),
            "proxy, reader UIDs": (reader_frame_urls(proxy), {"Authorization": f"Token {token}"}),
        }
        for urls, headers in targets.values():  # warm up connections, caches and worker threads
            run_clients(urls, headers, args.clients, 3)
        results: dict[str, list[float]] = {name: [] for name in targets}
        walls: dict[str, float] = dict.fromkeys(targets, 0.0)
        for _ in range(args.rounds):
            for name, (urls, headers) in targets.items():
                latencies, wall = run_clients(urls, headers, args.clients, args.requests)
                results[name] += latencies
                walls[name] += wall
        print(
            f"\nframe of 512x512x16 bit ({512 * 512 * 2 // 1024} KiB), {args.clients} concurrent clients, "
            f"{args.rounds} x {args.requests} requests each per target, gunicorn {args.workers}x{args.threads} "
            f"threads, {os.cpu_count()} CPUs, "
            + (
                f"frame cache {args.frame_cache_mb:g} MiB (warm)"
                if args.frame_cache_mb > 0
                else "no frame cache"
            )
        )
        print(f"{'target':19s} {'requests':>8s} {'median ms':>10s} {'p95 ms':>8s} {'req/s':>7s}")
        for name, latencies in results.items():
            print(
                f"{name:19s} {len(latencies):8d} {statistics.median(latencies) * 1000:10.1f} "
                f"{percentile(latencies, 0.95) * 1000:8.1f} {len(latencies) / walls[name]:7.0f}"
            )
        direct = results["orthanc (direct)"]
        for name in ("concord proxy", "proxy, reader UIDs"):
            proxied = results[name]
            overhead = percentile(proxied, 0.95) / percentile(direct, 0.95) - 1
            median_overhead = statistics.median(proxied) / statistics.median(direct) - 1
            verdict = "meets" if overhead <= 0.20 else "misses"
            print(
                f"{name} overhead: median {median_overhead:+.0%}, p95 {overhead:+.0%} "
                f"({verdict} the <= 20% target)"
            )
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=15)
        shutil.rmtree(frame_cache_dir, ignore_errors=True)
        for old in store.search_studies({"PatientID": PATIENT}):
            store.delete_study(json_value(old, "StudyInstanceUID"))
        teardown_databases(config, verbosity=0)


if __name__ == "__main__":
    main()
