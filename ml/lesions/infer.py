"""Inference: rebuild a trained lesion model from its checkpoint and score joint crops or a study folder."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray

from ml.contours.infer import ContourPredictor
from ml.lesions.crops import CropConfig, study_crops
from ml.lesions.model import LesionModel, LesionModelConfig
from ml.training import load_checkpoint, resolve_device
from ml.training.checkpoint import CARD_NAME
from ml.vocab import JOINTS, OUTPUT_NAMES

MODEL_KIND = "lesions"
#: Sub-folder of a lesion checkpoint holding the contour model whose traced lines its crops follow.
CONTOURS_DIR = "contours"


class LesionPredictor:
    """A trained :class:`LesionModel` with its crop settings; probabilities P(lesion) per output.

    ``contours``: the contour model the lesion model was trained with (bundled in its checkpoint), which
    traces the joint lines of a study's crops at inference.
    """

    def __init__(
        self,
        model: LesionModel,
        crop_config: CropConfig,
        *,
        device: str = "auto",
        batch_size: int = 16,
        contours: ContourPredictor | None = None,
    ):
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        self.crop_config, self.batch_size, self.contours = crop_config, batch_size, contours

    @classmethod
    def from_checkpoint(cls, directory: str | os.PathLike[str], *, device: str = "auto") -> LesionPredictor:
        """Load the best weights, the card's ``extra.model_config``/``extra.crop_config`` and the bundled
        contour model (``contours/``) when there is one."""
        state, card = load_checkpoint(directory)
        extra = card.get("extra", {})
        model = LesionModel(LesionModelConfig.from_dict(extra.get("model_config", {})))
        model.load_state_dict(state)
        bundled = Path(directory) / CONTOURS_DIR
        contours = (
            ContourPredictor.from_checkpoint(bundled, device=device)
            if (bundled / CARD_NAME).exists()
            else None
        )
        return cls(
            model, CropConfig.from_dict(extra.get("crop_config", {})), device=device, contours=contours
        )

    @torch.no_grad()
    def predict_crops(self, crops: ArrayLike) -> NDArray[np.float64]:
        """Crops (N, 2, S, n, n) -> probabilities (N, 14) in ``OUTPUT_NAMES`` order."""
        x = torch.as_tensor(np.asarray(crops, dtype=np.float32))
        out = [
            torch.sigmoid(self.model(x[i : i + self.batch_size].to(self.device))["logits"].float()).cpu()
            for i in range(0, len(x), self.batch_size)
        ]
        return torch.cat(out).double().numpy() if out else np.zeros((0, len(OUTPUT_NAMES)))

    def predict_study(
        self,
        folder: str | os.PathLike[str],
        *,
        contours: ContourPredictor | None = None,
        use_truth: bool = False,
    ) -> dict[str, Any]:
        """Score both joints of a study folder (T1/ + STIR/): ``{joint: {output name: p}, "centres_px": ...}``.

        Joint lines / centres come from ``contours`` (traced joint lines) when given, else from the bundled
        contour model, else from the intensity locator; ``use_truth`` uses ``truth.json`` instead (phantoms,
        evaluation).
        """
        predictor = contours or self.contours
        crops, centres = study_crops(folder, self.crop_config, use_truth=use_truth, predictor=predictor)
        probs = self.predict_crops(crops)
        out: dict[str, Any] = {
            j: dict(zip(OUTPUT_NAMES, probs[k].round(5).tolist(), strict=True)) for k, j in enumerate(JOINTS)
        }
        out["centres_px"] = {j: np.round(c, 2).tolist() for j, c in centres.items()}
        return out
