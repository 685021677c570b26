"""Shared fixtures and collection rules. Stays Django-free so ``pytest tests/ml -p no:django`` runs without
settings."""

from __future__ import annotations

from collections import Counter

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Refuse a run in which two tests share a node id.

    pytest-xdist schedules tests by node id, so of tests sharing one it runs only the first, and reports
    nothing about the rest. That hid 68 of schemathesis' 69 operations in ``make test`` (pytest 9.2 gave
    its generated tests their function's bare node id) until the counts of a plain and a parallel run were
    compared.
    """
    shared = [nodeid for nodeid, n in Counter(item.nodeid for item in items).items() if n > 1]
    if shared:
        raise pytest.UsageError(
            f"{len(shared)} node ids are shared by several tests, of which pytest-xdist would run only one: "
            + ", ".join(shared[:5])
        )
