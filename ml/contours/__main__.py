"""Command line: ``python -m ml.contours train|evaluate|predict|toy ...`` on a folder of npz scans.

    python -m ml.contours toy --out var/toy --scans 8            # write toy scans (smoke runs)
    python -m ml.contours train --data var/toy --out var/contours-ckpt --epochs 30
    python -m ml.contours evaluate --data var/toy --checkpoint var/contours-ckpt
    python -m ml.contours predict --data var/toy --checkpoint var/contours-ckpt --output traced.json

The folder format is described in :mod:`ml.contours.files`.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ml.contours.files import load_folder, save_npz_scan
from ml.contours.infer import ContourPredictor
from ml.contours.model import ContourModelConfig
from ml.contours.synthetic import toy_scan
from ml.contours.train import evaluate_scans, train_contours
from ml.training.cli import add_model_io, add_train_io, add_training_flags, emit, print_progress, train_config

NPZ_FOLDER = "a folder of npz scans (ml.contours.files)"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m ml.contours", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train on the truth polylines of a folder of scans")
    add_train_io(t, data_help=NPZ_FOLDER)
    add_training_flags(
        t,
        epochs=30,
        batch_size=16,
        val_fraction=0.2,
        patience=10,
        extra_flags=("channels-last", "deterministic"),
    )
    t.add_argument("--width", type=int, default=16)
    t.add_argument("--in-channels", type=int, default=1)
    t.add_argument("--crop-mm", type=float, default=96.0)
    t.add_argument("--pixel-mm", type=float, default=0.75)
    t.add_argument("--jitter-mm", type=float, default=8.0)
    t.add_argument("--band-pull", type=float, default=0.0, help="0 = SPEC band; 0.5 traced closer on toys")
    t.add_argument("--heatmap-loss", choices=["focal", "mse"], default="focal")
    t.add_argument("--copies", type=int, default=2, help="jittered crops per truth polyline")
    t.add_argument("--data-snapshot-id")
    t.add_argument("--consensus-run-id")
    for name, text in (("evaluate", "RMSE against the truth polylines"), ("predict", "trace every joint")):
        e = sub.add_parser(name, help=text)
        add_model_io(e, data_help=NPZ_FOLDER)
        e.add_argument("--truth-centres", action="store_true", help="crop at truth centres, not located")
    g = sub.add_parser("toy", help="write toy npz scans")
    g.add_argument("--out", required=True)
    g.add_argument("--scans", type=int, default=8)
    g.add_argument("--slices", type=int, default=4)
    g.add_argument("--length-mm", type=float, nargs=2, default=(40.0, 65.0), metavar=("LOW", "HIGH"))
    return p


def _train(args: argparse.Namespace) -> dict[str, Any]:
    scans = load_folder(args.data)
    n_val = min(len(scans) - 1, math.ceil(args.val_fraction * len(scans))) if len(scans) > 1 else 0
    train, val = scans[: len(scans) - n_val], scans[len(scans) - n_val :]
    model_config = ContourModelConfig(
        in_channels=args.in_channels,
        width=args.width,
        crop_mm=args.crop_mm,
        pixel_mm=args.pixel_mm,
        band_pull=args.band_pull,
        heatmap_loss=args.heatmap_loss,
    )
    metric = "val_rmse_mm" if val else "train_loss"
    config = train_config(args, metric=metric, mode="min", checkpoint_dir=args.out)

    result = train_contours(
        train,
        val,
        model_config,
        config,
        jitter_mm=args.jitter_mm,
        copies=args.copies,
        resume=args.resume,
        progress=print_progress,
        data_snapshot_id=args.data_snapshot_id,
        consensus_run_id=args.consensus_run_id,
    )
    return {
        "checkpoint": args.out,
        "stopped": result.stopped,
        "epochs": result.epochs_completed,
        "best_metric": result.best_metric,
        "best_epoch": result.best_epoch,
        "train_scans": [s.scan_id for s in train],
        "val_scans": [s.scan_id for s in val],
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; prints a JSON result (to ``--output`` when given). Returns the exit status."""
    args = _parser().parse_args(argv)
    if args.command == "toy":
        paths = [
            str(
                save_npz_scan(
                    Path(args.out) / f"toy-{i:03d}.npz",
                    toy_scan(i, n_slices=args.slices, length_mm=tuple(args.length_mm)),
                )
            )
            for i in range(args.scans)
        ]
        result: Any = {"written": paths}
    elif args.command == "train":
        result = _train(args)
    else:
        predictor = ContourPredictor.from_checkpoint(args.checkpoint, device=args.device)
        scans = load_folder(args.data)
        if args.command == "evaluate":
            result = evaluate_scans(predictor, scans, use_truth_centres=args.truth_centres)
        else:
            result = []
            for scan in scans:
                centres = None
                if args.truth_centres:
                    centres = {k: (v.min(0) + v.max(0)) / 2.0 for k, v in scan.polylines.items()}
                result += [c.to_json() for c in predictor.predict_scan(scan, centres=centres)]
    return emit(result, args)


if __name__ == "__main__":
    raise SystemExit(main())
