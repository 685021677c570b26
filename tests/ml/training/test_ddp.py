"""DDP under torchrun: two CPU processes (gloo) end with identical weights; rank 0 writes the checkpoint."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.slow
def test_two_process_ddp_on_cpu(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        str(ROOT / "tests/ml/training/ddp_worker.py"),
        str(tmp_path),
    ]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["weights"] == ranks[1]["weights"]  # rank 0's init broadcast, gradients all-reduced
    assert ranks[0]["steps"] == ranks[1]["steps"] == 8  # 32 samples / 2 ranks / batch 4, 2 epochs
    assert json.loads((tmp_path / "ckpt" / "card.json").read_text())["checkpoint"]["epoch"] == 2
