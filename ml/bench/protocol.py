"""The honest accuracy protocol of ``python -m ml.bench accuracy`` (issue 18): seed bookkeeping, a
scan-clustered bootstrap, DeLong paired tests, and every metric as mean ± SD over seed pairs with a 95% CI.

**Seeds.** ``DEV_SEEDS`` are the (train, test) phantom seed pairs that development has seen: every run in
ml/bench/RESULTS.md before issue 18 used (1001, 2002), and (1003, 2004) is the smoke-run pair of issue 18.
``FINAL_SEEDS`` were drawn for the final table and never used before it; they refuse to overlap a
development seed (:func:`seed_pairs`). Scoring them is done once, on frozen code (the commit is recorded).

**Intervals.** Items of one test set are not independent (the 14 lesion outputs and both joints of a study,
every slice of a scan), so the bootstrap resamples *studies* (clusters) with replacement, within each seed
pair's test set (strata), recomputes each metric per pair and averages over the pairs: the percentile
interval of that average is the 95% CI of the seed-mean. ``mean ± SD`` is over the seed pairs (training
and test-set variation together).

**Paired tests.** Reader-aware lesion training (the table's soft-label model, and the confusion-layer model)
against majority vote: per output, DeLong's paired test (``ml.readerstudy.covariance.delong``) per pair,
combined over the independent pairs as z = mean difference / sqrt(Σ var / K²); for the mean AUC over the 14
outputs, whose outputs share studies, the clustered bootstrap of the paired difference (p = twice the
smaller tail share of replicates at or beyond zero).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ml.readerstudy.covariance import delong
from ml.readerstudy.metrics import auc as empirical_auc

SeedPair = tuple[int, int]
FloatArray = NDArray[np.float64]
IndexArray = NDArray[np.int64]

#: (train, test) seeds development has seen; never final.
DEV_SEEDS: tuple[SeedPair, ...] = ((1001, 2002), (1003, 2004))
#: (train, test) seeds of the final table: drawn for it, used for nothing else before it.
FINAL_SEEDS: tuple[SeedPair, ...] = ((5171, 6173), (5279, 6287), (5381, 6397))
#: Smallest held-out sets of a final run (issue 18): MRI and CT phantoms per test seed.
FINAL_MIN_TEST = {"mri_test": 300, "ct_test": 100}


def dev_seed_values() -> set[int]:
    """Every seed (train or test) development has used."""
    return {s for pair in DEV_SEEDS for s in pair}


def check_final(pairs: Sequence[SeedPair]) -> None:
    """Raise ValueError unless ``pairs`` can make a final table: >= 3 pairs, no seed used in development,
    no seed twice (a test seed that trained elsewhere is not held out)."""
    if len(pairs) < 3:
        raise ValueError(f"a final table needs >= 3 seed pairs, got {len(pairs)}")
    used = sorted(s for pair in pairs for s in pair if s in dev_seed_values())
    if used:
        raise ValueError(f"seed(s) {used} were used in development (ml.bench.protocol.DEV_SEEDS)")
    flat = [s for pair in pairs for s in pair]
    if len(set(flat)) != len(flat):
        raise ValueError(f"a seed appears twice in {list(pairs)}")


def seed_pairs(spec: str) -> tuple[str, tuple[SeedPair, ...]]:
    """``dev``, ``final`` or explicit pairs ``T:S,T:S`` -> (protocol name, pairs). Explicit pairs are
    ``final`` only when :func:`check_final` accepts them, else ``dev``."""
    if spec == "dev":
        return "dev", DEV_SEEDS
    if spec == "final":
        check_final(FINAL_SEEDS)
        return "final", FINAL_SEEDS
    try:
        pairs = tuple((int(a), int(b)) for a, b in (p.split(":") for p in spec.split(",")))
    except ValueError as exc:
        raise ValueError(f"--seeds takes dev, final or TRAIN:TEST[,TRAIN:TEST...], got {spec!r}") from exc
    if any(a == b for a, b in pairs):
        raise ValueError("a pair's train and test seeds must differ")
    try:
        check_final(pairs)
    except ValueError:
        return "dev", pairs
    return "final", pairs


# --- the scan-clustered bootstrap -------------------------------------------------------------------------


class _Clusters:
    """Items of one stratum grouped by cluster, for fast resampling of whole clusters."""

    def __init__(self, labels: Sequence[Any]) -> None:
        codes = np.unique(np.asarray(labels), return_inverse=True)[1].ravel()
        self.order = np.argsort(codes, kind="stable")
        self.counts = np.bincount(codes)
        self.starts = np.concatenate([[0], np.cumsum(self.counts)[:-1]])

    def draw(self, rng: np.random.Generator) -> IndexArray:
        chosen = rng.integers(0, len(self.counts), len(self.counts))
        counts = self.counts[chosen]
        first = np.repeat(self.starts[chosen] - (np.cumsum(counts) - counts), counts)
        return np.asarray(self.order[first + np.arange(counts.sum())], dtype=np.int64)


def cluster_bootstrap(
    strata: Sequence[Sequence[Any]],
    statistic: Callable[[list[IndexArray]], FloatArray],
    *,
    n_boot: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Percentile interval of ``statistic`` by resampling clusters within each stratum.

    ``strata[k]`` holds the cluster label of each item of stratum k; ``statistic`` gets one index array per
    stratum (items of the drawn clusters, with repeats) and returns a vector of metrics. Returns (low, high,
    replicates (n_boot, M)); replicates where a metric is undefined (NaN) are left out of its interval.
    """
    groups = [_Clusters(s) for s in strata]
    rng = np.random.default_rng(seed)
    reps = np.asarray([statistic([g.draw(rng) for g in groups]) for _ in range(n_boot)], dtype=np.float64)
    tail = 100 * (1 - level) / 2
    with np.errstate(all="ignore"):
        finite = np.isfinite(reps).any(axis=0)
        low = np.full(reps.shape[1], np.nan)
        high = np.full(reps.shape[1], np.nan)
        if finite.any():
            low[finite] = np.nanpercentile(reps[:, finite], tail, axis=0)
            high[finite] = np.nanpercentile(reps[:, finite], 100 - tail, axis=0)
    return low, high, reps


