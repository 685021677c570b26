"""Lesion network, per-reader confusion layers and the three losses (SPEC §7.2, §4.7).

:class:`LesionNet` applies a MONAI ``Regressor`` (residual conv stack, flatten, linear) to every slice of a
joint crop (B, C=2, S, H, W) and pools the per-slice logits (B, S, 14) over slices with log-sum-exp (a
smooth "any slice" — the truth is "present on any slice", SPEC §6.7). Flattening keeps where in the crop a
finding lies, which is what separates the quadrants.

:class:`ReaderConfusion` is the consensus -> reader -> session form of paper (a) Fig. 9 with Tanno et al.
(CVPR 2019): P(reader r in session s says l | truth j) = (A_r B_rs)_jl, one 2x2 row-stochastic matrix per
reader and lesion type (A) and per reader, session and lesion type (B), each a row softmax of free logits
initialised near identity. Loss = masked binary NLL of every observed reading + lambda * mean trace.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from monai.networks.blocks import ResidualUnit
from monai.networks.nets.regressor import Regressor
from torch import nn

from ml.config import load_config
from ml.lesions.labels import (
    JOINT_LESION_ORDER,
    LESION_TYPES,
    OUTPUT_LESION,
    OUTPUTS,
    QUADRANT_LESION_ORDER,
)
from ml.vocab import QUADRANTS

HEADS = ("flatten", "quadrant")
#: The network trained on joint-mode crops by ``python -m ml.bench`` and the product's lesion pipeline:
#: MONAI ResidualUnits 8-64 (the last unit keeps its resolution) with the quadrant head.
JOINT_CROP_NET: dict[str, Any] = {
    "channels": (8, 16, 32, 64),
    "strides": (2, 2, 2, 1),
    "dropout": 0.3,
    "head": "quadrant",
    "joint_map": True,
}


@dataclass(frozen=True)
class LesionModelConfig:
    """Network settings (card ``extra.model_config``). ``size_px``/``width_px``/``n_slices`` must match the
    crops (``width_px`` 0 = square crops of ``size_px``)."""

    in_channels: int = 2
    size_px: int = 48
    n_slices: int = 16
    width_px: int = 0
    channels: tuple[int, ...] = (16, 32, 64, 128)
    strides: tuple[int, ...] = (2, 2, 2, 2)
    num_res_units: int = 1
    dropout: float = 0.1
    head: str = "flatten"
    joint_map: bool = False
    target: str = "soft"
    n_readers: int = 0
    n_sessions: int = 0
    trace_weight: float = 0.01
    confusion_warmup_steps: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LesionModelConfig:
        """Inverse of :meth:`to_dict`; ConfigError (a ValueError) naming a key it does not have."""
        return load_config(cls, data)


class QuadrantSliceNet(nn.Module):
    """Per-slice network of the ``quadrant`` head, for joint-mode crops (quadrant = fixed crop block).

    A stack of MONAI ``ResidualUnit``s maps a slice (C, H, W) to features (F, h, w); each quadrant's block
    of the map (upper/lower half of the rows x sacral/iliac half of the columns, ``ml.lesions.crops``) is
    max-pooled, so a small finding anywhere in its quadrant counts, and one linear layer shared by the four
    quadrants (plus a bias per output) gives the bme/erosion/fat logits: every quadrant learns from the
    others' lesions. Sclerosis and ankylosis come from the max- and mean-pooled whole map, plus with
    ``joint_map`` a linear layer over the whole (flattened) map, which knows where along the joint line a
    feature lies.
    """

    def __init__(self, config: LesionModelConfig) -> None:
        super().__init__()
        layers, cin = [], config.in_channels
        for cout, stride in zip(config.channels, config.strides, strict=True):
            layers.append(ResidualUnit(2, cin, cout, strides=stride, subunits=max(config.num_res_units, 1)))
            cin = cout
        self.features = nn.Sequential(*layers)
        self.drop = nn.Dropout(config.dropout)
        self.quadrant = nn.Linear(cin, len(QUADRANT_LESION_ORDER))
        self.quadrant_bias = nn.Parameter(torch.zeros(len(QUADRANT_LESION_ORDER), len(QUADRANTS)))
        self.joint = nn.Linear(2 * cin, len(JOINT_LESION_ORDER))
        # Position-aware joint outputs from the whole map: ankylosis is marrow where the joint line should be,
        # which only the line's continuation above and below (not any one receptive field) tells from marrow.
        size = (config.size_px, config.width_px or config.size_px)
        with torch.no_grad():
            n_map = self.features(torch.zeros(1, config.in_channels, *size)).numel()
        self.joint_map = nn.Linear(n_map, len(JOINT_LESION_ORDER)) if config.joint_map else None
        # OUTPUTS order of quadrants: cell (row half, column half) of the 2 x 2 max-pooled map.
        self.cells = [(0 if q.endswith("upper") else 1, 1 if q.startswith("iliac") else 0) for q in QUADRANTS]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> (N, 14) logits in ``OUTPUTS`` order."""
        f = self.features(x)
        cells = F.adaptive_max_pool2d(f, (2, 2))  # (N, F, 2, 2): rows upper/lower, columns sacral/iliac
        per_q = torch.stack([cells[:, :, r, c] for r, c in self.cells], dim=1)  # (N, 4, F)
        quadrant = self.quadrant(self.drop(per_q)).transpose(1, 2) + self.quadrant_bias  # (N, 3, 4)
        pooled = torch.cat([f.amax(dim=(2, 3)), f.mean(dim=(2, 3))], dim=1)
        joint = self.joint(self.drop(pooled))
        if self.joint_map is not None:
            joint = joint + self.joint_map(self.drop(f.flatten(1)))
        return torch.cat([quadrant.flatten(1), joint], dim=1)


