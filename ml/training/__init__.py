"""Shared training loop for Concord's models: seeding, checkpoints, metrics, DDP. Plain torch/numpy."""

from ml.training.checkpoint import code_version, copy_model, load_checkpoint, read_card, save_model
from ml.training.config import TrainConfig
from ml.training.loop import FitResult, Trainer, adamw_factory, fit, resolve_device
from ml.training.seeding import seed_everything

__all__ = [
    "FitResult",
    "TrainConfig",
    "Trainer",
    "adamw_factory",
    "code_version",
    "copy_model",
    "fit",
    "load_checkpoint",
    "read_card",
    "resolve_device",
    "save_model",
    "seed_everything",
]