# --- metrics of one test set from its per-item scores -----------------------------------------------------

MetricFn = Callable[[Mapping[str, Any], IndexArray], dict[str, float]]


def _auc(truth: NDArray[Any], score: NDArray[Any]) -> float:
    keep = np.isfinite(truth)
    y = truth[keep].astype(bool)
    if y.all() or not y.any():
        return math.nan
    return empirical_auc(y, score[keep])


def contour_metrics(items: Mapping[str, Any], idx: IndexArray) -> dict[str, float]:
    """Share of joint slices traced within 2.76 mm (an untraced slice counts as a miss)."""
    below = np.asarray(items["below"], dtype=np.float64)[idx]
    return {"contours: fraction of joint slices < 2.76 mm": float(below.mean()) if below.size else math.nan}


LESION_MODES = ("majority", "soft", "readers")
#: The lesion model the table scores per output: the product's default target.
TABLE_TARGET = "soft"


def lesion_metrics(items: Mapping[str, Any], idx: IndexArray) -> dict[str, float]:
    """Per-output AUC of the table's model, mean AUC of each target and the paired mean-AUC differences."""
    out: dict[str, float] = {}
    means: dict[str, float] = {}
    for mode in (TABLE_TARGET, *(m for m in LESION_MODES if m != TABLE_TARGET)):
        ref = np.asarray(items[mode]["reference"], dtype=np.float64)[idx]
        prob = np.asarray(items[mode]["probs"], dtype=np.float64)[idx]
        aucs = [_auc(ref[:, o], prob[:, o]) for o in range(ref.shape[1])]
        if mode == TABLE_TARGET:
            out |= {f"lesions ({mode}): AUC {n}": a for n, a in zip(items["outputs"], aucs, strict=True)}
        finite = [a for a in aucs if np.isfinite(a)]
        means[mode] = float(np.mean(finite)) if finite else math.nan
    out |= {f"lesions: mean AUC, target={mode}": means[mode] for mode in LESION_MODES}
    out["lesions: mean AUC soft - majority"] = means["soft"] - means["majority"]
    out["lesions: mean AUC readers - majority"] = means["readers"] - means["majority"]
    return out


def ct_metrics(items: Mapping[str, Any], idx: IndexArray) -> dict[str, float]:
    """5-class accuracy and QWK, one-vs-rest AUCs of the 5 grades and of every grouping."""
    from ml.ctgrade.metrics import grading_metrics  # torch-free, but keeps this module import light

    result = grading_metrics(np.asarray(items["grades"])[idx], np.asarray(items["probs"])[idx])
    out = {"CT: 5-class accuracy": result["mny5"]["accuracy"], "CT: QWK (5 classes)": result["mny5"]["qwk"]}
    for grouping, metrics in result.items():
        out |= {f"CT: AUC {grouping} class {k}": float(a) for k, a in enumerate(metrics["auc"])}
    return out


