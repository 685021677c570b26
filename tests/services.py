"""One rule for a service a test needs: outside CI a missing one skips; with CI=true it fails, never skips."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def missing_service(message: str) -> NoReturn:
    """Skip (developer machine) or fail (CI=true) because a required service or tool is missing."""
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{message} (CI=true: required services are never skipped)", pytrace=False)
    pytest.skip(message)
