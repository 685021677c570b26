"""The honest accuracy protocol (issue 18): seed bookkeeping, the scan-clustered bootstrap, DeLong tests."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from ml.bench.accuracy import (
    BenchSizes,
    code_hash,
    format_protocol,
    load_record,
    run_protocol,
    write_record,
)
from ml.bench.protocol import (
    DEV_SEEDS,
    FINAL_MIN_TEST,
    FINAL_SEEDS,
    check_final,
    cluster_bootstrap,
    delong_paired,
    dev_seed_values,
    seed_pairs,
    summarise,
)


def _mean(values: np.ndarray) -> Callable[[list[np.ndarray]], np.ndarray]:
    return lambda idx: np.array([values[idx[0]].mean()])


def test_bootstrap_of_independent_items_matches_the_normal_interval() -> None:
    rng = np.random.default_rng(1)
    values = rng.normal(10.0, 2.0, 400)
    low, high, _ = cluster_bootstrap([np.arange(400)], _mean(values), n_boot=2000, seed=2)
    se = values.std(ddof=1) / np.sqrt(values.size)
    assert low[0] == pytest.approx(values.mean() - 1.96 * se, abs=0.25 * se)
    assert high[0] == pytest.approx(values.mean() + 1.96 * se, abs=0.25 * se)


def test_repeating_every_item_of_a_study_does_not_narrow_the_clustered_interval() -> None:
    """Five copies of each study's item add no information: resampling studies keeps the interval's width,
    where resampling items would shrink it by sqrt(5)."""
    rng = np.random.default_rng(3)
    values = rng.normal(0.0, 1.0, 100)
    once = cluster_bootstrap([np.arange(100)], _mean(values), n_boot=2000, seed=4)
    copies = np.repeat(values, 5)
    clustered = cluster_bootstrap([np.repeat(np.arange(100), 5)], _mean(copies), n_boot=2000, seed=4)
    naive = cluster_bootstrap([np.arange(500)], _mean(copies), n_boot=2000, seed=4)
    width = once[1][0] - once[0][0]
    assert clustered[1][0] - clustered[0][0] == pytest.approx(width, rel=0.1)
    assert naive[1][0] - naive[0][0] == pytest.approx(width / np.sqrt(5), rel=0.15)


def test_clustered_interval_covers_the_true_mean_about_95_percent_of_the_time() -> None:
    """Correlated items (a study effect shared by its 6 items): the clustered interval keeps its coverage."""
    rng = np.random.default_rng(5)
    clusters = np.repeat(np.arange(30), 6)
    covered = 0
    trials = 120
    for t in range(trials):
        values = rng.normal(0.0, 1.0, 30)[clusters] + rng.normal(0.0, 0.3, clusters.size)
        low, high, _ = cluster_bootstrap([clusters], _mean(values), n_boot=300, seed=t)
        covered += low[0] <= 0.0 <= high[0]
    assert 0.86 <= covered / trials <= 1.0


def test_strata_are_resampled_separately_and_averaged() -> None:
    a, b = np.zeros(50), np.ones(80)

    def both(idx: list[np.ndarray]) -> np.ndarray:
        assert len(idx[0]) == 50 and len(idx[1]) == 80  # each stratum keeps its own size
        return np.array([(a[idx[0]].mean() + b[idx[1]].mean()) / 2])

    low, high, _ = cluster_bootstrap([np.arange(50), np.arange(80)], both, n_boot=50)
    assert low[0] == high[0] == 0.5


def test_final_seeds_were_never_development_seeds() -> None:
    assert len(FINAL_SEEDS) >= 3
    assert not {s for p in FINAL_SEEDS for s in p} & dev_seed_values()
    assert seed_pairs("final") == ("final", FINAL_SEEDS)
    assert seed_pairs("dev") == ("dev", DEV_SEEDS)
    assert FINAL_MIN_TEST == {"mri_test": 300, "ct_test": 100}
    assert BenchSizes().mri_test >= 300 and BenchSizes().ct_test >= 100


def test_a_final_table_refuses_development_seeds() -> None:
    with pytest.raises(ValueError, match=r"\[2002\] were used in development"):
        check_final([(7001, 2002), (7003, 7004), (7005, 7006)])
    with pytest.raises(ValueError, match=">= 3 seed pairs"):
        check_final(FINAL_SEEDS[:2])
    with pytest.raises(ValueError, match="appears twice"):
        check_final([(7001, 7002), (7003, 7001), (7005, 7006)])
    # explicit pairs with a development seed are a development run, not a final one
    assert seed_pairs("1001:2002,7003:7004,7005:7006")[0] == "dev"
    assert seed_pairs("7001:7002,7003:7004,7005:7006")[0] == "final"
    with pytest.raises(ValueError, match="must differ"):
        seed_pairs("7001:7001")


def test_a_final_run_stops_before_generating_anything(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="development"):
        run_protocol(tmp_path, BenchSizes(), [DEV_SEEDS[0], *FINAL_SEEDS[1:]], protocol="final")
    small = BenchSizes(mri_test=64, ct_test=40)
    with pytest.raises(ValueError, match="test sets of at least"):
        run_protocol(tmp_path, small, FINAL_SEEDS, protocol="final")
    assert not list(tmp_path.iterdir())


def _lesion_run(rng: np.random.Generator, n_studies: int, noise: dict[str, float]) -> dict[str, object]:
    outputs = ["a", "b"]
    reference = (rng.random((2 * n_studies, 2)) < 0.4).astype(float)
    run: dict[str, object] = {"outputs": outputs, "cluster": np.repeat(np.arange(n_studies), 2).tolist()}
    for mode, sd in noise.items():
        run[mode] = {
            "reference": reference.tolist(),
            "probs": (reference + rng.normal(0, sd, reference.shape)).tolist(),
        }
    return run


def test_delong_and_bootstrap_find_the_better_lesion_model() -> None:
    rng = np.random.default_rng(6)
    runs = [_lesion_run(rng, 60, {"majority": 1.0, "soft": 0.3, "readers": 1.0}) for _ in range(3)]
    tests = delong_paired(runs, "soft")
    assert all(t["diff"] > 0 and t["p"] < 0.01 and t["pairs"] == 3 for t in tests.values())
    same = delong_paired(runs, "readers")  # same noise level as majority: no difference found
    assert all(t["p"] > 0.01 for t in same.values())
    summary = summarise("lesions", runs, n_boot=150)
    diff = summary["lesions: mean AUC soft - majority"]
    assert diff["ci"][0] > 0 and diff["p_bootstrap"] < 0.05 and len(diff["values"]) == 3
    auc = summary["lesions (soft): AUC a"]
    assert auc["ci"][0] <= auc["mean"] <= auc["ci"][1] and auc["sd"] >= 0


def test_table_checks_targets_on_the_lower_confidence_bound() -> None:
    def metric(mean: float, low: float) -> dict[str, object]:
        return {"values": [mean] * 3, "mean": mean, "sd": 0.01, "ci": [low, mean + 0.02]}

    summary = {
        "protocol": "final",
        "pairs": [list(p) for p in FINAL_SEEDS],
        "commit": "abc",
        "dirty": False,
        "sizes": {},
        "recipe_overrides": {},
        "difficulty": "realistic",
        "device": "cpu",
        "metrics": {
            "contours: fraction of joint slices < 2.76 mm": metric(0.93, 0.91),
            "lesions (soft): AUC bme/iliac_upper": metric(0.90, 0.84),  # mean passes, bound does not
            "lesions: mean AUC soft - majority": {**metric(0.01, 0.002), "p_bootstrap": 0.01},
        },
        "delong": {"soft vs majority": {"bme/iliac_upper": {"diff": 0.02, "p": 0.03}}},
        "reader_agreement": {
            "5171": {
                "scenario": "realistic",
                "mri": {"inter": 0.651, "fleiss": 0.648, "intra": 0.857},
                "ct": {"qwk_inter": 0.89, "qwk_intra": 0.95, "inter": 0.55, "intra": 0.74},
            }
        },
    }
    table = format_protocol(summary)
    lines = table.splitlines()

    def status(prefix: str) -> str:
        return next(line for line in lines if line.startswith(prefix)).split()[-1]

    assert status("contours: fraction") == "ok"
    assert status("lesions (soft): AUC bme/iliac_upper") == "BELOW"
    assert "lesions: soft beats majority on mean AUC (p < 0.05): yes" in table
    assert "better (p<0.05) on 1 of 1 outputs" in table
    assert "5171/6173" in lines[0]
    # the simulated readers' drawn agreement is printed with the table
    assert (
        "train seed 5171: readers realistic: MRI kappa inter 0.65 (Fleiss 0.65), intra 0.86; "
        "CT QWK inter 0.89, intra 0.95 (unweighted 0.55 / 0.74)" in lines
    )


def test_a_scored_pair_is_recorded_once_and_reused_only_on_the_same_code(tmp_path: Path) -> None:
    settings = {"sizes": dataclasses.asdict(BenchSizes()), "device": "cpu", "difficulty": "realistic"}
    pair = FINAL_SEEDS[0]
    assert load_record(tmp_path, pair, settings) is None
    run = {**settings, "commit": "abc", "code_hash": code_hash(), "lesions": {"auc": 0.9}}
    write_record(tmp_path, pair, run)
    assert [p.name for p in tmp_path.iterdir()] == [f"seed-{pair[0]}-{pair[1]}.json.gz"]
    assert load_record(tmp_path, pair, settings) == run
    with pytest.raises(ValueError, match=r"other settings \['device'\]"):
        load_record(tmp_path, pair, settings | {"device": "cuda"})
    # scored on code this checkout does not have: refused, never silently rescored or reused
    write_record(tmp_path, pair, run | {"code_hash": "0" * 64})
    with pytest.raises(ValueError, match="on other ml/ code"):
        load_record(tmp_path, pair, settings)


def test_the_code_hash_follows_the_code_and_schemes_not_the_write_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Writing RESULTS.md from the final records changed the hash they were checked against, so the table
    could not be made from them again."""
    from ml.bench import accuracy

    files = {
        "ml/consensus/fit.py": "x = 1\n",
        "ml/bench/RESULTS.md": "# table\n",
        "labeling/schemes/mri.yaml": "name: mri\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    monkeypatch.setattr(accuracy, "_ROOT", tmp_path)
    before = code_hash()
    (tmp_path / "ml/bench/RESULTS.md").write_text("# table\n\n| AUC | 0.93 |\n")
    assert code_hash() == before
    for name in ("ml/consensus/fit.py", "labeling/schemes/mri.yaml"):
        (tmp_path / name).write_text(files[name] + "# changed\n")
        assert code_hash() != before, name
        before = code_hash()


def test_a_table_made_from_records_alone_writes_its_summary_into_a_new_folder(tmp_path: Path) -> None:
    """The final table is made again from the committed records in a fresh checkout, where ``--out`` does not
    exist yet (no pair is scored there, so nothing else creates it)."""
    sizes = BenchSizes()
    settings = {"sizes": dataclasses.asdict(sizes), "device": "cpu", "difficulty": "realistic"}
    run = {
        **settings,
        "readers_scenario": "realistic",
        "recipe_overrides": {},
        "readers": {},
        "commit": "abc",
        "code_hash": code_hash(),
    }
    for pair in FINAL_SEEDS:
        write_record(tmp_path / "records", pair, run | {"seed_train": pair[0]})
    out = tmp_path / "fresh" / "bench-final"
    summary = run_protocol(out, sizes, FINAL_SEEDS, protocol="dev", record=tmp_path / "records")
    assert summary["pair_commits"] == ["abc"] * 3
    assert (out / "protocol.json").is_file()
