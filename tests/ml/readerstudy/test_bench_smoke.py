"""Smoke test: the reader-study benchmark runs end to end on a few studies and prints its table."""

from __future__ import annotations

import pytest

from tests.bench import bench_readerstudy


def test_benchmark_runs_on_a_few_studies(capsys: pytest.CaptureFixture[str]) -> None:
    summary = bench_readerstudy.main(["--studies", "5", "--repeat", "1"])
    out = capsys.readouterr().out
    assert (
        "Type I error" in out
        and "jackknife" in out
        and "Speed: 10 readers x 2 conditions x 1,000 cases" in out
    )
    assert 0 < float(summary["speed_s"]) < 30  # type: ignore[arg-type]
    assert len(summary["rows"]) == 4  # type: ignore[arg-type]
