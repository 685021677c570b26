"""Benchmark the consensus engine against majority vote and crowd-kit's DawidSkene (SPEC.md §4, §6.5).

Usage: ``python -m tests.bench.bench_consensus [--sizes 1e3,1e4,1e5,1e6] [--crowdkit-max 1e6]``.
Prints fit time (best of ``--repeat`` untraced runs), peak traced memory (tracemalloc, one extra run),
accuracy and log-loss against the truth, and the mean absolute error of the confusion matrices against
the generating ones. crowd-kit is optional (benchmark only): ``pip install --no-deps crowd-kit==1.4.2``
plus ``pip install nltk`` (its package import needs nltk; pandas, scikit-learn, attrs, tqdm are present).
"""

from __future__ import annotations

import argparse
import time
import tracemalloc
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ml.consensus import fit
from tests.bench.consensus_data import BenchData, make_data

FloatArray = NDArray[np.float64]
TARGET_TIME_S, TARGET_PEAK_MB, TARGET_SPEEDUP, TARGET_ACC_POINTS = 0.5, 300.0, 50.0, 0.1


@dataclass(frozen=True)
class Outcome:
    """What every method returns: posterior (n_items, K), confusion (R, K, K), EM iterations."""

    posterior: FloatArray
    confusion: FloatArray
    n_iter: int


@dataclass(frozen=True)
class Row:
    kind: str
    n_items: int
    method: str
    time_s: float
    peak_mb: float | None
    accuracy: float
    log_loss: float
    conf_mae: float
    n_iter: int


def ours(data: BenchData, model: str) -> Callable[[], Outcome]:
    r = data.readings

    def run() -> Outcome:
        res = fit(r.items, r.readers, r.labels, data.n_classes, model=model)  # type: ignore[arg-type]
        return Outcome(res.posterior, res.confusion, res.n_iter)

    return run


def majority_vote(data: BenchData) -> Callable[[], Outcome]:
    r, k = data.readings, data.n_classes
    n_items, n_readers = r.truth.size, data.confusion.shape[0]

    def run() -> Outcome:
        votes = np.bincount(r.items * k + r.labels, minlength=n_items * k).reshape(n_items, k)
        shares = votes / np.maximum(votes.sum(axis=1, keepdims=True), 1)
        mv = np.argmax(votes, axis=1)
        cells = np.bincount((r.readers * k + mv[r.items]) * k + r.labels, minlength=n_readers * k * k)
        conf = cells.reshape(n_readers, k, k).astype(float)
        conf = conf / np.maximum(conf.sum(axis=2, keepdims=True), 1)
        return Outcome(shares, conf, 0)

    return run


def crowdkit(data: BenchData) -> Callable[[], Outcome] | None:
    try:
        import pandas as pd
        from crowdkit.aggregation import DawidSkene
    except ImportError:
        return None
    r, k = data.readings, data.n_classes
    frame = pd.DataFrame({"task": r.items, "worker": r.readers, "label": r.labels})

    def run() -> Outcome:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = DawidSkene(n_iter=100, tol=1e-5).fit(frame)
        post = ds.probas_.reindex(index=range(r.truth.size), columns=range(k)).fillna(0).to_numpy()
        err = ds.errors_.reindex(columns=range(k)).stack()  # (worker, said, truth) -> P(said | truth)
        conf = np.zeros((data.confusion.shape[0], k, k))
        idx = err.index.to_frame().to_numpy().astype(int)
        conf[idx[:, 0], idx[:, 2], idx[:, 1]] = err.to_numpy()
        return Outcome(post, conf, len(ds.loss_history_))

    return run


def measure(
    kind: str, data: BenchData, method: str, run: Callable[[], Outcome], repeat: int, trace: bool
) -> Row:
    """Time ``run`` (best of ``repeat``), optionally trace its peak memory, and score the outcome."""
    times, outcome = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        outcome = run()
        times.append(time.perf_counter() - start)
    peak = None
    if trace:
        tracemalloc.start()
        run()
        peak = tracemalloc.get_traced_memory()[1] / 1e6
        tracemalloc.stop()
    assert outcome is not None
    truth = data.readings.truth
    p_true = outcome.posterior[np.arange(truth.size), truth]
    return Row(
        kind,
        truth.size,
        method,
        min(times),
        peak,
        accuracy=float(np.mean(np.argmax(outcome.posterior, axis=1) == truth)),
        log_loss=float(-np.mean(np.log(np.clip(p_true, 1e-15, 1.0)))),
        conf_mae=float(np.mean(np.abs(outcome.confusion - data.confusion))),
        n_iter=outcome.n_iter,
    )


def print_row(row: Row) -> None:
    peak = f"{row.peak_mb:9.1f}" if row.peak_mb is not None else f"{'-':>9}"
    print(
        f"{row.kind:<15}{row.n_items:>9}  {row.method:<14}{row.time_s:>9.3f}{peak}"
        f"{100 * row.accuracy:>9.2f}{row.log_loss:>9.4f}{row.conf_mae:>9.4f}{row.n_iter:>6}",
        flush=True,
    )


