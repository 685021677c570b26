"""``python -m ml.bench``: the speed benchmark's CPU smoke size and the acceptance table's verdicts."""

from __future__ import annotations

import math

from ml.bench.accuracy import format_table
from ml.bench.speed import format_speed, run_speed
from ml.lesions.labels import OUTPUT_NAMES


def test_speed_smoke_trains_every_model_with_both_loops() -> None:
    rows = run_speed(full=False, device="cpu", steps=1)
    assert [r["model"].split()[0] for r in rows] == ["ctgrade", "lesions", "contours"]
    for r in rows:
        assert r["plain_samples_s"] > 0 and r["shared_samples_s"] > 0 and math.isfinite(r["speedup"])
    assert "lesions ResidualUnit quadrant" in format_speed(rows)


def test_table_flags_each_target_it_misses() -> None:
    lesions = {
        m: {"per_output": {n: {"auc": 0.95} for n in OUTPUT_NAMES}, "mean_auc": 0.95, "min_auc": 0.95}
        for m in ("majority", "soft", "readers")
    }
    lesions["soft"]["per_output"]["erosion/sacral_lower"]["auc"] = 0.89
    lesions["majority"]["mean_auc"] = 0.96
    results = {
        "contours": {"frac_below": 0.97, "p95": 1.7, "mean": 1.6, "n": 10, "missing": 0},
        "lesions": {"lines": "traced", **lesions},
    }
    table = format_table(results).splitlines()

    def status(prefix: str) -> str:
        return next(line for line in table if line.startswith(prefix)).split()[-1]

    assert status("contours: fraction") == "ok"
    assert status("lesions (soft, traced): AUC erosion/sacral_lower") == "BELOW"
    assert status("lesions (soft, traced): AUC bme/iliac_upper") == "ok"
    assert status("lesions: reader-aware beats majority") == "NO"
    assert status("CT: 5-class accuracy") == "BELOW"  # no CT results: nothing is taken as passed
