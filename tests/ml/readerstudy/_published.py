"""Loading the published datasets and comparing with numbers exactly as their sources printed them."""

from __future__ import annotations

import csv
from decimal import Decimal
from pathlib import Path

import numpy as np

DATA = Path(__file__).parent / "data"


def load(name: str) -> dict[str, np.ndarray]:
    """Columns of tests/ml/readerstudy/data/<name>.csv as string arrays (case codes such as "1.10" stay text)."""
    with (DATA / f"{name}.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    return {key: np.array([row[key] for row in rows]) for key in rows[0]}


def printed_tolerance(text: str) -> float:
    """Half a unit in the last printed digit: "0.05123303" -> 5e-9, "1.293517e-03" -> 5e-10, "4.69" -> 0.005."""
    exponent = Decimal(text).as_tuple().exponent
    assert isinstance(exponent, int)
    return 0.5 * 10.0**exponent


def assert_printed(actual: float, text: str, what: str) -> None:
    """``actual`` rounds to the printed ``text``: |actual - text| <= half a unit of its last digit."""
    tol = printed_tolerance(text) * (1 + 1e-9)
    assert abs(actual - float(text)) <= tol, (
        f"{what}: computed {actual!r}, printed {text} (tolerance {tol:.1e})"
    )