def run_size(kind: str, n_items: int, args: argparse.Namespace) -> list[Row]:
    """Benchmark every method on one data set; crowd-kit only up to ``--crowdkit-max`` items."""
    data = make_data(kind, n_items, seed=args.seed)
    methods: list[tuple[str, Callable[[], Outcome] | None, int]] = [
        ("ours-full", ours(data, "full"), args.repeat),
        ("ours-one_coin", ours(data, "one_coin"), args.repeat),
        ("ours-ordinal", ours(data, "ordinal"), args.repeat),
        ("majority", majority_vote(data), args.repeat),
    ]
    if n_items <= args.crowdkit_max and kind != "ordinal-sparse":
        methods.append(("crowdkit-DS", crowdkit(data), 1))
    rows = []
    for name, run, repeat in methods:
        if run is None:
            print(f"{kind:<15}{n_items:>9}  {name:<14}  not installed (see module docstring)")
            continue
        trace = name != "crowdkit-DS" or n_items <= args.crowdkit_trace_max
        rows.append(measure(kind, data, name, run, repeat, trace))
        print_row(rows[-1])
    return rows


def crowdkit_parity(n_items: int = 10_000, n_iter: int = 20) -> None:
    """Print the largest difference to crowd-kit DS with smoothing off and a fixed iteration count."""
    try:
        import pandas as pd
        from crowdkit.aggregation import DawidSkene
    except ImportError:
        return
    r = make_data("binary", n_items, seed=1).readings
    frame = pd.DataFrame({"task": r.items, "worker": r.readers, "label": r.labels})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = DawidSkene(n_iter=n_iter, tol=-np.inf).fit(frame)
    theirs = ds.probas_.reindex(index=range(n_items), columns=range(2)).to_numpy()
    res = fit(r.items, r.readers, r.labels, 2, smoothing=None, max_iter=n_iter, tol=-np.inf)
    print(
        f"\nParity with crowd-kit DawidSkene (binary, n={n_items}, smoothing=None, {n_iter} iterations): "
        f"max |posterior difference| = {np.abs(theirs - res.posterior).max():.1e}"
    )


def summarise(rows: list[Row]) -> None:
    """Check the SPEC/brief targets at the largest size where each comparison ran."""
    print("\nTargets")
    for kind in ("binary", "ordinal"):
        full = [r for r in rows if r.kind == kind and r.method == "ours-full"]
        if not full:
            continue
        big = max(full, key=lambda r: r.n_items)
        peak = big.peak_mb if big.peak_mb is not None else float("nan")
        print(
            f"  {kind} n={big.n_items}: full fit {big.time_s:.3f} s (target <= {TARGET_TIME_S}), "
            f"peak {peak:.1f} MB (target <= {TARGET_PEAK_MB:.0f})"
        )
        ck = {r.n_items: r for r in rows if r.kind == kind and r.method == "crowdkit-DS"}
        both = [r for r in full if r.n_items in ck]
        if both:
            at = max(both, key=lambda r: r.n_items)
            ref = ck[at.n_items]
            print(
                f"  {kind} n={at.n_items}: {ref.time_s / at.time_s:.0f}x faster than crowd-kit DS "
                f"(target >= {TARGET_SPEEDUP:.0f}x); accuracy {100 * at.accuracy:.2f}% vs "
                f"{100 * ref.accuracy:.2f}% (target: within {TARGET_ACC_POINTS} points or better)"
            )
    for r_full in (r for r in rows if r.kind == "ordinal-sparse" and r.method == "ours-full"):
        r_ord = next(
            r
            for r in rows
            if r.kind == "ordinal-sparse" and r.method == "ours-ordinal" and r.n_items == r_full.n_items
        )
        verdict = "yes" if r_ord.accuracy > r_full.accuracy and r_ord.log_loss < r_full.log_loss else "NO"
        print(
            f"  ordinal-sparse n={r_full.n_items}: ordinal beats full on accuracy and log-loss: {verdict} "
            f"({100 * r_ord.accuracy:.2f}% / {r_ord.log_loss:.3f} vs "
            f"{100 * r_full.accuracy:.2f}% / {r_full.log_loss:.3f})"
        )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sizes = lambda s: [int(float(x)) for x in s.split(",")]  # noqa: E731
    parser.add_argument("--sizes", type=sizes, default=sizes("1e3,1e4,1e5,1e6"))
    parser.add_argument("--kinds", default="binary,ordinal,ordinal-sparse")
    parser.add_argument("--crowdkit-max", type=lambda s: int(float(s)), default=10**6)
    parser.add_argument("--crowdkit-trace-max", type=lambda s: int(float(s)), default=10**5)
    parser.add_argument("--sparse-max", type=lambda s: int(float(s)), default=10**5)
    parser.add_argument("--parity-items", type=lambda s: int(float(s)), default=10**4, help="0: skip")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    print(
        f"{'data':<15}{'items':>9}  {'method':<14}{'time_s':>9}{'peak_MB':>9}{'acc_%':>9}"
        f"{'logloss':>9}{'conf_MAE':>9}{'iters':>6}"
    )
    rows: list[Row] = []
    for kind in args.kinds.split(","):
        for n_items in args.sizes:
            if kind == "ordinal-sparse" and n_items > args.sparse_max:
                continue
            rows += run_size(kind, n_items, args)
    if args.parity_items > 0:
        crowdkit_parity(args.parity_items)
    summarise(rows)


if __name__ == "__main__":
    main()
