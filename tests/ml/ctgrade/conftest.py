"""Two tiny CT phantoms (with SEG and simulated readers), generated once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ml.phantoms.cli import generate


@pytest.fixture(scope="session")
def ct_phantoms(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.set_num_threads(2)
    out = tmp_path_factory.mktemp("ct-phantoms")
    generate(out, n_mri=0, n_ct=2, seed=11, workers=1, readers=3)
    return out
