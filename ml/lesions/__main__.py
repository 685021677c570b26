"""Command line: ``python -m ml.lesions train|evaluate|predict ...``.

    # var/ph: phantoms + simulated readers from the phantom generator's CLI (--mri 40 --seed 1 --readers 4)
    python -m ml.lesions train --data var/ph --out var/lesions --target readers --epochs 25 [--contours CKPT]
    python -m ml.lesions evaluate --data var/ph-test --checkpoint var/lesions
    python -m ml.lesions predict --study var/ph-test/mri-0000 --checkpoint var/lesions [--contours CKPT]

``--data`` is a phantom folder or a dataset snapshot (format in :mod:`ml.data.snapshot`).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ml.contours.infer import ContourPredictor
from ml.lesions.crops import CROP_MODES, CropConfig
from ml.lesions.infer import LesionPredictor
from ml.lesions.labels import TARGET_MODES
from ml.lesions.model import HEADS, JOINT_CROP_NET, LesionModelConfig
from ml.lesions.train import evaluate, train
from ml.training.cli import add_model_io, add_train_io, add_training_flags, emit, print_progress, train_config


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(v) for v in text.split(","))


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m ml.lesions", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train on a phantom folder or dataset snapshot")
    add_train_io(t)
    t.add_argument("--target", choices=TARGET_MODES, default="soft")
    t.add_argument("--cache", help="crop cache folder (default <out>/crops)")
    add_training_flags(
        t, epochs=25, batch_size=16, val_fraction=0.15, patience=0, extra_flags=("deterministic",)
    )
    t.add_argument("--weight-decay", type=float, default=1e-4)
    t.add_argument(
        "--crop-mode", choices=CROP_MODES, default="joint", help="straightened joint or square box"
    )
    t.add_argument("--crop-mm", type=float, default=64.0, help="extent along the joint (joint) or of the box")
    t.add_argument("--size-px", type=int, default=80)
    t.add_argument("--width-mm", type=float, default=38.4, help="extent across the joint (joint mode)")
    t.add_argument("--width-px", type=int, default=48)
    t.add_argument("--n-slices", type=int, default=16)
    t.add_argument("--smooth-mm", type=float, default=3.0, help="joint line smoothing sigma (joint mode)")
    t.add_argument("--flip-sides", action="store_true", help="also mirror iliac <-> sacral (joint mode)")
    t.add_argument(
        "--contours", help="contour checkpoint: crops along its traced lines (bundled with the model)"
    )
    t.add_argument("--channels", type=_ints, default=JOINT_CROP_NET["channels"])
    t.add_argument("--strides", type=_ints, default=JOINT_CROP_NET["strides"])
    t.add_argument("--head", choices=HEADS, default="quadrant", help="quadrant (joint crops) or flatten")
    t.add_argument("--dropout", type=float, default=JOINT_CROP_NET["dropout"])
    t.add_argument(
        "--no-joint-map", action="store_true", help="quadrant head: joint outputs from pooling only"
    )
    t.add_argument(
        "--confusion-warmup-steps", type=int, default=0, help="readers target: frozen confusion steps"
    )
    t.add_argument("--trace-weight", type=float, default=0.01)
    e = sub.add_parser("evaluate", help="metrics against the reference labels (phantom truth / gold)")
    add_model_io(e, split=True)
    e.add_argument("--cache")
    e.add_argument(
        "--contours", help="contour checkpoint: crops at its traced lines (default: the bundled one)"
    )
    e.add_argument(
        "--truth-lines", action="store_true", help="crops at the truth lines, not the bundled traces"
    )
    r = sub.add_parser("predict", help="score both joints of study folders (T1/ + STIR/)")
    add_model_io(r, studies=True)
    r.add_argument("--contours", help="contour checkpoint: joint lines (default: the bundled one)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; prints a JSON result (to ``--output`` when given). Returns the exit status."""
    args = _parser().parse_args(argv)
    result: Any
    if args.command == "train":
        config = train_config(args, weight_decay=args.weight_decay)
        result = train(
            args.data,
            args.out,
            target=args.target,
            train_config=config,
            cache_dir=args.cache,
            crop_config=CropConfig(
                mode=args.crop_mode,
                crop_mm=args.crop_mm,
                size_px=args.size_px,
                width_mm=args.width_mm,
                width_px=args.width_px,
                n_slices=args.n_slices,
                smooth_mm=args.smooth_mm,
            ),
            val_fraction=args.val_fraction,
            flip_sides=args.flip_sides,
            contours=args.contours,
            model_config=LesionModelConfig(
                channels=args.channels,
                strides=args.strides,
                head=args.head,
                dropout=args.dropout,
                trace_weight=args.trace_weight,
                joint_map=args.head == "quadrant" and not args.no_joint_map,
                confusion_warmup_steps=args.confusion_warmup_steps,
            ),
            progress=print_progress,
            resume=args.resume,
        )
    elif args.command == "evaluate":
        contours = (
            ContourPredictor.from_checkpoint(args.contours, device=args.device) if args.contours else None
        )
        result = evaluate(
            args.data,
            args.checkpoint,
            cache_dir=args.cache,
            split=args.split,
            device=args.device,
            contours=contours,
            bundled=not args.truth_lines,
        )
    else:
        predictor = LesionPredictor.from_checkpoint(args.checkpoint, device=args.device)
        contours = (
            ContourPredictor.from_checkpoint(args.contours, device=args.device) if args.contours else None
        )
        result = {Path(s).name: predictor.predict_study(s, contours=contours) for s in args.study}
    return emit(result, args)


if __name__ == "__main__":
    raise SystemExit(main())
