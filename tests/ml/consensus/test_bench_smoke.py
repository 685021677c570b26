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


def test_robust_benchmark_runs_on_tiny_data(capsys: pytest.CaptureFixture[str]) -> None:
    from tests.bench import bench_consensus_robust

    table = bench_consensus_robust.run(
        bench_consensus_robust.parse_args(["--seeds", "7", "--items", "150", "--boot", "50", "--no-crowdkit"])
    )
    out = capsys.readouterr().out
    assert set(table) == {"realistic", "correlated", "paper_a", "spammer", "ct"}
    assert "concord-full-session" in table["paper_a"] and "concord-full-session" not in table["ct"]
    for scenario in table.values():
        for metrics in scenario.values():
            for point, lo, hi in metrics.values():
                assert lo <= point <= hi
            assert 0.5 < metrics["acc"][0] <= 1.0
    assert "majority" in out and "log-loss" in out
