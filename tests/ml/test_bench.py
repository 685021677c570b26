"""``python -m ml.bench speed``: the CPU smoke size (the accuracy table's verdicts: tests/ml/bench)."""

from __future__ import annotations

import math

from ml.bench.speed import format_speed, run_speed


def test_speed_smoke_trains_every_model_with_both_loops() -> None:
    rows = run_speed(full=False, device="cpu", steps=1)
    assert [r["model"].split()[0] for r in rows] == ["ctgrade", "lesions", "contours"]
    for r in rows:
        assert r["plain_samples_s"] > 0 and r["shared_samples_s"] > 0 and math.isfinite(r["speedup"])
    assert "lesions ResidualUnit quadrant" in format_speed(rows)
