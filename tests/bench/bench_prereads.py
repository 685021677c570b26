"""Benchmark: a batch of AI pre-reads through the product's own path (``ml.services.prereads``), weights loaded
once per case (as before issue 17) against once per batch (now), on the demo's data.

Run: ``make bench-prereads`` or ``.venv/bin/python -m tests.bench.bench_prereads --models DIR``, where DIR is one
seed pair's folder of an accuracy run (``make bench-accuracy-smoke`` makes var/bench-smoke/seed-1001-2002; its
models are the product's architectures, trained for a few epochs: load and inference cost the same as full
training's). Works in a throw-away PostgreSQL database (test_concord_bench_prereads) and a folder under var/.

The demo's projects are loaded as ``make demo`` loads them (``demo_load_phantoms``: 24 MRI + 24 CT phantoms,
imported, read by the simulated readers). For each model kind a promoted version is made from DIR's checkpoint,
and its pre-reads of every case in the project are timed three times:

- **per case**: ``prereads_compute(batch=1)`` once per case, so the weights are loaded for every case: the
  cost structure of ``Pipeline.predict(checkpoint_dir, case)`` before issue 17 (``24 CT pre-reads took ~4 min
  in the demo``);
- **per batch**: ``prereads_compute()`` once, the weights loaded once for all the cases, ``PREREAD_WORKERS``
  cases in flight on threads (``Predictor.predict_many``);
- **1 thread**: the same batch with one case at a time (``ml.pipelines.PREREAD_WORKERS = 1``), to tell what
  the threads give from what the per-case work gives.

Every run's outputs are compared with the per-case run's (``same``: all equal).

"one load s" is the median of three loads of the checkpoint alone (what the batch saves per case).

``--threads N`` gives torch N threads (default 2, all of these cores). ``--beside-training`` times it all beside
a stand-in training run in a second process with as many threads (the CT segmenter trained on random volumes):
``make demo``'s worker has two processes (``-c 2``), and one may train while the other pre-reads. Each worker
process gets cores / processes threads (config/celery.py), so ``--threads 1 --beside-training`` is the demo
now and ``--threads 2 --beside-training`` the demo before that share. The table's last line gives the stand-in's
training steps a second, alone (its first 10 s) and while the pre-reads ran.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

#: model kind -> (the demo project it pre-reads, its checkpoint's folder in an accuracy run's seed folder)
KINDS = {"contour": ("mri", "contours"), "lesions": ("mri", "lesions-soft"), "ctgrade": ("ct", "ct")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", type=Path, default=Path("var/bench-smoke/seed-1001-2002"))
    parser.add_argument("--out", type=Path, default=Path("var/bench-prereads"))
    parser.add_argument("--mri", type=int, default=24)
    parser.add_argument("--ct", type=int, default=24)
    parser.add_argument("--kinds", nargs="+", choices=sorted(KINDS), default=list(KINDS))
    parser.add_argument("--threads", type=int, default=2, help="torch's threads (a worker process's share)")
    parser.add_argument("--beside-training", action="store_true", help="beside a stand-in training run")
    parser.add_argument("--stand-in-training", action="store_true", help=argparse.SUPPRESS)  # that run itself
    args = parser.parse_args()
    if args.stand_in_training:
        stand_in_training(args.threads)
        return
    missing = [f for k in args.kinds if not (f := args.models / KINDS[k][1]).is_dir()]
    if missing:
        parser.error(f"no checkpoint at {', '.join(map(str, missing))}: run make bench-accuracy-smoke first")

    out = args.out.resolve()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings_test")
    os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/concord_bench_prereads")
    os.environ["DICOM_FOLDER"] = str(out / "dicom")
    os.environ["ML_WEIGHTS_DIR"] = str(out / "models")
    os.environ["ML_DEVICE"] = "cpu"
    import django

    django.setup()
    import torch
    from django.core.management import call_command
    from django.test.utils import setup_databases, teardown_databases

    torch.set_num_threads(args.threads)  # a worker process's share of the cores
    config = setup_databases(verbosity=0, interactive=False)
    try:
        call_command("demo_load_phantoms", mri=args.mri, ct=args.ct, seed=0, out=out / "phantoms")
        with beside_stand_in_training(args.threads) if args.beside_training else nullcontext([]) as rates:
            rows = [time_kind(kind, (args.models / KINDS[kind][1]).resolve()) for kind in args.kinds]
    finally:
        teardown_databases(config, verbosity=0)
    print(format_rows(rows))
    print(f"(torch threads: {args.threads}{'' if rates else '; nothing else running'})")
    if rates:
        print(
            f"(beside a stand-in training run with {args.threads} threads: {rates[0]:.1f} training steps a second"
            f" alone, {rates[1]:.1f} while the pre-reads ran)"
        )


#: Seconds the stand-in trains alone before the pre-reads start (its rate alone).
ALONE_S = 10.0


def stand_in_training(threads: int) -> None:
    """Train the CT segmenter on random volumes until SIGTERM: print the steps a second of the first ``ALONE_S``
    seconds, then those of the rest."""
    import torch

    from ml.ctgrade.model import GraderConfig, build_segmenter

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    net = build_segmenter(GraderConfig())
    optimiser = torch.optim.Adam(net.parameters())
    volumes, labels = torch.randn(4, 1, 32, 64, 64), torch.randint(0, 3, (4, 32, 64, 64))
    stop: list[int] = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    steps, start, alone = 0, time.perf_counter(), False
    while not stop:
        optimiser.zero_grad()
        torch.nn.functional.cross_entropy(net(volumes), labels).backward()
        optimiser.step()
        steps += 1
        if not alone and time.perf_counter() - start >= ALONE_S:
            print(f"{steps / (time.perf_counter() - start):.3f}", flush=True)
            alone, steps, start = True, 0, time.perf_counter()
    print(f"{steps / (time.perf_counter() - start):.3f}", flush=True)


@contextmanager
def beside_stand_in_training(threads: int) -> Iterator[list[float]]:
    """The block runs beside the stand-in training run, started ``ALONE_S`` seconds before it; the list it is
    given holds afterwards the stand-in's steps a second alone and during the block."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    command = [
        sys.executable,
        "-m",
        "tests.bench.bench_prereads",
        "--stand-in-training",
        "--threads",
        str(threads),
    ]
    training = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
    assert training.stdout is not None
    rates = [float(training.stdout.readline())]
    try:
        yield rates
    finally:
        training.send_signal(signal.SIGTERM)
        rates.append(float(training.communicate(timeout=60)[0]))


