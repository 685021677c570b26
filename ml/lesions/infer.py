"""Inference: rebuild a trained lesion model from its checkpoint and score joint crops or a study folder."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray

from ml.contours.infer import ContourPredictor
from ml.lesions.crops import CropConfig, study_crops
from ml.lesions.labels import OUTPUT_NAMES
from ml.lesions.model import LesionModel, LesionModelConfig
from ml.phantoms.schema import JOINTS
from ml.training import load_checkpoint, resolve_device

MODEL_KIND = "lesions"


class LesionPredictor:
    """A trained :class:`LesionModel` with its crop settings; probabilities P(lesion) per output."""

    def __init__(
        self, model: LesionModel, crop_config: CropConfig, *, device: str = "auto", batch_size: int = 16
    ):
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        self.crop_config, self.batch_size = crop_config, batch_size

    @classmethod
    def from_checkpoint(cls, directory: str | os.PathLike[str], *, device: str = "auto") -> LesionPredictor:
        """Load the best weights and the card's ``extra.model_config``/``extra.crop_config``."""
        state, card = load_checkpoint(directory)
        extra = card.get("extra", {})
        model = LesionModel(LesionModelConfig.from_dict(extra.get("model_config", {})))
        model.load_state_dict(state)
        return cls(model, CropConfig.from_dict(extra.get("crop_config", {})), device=device)

    @torch.no_grad()
    def predict_crops(self, crops: ArrayLike) -> NDArray[np.float64]:
        """Crops (N, 2, S, n, n) -> probabilities (N, 14) in ``OUTPUT_NAMES`` order."""
        x = torch.as_tensor(np.asarray(crops, dtype=np.float32))
        out = [torch.sigmoid(self.model(x[i : i + self.batch_size].to(self.device))["logits"].float()).cpu()
               for i in range(0, len(x), self.batch_size)]  # fmt: skip
        return torch.cat(out).double().numpy() if out else np.zeros((0, len(OUTPUT_NAMES)))

    def predict_study(
        self,
        folder: str | os.PathLike[str],
        *,
        contours: ContourPredictor | None = None,
        use_truth: bool = False,
    ) -> dict[str, Any]:
        """Score both joints of a study folder (T1/ + STIR/): ``{joint: {output name: p}, "centres_px": ...}``.

        Joint centres come from ``contours`` (traced joint lines) when given, else from the intensity
        locator; ``use_truth`` uses ``truth.json`` instead (phantoms, evaluation).
        """
        crops, centres = study_crops(folder, self.crop_config, use_truth=use_truth, predictor=contours)
        probs = self.predict_crops(crops)
        out: dict[str, Any] = {j: dict(zip(OUTPUT_NAMES, probs[k].round(5).tolist(), strict=True))
                               for k, j in enumerate(JOINTS)}  # fmt: skip
        out["centres_px"] = {j: np.round(c, 2).tolist() for j, c in centres.items()}
        return out
