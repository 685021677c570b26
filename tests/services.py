"""One rule for a service a test needs: outside CI a missing one skips; with CI=true it fails, never skips."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import NoReturn

import pytest


def missing_service(message: str) -> NoReturn:
    """Skip (developer machine) or fail (CI=true) because a required service or tool is missing."""
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{message} (CI=true: required services are never skipped)", pytrace=False)
    pytest.skip(message)


def dciodvfy_errors(path: Path) -> list[str]:
    """The error lines Debian's dciodvfy (dicom3tools) reports for a DICOM file against its IOD."""
    tool = shutil.which("dciodvfy")
    if tool is None:
        missing_service("dciodvfy is not installed: apt-get install dicom3tools (platform/apt-packages.txt)")
    result = subprocess.run([tool, str(path)], capture_output=True, text=True, timeout=60)
    return [line for line in (result.stdout + result.stderr).splitlines() if line.startswith("Error")]
