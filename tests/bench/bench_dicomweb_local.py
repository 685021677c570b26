"""Benchmark: series-metadata and frame latency of Concord's /dicomweb/ endpoint on the local folder store.

Run: ``.venv/bin/python -m tests.bench.bench_dicomweb_local [--slices 24] [--requests 60]``. Needs PostgreSQL
(it works in a throw-away test database). It writes one MR study (T1 and STIR, ``--slices`` slices each of
256x256, 16 bit) to a temporary local store, imports it, assigns it to a reader, and then times ``--requests``
sequential requests per kind through the whole Django stack in this process (``django.test.Client``: the
middleware, DRF authentication, the study check, the store): the series metadata, and single frames
round-robin over the slices, each under the stored UIDs (as an adjudicator fetches them: a reader reaches the
study only under their assignment's UIDs) and under the reader's assignment's pseudonymous UIDs (what the
reading view fetches); each with a token. The first request of each kind is a warm-up and is not counted. ``make
bench-proxy`` measures the Orthanc path instead.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

ACCEPT = 'multipart/related; type="application/octet-stream"; transfer-syntax=*'


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--slices", type=int, default=24)
    parser.add_argument("--requests", type=int, default=60, help="timed requests per kind")
    args = parser.parse_args()

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings_test")
    os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/concord_localbench")
    os.environ["DICOMWEB_URL"] = ""
    # stored as received (no de-identification on import): the bench addresses the files by their own UIDs
    os.environ["DEIDENTIFY_ON_IMPORT"] = "false"
    folder = Path(tempfile.mkdtemp(prefix="concord-bench-local-"))
    os.environ["DICOM_FOLDER"] = str(folder / "store")
    import django

    django.setup()
    from django.conf import settings
    from django.test import Client
    from django.test.utils import setup_databases, teardown_databases
    from rest_framework.authtoken.models import Token

    from labeling.models import Assignment, Membership
    from labeling.services.identity import assignment_uids
    from labeling.services.ingest import import_paths
    from tests.labeling.dicom.dicom_factory import make_series, write_series
    from tests.labeling.factories import MembershipFactory, ProjectFactory, UserFactory

    settings.DICOM_FOLDER = folder / "store"
    settings.DICOMWEB_URL = ""
    settings.ALLOWED_HOSTS = ["*"]
    config = setup_databases(verbosity=0, interactive=False)
    try:
        datasets = make_series(n_slices=args.slices, rows=256, columns=256, description="T1")
        stir = make_series(
            n_slices=args.slices,
            rows=256,
            columns=256,
            description="STIR",
            seed=1,
            study_uid=datasets[0].StudyInstanceUID,
            frame_of_reference_uid=datasets[0].FrameOfReferenceUID,
        )
        paths = write_series(datasets, folder / "in" / "T1") + write_series(stir, folder / "in" / "STIR")
        project = ProjectFactory()
        reader = UserFactory(username="bench-reader")
        MembershipFactory(project=project, user=reader, role=Membership.Role.READER)
        adjudicator = UserFactory(username="bench-adjudicator")
        MembershipFactory(project=project, user=adjudicator, role=Membership.Role.ADJUDICATOR)
        report = import_paths(actor=None, paths=paths, project=project)
        case = project.cases.get(pk=report.cases[0])
        assignment = Assignment.objects.create(project=project, case=case, reader=reader, session=1)
        uids = assignment_uids(assignment)
        as_reader = Client(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=reader).key}")
        as_adjudicator = Client(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=adjudicator).key}")
        first = datasets[0]
        series = f"/dicomweb/studies/{first.StudyInstanceUID}/series/{first.SeriesInstanceUID}"
        frames = [f"{series}/instances/{ds.SOPInstanceUID}/frames/1" for ds in datasets]
        shown = (
            f"/dicomweb/studies/{uids.pseudo(first.StudyInstanceUID)}"
            f"/series/{uids.pseudo(first.SeriesInstanceUID)}"
        )
        shown_frames = [f"{shown}/instances/{uids.pseudo(ds.SOPInstanceUID)}/frames/1" for ds in datasets]
        kinds = {
            f"series metadata ({args.slices} instances)": (as_adjudicator, [f"{series}/metadata"], {}),
            "frame (256x256x16 bit)": (as_adjudicator, frames, {"HTTP_ACCEPT": ACCEPT}),
            "series metadata, reader UIDs": (as_reader, [f"{shown}/metadata"], {}),
            "frame, reader UIDs": (as_reader, shown_frames, {"HTTP_ACCEPT": ACCEPT}),
        }
        results: dict[str, list[float]] = {}
        for name, (client, urls, headers) in kinds.items():
            times = []
            for n in range(args.requests + 1):  # a bounded loop; the first request warms up
                start = time.perf_counter()
                response = client.get(urls[n % len(urls)], **headers)
                body = response.content
                elapsed = time.perf_counter() - start
                if response.status_code != 200 or not body:
                    raise RuntimeError(
                        f"GET {urls[n % len(urls)]}: HTTP {response.status_code} {body[:300]!r}"
                    )
                if n:
                    times.append(elapsed)
            results[name] = times
        print(
            f"\nlocal folder store, in-process Django client, token auth, {args.requests} sequential requests "
            f"per kind after one warm-up, {os.cpu_count()} CPUs"
        )
        print(f"{'request':34s} {'median ms':>10s} {'p95 ms':>8s} {'mean ms':>8s}")
        for name, times in results.items():
            print(
                f"{name:34s} {statistics.median(times) * 1000:10.2f} {percentile(times, 0.95) * 1000:8.2f} "
                f"{statistics.mean(times) * 1000:8.2f}"
            )
    finally:
        teardown_databases(config, verbosity=0)


if __name__ == "__main__":
    main()
