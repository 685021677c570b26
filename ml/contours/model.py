"""Contour network and loss (SPEC §7.1): MONAI BasicUNet -> 2 field channels + 2 heatmap channels."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from monai.networks.nets.basic_unet import BasicUNet, UpCat
from torch import nn

from ml.config import load_config

FIELD_CHANNELS = 2
HEATMAP_CHANNELS = 2  # start (superior), end (inferior)


@dataclass(frozen=True)
class ContourModelConfig:
    """Network and crop settings, stored in the model card so inference rebuilds the same pipeline.

    A joint crop is ``crop_mm`` wide and high, resampled to ``pixel_mm`` per pixel (``crop_px`` pixels,
    a multiple of 16 and at least 32 for the U-Net's four poolings). ``width`` sets the U-Net features
    (w, w, 2w, 4w, 8w, w). ``band_px`` and ``sigma_px`` shape the targets (SPEC: w = 2 px).
    """

    in_channels: int = 1
    width: int = 16
    spatial_dims: int = 2
    crop_mm: float = 96.0
    pixel_mm: float = 0.75
    band_px: float = 2.0
    sigma_px: float = 2.0
    dropout: float = 0.0
    band_pull: float = 0.0  # 0 = SPEC §7.1 band (pure tangent); see field.field_targets
    heatmap_loss: str = "focal"  # "focal" (sigmoid heatmaps, CenterNet focal loss) or "mse" (linear)

    def __post_init__(self) -> None:
        if self.heatmap_loss not in ("focal", "mse"):
            raise ValueError(f"heatmap_loss must be 'focal' or 'mse', got {self.heatmap_loss!r}")
        if self.crop_px % 16 or self.crop_px < 32:
            # four poolings, and instance norm needs more than one element at the bottom
            raise ValueError(f"crop_mm / pixel_mm = {self.crop_px} px must be a multiple of 16, >= 32")

    @property
    def crop_px(self) -> int:
        """Side of the square crop in pixels."""
        return round(self.crop_mm / self.pixel_mm)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable fields."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ContourModelConfig:
        """Inverse of :meth:`to_dict`; ConfigError (a ValueError) naming a key it does not have."""
        return load_config(cls, data)


class ContourNet(nn.Module):
    """(B, C_in, H, W) joint crops -> (B, 4, H, W): field (vx, vy), start heatmap, end heatmap.

    The field is raw (normalise with :func:`unit_field`); heatmap channels are logits for the focal
    loss or linear values for MSE (:func:`heatmaps` turns either into [0, 1]-ish maps).
    ``spatial_dims`` 3 gives the same network on (B, C_in, D, H, W) with 3-D output.
    """

    def __init__(self, config: ContourModelConfig | None = None) -> None:
        super().__init__()
        self.config = config or ContourModelConfig()
        w = self.config.width
        self.net = BasicUNet(
            spatial_dims=self.config.spatial_dims,
            in_channels=self.config.in_channels,
            out_channels=FIELD_CHANNELS + HEATMAP_CHANNELS,
            features=(w, w, 2 * w, 4 * w, 8 * w, w),
            dropout=self.config.dropout,
        )
        # Crops are a multiple of 16 px (the config checks), so the decoder's skip connections always
        # match and MONAI's "replicate" padding of them is zero-width; it is switched off because
        # Inductor's channels-last backward of that pad is wrong in torch 2.13 (assert_size_stride on
        # replication_pad2d_backward): a compiled channels-last contour model could not train.
        for block in self.net.modules():
            if isinstance(block, UpCat):
                block.is_pad = False
        if self.config.heatmap_loss == "focal":
            with torch.no_grad():  # start heatmaps at p = 0.1, as CenterNet does
                self.net.final_conv.bias[FIELD_CHANNELS:].fill_(-2.19)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the raw 4-channel output with the input's spatial shape."""
        out: torch.Tensor = self.net(x)
        return out


def field_norm(raw: torch.Tensor) -> torch.Tensor:
    """The length of the field vector (first two channels) of a network output, (B, 1, ...). Written out:
    torch's vector norm over a dimension of two took ~10 ms a call on the CPU."""
    return (raw[:, 0:1].float() ** 2 + raw[:, 1:2].float() ** 2).sqrt()


def unit_field(raw: torch.Tensor, eps: float = 1e-6, norm: torch.Tensor | None = None) -> torch.Tensor:
    """Normalise the first two channels of a network output (B, >=2, ...) to unit length: (B, 2, ...).
    ``norm``: their :func:`field_norm`, when the caller has it already (inference)."""
    if norm is None:
        return F.normalize(raw[:, :FIELD_CHANNELS].float(), dim=1, eps=eps)
    return raw[:, :FIELD_CHANNELS].float() / norm.clamp_min(eps)


def heatmaps(raw: torch.Tensor, heatmap_loss: str = "focal") -> torch.Tensor:
    """Start/end heatmaps (B, 2, ...) from a network output: sigmoid for "focal", as is for "mse"."""
    maps = raw[:, FIELD_CHANNELS : FIELD_CHANNELS + HEATMAP_CHANNELS].float()
    return torch.sigmoid(maps) if heatmap_loss == "focal" else maps


def focal_heatmap_loss(
    logits: torch.Tensor, target: torch.Tensor, alpha: float = 2.0, beta: float = 4.0
) -> torch.Tensor:
    """Penalty-reduced pixel focal loss of CenterNet (Zhou et al. 2019, arXiv 1904.07850).

    ``logits`` and Gaussian ``target`` (B, K, H, W); the peak pixel of each target map is the positive,
    others are negatives down-weighted by (1 - target)^beta. Normalised by the number of peaks.
    """
    p = torch.sigmoid(logits).clamp(1e-4, 1 - 1e-4)
    peak = target.flatten(2).amax(-1)[..., None, None]
    pos = (target >= peak - 1e-6) & (peak > 0)
    pos_loss = -(torch.log(p) * (1 - p) ** alpha)[pos].sum()
    neg_loss = -(torch.log(1 - p) * p**alpha * (1 - target) ** beta)[~pos].sum()
    n_peaks = (peak > 0).sum().clamp_min(1)
    return (pos_loss + neg_loss) / n_peaks


class ContourLoss(nn.Module):
    """Weighted cosine (+ small L2) loss on the field plus a focal or MSE loss on the heatmaps.

    ``targets`` holds ``field`` (B, 2, H, W) unit vectors, ``heatmap`` (B, 2, H, W) in [0, 1] and
    ``weight`` (B, H, W) >= 0 (0 = unsupervised pixel). ``heatmap_loss`` "focal" uses
    :func:`focal_heatmap_loss` on logits; "mse" a squared error whose pixels get weight
    1 + ``heat_pos_weight`` * target so the few peak pixels are not drowned by the background.
    """

    def __init__(
        self,
        field_weight: float = 1.0,
        heatmap_weight: float = 1.0,
        l2_weight: float = 0.1,
        heat_pos_weight: float = 20.0,
        heatmap_loss: str = "focal",
    ) -> None:
        super().__init__()
        self.field_weight, self.heatmap_weight = field_weight, heatmap_weight
        self.l2_weight, self.heat_pos_weight = l2_weight, heat_pos_weight
        self.heatmap_loss = heatmap_loss

    def forward(self, outputs: torch.Tensor, targets: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Return the scalar loss."""
        outputs = outputs.float()
        raw = outputs[:, :FIELD_CHANNELS]
        target = targets["field"].float()
        weight = targets["weight"].float()
        cosine = 1.0 - (unit_field(raw) * target).sum(1)
        l2 = ((raw - target) ** 2).sum(1)
        field_loss = ((cosine + self.l2_weight * l2) * weight).sum() / weight.sum().clamp_min(1.0)
        heat = targets["heatmap"].float()
        pred = outputs[:, FIELD_CHANNELS : FIELD_CHANNELS + HEATMAP_CHANNELS]
        if self.heatmap_loss == "focal":
            heat_loss = 0.1 * focal_heatmap_loss(pred, heat)
        else:
            heat_loss = ((1.0 + self.heat_pos_weight * heat) * (pred - heat) ** 2).mean()
        return self.field_weight * field_loss + self.heatmap_weight * heat_loss
