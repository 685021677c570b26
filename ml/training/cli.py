"""What the three model command lines share (``python -m ml.contours|lesions|ctgrade``): the data and checkpoint
flags, the training flags and their :class:`TrainConfig`, ``--device`` and ``--output``, per-epoch progress on
stderr, the JSON result."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ml.training.config import TrainConfig

DEVICES = ("auto", "cpu", "cuda")


def add_device(parser: argparse.ArgumentParser) -> None:
    """``--device auto|cpu|cuda`` (auto: CUDA when there is one)."""
    parser.add_argument("--device", choices=DEVICES, default="auto")


def add_output(parser: argparse.ArgumentParser) -> None:
    """``--output FILE`` for the JSON result (default: stdout)."""
    parser.add_argument("--output", help="JSON file (default: stdout)")


DATA_HELP = "a phantom folder or a dataset snapshot"


def add_train_io(
    parser: argparse.ArgumentParser, *, data_help: str = DATA_HELP, out_help: str = "checkpoint folder"
) -> None:
    """``--data FOLDER`` and ``--out FOLDER`` of a ``train`` command."""
    parser.add_argument("--data", required=True, help=data_help)
    parser.add_argument("--out", required=True, help=out_help)


def add_model_io(
    parser: argparse.ArgumentParser, *, studies: bool = False, split: bool = False, data_help: str = DATA_HELP
) -> None:
    """The flags of a command that runs a trained model: what it reads (``--data FOLDER``, or ``--study
    FOLDER ...`` with ``studies``), ``--checkpoint``, ``--split`` of a snapshot when asked, ``--device`` and
    ``--output``."""
    if studies:
        parser.add_argument("--study", required=True, nargs="+", help="study folders")
    else:
        parser.add_argument("--data", required=True, help=data_help)
    parser.add_argument("--checkpoint", required=True)
    if split:
        parser.add_argument("--split", help="only studies of this manifest split")
    add_device(parser)
    add_output(parser)


def add_training_flags(
    parser: argparse.ArgumentParser,
    *,
    epochs: int,
    batch_size: int,
    val_fraction: float,
    lr: float = 2e-3,
    patience: int | None = None,
    extra_flags: tuple[str, ...] = (),
) -> None:
    """The flags every ``train`` command has (``--val-fraction --epochs --lr --batch-size --seed --device
    --no-amp --compile --resume``), ``--patience`` when given a default, and the boolean ``extra_flags`` of
    :class:`TrainConfig` a model supports (``"channels-last"``, ``"deterministic"``)."""
    parser.add_argument("--val-fraction", type=float, default=val_fraction)
    parser.add_argument("--epochs", type=int, default=epochs)
    parser.add_argument("--lr", type=float, default=lr)
    parser.add_argument("--batch-size", type=int, default=batch_size)
    if patience is not None:
        parser.add_argument("--patience", type=int, default=patience)
    parser.add_argument("--seed", type=int, default=0)
    add_device(parser)
    parser.add_argument("--no-amp", action="store_true", help="no bf16 autocast on CUDA")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model")
    for flag in extra_flags:
        parser.add_argument(f"--{flag}", action="store_true")
    parser.add_argument(
        "--resume", action="store_true", help="continue from the checkpoint folder's last epoch"
    )


def train_config(args: argparse.Namespace, **fields: Any) -> TrainConfig:
    """The :class:`TrainConfig` of parsed training flags; ``fields`` set the rest (metric, weight decay, ...)."""
    optional = {
        k: getattr(args, k) for k in ("patience", "channels_last", "deterministic") if hasattr(args, k)
    }
    return TrainConfig(
        epochs=args.epochs,
        lr=args.lr,
        batch_size=args.batch_size,
        seed=args.seed,
        device=args.device,
        amp=not args.no_amp,
        compile=args.compile,
        **(optional | fields),
    )


def print_progress(epoch: int, step: int, loss: float, metrics: Any) -> None:
    """Training progress callback: one JSON line per finished epoch on stderr."""
    if step == -1:
        shown = {k: round(v, 4) for k, v in metrics.items()}
        print(json.dumps({"epoch": epoch, **shown}), file=sys.stderr, flush=True)


def emit(result: Any, args: argparse.Namespace) -> int:
    """Write ``result`` as JSON to ``--output`` when the command has and got one, else to stdout; exit status 0."""
    text = json.dumps(result, indent=2, default=float)
    if getattr(args, "output", None):
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        print(text)
    return 0