METRICS: dict[str, MetricFn] = {"contours": contour_metrics, "lesions": lesion_metrics, "ct": ct_metrics}


def _arrays(items: Mapping[str, Any]) -> dict[str, Any]:
    """``items`` with its numeric lists as arrays once (the metrics index them once per replicate)."""
    return {
        k: _arrays(v) if isinstance(v, Mapping) else np.asarray(v) if k not in ("outputs", "cluster") else v
        for k, v in items.items()
    }


def summarise(
    component: str, runs: Sequence[Mapping[str, Any]], *, n_boot: int = 2000, seed: int = 0
) -> dict[str, dict[str, Any]]:
    """Each metric of ``component`` over the seed pairs' per-item scores ``runs`` (one ``items`` mapping per
    pair, with ``cluster`` labels): per-pair values, mean, SD (ddof 1) and the clustered-bootstrap 95% CI of
    the mean; paired differences also get a bootstrap two-sided p-value."""
    fn = METRICS[component]
    runs = [_arrays(r) for r in runs]
    alls = [np.arange(len(r["cluster"])) for r in runs]
    per_pair = [fn(r, a) for r, a in zip(runs, alls, strict=True)]
    names = list(per_pair[0])

    def statistic(idx: list[IndexArray]) -> FloatArray:
        metrics = [fn(r, i) for r, i in zip(runs, idx, strict=True)]
        values = np.array([[m[n] for n in names] for m in metrics], dtype=np.float64)
        with np.errstate(all="ignore"):
            return np.asarray(np.nanmean(values, axis=0), dtype=np.float64)

    low, high, reps = cluster_bootstrap([r["cluster"] for r in runs], statistic, n_boot=n_boot, seed=seed)
    out: dict[str, dict[str, Any]] = {}
    for m, name in enumerate(names):
        values = np.array([p[name] for p in per_pair], dtype=np.float64)
        finite = values[np.isfinite(values)]
        row: dict[str, Any] = {
            "values": values.tolist(),
            "mean": float(finite.mean()) if finite.size else math.nan,
            "sd": float(finite.std(ddof=1)) if finite.size > 1 else math.nan,
            "ci": [float(low[m]), float(high[m])],
        }
        if " - " in name:
            r = reps[:, m][np.isfinite(reps[:, m])]
            row["p_bootstrap"] = float(min(1.0, 2 * min((r <= 0).mean(), (r >= 0).mean()))) if r.size else 1.0
        out[name] = row
    return out


def delong_paired(
    runs: Sequence[Mapping[str, Any]], better: str, baseline: str = "majority"
) -> dict[str, dict[str, float]]:
    """Per lesion output: DeLong's paired test of ``better``'s AUC against ``baseline``'s, combined over the
    seed pairs (independent test sets): mean difference, its SE, z and two-sided p. Outputs where a pair's
    test set has fewer than 2 positives or negatives are left out of that pair."""
    out: dict[str, dict[str, float]] = {}
    for o, name in enumerate(runs[0]["outputs"]):
        diffs, variances = [], []
        for r in runs:
            truth = np.asarray(r[better]["reference"], dtype=np.float64)[:, o]
            keep = np.isfinite(truth)
            y = truth[keep].astype(bool)
            if y.sum() < 2 or (~y).sum() < 2:
                continue
            scores = np.stack(
                [
                    np.asarray(r[better]["probs"], dtype=np.float64)[keep, o],
                    np.asarray(r[baseline]["probs"], dtype=np.float64)[keep, o],
                ]
            )
            cov = delong(y, scores, np.ones_like(scores, dtype=bool))
            diffs.append(empirical_auc(y, scores[0]) - empirical_auc(y, scores[1]))
            variances.append(float(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]))
        if not diffs:
            out[name] = {"diff": math.nan, "se": math.nan, "z": math.nan, "p": math.nan, "pairs": 0}
            continue
        k = len(diffs)
        diff, se = float(np.mean(diffs)), math.sqrt(max(sum(variances), 0.0)) / k
        z = diff / se if se > 0 else (math.inf if diff > 0 else -math.inf if diff < 0 else 0.0)
        out[name] = {"diff": diff, "se": se, "z": z, "p": math.erfc(abs(z) / math.sqrt(2)), "pairs": k}
    return out
