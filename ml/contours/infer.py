"""Inference: locate the joints, crop, predict field + heatmaps, walk, map to patient mm."""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray

from ml.contours.data import JointSample, normalise_scan, samples_from_arrays
from ml.contours.files import ScanArrays
from ml.contours.locate import locate_joints
from ml.contours.metrics import symmetric_rmse
from ml.contours.model import ContourModelConfig, ContourNet, field_norm, heatmaps, unit_field
from ml.contours.repair import repair_short_traces
from ml.contours.walker import WalkResult, heatmap_peak, walk
from ml.data.geometry import pixel_to_patient
from ml.training import load_checkpoint, resolve_device

MODEL_KIND = "contours"
#: Traces at least this confident (the smaller heat-map peak) are shown, cropped along and repaired from.
CONFIDENT = 0.2
#: A confident trace shorter than this fraction of its slice's expected length is repaired.
SHORT_TRACE_RATIO = 0.8
F64 = NDArray[np.float64]


@dataclass(frozen=True)
class TracedContour:
    """One traced joint line: points in slice px (K, 2) and patient LPS mm (K, 3), start = superior end.

    ``confidence`` is the smaller of the two heatmap peaks (about 1 for a clear joint, near 0 for none).
    """

    scan_id: str
    slice_index: int
    side: str
    points_px: F64
    points_mm: F64
    reached_end: bool
    stop_reason: str
    confidence: float

    @property
    def start_mm(self) -> F64:
        """First point (superior end), (3,)."""
        start: F64 = self.points_mm[0]
        return start

    @property
    def end_mm(self) -> F64:
        """Last point (inferior end), (3,)."""
        end: F64 = self.points_mm[-1]
        return end

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (lists of floats)."""
        return {
            "scan_id": self.scan_id,
            "slice_index": self.slice_index,
            "side": self.side,
            "points_mm": np.round(self.points_mm, 3).tolist(),
            "start_mm": np.round(self.start_mm, 3).tolist(),
            "end_mm": np.round(self.end_mm, 3).tolist(),
            "reached_end": self.reached_end,
            "stop_reason": self.stop_reason,
            "confidence": round(self.confidence, 4),
        }


class ContourPredictor:
    """Wrap a trained :class:`ContourNet` with the crop, walker and geometry steps.

    The network is trained towards unit vectors, so a raw field vector shorter than ``gap_norm``
    marks an uncertain pixel; it is zeroed, and the walker keeps its heading across it.
    """

    def __init__(
        self,
        model: ContourNet,
        *,
        device: str | torch.device = "auto",
        batch_size: int = 16,
        gap_norm: float = 0.2,
        walker_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        self.device = device if isinstance(device, torch.device) else resolve_device(device)
        self.model = model.to(self.device).eval()
        self.config: ContourModelConfig = model.config
        self.batch_size, self.gap_norm = batch_size, gap_norm
        self.walker_kwargs = dict(walker_kwargs or {})
        digest = hashlib.sha1()
        for name, tensor in sorted(model.state_dict().items()):
            digest.update(name.encode() + tensor.detach().cpu().numpy().tobytes())
        #: Names these weights (e.g. in cache keys of crops along this model's traces).
        self.identity = digest.hexdigest()[:10]

    @classmethod
    def from_checkpoint(cls, directory: str | os.PathLike[str], *, device: str = "auto") -> ContourPredictor:
        """Rebuild the model from a checkpoint folder's card (``extra.model_config``) and best weights."""
        state, card = load_checkpoint(directory)
        model = ContourNet(ContourModelConfig.from_dict(card.get("extra", {}).get("model_config", {})))
        model.load_state_dict(state)
        return cls(model, device=device)

    @torch.no_grad()
    def predict_crops(self, crops: ArrayLike) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        """Crops (B, C, n, n) -> unit field (B, 2, n, n) (zero where the raw norm < ``gap_norm``) and
        heatmaps (B, 2, n, n), as numpy."""
        x = torch.as_tensor(np.asarray(crops, dtype=np.float32))
        fields, heats = [], []
        for lo in range(0, len(x), self.batch_size):
            out = self.model(x[lo : lo + self.batch_size].to(self.device)).float()
            norm = field_norm(out)  # once, for the gap test and the unit field
            fields.append((unit_field(out, norm=norm) * (norm >= self.gap_norm)).cpu().numpy())
            heats.append(heatmaps(out, self.config.heatmap_loss).cpu().numpy())
        n = self.config.crop_px
        if not fields:
            return np.zeros((0, 2, n, n), np.float32), np.zeros((0, 2, n, n), np.float32)
        return np.concatenate(fields), np.concatenate(heats)

    def trace(self, field: ArrayLike, heatmaps: ArrayLike) -> tuple[WalkResult, float]:
        """Walk one crop's field (2, n, n) from the start-heatmap peak to the end-heatmap peak (crop px).

        Peaks are taken on the heatmap differences (start - end, end - start): a network that puts a
        weaker echo of one end point into the other channel then still picks the right points.
        """
        heat = np.asarray(heatmaps, dtype=np.float64)
        start, end = heatmap_peak(heat[0] - heat[1]), heatmap_peak(heat[1] - heat[0])
        confidence = float(min(heat[0].max(), heat[1].max()))
        return walk(field, start, end, **self.walker_kwargs), confidence

    def trace_samples(self, samples: Sequence[JointSample]) -> list[tuple[WalkResult, float]]:
        """Trace every sample; points stay in crop px."""
        if not samples:
            return []
        fields, heats = self.predict_crops(np.stack([s.image for s in samples]))
        return [self.trace(f, h) for f, h in zip(fields, heats, strict=True)]

    def predict_scan(
        self,
        scan: ScanArrays,
        *,
        centres: Mapping[tuple[int, str], ArrayLike] | None = None,
        short_trace_ratio: float = SHORT_TRACE_RATIO,
    ) -> list[TracedContour]:
        """Trace both joints on every slice (or at the given (slice, side) -> (x, y) centres).

        Confident traces that stop short of their slice's expected length are rebuilt from the
        neighbouring slices' (:func:`ml.contours.repair.repair_short_traces`, ``stop_reason``
        "repaired"; ``short_trace_ratio`` 0 = off).
        """
        # normalised once, for the locator (channel 0) and the crops (the model's channels), and only the
        # channels they read (a lesion scan brings STIR too); per channel, so the same values
        volume = normalise_scan(_channels(scan.images)[:, : max(1, self.config.in_channels)])
        if centres is None:
            centres = locate_scan(scan, normalised=volume)
        samples = samples_from_arrays(
            volume,
            {},
            scan.pixel_spacing,
            self.config,
            centres=centres,
            row_dir_x=scan.row_dir_x,
            scan_id=scan.scan_id,
            normalise=False,
        )
        out = []
        for sample, (result, confidence) in zip(samples, self.trace_samples(samples), strict=True):
            px = sample.geometry.to_slice(result.points)
            mm = pixel_to_patient(
                px, scan.image_position[sample.slice_index], scan.image_orientation, scan.pixel_spacing
            )
            out.append(
                TracedContour(
                    scan.scan_id,
                    sample.slice_index,
                    sample.side,
                    px,
                    mm,
                    result.reached_end,
                    result.reason,
                    confidence,
                )
            )
        return repair_traced(out, scan, ratio=short_trace_ratio) if short_trace_ratio > 0 else out


