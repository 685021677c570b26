"""``python -m ml.bench inference``: wall time of one AI pre-read with the accuracy run's models.

MRI: read T1 + STIR DICOM, locate and trace both joints on every slice (``ml.contours``), crop both joints
at the traced centres and score the 14 outputs (``ml.lesions``). CT: read the CT DICOM, segment, find
both joints, crop and grade (``ml.ctgrade``). Models are loaded once beforehand (a worker keeps them);
targets on 2 CPU cores: MRI <= 2 s, CT <= 5 s. Reports the median over the held-out studies.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ml.contours.infer import ContourPredictor
from ml.ctgrade.infer import CtPredictor
from ml.lesions.infer import LesionPredictor


def run_inference(out: Path, *, max_studies: int = 4) -> dict[str, Any]:
    """Time pre-reads of up to ``max_studies`` held-out MRI and CT studies under ``out/phantoms-test``."""
    torch.set_num_threads(2)
    test = out / "phantoms-test"
    start = time.perf_counter()
    contours = ContourPredictor.from_checkpoint(out / "contours", device="cpu")
    lesions = LesionPredictor.from_checkpoint(out / "lesions-soft", device="cpu")
    ct = CtPredictor.from_checkpoint(out / "ct", device="cpu")
    load_s = time.perf_counter() - start
    mri_s, ct_s = [], []
    for folder in sorted(test.glob("mri-*"))[:max_studies]:
        t0 = time.perf_counter()
        lesions.predict_study(folder, contours=contours)
        mri_s.append(time.perf_counter() - t0)
    for folder in sorted(test.glob("ct-*"))[:max_studies]:
        t0 = time.perf_counter()
        ct.predict_study(folder)
        ct_s.append(time.perf_counter() - t0)
    return {
        "load_models_s": load_s,
        "mri_s": mri_s,
        "ct_s": ct_s,
        "mri_median_s": float(np.median(mri_s)) if mri_s else float("nan"),
        "ct_median_s": float(np.median(ct_s)) if ct_s else float("nan"),
    }


def format_inference(result: dict[str, Any]) -> str:
    """Two-line summary with the targets."""
    mri, ct = result["mri_median_s"], result["ct_median_s"]
    return "\n".join(
        [
            f"MRI pre-read (contours + lesions, both joints): median {mri:.2f} s  target <= 2 s  "
            f"{'ok' if mri <= 2 else 'ABOVE'}  runs {[round(v, 2) for v in result['mri_s']]}",
            f"CT pre-read (segment + grade, both joints):     median {ct:.2f} s  target <= 5 s  "
            f"{'ok' if ct <= 5 else 'ABOVE'}  runs {[round(v, 2) for v in result['ct_s']]}",
            f"model loading (once per worker): {result['load_models_s']:.2f} s",
        ]
    )