class LesionNet(nn.Module):
    """(B, C, S, H, W) joint crops -> (B, 14) logits (order: ``ml.lesions.labels.OUTPUTS``).

    ``head="flatten"``: a MONAI ``Regressor`` per slice; ``"quadrant"``: :class:`QuadrantSliceNet`.
    """

    def __init__(self, config: LesionModelConfig) -> None:
        super().__init__()
        self.config = config
        if config.head == "quadrant":
            self.slice_net: nn.Module = QuadrantSliceNet(config)
            return
        self.slice_net = Regressor(
            in_shape=(config.in_channels, config.size_px, config.width_px or config.size_px),
            out_shape=(len(OUTPUTS),),
            channels=config.channels,
            strides=config.strides,
            num_res_units=config.num_res_units,
            dropout=config.dropout,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Per-slice logits pooled by log-sum-exp over slices (minus log S, so one slice ~ its own logit)."""
        b, c, s, h, w = x.shape
        per_slice = self.slice_net(x.transpose(1, 2).reshape(b * s, c, h, w)).reshape(b, s, -1)
        return torch.logsumexp(per_slice, dim=1) - math.log(s)


class ReaderConfusion(nn.Module):
    """Consensus -> reader -> session confusion layers for binary outputs, per lesion type."""

    def __init__(
        self,
        n_readers: int,
        n_sessions: int,
        *,
        reader_init: float = 3.0,
        session_init: float = 5.0,
        warmup_steps: int = 0,
    ):
        super().__init__()
        self.warmup_steps = warmup_steps
        self.register_buffer("steps", torch.zeros((), dtype=torch.long), persistent=False)
        n_types = len(LESION_TYPES)
        eye = torch.eye(2)
        self.reader_logits = nn.Parameter(eye.repeat(n_readers, n_types, 1, 1) * reader_init)
        self.session_logits = nn.Parameter(eye.repeat(n_readers, n_sessions, n_types, 1, 1) * session_init)
        self.register_buffer("output_lesion", torch.as_tensor(OUTPUT_LESION), persistent=False)

    def matrices(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Row-stochastic reader (R, T, 2, 2), session (R, S, T, 2, 2) and composed (R, S, T, 2, 2) matrices."""
        reader = torch.softmax(self.reader_logits, dim=-1)
        session = torch.softmax(self.session_logits, dim=-1)
        return reader, session, reader[:, None] @ session

    def trace(self) -> torch.Tensor:
        """Mean trace of all reader and session matrices (Tanno et al.'s regulariser, per matrix)."""
        reader, session, _ = self.matrices()
        diag_r = reader.diagonal(dim1=-2, dim2=-1).sum(-1)
        diag_s = session.diagonal(dim1=-2, dim2=-1).sum(-1)
        trace = diag_r.mean() + diag_s.mean()
        return (
            trace.detach() if self.training and int(self.get_buffer("steps")) <= self.warmup_steps else trace
        )

    def forward(self, p_true: torch.Tensor) -> torch.Tensor:
        """P(truth = 1) (B, 14) -> P(reader r, session s says 1) (B, R, S, 14).

        For the first ``warmup_steps`` training calls the matrices stay at their near-identity start (no
        gradient), so the network first learns every finding from the readings before the layers may
        explain readings away as reader noise: without it a rare finding (ankylosis) can settle at a
        constant low P(truth), where its gradient, which carries a factor p (1 - p), vanishes.
        """
        _, _, composed = self.matrices()
        if self.training:
            steps = self.get_buffer("steps")
            if int(steps) < self.warmup_steps:
                composed = composed.detach()
            steps += 1
        per_output = composed[:, :, self.get_buffer("output_lesion")]  # (R, S, 14, 2, 2)
        p = p_true[:, None, None, :]
        return p * per_output[..., 1, 1] + (1 - p) * per_output[..., 0, 1]


class LesionModel(nn.Module):
    """The network plus (in ``readers`` mode) the confusion layers; forward returns a dict.

    ``{"logits": (B, 14)}`` and, with confusion layers, ``"reader_prob"`` (B, R, S, 14) and ``"trace"`` ().
    """

    def __init__(self, config: LesionModelConfig) -> None:
        super().__init__()
        self.config = config
        self.net = LesionNet(config)
        self.confusion: ReaderConfusion | None = None
        if config.target == "readers":
            self.confusion = ReaderConfusion(
                max(config.n_readers, 1),
                max(config.n_sessions, 1),
                warmup_steps=config.confusion_warmup_steps,
            )

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Logits, and the readers' predicted answers when confusion layers exist."""
        logits = self.net(x)
        out = {"logits": logits}
        if self.confusion is not None:
            out["reader_prob"] = self.confusion(torch.sigmoid(logits.float()))
            out["trace"] = self.confusion.trace()
        return out


def masked_bce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean BCE-with-logits over the finite entries of ``target`` (same shape as ``logits``)."""
    mask = torch.isfinite(target)
    if not bool(mask.any()):
        return logits.sum() * 0.0
    return F.binary_cross_entropy_with_logits(logits.float()[mask], target[mask].float())


def reader_nll(reader_prob: torch.Tensor, readings: torch.Tensor) -> torch.Tensor:
    """Mean binary NLL of the observed readings (B, R, S, 14) (-1 = missing) under ``reader_prob``."""
    mask = readings >= 0
    if not bool(mask.any()):
        return reader_prob.sum() * 0.0
    q = reader_prob[mask].clamp(1e-6, 1 - 1e-6)
    y = readings[mask].to(q.dtype)
    return -(y * q.log() + (1 - y) * (1 - q).log()).mean()


class LesionLoss:
    """Loss for one target mode: ``majority`` / ``soft`` (masked BCE on batch[mode]) or ``readers``."""

    def __init__(self, mode: str, trace_weight: float = 0.01) -> None:
        if mode not in ("majority", "soft", "readers"):
            raise ValueError(f"unknown target mode {mode!r}")
        self.mode, self.trace_weight = mode, trace_weight

    def __call__(
        self, outputs: Mapping[str, torch.Tensor], batch: Mapping[str, torch.Tensor]
    ) -> torch.Tensor:
        """Scalar loss of model outputs against a batch dict (keys ``majority``, ``soft``, ``readers``)."""
        if self.mode != "readers":
            return masked_bce(outputs["logits"], batch[self.mode])
        return reader_nll(outputs["reader_prob"], batch["readers"]) + self.trace_weight * outputs["trace"]