def time_kind(kind: str, checkpoint: Path) -> dict[str, Any]:
    """Pre-read every case of the demo project of ``kind``'s modality, per case and per batch."""
    import torch

    from labeling.management.commands.demo_load_phantoms import PROJECTS
    from labeling.models import Project
    from ml import pipelines
    from ml.models import ModelVersion, Prediction, TrainingRun
    from ml.pipelines import pipeline_for
    from ml.services.prereads import prereads_compute

    project = Project.objects.get(name=PROJECTS[KINDS[kind][0]])
    run = TrainingRun.objects.create(project=project, kind=kind, state=TrainingRun.State.SUCCEEDED)
    version = ModelVersion.objects.create(
        project=project,
        kind=kind,
        version=1 + ModelVersion.objects.filter(project=project, kind=kind).count(),
        training_run=run,
        status=ModelVersion.Status.PROMOTED,
        checkpoint_dir=str(checkpoint),
    )
    n = project.cases.count()
    per_case = []
    while len(per_case) < n:
        start = time.perf_counter()
        if prereads_compute(version_id=version.pk, batch=1) != 1:
            raise RuntimeError(f"a {kind} pre-read failed; see the log")
        per_case.append(time.perf_counter() - start)
    reference = outputs(version)
    timings, same = {}, True
    for workers in (pipelines.PREREAD_WORKERS, 1):
        Prediction.objects.filter(model_version=version).delete()
        default, pipelines.PREREAD_WORKERS = pipelines.PREREAD_WORKERS, workers
        try:
            start = time.perf_counter()
            done = prereads_compute(version_id=version.pk, batch=n)
            timings[workers] = time.perf_counter() - start
        finally:
            pipelines.PREREAD_WORKERS = default
        if done != n:
            raise RuntimeError(f"{kind}: {done} of {n} pre-reads made")
        same = same and outputs(version) == reference
    loads = []
    for _ in range(3):
        start = time.perf_counter()
        pipeline_for(kind).load(checkpoint, device="cpu")
        loads.append(time.perf_counter() - start)
    return {
        "kind": kind,
        "cases": n,
        "per_case": per_case,
        "batch_s": timings[pipelines.PREREAD_WORKERS],
        "batch_1_s": timings[1],
        "workers": min(pipelines.PREREAD_WORKERS, torch.get_num_threads()),  # what the batch ran with
        "same": same,
        "load_s": statistics.median(loads),
    }


def outputs(version: Any) -> dict[int, Any]:
    """The stored pre-reads of a version, by case id."""
    from ml.models import Prediction

    return dict(Prediction.objects.filter(model_version=version).values_list("case_id", "output"))


def format_rows(rows: list[dict[str, Any]]) -> str:
    head = (
        f"{'kind':<9} {'cases':>5}  {'per case: total s':>17} {'median s':>9}  "
        f"{'per batch: total s':>18} {'s/case':>7}  {'speed-up':>8}  {'1 thread: total s':>17}  "
        f"{'one load s':>10}  same"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        total = sum(r["per_case"])
        lines.append(
            f"{r['kind']:<9} {r['cases']:>5}  {total:>17.1f} {statistics.median(r['per_case']):>9.2f}  "
            f"{r['batch_s']:>18.1f} {r['batch_s'] / r['cases']:>7.2f}  {total / r['batch_s']:>7.1f}x  "
            f"{r['batch_1_s']:>17.1f}  {r['load_s']:>10.2f}  {'yes' if r['same'] else 'NO'}"
        )
    lines.append(f"(per batch, cases in flight on threads: {rows[0]['workers'] if rows else '-'})")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
