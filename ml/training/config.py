"""Training configuration shared by every model kind (contours, lesions, CT grader)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ml.config import load_config

Device = Literal["auto", "cpu", "cuda"]
Mode = Literal["max", "min"]


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters and switches of one training run.

    ``metric`` names a key of the validation metrics (``"val_loss"`` is present when there is validation
    data; without it, ``"val_loss"`` selects on ``"train_loss"``); ``mode`` says whether larger
    (``"max"``) or smaller (``"min"``) is better. ``patience`` counts epochs without improvement before
    early stopping (0 disables it). ``amp`` enables bf16 autocast, ``compile``
    ``torch.compile`` and ``channels_last`` the channels-last memory format (``channels_last_3d`` for a
    network with 3-D convolutions and for 5-D inputs); all three take effect only on CUDA, unless
    ``cuda_paths_on_cpu`` applies them on the CPU too (slow: it is how the CPU test suite runs the code a
    GPU worker runs; ``compile_backend="aot_eager"`` there traces and splits the graphs as Inductor would
    without generating its kernels). ``checkpoint_dir`` None keeps everything in memory.
    """

    epochs: int = 10
    lr: float = 1e-3
    weight_decay: float = 0.0
    batch_size: int = 8
    seed: int = 0
    patience: int = 0
    metric: str = "val_loss"
    mode: Mode = "min"
    device: Device = "auto"
    amp: bool = True
    compile: bool = False
    channels_last: bool = False
    cuda_paths_on_cpu: bool = False
    compile_backend: str = "inductor"
    deterministic: bool = False
    num_workers: int = 0
    grad_clip: float | None = None
    checkpoint_dir: str | None = None

    def __post_init__(self) -> None:
        if self.mode not in ("max", "min"):
            raise ValueError(f"mode must be 'max' or 'min', got {self.mode!r}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {self.device!r}")
        if self.epochs < 0 or self.batch_size < 1 or self.patience < 0:
            raise ValueError("epochs and patience must be >= 0 and batch_size >= 1")

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict of the fields."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Build a config from :meth:`to_dict` output; ConfigError (a ValueError) naming an unknown key."""
        return load_config(cls, data)

    @property
    def checkpoint_path(self) -> Path | None:
        """The checkpoint folder as a Path, or None."""
        return Path(self.checkpoint_dir) if self.checkpoint_dir else None
