"""Two tiny MRI phantoms with three simulated readers, generated once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ml.phantoms.cli import generate


@pytest.fixture(scope="session")
def mri_phantoms(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.set_num_threads(2)
    out = tmp_path_factory.mktemp("mri-phantoms")
    generate(out, n_mri=3, n_ct=0, seed=7, workers=1, readers=3, sessions=2)
    return out
