"""Consensus under misspecification: Concord vs majority vote and crowd-kit DS, GLAD, MACE (issue 18).

Usage: ``python -m tests.bench.bench_consensus_robust [--seeds final|dev|1,2] [--items 500]``.
Readers come from ``ml.consensus.realistic`` (latent evidence, shared item difficulty, session memory):
scenarios ``realistic``, ``correlated`` (more tiny lesions and strong mimics), ``paper_a`` (2 readers x 3
sessions; Concord pooled, session-as-annotator and mean-of-repeats), ``spammer`` (one random reader reads
every study) and ``ct`` (ordinal readers with their own cut points, mNY 0-4). Binary scenarios use the
findings in ``--findings`` (one consensus problem each). Per method, items of every finding and seed are
pooled and scored: accuracy, expected calibration error (ECE, 10 equal-width bins of the MAP
probability), Brier score (multi-class, sum over classes) and log-loss, each with a percentile bootstrap
95% CI over items (``--boot`` replicates). Development seeds (``dev``, 0-1) and final seeds (``final``,
1001-1003) are disjoint; RESULTS-consensus-robust.md says which table used which.

crowd-kit is optional (``make bench-consensus-robust`` installs it): GLAD runs ``--glad-iter`` iterations
and MACE ``--mace-restarts`` restarts (crowd-kit defaults 100 and 10 cost ~20 s each per 1,000 items here).
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ml.consensus import fit
from ml.consensus.realistic import SCENARIOS, simulate_ct, simulate_finding
from ml.consensus.result import ModelName, Repeats
from ml.consensus.simulate import SimulatedReadings

FloatArray = NDArray[np.float64]
DEV_SEEDS, FINAL_SEEDS = (0, 1), (1001, 1002, 1003)
Method = Callable[[SimulatedReadings, int], FloatArray]


def majority(r: SimulatedReadings, k: int) -> FloatArray:
    """Share of each item's readings per class (ties stay ties)."""
    n = r.truth.size
    votes = np.bincount(r.items * k + r.labels, minlength=n * k).reshape(n, k).astype(float)
    total = votes.sum(axis=1, keepdims=True)
    return np.divide(votes, total, out=np.full_like(votes, 1.0 / k), where=total > 0)


def concord(model: ModelName, repeats: Repeats = "pool") -> Method:
    def run(r: SimulatedReadings, k: int) -> FloatArray:
        res = fit(r.items, r.readers, r.labels, k, model=model, sessions=r.sessions, repeats=repeats)
        return np.asarray(res.posterior)

    return run


def crowdkit_method(name: str, args: argparse.Namespace) -> Method | None:
    try:
        import pandas as pd
        from crowdkit.aggregation import GLAD, MACE, DawidSkene
    except ImportError:
        return None

    def run(r: SimulatedReadings, k: int) -> FloatArray:
        frame = pd.DataFrame({"task": r.items, "worker": r.readers, "label": r.labels})
        model: Any
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if name == "ck-DS":
                model = DawidSkene(n_iter=100, tol=1e-5).fit(frame)
            elif name == "ck-GLAD":
                model = GLAD(n_iter=args.glad_iter).fit(frame)
            else:
                model = MACE(n_restarts=args.mace_restarts, random_state=0).fit(frame)
        post = model.probas_.reindex(index=range(r.truth.size), columns=range(k)).fillna(0.0).to_numpy()
        total = post.sum(axis=1, keepdims=True)
        return np.asarray(np.divide(post, total, out=np.full_like(post, 1.0 / k), where=total > 0))

    return run


@dataclass
class Scores:
    """Per-item arrays pooled over problems: correct (0/1), MAP confidence, p(true), Brier."""

    correct: list[FloatArray]
    confidence: list[FloatArray]
    p_true: list[FloatArray]
    brier: list[FloatArray]
    seconds: float = 0.0

    def add(self, post: FloatArray, truth: NDArray[np.int64]) -> None:
        k = post.shape[1]
        onehot = np.eye(k)[truth]
        self.correct.append((np.argmax(post, axis=1) == truth).astype(float))
        self.confidence.append(post.max(axis=1))
        self.p_true.append(post[np.arange(truth.size), truth])
        self.brier.append(np.sum((post - onehot) ** 2, axis=1))


def ece(correct: FloatArray, confidence: FloatArray, bins: int = 10) -> FloatArray:
    """ECE per bootstrap row of (B, n) arrays: Σ_b |acc_b − conf_b| · n_b / n over equal-width bins."""
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    n = correct.shape[1]
    out = np.zeros(correct.shape[0])
    for b in range(bins):
        inside = which == b
        gap = np.sum(np.where(inside, correct - confidence, 0.0), axis=1)
        out += np.abs(gap) / n
    return out