def repair_traced(
    traced: Sequence[TracedContour], scan: ScanArrays, *, ratio: float = SHORT_TRACE_RATIO
) -> list[TracedContour]:
    """``traced`` with each joint's short confident traces rebuilt from its neighbouring slices (only
    traces at least ``CONFIDENT``, of two or more points, take part); the rest as they were."""
    out = list(traced)
    pixel_mm = float(np.mean(scan.pixel_spacing))
    for side in {t.side for t in out}:
        index = {
            t.slice_index: i
            for i, t in enumerate(out)
            if t.side == side and t.confidence >= CONFIDENT and len(t.points_px) >= 2
        }
        lines = {k: out[i].points_px for k, i in index.items()}
        for k, line in repair_short_traces(lines, pixel_mm, ratio=ratio).items():
            if line is not lines[k]:
                mm = pixel_to_patient(
                    line, scan.image_position[k], scan.image_orientation, scan.pixel_spacing
                )
                out[index[k]] = dataclasses.replace(
                    out[index[k]], points_px=line, points_mm=mm, reached_end=True, stop_reason="repaired"
                )
    return out


def _channels(images: ArrayLike) -> NDArray[np.float32]:
    """A scan's images as (S, C, H, W) float32 ((S, H, W) gets one channel)."""
    vol = np.asarray(images, dtype=np.float32)
    return vol[:, None] if vol.ndim == 3 else vol


def locate_scan(scan: ScanArrays, *, normalised: ArrayLike | None = None) -> dict[tuple[int, str], F64]:
    """Joint centres (slice px) for every slice of a scan, from its first channel; ``normalised``: the
    scan's images already through :func:`ml.contours.data.normalise_scan` (saves doing it again)."""
    vol = normalise_scan(scan.images) if normalised is None else np.asarray(normalised)
    centres = {}
    for s in range(vol.shape[0]):
        for side, xy in locate_joints(vol[s, 0], scan.pixel_spacing, scan.image_orientation).items():
            centres[(s, side)] = xy
    return centres


def rmse_against_truth(scan: ScanArrays, traced: Sequence[TracedContour]) -> dict[tuple[int, str], float]:
    """Symmetric RMSE in mm of each traced contour that has a truth polyline in ``scan``."""
    out = {}
    for contour in traced:
        key = (contour.slice_index, contour.side)
        if key in scan.polylines:
            truth = pixel_to_patient(
                scan.polylines[key], scan.image_position[key[0]], scan.image_orientation, scan.pixel_spacing
            )
            out[key] = symmetric_rmse(contour.points_mm, truth)
    return out
