"""The numerical parts of ml import and run in a Python with no Django settings (and never load Django)."""

import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import ml

ROOT = Path(__file__).resolve().parents[2]
DJANGO_AWARE = {"apps", "models", "services", "tasks", "admin", "api", "migrations"}

SCRIPT = """
import importlib, sys
import numpy as np
for name in sys.argv[1:]:
    importlib.import_module(name)
from ml.consensus import fit
result = fit(np.array([0, 0, 1, 1]), np.array([0, 1, 0, 1]), np.array([1, 1, 0, 0]), 2)
assert result.labels.tolist() == [1, 0], result.labels
leaked = sorted(m for m in sys.modules if m.split(".")[0] in {"django", "rest_framework", "celery", "labeling", "config"})
assert not leaked, leaked
print("ok")
"""


def plain_packages() -> list[str]:
    return [
        f"ml.{m.name}" for m in pkgutil.iter_modules(ml.__path__) if m.ispkg and m.name not in DJANGO_AWARE
    ]


def test_plain_ml_packages_import_and_run_without_django_settings():
    packages = plain_packages()
    assert {"ml.consensus", "ml.phantoms", "ml.training", "ml.contours"} <= set(packages)
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, *packages],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("ok")
