"""``python -m ml.bench accuracy``: phantoms -> train all three models (CPU, or --device cuda) -> one table (SPEC §7).

Training phantoms use ``seed_train`` with simulated readers (noisy, biased, plus one spammer); the
held-out phantoms use ``seed_test`` (never used in training) and are scored against their truth. Lesion
models learn from the readers only (majority vote, Dawid-Skene soft labels, confusion layers), on crops
along the joint lines the contour model traces, in training and in the table (the pre-read path); the CT
grader learns from the adjudicated reference grade (paper (b)'s reference label; the phantom truth plays
the adjudicator) and its segmenter from the SEG masks; the contour model from the truth polylines (the
readers' traced contours are not yet exported by ``ml.phantoms`` as training targets).
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ml.bench.phantom_scans import phantom_scan
from ml.contours.infer import ContourPredictor
from ml.contours.model import ContourModelConfig
from ml.contours.train import evaluate_scans, train_contours
from ml.ctgrade.data import CtCropConfig
from ml.ctgrade.model import GraderConfig
from ml.ctgrade.train import evaluate as ct_evaluate
from ml.ctgrade.train import train as ct_train
from ml.lesions.crops import CropConfig
from ml.lesions.labels import OUTPUT_NAMES
from ml.lesions.model import JOINT_CROP_NET, LesionModelConfig
from ml.lesions.train import evaluate as lesion_evaluate
from ml.lesions.train import train as lesion_train
from ml.phantoms.cli import generate
from ml.training import TrainConfig
from ml.training.config import Device

Log = Callable[[str], None]
COMPONENTS = ("contours", "lesions", "ct")
#: The target mode whose model the table scores per output: the product's default (``ml.pipelines.lesions``).
TABLE_TARGET = "soft"
#: Epochs the readers model's confusion layers stay frozen at their start (``ReaderConfusion``).
LESION_CONFUSION_WARMUP_EPOCHS = 5


@dataclass(frozen=True)
class BenchSizes:
    """Phantom counts, epochs and CT crop geometry (timings of the defaults in ml/bench/RESULTS.md)."""

    mri_train: int = 300
    mri_test: int = 64
    ct_train: int = 80
    ct_test: int = 40
    readers: int = 4
    contour_scans: int = 16
    contour_epochs: int = 10
    lesion_epochs: int = 40
    seg_epochs: int = 6
    ct_epochs: int = 30
    ct_box_mm: float = 56.0
    ct_voxel_mm: float = 1.4  # 1.75 mm blurred grade 1's faint plate into grade 4's fusion
    workers: int = 2


QUICK = BenchSizes(
    mri_train=6,
    mri_test=4,
    ct_train=6,
    ct_test=4,
    readers=3,
    contour_scans=3,
    contour_epochs=2,
    lesion_epochs=2,
    seg_epochs=1,
    ct_epochs=2,
)


def _timed(log: Log, name: str, fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn()
    elapsed = time.perf_counter() - start
    log(f"[bench] {name}: {elapsed:.0f} s")
    return out, elapsed


def run_contours(
    train_dir: Path, test_dir: Path, out: Path, sizes: BenchSizes, device: Device = "cpu"
) -> dict[str, Any]:
    """Train ``ml.contours`` on truth polylines of the first ``contour_scans`` MRI phantoms; evaluate the
    full pipeline (locate, crop, trace) on every held-out slice with a truth polyline."""
    folders = sorted(p.parent for p in train_dir.glob("mri-*/truth.json"))[: sizes.contour_scans]
    scans = [phantom_scan(f) for f in folders]
    n_val = max(1, len(scans) // 6)
    model_config = ContourModelConfig(in_channels=1, width=16, crop_mm=96.0, pixel_mm=1.5)
    config = TrainConfig(
        epochs=sizes.contour_epochs,
        lr=2e-3,
        batch_size=16,
        metric="val_rmse_mm",
        mode="min",
        device=device,
        checkpoint_dir=str(out / "contours"),
    )
    train_contours(scans[:-n_val], scans[-n_val:], model_config, config, jitter_mm=8.0, copies=1)
    predictor = ContourPredictor.from_checkpoint(out / "contours", device=device)
    tests = [phantom_scan(p.parent) for p in sorted(test_dir.glob("mri-*/truth.json"))]
    result = evaluate_scans(predictor, tests)
    result.pop("rows", None)
    total = result["n"] + result["missing"]  # an untraced joint slice counts as a failure
    result["frac_below_all"] = result["frac_below"] * result["n"] / total if total else float("nan")
    return result


def run_lesions(
    train_dir: Path, test_dir: Path, out: Path, sizes: BenchSizes, device: Device = "cpu"
) -> dict[str, Any]:
    """Train the lesion classifier with each target mode; evaluate on the held-out phantoms' truth.

    When this run's folder holds a contour checkpoint (``out/contours``), crops follow its traced joint
    lines, in training and in the table, as in the product's pre-read (the lesion checkpoints bundle it);
    the table's model (``TABLE_TARGET``) is also scored at the truth lines (``truth_lines``). Without one,
    crops follow the truth lines throughout.
    """
    crop = CropConfig(n_slices=16)  # joint mode: 64 x 38.4 mm at 0.8 mm, lines smoothed (sigma 3 mm)
    contours = out / "contours" if (out / "contours" / "card.json").exists() else None
    n_val = round(0.15 * sizes.mri_train)
    steps_per_epoch = math.ceil(2 * (sizes.mri_train - n_val) / 16)
    model = LesionModelConfig(
        **JOINT_CROP_NET, confusion_warmup_steps=LESION_CONFUSION_WARMUP_EPOCHS * steps_per_epoch
    )
    results: dict[str, Any] = {"lines": "traced" if contours else "truth"}
    for mode in ("majority", "soft", "readers"):
        config = TrainConfig(
            epochs=sizes.lesion_epochs, lr=2e-3, weight_decay=1e-3, batch_size=16, device=device
        )
        lesion_train(
            train_dir,
            out / f"lesions-{mode}",
            target=mode,
            crop_config=crop,
            train_config=config,
            model_config=model,
            cache_dir=out / "lesion-crops",
            val_fraction=0.15,
            flip_sides=True,
            contours=contours,
        )
        results[mode] = lesion_evaluate(
            test_dir, out / f"lesions-{mode}", cache_dir=out / "lesion-crops-test", device=device
        )
    if contours is not None:
        results["truth_lines"] = lesion_evaluate(
            test_dir,
            out / f"lesions-{TABLE_TARGET}",
            cache_dir=out / "lesion-crops-test",
            device=device,
            bundled=False,
        )
    return results


def run_ct(
    train_dir: Path, test_dir: Path, out: Path, sizes: BenchSizes, device: Device = "cpu"
) -> dict[str, Any]:
    """Train segmenter + reduced-width DenseNet-121 grader; evaluate the full pipeline on held-out CT."""
    crop = CtCropConfig(box_mm=(sizes.ct_box_mm,) * 3, voxel_mm=sizes.ct_voxel_mm)
    ct_train(
        train_dir,
        out / "ct",
        grader_config=GraderConfig(init_features=16, growth_rate=8),
        crop_config=crop,
        train_config=TrainConfig(epochs=sizes.ct_epochs, lr=2e-3, batch_size=8, device=device),
        seg_train_config=TrainConfig(epochs=sizes.seg_epochs, lr=3e-3, batch_size=2, device=device),
        cache_dir=out / "ct-cache",
        val_fraction=0.1,
    )
    return ct_evaluate(test_dir, out / "ct", device=device)


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
) -> dict[str, Any]:
    """Generate, train, evaluate; returns every metric plus timings (also written to ``out/results.json``).

    ``only`` restricts the run to some of "contours", "lesions", "ct"; their results replace those of an
    earlier run in the same ``out`` folder (the others are kept from ``results.json``). ``threads`` sets
    torch's intra-op threads (1 runs several times faster than 2 when other jobs keep both cores busy);
    ``device`` where the three models train and predict ("cpu", the figures of RESULTS.md, or "cuda").
    ``difficulty`` the phantom preset of both phantom sets (:mod:`ml.phantoms.difficulty`; the figures of
    RESULTS.md before issue 18 are ``easy``).
    """
    torch.set_num_threads(threads)
    train_dir, test_dir = out / "phantoms-train", out / "phantoms-test"
    timings: dict[str, float] = {}

    def make(folder: Path, **kwargs: Any) -> None:
        manifest = folder / "manifest.json"
        wanted = {"mri": kwargs["n_mri"], "ct": kwargs["n_ct"], "seed": kwargs["seed"], "level": difficulty}
        if manifest.exists():  # reuse the phantoms of an earlier run with the same sizes, seed and difficulty
            old = json.loads(manifest.read_text())
            args = old["arguments"]
            level = args.get("difficulty", "easy")
            if {"mri": args["mri"], "ct": args["ct"], "seed": old["seed"], "level": level} == wanted:
                return
        generate(folder, workers=sizes.workers, level=difficulty, **kwargs)

    def make_both() -> None:
        make(
            train_dir,
            n_mri=sizes.mri_train,
            n_ct=sizes.ct_train,
            seed=seed_train,
            readers=sizes.readers,
            spammer=True,
        )
        make(test_dir, n_mri=sizes.mri_test, n_ct=sizes.ct_test, seed=seed_test)

    _, timings["generate"] = _timed(log, "generate phantoms", make_both)
    results: dict[str, Any] = {
        "sizes": dataclasses.asdict(sizes),
        "device": device,
        "seed_train": seed_train,
        "seed_test": seed_test,
        "difficulty": difficulty,
    }
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


def _ok(value: float, floor: float) -> str:
    return "ok" if np.isfinite(value) and value >= floor else "BELOW"


def format_table(results: dict[str, Any]) -> str:
    """The acceptance table of issue 6 as fixed-width text."""
    rows = [f"{'metric':<52} {'value':>7}  {'target':<8} status", "-" * 78]

    def row(name: str, value: float, target: str, status: str) -> None:
        rows.append(f"{name:<52} {value:>7.3f}  {target:<8} {status}")

    c = results.get("contours") or {"frac_below": math.nan, "p95": math.nan, "mean": math.nan}
    frac = c.get("frac_below_all", c["frac_below"])
    row("contours: fraction of joint slices < 2.76 mm", frac, ">= 0.95", _ok(frac, 0.95))
    row("contours: RMSE 95th percentile (mm)", c["p95"], "report", "")
    row(
        "contours: RMSE mean (mm)",
        c["mean"],
        "report",
        f"n={c.get('n', '?')} missing={c.get('missing', '?')}",
    )
    les = results.get("lesions") or {
        m: {
            "per_output": {n: {"auc": math.nan} for n in OUTPUT_NAMES},
            "mean_auc": math.nan,
            "min_auc": math.nan,
        }
        for m in ("majority", "soft", "readers")
    }
    lines = les.get("lines", "truth")
    for name in OUTPUT_NAMES:
        auc = les[TABLE_TARGET]["per_output"][name]["auc"]
        row(f"lesions ({TABLE_TARGET}, {lines}): AUC {name}", auc, ">= 0.90", _ok(auc, 0.90))
    for mode in ("majority", "soft", "readers"):
        row(
            f"lesions: mean AUC, target={mode}",
            les[mode]["mean_auc"],
            "report",
            f"min {les[mode]['min_auc']:.3f}",
        )
    if "truth_lines" in les:
        row(
            f"lesions ({TABLE_TARGET}) at truth lines: mean AUC",
            les["truth_lines"]["mean_auc"],
            "report",
            f"min {les['truth_lines']['min_auc']:.3f}",
        )
    beats = max(les["soft"]["mean_auc"], les["readers"]["mean_auc"]) > les["majority"]["mean_auc"]
    rows.append(
        f"{'lesions: reader-aware beats majority':<52} {beats!s:>7}  {'true':<8} {'ok' if beats else 'NO'}"
    )
    ct = results.get("ct") or {
        g: {"auc": [], "accuracy": math.nan, "qwk": math.nan}
        for g in ("mny5", "du_2026_three_class", "zhang_2023_three_class", "binary_definite")
    }
    row("CT: 5-class accuracy", ct["mny5"]["accuracy"], ">= 0.90", _ok(ct["mny5"]["accuracy"], 0.90))
    row("CT: QWK (5 classes)", ct["mny5"]["qwk"], ">= 0.91", _ok(ct["mny5"]["qwk"], 0.91))
    for grouping in ("mny5", "du_2026_three_class", "zhang_2023_three_class", "binary_definite"):
        aucs = ct[grouping]["auc"]
        for k, auc in enumerate(aucs):
            row(f"CT: AUC {grouping} class {k}", auc, ">= 0.94", _ok(auc, 0.94))
        row(f"CT: accuracy {grouping}", ct[grouping]["accuracy"], "report", "")
    row("CT: pelvis segmentation Dice (seg grid)", ct.get("seg_dice", math.nan), "report", "")
    t = results.get("timings_s", {})
    rows.append("-" * 78)
    rows.append("timings (s): " + ", ".join(f"{k} {v:.0f}" for k, v in t.items()))
    return "\n".join(rows)
