"""Benchmark ml.readerstudy: type I error on Roe–Metz null studies and the speed of one large analysis.

Usage: ``python -m tests.bench.bench_readerstudy [--studies 2000] [--seed 20261204]``.

Type I error: ``--studies`` null studies (equal separation in both conditions) drawn by the Roe & Metz (1997)
model (``ml.readerstudy.simulate``, which shares no code with the analysis), 5 readers × 2 conditions × 100
cases (50 + 50), continuous and 5-bin ratings; the share of studies whose OR-Hillis global test rejects at
α = 0.05, per covariance method, with its binomial 95% CI. Target 0.05 ± 0.015.

Speed: 10 readers × 2 conditions × 1,000 cases, jackknife covariance, median of ``--repeat`` runs of the
whole ``mrmc`` call (input validation included). Target ≤ 1 s on 2 cores.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from ml.readerstudy import mrmc
from ml.readerstudy.simulate import RoeMetz, roe_metz

ALPHA, TARGET_LOW, TARGET_HIGH, TARGET_SPEED_S = 0.05, 0.035, 0.065, 1.0
STRUCTURES = {
    "high case corr. (σ²_C=.3 σ²_TC=.3 σ²_RC=.2 σ²_E=.2)": RoeMetz(),
    "low case corr. (σ²_C=.1 σ²_TC=.1 σ²_RC=.2 σ²_E=.6)": RoeMetz(
        case=0.1, condition_case=0.1, reader_case=0.2, error=0.6
    ),
}


def type_one_error(
    studies: int, seed: int, mu: float, components: RoeMetz, bins: int | None
) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    rejected = {"jackknife": 0, "delong": 0, "unbiased": 0}
    for _ in range(studies):
        s = roe_metz(5, 50, 50, (mu, mu), rng, components=components, bins=bins)
        for cov in rejected:
            res = mrmc(s.reader, s.case, s.condition, s.truth, s.rating, cov=cov)  # type: ignore[arg-type]
            rejected[cov] += res.global_test.p_value < ALPHA
    return {cov: n / studies for cov, n in rejected.items()}


def speed(repeat: int, seed: int) -> tuple[float, float]:
    s = roe_metz(10, 500, 500, (1.0, 1.2), np.random.default_rng(seed))
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        res = mrmc(s.reader, s.case, s.condition, s.truth, s.rating, cov="jackknife")
        times.append(time.perf_counter() - start)
    return float(np.median(times)), res.global_test.p_value


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=20261204)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)

    half = 1.96 * np.sqrt(ALPHA * (1 - ALPHA) / args.studies)
    print(
        f"Type I error, {args.studies} Roe-Metz null studies each, 5 readers x 2 conditions x 100 cases, "
        f"alpha = {ALPHA} (binomial 95% half-width at 0.05: {half:.4f}); target {TARGET_LOW}-{TARGET_HIGH}"
    )
    print(
        f"{'variance structure (σ²_R = σ²_TR = .011)':52s} {'AUC sep':>7s} {'ratings':>10s} {'jackknife':>9s} {'DeLong':>7s} {'unbiased':>8s}"
    )
    rows = []
    for i, (name, comps) in enumerate(STRUCTURES.items()):
        for mu, bins in ((1.5, None), (1.0, 5)):
            start = time.perf_counter()
            rates = type_one_error(args.studies, args.seed + 10 * i + (bins or 0), mu, comps, bins)
            rows.append((name, mu, bins, rates))
            label = "5 bins" if bins else "continuous"
            print(
                f"{name:52s} {mu:7.2f} {label:>10s} {rates['jackknife']:9.4f} {rates['delong']:7.4f} "
                f"{rates['unbiased']:8.4f}   ({time.perf_counter() - start:.1f} s)"
            )
    seconds, p = speed(args.repeat, args.seed)
    ok = seconds <= TARGET_SPEED_S
    print(
        f"\nSpeed: 10 readers x 2 conditions x 1,000 cases, jackknife: median {seconds * 1000:.1f} ms of "
        f"{args.repeat} runs (target <= {TARGET_SPEED_S:.0f} s: {'met' if ok else 'MISSED'}; p = {p:.4f})"
    )
    all_rates = [r for *_, rates in rows for r in rates.values()]
    within = all(TARGET_LOW <= r <= TARGET_HIGH for r in all_rates)
    print(f"Type I error within {TARGET_LOW}-{TARGET_HIGH} in every row: {'yes' if within else 'NO'}")
    return {"rows": rows, "speed_s": seconds, "within": within}


if __name__ == "__main__":
    main()