def summarise(s: Scores, n_boot: int, rng: np.random.Generator) -> dict[str, tuple[float, float, float]]:
    """Point value and percentile bootstrap 95% CI over items of each metric."""
    correct, conf = np.concatenate(s.correct), np.concatenate(s.confidence)
    logloss = -np.log(np.clip(np.concatenate(s.p_true), 1e-15, 1.0))
    brier = np.concatenate(s.brier)
    idx = rng.integers(0, correct.size, (n_boot, correct.size))
    out = {}
    for name, point, reps in (
        ("acc", correct.mean(), correct[idx].mean(axis=1)),
        ("ece", ece(correct[None], conf[None])[0], ece(correct[idx], conf[idx])),
        ("brier", brier.mean(), brier[idx].mean(axis=1)),
        ("logloss", logloss.mean(), logloss[idx].mean(axis=1)),
    ):
        lo, hi = np.percentile(reps, [2.5, 97.5])
        out[name] = (float(point), float(lo), float(hi))
    return out


def problems(
    scenario: str, args: argparse.Namespace, seeds: tuple[int, ...]
) -> list[tuple[SimulatedReadings, int]]:
    """The consensus problems of one scenario: (readings, n_classes) per finding and seed."""
    if scenario == "ct":
        return [(simulate_ct(args.items, seed=seed).readings, 5) for seed in seeds]
    out = []
    for seed in seeds:
        for j, finding in enumerate(args.findings.split(",")):
            out.append((simulate_finding(args.items, finding, scenario, seed=seed * 100 + j).readings, 2))
    return out


def methods_for(scenario: str, args: argparse.Namespace) -> list[tuple[str, Method | None]]:
    out: list[tuple[str, Method | None]] = [
        ("majority", majority),
        ("ck-DS", crowdkit_method("ck-DS", args)),
        ("ck-GLAD", crowdkit_method("ck-GLAD", args)),
        ("ck-MACE", crowdkit_method("ck-MACE", args)),
        ("concord-full", concord("full")),
        ("concord-one_coin", concord("one_coin")),
        ("concord-ordinal", concord("ordinal")),
    ]
    if SCENARIOS.get(scenario) is not None and SCENARIOS[scenario].n_sessions > 1:
        out += [
            ("concord-full-session", concord("full", "session")),
            ("concord-full-mean", concord("full", "mean")),
        ]
    if args.no_crowdkit:
        out = [(n, m) for n, m in out if not n.startswith("ck-")]
    return out


def fmt(v: tuple[float, float, float], scale: float = 1.0, digits: int = 3) -> str:
    return f"{v[0] * scale:.{digits}f} [{v[1] * scale:.{digits}f}, {v[2] * scale:.{digits}f}]"


def run(args: argparse.Namespace) -> dict[str, dict[str, dict[str, tuple[float, float, float]]]]:
    seeds = (
        DEV_SEEDS
        if args.seeds == "dev"
        else FINAL_SEEDS
        if args.seeds == "final"
        else tuple(int(x) for x in args.seeds.split(","))
    )
    print(f"seeds {seeds}, {args.items} items per problem, findings {args.findings}, bootstrap {args.boot}")
    print(f"{'scenario':<11}{'method':<22}{'accuracy %':<24}{'ECE':<24}{'Brier':<24}{'log-loss':<24}{'s':>6}")
    table: dict[str, dict[str, dict[str, tuple[float, float, float]]]] = {}
    rng = np.random.default_rng(12345)
    for scenario in args.scenarios.split(","):
        probs = problems(scenario, args, seeds)
        table[scenario] = {}
        for name, method in methods_for(scenario, args):
            if method is None:
                print(
                    f"{scenario:<11}{name:<22}not installed (make bench-consensus-robust installs crowd-kit)"
                )
                continue
            s = Scores([], [], [], [])
            start = time.perf_counter()
            for readings, k in probs:
                s.add(method(readings, k), readings.truth)
            s.seconds = time.perf_counter() - start
            m = summarise(s, args.boot, rng)
            table[scenario][name] = m
            print(
                f"{scenario:<11}{name:<22}{fmt(m['acc'], 100, 1):<24}{fmt(m['ece']):<24}{fmt(m['brier']):<24}"
                f"{fmt(m['logloss']):<24}{s.seconds:>6.1f}",
                flush=True,
            )
    return table


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="final", help="dev, final, or a comma list")
    parser.add_argument("--items", type=int, default=500)
    parser.add_argument("--findings", default="bme,erosion")
    parser.add_argument("--scenarios", default="realistic,correlated,paper_a,spammer,ct")
    parser.add_argument("--boot", type=int, default=1000)
    parser.add_argument("--glad-iter", type=int, default=30)
    parser.add_argument("--mace-restarts", type=int, default=2)
    parser.add_argument("--no-crowdkit", action="store_true")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    run(parse_args(argv))


if __name__ == "__main__":
    main()
