"""Fixtures: one small generated data set shared by the phantom tests (generated once per session)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ml.data.truth import CtTruth, MriTruth
from ml.phantoms.ct import CtPhantom, make_ct_phantom
from ml.phantoms.mri import MriPhantom, make_mri_phantom
from ml.phantoms.studies import study_rng, write_ct_study, write_mri_study

SEED = 0
MRI_INDEX = 4  # seed 0, index 4 has BME, fat and sclerosis
CT_INDEX = 0


@pytest.fixture(scope="session")
def mri_phantom() -> MriPhantom:
    return make_mri_phantom(study_rng(SEED, "mri", MRI_INDEX))


@pytest.fixture(scope="session")
def ct_phantom() -> CtPhantom:
    return make_ct_phantom(study_rng(SEED, "ct", CT_INDEX))


@pytest.fixture(scope="session")
def written(
    tmp_path_factory: pytest.TempPathFactory, mri_phantom: MriPhantom, ct_phantom: CtPhantom
) -> dict[str, object]:
    """Write one MRI and one CT study; returns {"root", "mri", "ct"} (truth records)."""
    root: Path = tmp_path_factory.mktemp("phantoms")
    mri: MriTruth = write_mri_study(root, SEED, MRI_INDEX, mri_phantom)
    ct: CtTruth = write_ct_study(root, SEED, CT_INDEX, ct_phantom)
    return {"root": root, "mri": mri, "ct": ct}


def bilinear(image: np.ndarray, points_px: np.ndarray) -> np.ndarray:
    """Sample an (H, W) image at (n, 2) (col, row) points."""
    from scipy.ndimage import map_coordinates

    return map_coordinates(image, [points_px[:, 1], points_px[:, 0]], order=1)
