"""Smoke test: the consensus benchmark script still runs end to end on a tiny size (no crowd-kit)."""

from __future__ import annotations

import pytest

from tests.bench import bench_consensus


def test_benchmark_runs_on_tiny_data(capsys: pytest.CaptureFixture[str]) -> None:
    bench_consensus.main(
        [
            "--sizes",
            "300",
            "--crowdkit-max",
            "0",
            "--parity-items",
            "0",
            "--repeat",
            "1",
            "--sparse-max",
            "300",
        ]
    )
    out = capsys.readouterr().out
    for method in ("ours-full", "ours-one_coin", "ours-ordinal", "majority"):
        assert method in out
    assert "Targets" in out and "ordinal-sparse n=300" in out
