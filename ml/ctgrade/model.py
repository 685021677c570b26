"""CT networks (SPEC §7.3): pelvis segmentation U-Net and the per-joint 3-D DenseNet-121 mNY grader.

* :func:`build_grader` is ``monai.networks.nets.DenseNet121(spatial_dims=3, in_channels=1,
  out_channels=5)``; ``init_features``/``growth_rate`` default to MONAI's 64/32 (GPU) and are reduced on
  CPU (e.g. 16/8), block_config stays (6, 12, 24, 16) - the "121".
* :func:`build_segmenter` is a small ``monai.networks.nets.UNet`` with 3 classes (background, sacrum,
  ilium) on the coarse segmentation grid.
* Groupings (SPEC §2.4) are data: :data:`GROUPINGS` from ``ml.vocab`` (the ``ct_sij`` scheme); a grouped probability is
  the sum of the 5-class probabilities of its grades (:func:`grouped_probabilities`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from monai.networks.nets.densenet import DenseNet121
from monai.networks.nets.unet import UNet
from numpy.typing import ArrayLike, NDArray
from torch import nn

from ml.config import load_config
from ml.vocab import GROUPINGS

N_GRADES = 5
SEG_CLASSES = 3  # background, sacrum, ilium


@dataclass(frozen=True)
class GraderConfig:
    """Network settings stored in the card (``extra.grader_config`` / ``extra.seg_config``)."""

    init_features: int = 64
    growth_rate: int = 32
    dropout: float = 0.0
    seg_channels: tuple[int, ...] = (8, 16, 32, 64)
    seg_strides: tuple[int, ...] = (2, 2, 2)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GraderConfig:
        """Inverse of :meth:`to_dict`; ConfigError (a ValueError) naming a key it does not have."""
        return load_config(cls, data)


def build_grader(config: GraderConfig) -> nn.Module:
    """DenseNet-121 (3-D, 1 channel in, 5 logits out): (B, 1, z, y, x) -> (B, 5)."""
    net: nn.Module = DenseNet121(
        spatial_dims=3,
        in_channels=1,
        out_channels=N_GRADES,
        init_features=config.init_features,
        growth_rate=config.growth_rate,
        dropout_prob=config.dropout,
    )
    return net


def build_segmenter(config: GraderConfig) -> nn.Module:
    """Small 3-D U-Net: (B, 1, *seg_shape) -> (B, 3, *seg_shape) logits."""
    net: nn.Module = UNet(
        spatial_dims=3,
        in_channels=1,
        out_channels=SEG_CLASSES,
        channels=config.seg_channels,
        strides=config.seg_strides,
        num_res_units=1,
    )
    return net


def grouping_matrix(grouping: str) -> NDArray[np.float64]:
    """(5, G) 0/1 matrix mapping grades to the classes of one grouping, classes in scheme order."""
    classes = GROUPINGS[grouping]
    out = np.zeros((N_GRADES, len(classes)))
    for g, grades in enumerate(classes.values()):
        out[list(grades), g] = 1.0
    return out


def grouped_probabilities(probs: ArrayLike, grouping: str) -> NDArray[np.float64]:
    """5-class probabilities (N, 5) -> grouped probabilities (N, G): sums over each class's grades."""
    return np.asarray(probs, dtype=np.float64) @ grouping_matrix(grouping)


def grouped_labels(grades: ArrayLike, grouping: str) -> NDArray[np.int64]:
    """Grades (N,) 0-4 -> class indices (N,) of one grouping."""
    return np.asarray(np.argmax(grouping_matrix(grouping)[np.asarray(grades, dtype=np.int64)], axis=1))


def soft_cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of logits (B, K) against target distributions (B, K) (rows sum to 1)."""
    return -(target.float() * torch.log_softmax(logits.float(), dim=1)).sum(1).mean()
