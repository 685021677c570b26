"""Command line: ``python -m ml.ctgrade train|evaluate|predict ...``.

    # var/ph: phantoms from the phantom generator's CLI (--ct 40 --out var/ph --seed 1 --readers 3)
    python -m ml.ctgrade train --data var/ph --out var/ctgrade --epochs 20 --init-features 16 --growth-rate 8
    python -m ml.ctgrade evaluate --data var/ph-test --checkpoint var/ctgrade
    python -m ml.ctgrade predict --study var/ph-test/ct-0000 --checkpoint var/ctgrade

``--data`` is a phantom folder or a dataset snapshot (format in :mod:`ml.data.snapshot`).
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ml.ctgrade.data import CtCropConfig
from ml.ctgrade.infer import CtPredictor
from ml.ctgrade.model import GraderConfig
from ml.ctgrade.train import evaluate, train
from ml.training.cli import add_model_io, add_train_io, add_training_flags, emit, print_progress, train_config


def _floats(text: str) -> tuple[float, ...]:
    return tuple(float(v) for v in text.split(","))


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m ml.ctgrade", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train segmenter + grader on a phantom folder or dataset snapshot")
    add_train_io(t, out_help="checkpoint folder (seg/ and grader/ inside)")
    t.add_argument("--target", choices=["auto", "reference", "soft", "majority"], default="auto")
    t.add_argument("--cache")
    add_training_flags(t, epochs=20, batch_size=8, val_fraction=0.1)
    t.add_argument("--seg-epochs", type=int, default=4)
    t.add_argument("--init-features", type=int, default=64, help="64 = MONAI default (GPU); 16 on CPU")
    t.add_argument("--growth-rate", type=int, default=32, help="32 = MONAI default (GPU); 8 on CPU")
    t.add_argument("--box-mm", type=_floats, default=(56.0, 56.0, 56.0), help="crop z,y,x in mm")
    t.add_argument("--voxel-mm", type=float, default=1.75)
    e = sub.add_parser("evaluate", help="grading metrics against the reference grades (full pipeline)")
    add_model_io(e, split=True)
    e.add_argument(
        "--truth-seg", action="store_true", help="centre crops on the study's SEG, not the model's"
    )
    add_model_io(sub.add_parser("predict", help="grade both joints of study folders (CT/)"), studies=True)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; prints a JSON result (to ``--output`` when given). Returns the exit status."""
    args = _parser().parse_args(argv)
    result: Any
    if args.command == "train":
        config = train_config(args)
        result = train(
            args.data,
            args.out,
            target=args.target,
            cache_dir=args.cache,
            val_fraction=args.val_fraction,
            grader_config=GraderConfig(init_features=args.init_features, growth_rate=args.growth_rate),
            crop_config=CtCropConfig(box_mm=args.box_mm, voxel_mm=args.voxel_mm),
            train_config=config,
            seg_train_config=dataclasses.replace(config, epochs=args.seg_epochs, batch_size=2),
            progress=print_progress,
            resume=args.resume,
        )
    elif args.command == "evaluate":
        result = evaluate(
            args.data, args.checkpoint, split=args.split, device=args.device, use_truth_seg=args.truth_seg
        )
    else:
        predictor = CtPredictor.from_checkpoint(args.checkpoint, device=args.device)
        result = {Path(s).name: predictor.predict_study(s) for s in args.study}
    return emit(result, args)


if __name__ == "__main__":
    raise SystemExit(main())
