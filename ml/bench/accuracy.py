"""``python -m ml.bench accuracy``: phantoms -> the product's training recipes -> one table with intervals.

Per (train, test) seed pair (``ml.bench.protocol``): training phantoms from the train seed read by
simulated readers of a ``--readers-scenario`` (``ml.phantoms.realistic_readers``; default ``realistic``:
errors tied to each phantom lesion's size and contrast, so hard items fool the whole panel, reader- and
output-specific thresholds, session memory, no spammer; the drawn inter- and intra-reader κ are recorded
with the results); held-out phantoms from the test seed, scored against their truth. Every model trains through its ``ml.pipelines`` pipeline, with its product recipe
(``ml.pipelines.recipes``), on a product-style snapshot of the training phantoms (``ml.bench.snapshot``):
the readers' readings and the consensus of their drawn joint lines, no truth. So the contour model learns
the readers' consensus contours, the lesion models the readers (majority vote, Dawid-Skene soft labels,
confusion layers) on crops along consensus contours and the contour model's traces, and the CT grader
the ordinal Dawid-Skene posterior of the readers' grades (its segmenter the SEG masks). The only
departures from a recipe are explicit ``--sizes`` epoch overrides, printed with the results.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import json
import math
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import torch

from ml.bench.phantom_scans import phantom_scan
from ml.bench.protocol import (
    FINAL_MIN_TEST,
    LESION_MODES,
    TABLE_TARGET,
    SeedPair,
    check_final,
    delong_paired,
    summarise,
)
from ml.bench.snapshot import training_snapshot
from ml.contours.infer import ContourPredictor
from ml.contours.train import evaluate_scans
from ml.ctgrade.train import evaluate as ct_evaluate
from ml.lesions.labels import OUTPUT_NAMES
from ml.lesions.train import evaluate as lesion_evaluate
from ml.phantoms.cli import format_agreement, generate
from ml.pipelines import TrainRequest, pipeline_for
from ml.pipelines.contour import RMSE_LIMIT_MM
from ml.pipelines.recipes import RECIPES, recipe
from ml.training.config import Device

Log = Callable[[str], None]
COMPONENTS = ("contours", "lesions", "ct")
#: The pipeline (model kind) of each bench component.
KINDS = {"contours": "contour", "lesions": "lesions", "ct": "ctgrade"}


@dataclass(frozen=True)
class BenchSizes:
    """Phantom counts of one seed pair, and optional epoch overrides of the recipes (None: the recipe's).

    ``contour_scans``: training studies whose readers' consensus contours train the contour model; ``None``
    (the default, as the product trains on every case with consensus contours): all of them. Test sets
    default to the final protocol's minimum.
    """

    mri_train: int = 300
    mri_test: int = 300
    ct_train: int = 80
    ct_test: int = 100
    readers: int | None = None  # None: the reader scenario's own panel (3 readers; paper_a 2)
    contour_scans: int | None = None
    contour_epochs: int | None = None
    lesion_epochs: int | None = None
    seg_epochs: int | None = None
    ct_epochs: int | None = None
    workers: int = 2


QUICK = BenchSizes(
    mri_train=6,
    mri_test=4,
    ct_train=6,
    ct_test=4,
    contour_epochs=2,
    lesion_epochs=2,
    seg_epochs=1,
    ct_epochs=2,
)


def recipe_overrides(sizes: BenchSizes, device: Device) -> dict[str, dict[str, Any]]:
    """What the bench changes in each kind's recipe: the device and the epoch overrides of ``sizes``."""
    out: dict[str, dict[str, Any]] = {
        "contour": {"device": device},
        "lesions": {"device": device},
        "ctgrade": {"device": device},
    }
    if sizes.contour_epochs is not None:
        out["contour"]["epochs"] = sizes.contour_epochs
    if sizes.lesion_epochs is not None:
        out["lesions"]["train"] = {"epochs": sizes.lesion_epochs}
    if sizes.ct_epochs is not None:
        out["ctgrade"]["train"] = {"epochs": sizes.ct_epochs}
    if sizes.seg_epochs is not None:
        out["ctgrade"]["seg_train"] = {"epochs": sizes.seg_epochs}
    return out


def bench_config(kind: str, sizes: BenchSizes, device: Device = "cpu") -> dict[str, Any]:
    """The configuration the bench trains ``kind`` with: its product recipe plus :func:`recipe_overrides`."""
    return recipe(kind, recipe_overrides(sizes, device)[kind])


def _timed(log: Log, name: str, fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn()
    elapsed = time.perf_counter() - start
    log(f"[bench] {name}: {elapsed:.0f} s")
    return out, elapsed


def _train(
    kind: str, snapshot: Path, checkpoint: Path, sizes: BenchSizes, device: Device, **extra: Any
) -> None:
    """Train ``kind`` through its pipeline (the product's path) on a snapshot folder."""
    config = {**recipe_overrides(sizes, device)[kind], **extra}
    pipeline_for(kind).train(TrainRequest(snapshot, checkpoint, config=config))


def run_contours(
    train_dir: Path, test_dir: Path, out: Path, sizes: BenchSizes, device: Device = "cpu"
) -> dict[str, Any]:
    """Train the contour pipeline on the readers' consensus contours of the training phantoms (the first
    ``contour_scans`` of them when set; by default all); evaluate locate + trace on every held-out slice with a truth polyline."""
    snapshot = training_snapshot(
        train_dir,
        out / "snapshot-contour",
        "contour",
        max_contoured=sizes.contour_scans,
        workers=sizes.workers,
    )
    _train("contour", snapshot, out / "contours", sizes, device)
    predictor = ContourPredictor.from_checkpoint(out / "contours", device=device)
    tests = [phantom_scan(p.parent) for p in sorted(test_dir.glob("mri-*/truth.json"))]
    result = evaluate_scans(predictor, tests)
    rows, missing = result.pop("rows"), result.pop("missing_by_scan")
    total = result["n"] + result["missing"]  # an untraced joint slice counts as a failure
    result["frac_below_all"] = result["frac_below"] * result["n"] / total if total else float("nan")
    result["items"] = {
        "cluster": [r["scan_id"] for r in rows] + [k for k, n in missing.items() for _ in range(n)],
        "below": [int(r["rmse_mm"] < RMSE_LIMIT_MM) for r in rows] + [0] * sum(missing.values()),
    }
    return result


def run_lesions(
    train_dir: Path, test_dir: Path, out: Path, sizes: BenchSizes, device: Device = "cpu"
) -> dict[str, Any]:
    """Train the lesion pipeline with each target mode; evaluate on the held-out phantoms' truth.

    With this run's contour checkpoint (``out/contours``) the pipeline trains on joint crops along the
    consensus contours and its traces and bundles it, as the product does with the project's contour
    model; the table scores crops along the bundled model's traces (the pre-read path).
    """
    snapshot = training_snapshot(train_dir, out / "snapshot-lesions", "lesions", workers=sizes.workers)
    contours = out / "contours" if (out / "contours" / "card.json").exists() else None
    results: dict[str, Any] = {"lines": "traced" if contours else "box crops (no contour model)"}
    items: dict[str, Any] = {"outputs": list(OUTPUT_NAMES)}
    for mode in LESION_MODES:
        extra: dict[str, Any] = {"target": mode, "cache_dir": str(out / "lesion-crops")}
        if contours is not None:
            extra["contour_checkpoint"] = str(contours)
        _train("lesions", snapshot, out / f"lesions-{mode}", sizes, device, **extra)
        result = lesion_evaluate(
            test_dir, out / f"lesions-{mode}", cache_dir=out / "lesion-crops-test", device=device, scores=True
        )
        scores = result.pop("scores")
        items["cluster"] = scores["study_ids"]
        items[mode] = {"reference": scores["reference"], "probs": scores["probs"]}
        results[mode] = result
    results["items"] = items
    return results


def run_ct(
    train_dir: Path, test_dir: Path, out: Path, sizes: BenchSizes, device: Device = "cpu"
) -> dict[str, Any]:
    """Train the CT pipeline (segmenter + grader on the readers' ordinal Dawid-Skene posteriors);
    evaluate the full pipeline on the held-out CT against the truth grades."""
    snapshot = training_snapshot(train_dir, out / "snapshot-ctgrade", "ctgrade")
    _train("ctgrade", snapshot, out / "ct", sizes, device, cache_dir=str(out / "ct-cache"))
    result = ct_evaluate(test_dir, out / "ct", device=device, scores=True)
    scores = result.pop("scores")
    card = json.loads((out / "ct" / "grader" / "card.json").read_text())
    result["target"] = card["extra"]["target"]  # "soft": the ordinal Dawid-Skene posterior of the readers
    result["items"] = {"cluster": scores["study_ids"], "grades": scores["grades"], "probs": scores["probs"]}
    return result


def run_accuracy(
    out: Path,
    sizes: BenchSizes,
    *,
    seed_train: int = 1001,
    seed_test: int = 2002,
    log: Log = print,
    only: tuple[str, ...] = COMPONENTS,
    threads: int = 2,
    device: Device = "cpu",
    difficulty: str = "realistic",
    readers_scenario: str = "realistic",
) -> dict[str, Any]:
    """Generate, train, evaluate; returns every metric plus timings (also written to ``out/results.json``).

    ``only`` restricts the run to some of "contours", "lesions", "ct"; their results replace those of an
    earlier run in the same ``out`` folder (the others are kept from ``results.json``). ``threads`` sets
    torch's intra-op threads (1 runs several times faster than 2 when other jobs keep both cores busy);
    ``device`` where the three models train and predict ("cpu", the figures of RESULTS.md, or "cuda").
    ``difficulty`` the phantom preset of both phantom sets (:mod:`ml.phantoms.difficulty`; the figures of
    RESULTS.md before issue 18 are ``easy``). ``readers_scenario`` the simulated readers of the training
    phantoms (``ml.consensus.realistic.SCENARIOS``; before issue 18: SPEC §6.5 readers plus a spammer).
    """
    torch.set_num_threads(threads)
    train_dir, test_dir = out / "phantoms-train", out / "phantoms-test"
    timings: dict[str, float] = {}

    def make(folder: Path, **kwargs: Any) -> None:
        manifest = folder / "manifest.json"
        readers = kwargs.get("readers", 0)
        scenario = kwargs.get("readers_scenario")
        wanted = [kwargs["n_mri"], kwargs["n_ct"], kwargs["seed"], difficulty, readers, scenario]
        if (
            manifest.exists()
        ):  # reuse the phantoms of an earlier run with the same sizes, seed, difficulty, readers
            old = json.loads(manifest.read_text())
            args = old["arguments"]
            got = [
                args["mri"],
                args["ct"],
                old["seed"],
                args.get("difficulty", "easy"),
                args.get("readers", 0),
            ]
            if [*got, args.get("readers_scenario")] == wanted:
                return
        generate(folder, workers=sizes.workers, level=difficulty, **kwargs)

    def make_both() -> None:
        make(
            train_dir,
            n_mri=sizes.mri_train,
            n_ct=sizes.ct_train,
            seed=seed_train,
            readers=sizes.readers or 0,
            readers_scenario=readers_scenario,
        )
        make(test_dir, n_mri=sizes.mri_test, n_ct=sizes.ct_test, seed=seed_test)

    _, timings["generate"] = _timed(log, "generate phantoms", make_both)
    results: dict[str, Any] = {
        "sizes": dataclasses.asdict(sizes),
        "recipe_overrides": recipe_overrides(sizes, device),
        "recipes": {kind: bench_config(kind, sizes, device) for kind in RECIPES},
        "device": device,
        "seed_train": seed_train,
        "seed_test": seed_test,
        "difficulty": difficulty,
        "readers_scenario": readers_scenario,
        "readers": json.loads((train_dir / "manifest.json").read_text())["readings"]["agreement"],
    }
    log(f"[bench] {format_agreement(results['readers'])} (seed {seed_train})")
    previous = out / "results.json"
    if set(only) != set(COMPONENTS) and previous.exists():
        kept = json.loads(previous.read_text())
        results |= {k: kept[k] for k in COMPONENTS if k in kept and k not in only}
        timings |= {k: v for k, v in kept.get("timings_s", {}).items() if k in COMPONENTS and k not in only}
    runners: dict[str, Callable[..., dict[str, Any]]] = {
        "contours": run_contours,
        "lesions": run_lesions,
        "ct": run_ct,
    }
    for name in only:  # results.json after each model, so an interrupted run keeps what it finished
        runner = runners[name]
        results[name], timings[name] = _timed(
            log, name, partial(runner, train_dir, test_dir, out, sizes, device)
        )
        results["timings_s"] = timings | {"total": sum(timings.values())}
        (out / "results.json").write_text(json.dumps(results, indent=1, default=float))
    return results


#: Where ``make bench-accuracy-final`` records each scored seed pair (committed, so a run that spans
#: sessions resumes); not part of the frozen code.
RECORD_DIR = Path(__file__).parent / "final"
_ROOT = Path(__file__).parents[2]


def _commit() -> dict[str, Any]:
    """The code's git commit and whether ``ml/`` (but the pair records) has uncommitted changes (a final
    run's freeze record)."""
    frozen = ["ml", f":(exclude){RECORD_DIR.relative_to(_ROOT).as_posix()}"]
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True, cwd=_ROOT
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", *frozen],
            capture_output=True,
            text=True,
            check=True,
            cwd=_ROOT,
        )
    except (OSError, subprocess.CalledProcessError):
        return {"commit": None, "dirty": None}
    return {"commit": head.stdout.strip(), "dirty": bool(dirty.stdout.strip())}


def code_hash() -> str:
    """SHA-256 of the code a score depends on: the Python files under ``ml/`` and the grading schemes the
    vocabulary is built from. Not the write-ups beside them (``RESULTS.md``): writing the table up must not
    make its own records look scored on other code."""
    digest = hashlib.sha256()
    files = [*(_ROOT / "ml").rglob("*.py"), *(_ROOT / "labeling" / "schemes").glob("*.yaml")]
    for path in sorted(files):
        if path.is_file() and RECORD_DIR not in path.parents and "__pycache__" not in path.parts:
            digest.update(path.relative_to(_ROOT).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _record_path(record: Path, pair: SeedPair) -> Path:
    return record / f"seed-{pair[0]}-{pair[1]}.json.gz"


def load_record(record: Path, pair: SeedPair, settings: dict[str, Any]) -> dict[str, Any] | None:
    """The recorded results of ``pair``, or None when it was never scored. Raises ValueError when it was
    scored with other settings or other ``ml/`` code: a seed pair is scored once, on frozen code, so
    scoring it again is a person's decision (delete the record), never the runner's."""
    path = _record_path(record, pair)
    if not path.exists():
        return None
    with gzip.open(path, "rt") as f:
        run: dict[str, Any] = json.load(f)
    differ = sorted(k for k, v in settings.items() if run.get(k) != v)
    if differ or run.get("code_hash") != code_hash():
        why = f"with other settings {differ}" if differ else f"on other ml/ code (commit {run.get('commit')})"
        raise ValueError(f"{path} was scored {why}; delete it to score the pair again")
    return run


def write_record(record: Path, pair: SeedPair, run: dict[str, Any]) -> None:
    """Record one scored pair (atomically: a run cut off mid-write leaves no half record)."""
    record.mkdir(parents=True, exist_ok=True)
    path = _record_path(record, pair)
    tmp = path.with_suffix(".tmp")
    with gzip.open(tmp, "wt") as f:
        json.dump(run, f, default=float)
    tmp.replace(path)


def run_protocol(
    out: Path,
    sizes: BenchSizes,
    pairs: Sequence[SeedPair],
    *,
    protocol: str = "dev",
    n_boot: int = 2000,
    log: Log = print,
    record: Path | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """:func:`run_accuracy` once per (train, test) seed pair, each into ``out/seed-<train>-<test>``, then
    every metric as mean ± SD over the pairs with its clustered-bootstrap 95% CI, and the DeLong paired
    tests (``ml.bench.protocol``); written to ``out/protocol.json``.

    A ``final`` protocol refuses development seeds, fewer than 3 pairs, test sets below
    ``FINAL_MIN_TEST`` and uncommitted changes under ``ml/`` (the code is frozen before the final seeds are
    scored; the commit is recorded).

    ``record``: a folder where each scored pair's results are kept (:func:`write_record`). A pair recorded
    there is not scored again (:func:`load_record`), so a run that is cut off resumes at the next pair.
    """
    freeze = _commit()
    if protocol == "final":
        check_final(pairs)
        small = {k: getattr(sizes, k) for k, v in FINAL_MIN_TEST.items() if getattr(sizes, k) < v}
        if small:
            raise ValueError(f"a final run needs test sets of at least {FINAL_MIN_TEST}, got {small}")
        if freeze["dirty"] is not False:
            raise ValueError(
                "a final run scores committed code only: commit (or stash) the changes under ml/"
            )
    settings = {
        "sizes": dataclasses.asdict(sizes),
        "device": kwargs.get("device", "cpu"),
        "difficulty": kwargs.get("difficulty", "realistic"),
        "readers_scenario": kwargs.get("readers_scenario", "realistic"),
    }
    runs = []
    for pair in pairs:
        log(f"[bench] seed pair train {pair[0]} / test {pair[1]}")
        run = load_record(record, pair, settings) if record else None
        if run is not None:
            log(f"[bench] scored before, at commit {run['commit']}: its record is reused")
        else:
            folder = out / f"seed-{pair[0]}-{pair[1]}"
            folder.mkdir(parents=True, exist_ok=True)
            run = run_accuracy(folder, sizes, seed_train=pair[0], seed_test=pair[1], log=log, **kwargs)
            run |= _commit() | {"code_hash": code_hash()}
            if record:
                write_record(record, pair, run)
        runs.append(run)
    summary: dict[str, Any] = {
        "protocol": protocol,
        "pairs": [list(p) for p in pairs],
        **freeze,
        "pair_commits": [r.get("commit") for r in runs],
        "sizes": dataclasses.asdict(sizes),
        "recipe_overrides": runs[0]["recipe_overrides"],
        "difficulty": runs[0]["difficulty"],
        "readers_scenario": runs[0]["readers_scenario"],
        "reader_agreement": {str(r["seed_train"]): r["readers"] for r in runs},
        "device": runs[0]["device"],
        "n_boot": n_boot,
        "metrics": {},
        "timings_s": [r.get("timings_s", {}) for r in runs],
    }
    for component in COMPONENTS:
        present = [r[component]["items"] for r in runs if "items" in (r.get(component) or {})]
        if len(present) == len(runs):
            summary["metrics"] |= summarise(component, present, n_boot=n_boot)
            summary[f"n_test_items_{component}"] = [len(p["cluster"]) for p in present]
            if component == "lesions":
                summary["delong"] = {
                    f"{mode} vs majority": delong_paired(present, mode) for mode in ("soft", "readers")
                }
    out.mkdir(parents=True, exist_ok=True)  # a table made from records alone scored nothing here
    (out / "protocol.json").write_text(json.dumps(summary, indent=1, default=float))
    return summary


#: Acceptance targets of issue 18, checked against the lower 95% CI bound: metric prefix -> floor.
TARGETS: tuple[tuple[str, float], ...] = (
    ("contours: fraction of joint slices < 2.76 mm", 0.90),
    (f"lesions ({TABLE_TARGET}): AUC ", 0.85),
    ("CT: QWK (5 classes)", 0.85),
    ("CT: AUC du_2026_three_class", 0.90),
    ("CT: AUC zhang_2023_three_class", 0.90),
    ("CT: AUC binary_definite", 0.90),
)


def _target(name: str) -> float | None:
    return next((floor for prefix, floor in TARGETS if name.startswith(prefix)), None)


def format_protocol(summary: dict[str, Any]) -> str:
    """The acceptance table: per metric mean ± SD over seed pairs, 95% CI, target (on the lower bound)."""
    pairs = ", ".join(f"{a}/{b}" for a, b in summary["pairs"])
    head = [
        f"protocol {summary['protocol']}: seed pairs (train/test) {pairs}; commit {summary.get('commit')}"
        + (" (uncommitted changes)" if summary.get("dirty") else ""),
        f"difficulty {summary['difficulty']}, device {summary['device']}, sizes {summary['sizes']}",
        f"recipe overrides (ml.pipelines.recipes): {summary['recipe_overrides']}",
        *(
            f"train seed {seed}: {format_agreement(agreement)}"
            for seed, agreement in summary.get("reader_agreement", {}).items()
        ),
        f"{'metric':<52} {'mean':>7} {'± SD':>6}  {'95% CI':<15} {'target':<8} status",
        "-" * 100,
    ]
    rows = []
    for name, m in summary["metrics"].items():
        floor = _target(name)
        low = m["ci"][0]
        if floor is None:
            status = f"p={m['p_bootstrap']:.3f}" if "p_bootstrap" in m else ""
            target = "report"
        else:
            status = "ok" if math.isfinite(low) and low >= floor else "BELOW"
            target = f"CI>={floor:.2f}"
        ci = f"[{low:.3f}, {m['ci'][1]:.3f}]"
        rows.append(f"{name:<52} {m['mean']:>7.3f} {m['sd']:>6.3f}  {ci:<15} {target:<8} {status}")
    for comparison, outputs in summary.get("delong", {}).items():
        better = [n for n, t in outputs.items() if math.isfinite(t["p"]) and t["diff"] > 0 and t["p"] < 0.05]
        worse = [n for n, t in outputs.items() if math.isfinite(t["p"]) and t["diff"] < 0 and t["p"] < 0.05]
        rows.append(
            f"DeLong {comparison}: better (p<0.05) on {len(better)} of {len(outputs)} outputs, worse on "
            f"{len(worse)}" + (f" ({', '.join(worse)})" if worse else "")
        )
    for key in ("soft", "readers"):
        m = summary["metrics"].get(f"lesions: mean AUC {key} - majority")
        if m is not None:
            beats = m["ci"][0] > 0 and m.get("p_bootstrap", 1.0) < 0.05
            rows.append(f"lesions: {key} beats majority on mean AUC (p < 0.05): {'yes' if beats else 'NO'}")
    timings = summary.get("timings_s", [])
    tail = ["-" * 100] + ["timings (s) " + ", ".join(f"{k} {v:.0f}" for k, v in t.items()) for t in timings]
    return "\n".join(head + rows + tail)
