"""Inference: segment the pelvis, find both joints, crop, grade mNY 0-4, derive groupings and patient scores."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray

from ml.ctgrade.data import CtCropConfig, crop_joint, joint_centres, load_ct_scan, to_seg_grid, window
from ml.ctgrade.model import GraderConfig, build_grader, build_segmenter, grouped_probabilities
from ml.training import load_checkpoint, resolve_device
from ml.vocab import GROUPINGS, JOINTS, mny_positive

GRADER_KIND = "ctgrade"
SEG_KIND = "ctgrade-seg"


class CtPredictor:
    """Segmenter + grader with their crop settings. ``segmenter`` None: centres need a SEG in the study."""

    def __init__(
        self,
        grader: torch.nn.Module,
        segmenter: torch.nn.Module | None,
        crop_config: CtCropConfig,
        *,
        device: str = "auto",
    ) -> None:
        self.device = resolve_device(device)
        self.grader = grader.to(self.device).eval()
        self.segmenter = segmenter.to(self.device).eval() if segmenter is not None else None
        self.crop_config = crop_config

    @classmethod
    def from_checkpoint(cls, directory: str | os.PathLike[str], *, device: str = "auto") -> CtPredictor:
        """Load ``<directory>/grader`` and (when present) ``<directory>/seg`` best weights."""
        state, card = load_checkpoint(Path(directory) / "grader")
        extra = card.get("extra", {})
        config = GraderConfig.from_dict(extra.get("grader_config", {}))
        grader = build_grader(config)
        grader.load_state_dict(state)
        segmenter = None
        if (Path(directory) / "seg" / "card.json").exists():
            seg_state, _ = load_checkpoint(Path(directory) / "seg")
            segmenter = build_segmenter(config)
            segmenter.load_state_dict(seg_state)
        return cls(grader, segmenter, CtCropConfig.from_dict(extra.get("crop_config", {})), device=device)

    @torch.no_grad()
    def grade_crops(self, crops: ArrayLike) -> NDArray[np.float64]:
        """Crops (N, 1, z, y, x) -> 5-class probabilities (N, 5)."""
        x = torch.as_tensor(np.asarray(crops, dtype=np.float32))
        out = [
            torch.softmax(self.grader(x[i : i + 8].to(self.device)).float(), 1).cpu()
            for i in range(0, len(x), 8)
        ]
        return torch.cat(out).double().numpy() if out else np.zeros((0, 5))

    @torch.no_grad()
    def segment(self, image: ArrayLike) -> NDArray[np.uint8]:
        """Seg-grid image (1, z, y, x) -> labels (z, y, x) (0 bg, 1 sacrum, 2 ilium)."""
        if self.segmenter is None:
            raise RuntimeError("this checkpoint has no segmentation model")
        x = torch.as_tensor(np.asarray(image, dtype=np.float32))[None].to(self.device)
        logits = self.segmenter(x)[0].float().cpu().numpy()
        # numpy's argmax over the 3 classes: torch's over a dimension of three took 25 ms on the CPU,
        # half the segmenter's time (the same labels, ties to the first class)
        return np.asarray(np.argmax(logits, axis=0), dtype=np.uint8)

    def study_crops(
        self, folder: str | os.PathLike[str], *, use_truth_seg: bool = False
    ) -> tuple[NDArray[np.float32], dict[str, Any]]:
        """Crops (2, 1, z, y, x) [left, right] of a study and the centres (mm) and seg labels used."""
        cfg = self.crop_config
        truth_seg = use_truth_seg or self.segmenter is None
        scan = load_ct_scan(folder, labels=truth_seg)  # a SEG nobody reads is not decoded
        if truth_seg:
            if scan.labels is None:
                raise ValueError(f"{folder} has no SEG and no segmentation model is loaded")
            labels = to_seg_grid(scan.labels, cfg.seg_shape, order=0).astype(np.uint8)
        else:
            labels = self.segment(window(to_seg_grid(scan.series.pixels, cfg.seg_shape), cfg.window_hu)[None])
        centres = joint_centres(scan.series, labels, cfg.touch_vox)
        crops = np.stack([crop_joint(scan.series, centres[j], j, cfg) for j in JOINTS])
        return crops, {"centres_mm": centres, "seg_labels": labels}

    def predict_study(self, folder: str | os.PathLike[str], *, use_truth_seg: bool = False) -> dict[str, Any]:
        """Grade both joints of ``folder/CT``: per joint probabilities, MAP grade, grouped probabilities;
        per patient the total score and the mNY radiological criterion (SPEC §2.4)."""
        crops, info = self.study_crops(folder, use_truth_seg=use_truth_seg)
        probs = self.grade_crops(crops)
        out: dict[str, Any] = {}
        for k, joint in enumerate(JOINTS):
            groups = {
                name: dict(
                    zip(
                        GROUPINGS[name],
                        grouped_probabilities(probs[k : k + 1], name)[0].round(5).tolist(),
                        strict=True,
                    )
                )
                for name in GROUPINGS
            }
            out[joint] = {
                "probabilities": probs[k].round(5).tolist(),
                "grade": int(probs[k].argmax()),
                "groupings": groups,
                "centre_mm": np.round(info["centres_mm"][joint], 2).tolist(),
            }
        left, right = out["left"]["grade"], out["right"]["grade"]
        out["total_score"], out["mny_positive"] = left + right, mny_positive(left, right)
        return out
