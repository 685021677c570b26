"""Obuchowski–Rockette MRMC analysis with Hillis's denominator degrees of freedom, numpy/scipy only.

References (the formulas and the names follow MRMCaov 0.3.0, which the tests match on its published output):
- Obuchowski NA, Rockette HE (1995). Commun Stat Simul Comput 24:285–308.
- Hillis SL, Obuchowski NA, Schartz KM, Berbaum KS (2005). Stat Med 24:1579–1607.
- Hillis SL (2007). A comparison of denominator degrees of freedom methods for multiple observer ROC
  analysis. Stat Med 26:596–619.
- Smith BJ, Hillis SL (2020). Multi-reader multi-case analysis of variance software for diagnostic
  performance comparison of imaging modalities. Proc SPIE 11316:113160K.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats

from ml.readerstudy import covariance as covmod
from ml.readerstudy.metrics import METRICS, UNIT_METRICS, Metric, value
from ml.readerstudy.result import (
    ConditionEstimate,
    Difference,
    GlobalTest,
    MrmcResult,
    ReaderEstimate,
    VarianceComponents,
)

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
CovMethod = Literal["jackknife", "delong", "unbiased"]
Factor = Literal["random", "fixed"]
COV_METHODS: tuple[CovMethod, ...] = ("jackknife", "delong", "unbiased")


class StudyLayout:
    """The study as (G, C) arrays over groups (condition-major) and cases, validated."""

    def __init__(
        self,
        reader: ArrayLike,
        case: ArrayLike,
        condition: ArrayLike,
        truth: ArrayLike,
        rating: ArrayLike,
        metric: Metric,
        conditions: Sequence[object] | None,
        truth_by_reader: bool = False,
    ) -> None:
        columns = {
            name: np.asarray(v)
            for name, v in [
                ("reader", reader),
                ("case", case),
                ("condition", condition),
                ("truth", truth),
                ("rating", rating),
            ]
        }
        lengths = {name: (len(v) if v.ndim == 1 else -1) for name, v in columns.items()}
        if len(set(lengths.values())) != 1 or -1 in lengths.values():
            raise ValueError(
                f"reader, case, condition, truth and rating must be 1-D of equal length: {lengths}"
            )
        if lengths["reader"] == 0:
            raise ValueError("no readings")
        try:
            ratings = columns["rating"].astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError("rating must be numeric") from exc
        if not np.all(np.isfinite(ratings)):
            raise ValueError("rating has missing or infinite values")
        truth_raw = columns["truth"]
        truth_values = set(np.unique(truth_raw).tolist())
        if not truth_values <= {0, 1}:  # True/False compare equal to 1/0
            raise ValueError(f"truth must be 0/1 (or False/True), got {sorted(map(str, truth_values))}")
        truth_flat = truth_raw.astype(bool)

        cond_keys = columns["condition"].astype(str)
        if conditions is None:
            self.conditions = tuple(dict.fromkeys(np.unique(cond_keys).tolist()))
        else:
            self.conditions = tuple(str(c) for c in conditions)
            unknown = set(cond_keys.tolist()) - set(self.conditions)
            if unknown or len(set(self.conditions)) != len(self.conditions):
                raise ValueError(
                    f"conditions {self.conditions} must list each condition once; unlisted: {unknown}"
                )
        reader_keys = columns["reader"].astype(str)
        case_keys = columns["case"].astype(str)
        self.readers = tuple(np.unique(reader_keys).tolist())
        c_idx = {c: i for i, c in enumerate(self.conditions)}
        t = np.array([c_idx[c] for c in cond_keys], dtype=np.int64)
        r = np.searchsorted(np.array(self.readers), reader_keys)
        case_ids, k = np.unique(case_keys, return_inverse=True)

        if truth_by_reader:
            # each reader has their own reference (e.g. a consensus of the other readers): one truth per
            # reader and case, the same in every condition
            reader_truth = np.full((len(self.readers), len(case_ids)), -1, dtype=np.int64)
            np.maximum.at(reader_truth, (r, k), truth_flat.astype(np.int64))
            if np.any(reader_truth[r, k] != truth_flat):
                bad = case_ids[np.unique(k[reader_truth[r, k] != truth_flat])][:5]
                raise ValueError(f"a reader's truth differs between conditions for cases {bad.tolist()}")
            truth_case = reader_truth.max(axis=0) > 0  # only used to check for metric-specific case sets
        else:
            case_truth = np.full(len(case_ids), -1, dtype=np.int64)
            np.maximum.at(case_truth, k, truth_flat.astype(np.int64))
            if np.any(case_truth[k] != truth_flat):
                bad = case_ids[np.unique(k[case_truth[k] != truth_flat])][:5]
                raise ValueError(f"truth differs between readings of the same case: {bad.tolist()}")
            truth_case = case_truth.astype(bool)
            reader_truth = np.broadcast_to(case_truth, (len(self.readers), len(case_ids)))

        # The binary metrics of one truth class live on that class's cases only (MRMCaov's preprocess).
        keep_cases = np.ones(len(case_ids), dtype=bool)
        if metric == "sensitivity":
            keep_cases = truth_case
        elif metric == "specificity":
            keep_cases = ~truth_case
        if not keep_cases.any():
            raise ValueError(f"{metric} needs {'positive' if metric == 'sensitivity' else 'negative'} cases")
        remap = np.cumsum(keep_cases) - 1
        keep_reads = keep_cases[k]
        t, r, k, ratings = t[keep_reads], r[keep_reads], remap[k[keep_reads]], ratings[keep_reads]
        self.case_ids = case_ids[keep_cases]
        self.truth = truth_case[keep_cases]

        n_t, n_r, n_c = len(self.conditions), len(self.readers), len(self.case_ids)
        g = t * n_r + r
        counts = np.bincount(g * n_c + k, minlength=n_t * n_r * n_c)
        if counts.max() > 1:
            dup = np.flatnonzero(counts > 1)[0]
            raise ValueError(
                "a reader rated a case twice in one condition: reader "
                f"{self.readers[(dup // n_c) % n_r]}, condition {self.conditions[dup // (n_c * n_r)]}, "
                f"case {self.case_ids[dup % n_c]}"
            )
        self.read = counts.reshape(n_t * n_r, n_c).astype(bool)
        per_group = self.read.sum(axis=1).reshape(n_t, n_r)
        if np.any(per_group == 0):
            missing = [
                (self.readers[j], self.conditions[i])
                for i, j in zip(*np.nonzero(per_group == 0), strict=True)
            ]
            raise ValueError(
                f"every reader must read under every condition (readers nested within conditions are not "
                f"supported); no reads for (reader, condition) {missing[:5]}"
            )
        self.ratings = np.full((n_t * n_r, n_c), np.nan)
        self.ratings[g, k] = ratings
        self.n_conditions, self.n_readers, self.n_cases = n_t, n_r, n_c
        self.truth_by_reader = truth_by_reader
        # (G, C): the truth each group is scored against (condition-major groups, as ``read``)
        self.truth_groups = np.tile(reader_truth[:, keep_cases] > 0, (n_t, 1))

    def group(self, t: int, r: int) -> int:
        return t * self.n_readers + r

    def design(self) -> str:
        """factorial, cases nested within readers / conditions, or partially paired (MRMCaov's get_design)."""
        if self.read.all():
            return "factorial"
        by_reader = self.read.reshape(self.n_conditions, self.n_readers, -1).any(axis=0)  # (R, C)
        if self.n_readers > 1 and np.all(by_reader.sum(axis=0) == 1):
            return "cases nested within readers"
        by_condition = self.read.reshape(self.n_conditions, self.n_readers, -1).any(axis=1)  # (T, C)
        if np.all(by_condition.sum(axis=0) == 1):
            return "cases nested within conditions"
        return "partially paired"


def _mean_squares(y: FloatArray) -> dict[str, float]:
    """Two-way (reader × condition, one value per cell) ANOVA mean squares; y is (R, T)."""
    n_r, n_t = y.shape
    grand = y.mean()
    by_t = y.mean(axis=0)
    by_r = y.mean(axis=1)
    ms_t = n_r * np.sum((by_t - grand) ** 2) / (n_t - 1)
    ms_r = n_t * np.sum((by_r - grand) ** 2) / (n_r - 1) if n_r > 1 else 0.0
    resid = y - by_t[None, :] - by_r[:, None] + grand
    ms_tr = np.sum(resid**2) / ((n_t - 1) * (n_r - 1)) if n_r > 1 else 0.0
    return {"T": float(ms_t), "R": float(ms_r), "T:R": float(ms_tr)}


def _ratio(num: float, den: float) -> float:
    """num / den, with x / 0 = ±inf for x ≠ 0 and 0 / 0 = nan (e.g. every reader scoring the same)."""
    if den != 0:
        return num / den
    return float(np.copysign(np.inf, num)) if num != 0 else float("nan")


def _hillis_df(error_term: float, ms: float, df_ms: float) -> float:
    """Satterthwaite-type df of ``error_term`` built on mean square ``ms`` (inf when ms = 0 < error_term)."""
    return _ratio(error_term**2, ms**2 / df_ms)


def _f_sf(f: float, df1: float, df2: float) -> float:
    """P(F > f); the F(df1, inf) limit is chi-square(df1) / df1."""
    if np.isnan(f) or np.isnan(df2):
        return float("nan")
    if np.isinf(df2):
        return float(stats.chi2.sf(f * df1, df1))
    return float(stats.f.sf(f, df1, df2))


def _two_sided(stat: float, df: float) -> float:
    """Two-sided p of a t (finite df) or z (df = inf) statistic."""
    if np.isnan(stat) or np.isnan(df):
        return float("nan")
    return float(2 * (stats.norm.sf(abs(stat)) if np.isinf(df) else stats.t.sf(abs(stat), df)))


def _ci(estimate: float, std_err: float, quantile: float, unit: bool) -> tuple[float, float]:
    lower, upper = estimate - quantile * std_err, estimate + quantile * std_err
    if unit:
        lower, upper = max(lower, 0.0), min(upper, 1.0)
    return float(lower), float(upper)


def _threshold(metric: Metric, threshold: float | None, rating: FloatArray) -> float | None:
    if metric == "auc":
        return None
    if threshold is not None:
        return float(threshold)
    if set(np.unique(rating).tolist()) <= {0.0, 1.0}:
        return 1.0
    raise ValueError(
        f"{metric} of non-binary ratings needs a threshold (a case is called positive at rating >= it)"
    )


def mrmc(
    reader: ArrayLike,
    case: ArrayLike,
    condition: ArrayLike,
    truth: ArrayLike,
    rating: ArrayLike,
    *,
    metric: Metric = "auc",
    cov: CovMethod = "jackknife",
    readers: Factor = "random",
    cases: Factor = "random",
    conf_level: float = 0.95,
    threshold: float | None = None,
    conditions: Sequence[object] | None = None,
    truth_by_reader: bool = False,
) -> MrmcResult:
    """Compare conditions by a reader performance metric over readers and cases.

    One entry per reading in the equal-length arrays. ``truth`` is the case's reference standard (0/1);
    ``rating`` a confidence or probability (higher = more likely positive), or 0/1. ``threshold`` makes the
    binary metrics' call (rating >= threshold). ``conditions`` orders the conditions (differences are
    first − second in that order); default sorted. ``truth_by_reader`` lets the truth of a case differ between
    readers (a reference of each reader's own, such as the consensus of the other readers; the same in every
    condition); it needs the jackknife and a metric over all cases (auc, accuracy, kappa). Raises ValueError
    naming what is wrong with the input.
    """
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    if cov not in COV_METHODS:
        raise ValueError(f"cov must be one of {COV_METHODS}, got {cov!r}")
    if readers not in ("random", "fixed") or cases not in ("random", "fixed"):
        raise ValueError("readers and cases must each be 'random' or 'fixed'")
    if readers == "fixed" and cases == "fixed":
        raise ValueError("only one of readers or cases may be fixed")
    if not 0.0 < conf_level < 1.0:
        raise ValueError(f"conf_level must be in (0, 1), got {conf_level}")
    if cov in ("delong", "unbiased") and metric != "auc" and cases == "random":
        raise ValueError(f"{cov} covariance is defined for the empirical AUC only; use cov='jackknife'")

    if truth_by_reader and (cov != "jackknife" or metric in ("sensitivity", "specificity")):
        raise ValueError(
            "truth_by_reader needs cov='jackknife' and a metric over all cases (auc, accuracy, kappa)"
        )
    layout = StudyLayout(reader, case, condition, truth, rating, metric, conditions, truth_by_reader)
    thr = _threshold(metric, threshold, np.asarray(rating, dtype=np.float64))
    n_t, n_r = layout.n_conditions, layout.n_readers
    if n_t < 2:
        raise ValueError(f"an MRMC comparison needs at least two conditions, got {layout.conditions}")
    if n_r < 2 and readers == "random":
        raise ValueError("random readers need at least two readers; with one, use readers='fixed'")
    design = layout.design()

    estimates = np.empty(n_t * n_r)
    for g in range(n_t * n_r):
        mask = layout.read[g]
        estimates[g] = value(metric, layout.truth_groups[g, mask], layout.ratings[g, mask], thr)
    values = estimates.reshape(n_t, n_r).T  # (R, T)
    n_cases_group = layout.read.sum(axis=1)

    covariance: FloatArray | None = None
    if cases == "random":
        if cov == "jackknife":
            covariance = covmod.jackknife(
                metric, layout.truth_groups, layout.ratings, layout.read, estimates, thr
            )
        elif cov == "delong":
            covariance = covmod.delong(layout.truth, layout.ratings, layout.read)
        else:
            covariance = covmod.unbiased(layout.truth, layout.ratings, layout.read)

    ms = _mean_squares(values)
    unit = metric in UNIT_METRICS
    alpha2 = (1.0 + conf_level) / 2.0
    pairs = list(combinations(range(n_t), 2))
    means = values.mean(axis=0)

    cond_of = np.repeat(np.arange(n_t), n_r)
    reader_of = np.tile(np.arange(n_r), n_t)
    components: VarianceComponents | None = None
    reader_diffs: list[Difference] = []
    reader_estimates: list[ReaderEstimate] = []

    def averaged(cv: FloatArray, keep: BoolArray | None = None) -> tuple[float, float, float, float]:
        same_t = cond_of[:, None] == cond_of[None, :]
        same_r = reader_of[:, None] == reader_of[None, :]
        sel = np.ones_like(same_t) if keep is None else np.outer(keep, keep)

        def mean_of(m: BoolArray) -> float:
            m = m & sel
            return float(cv[m].mean()) if m.any() else 0.0

        var = mean_of(same_t & same_r)
        c1, c2, c3 = mean_of(~same_t & same_r), mean_of(same_t & ~same_r), mean_of(~same_t & ~same_r)
        if design == "cases nested within readers" or n_r == 1:
            c2 = c3 = 0.0
        elif design == "cases nested within conditions":
            c1 = c3 = 0.0
        return var, c1, c2, c3

    if covariance is not None:
        var, c1, c2, c3 = averaged(covariance)
        if readers == "random" or n_r > 1:
            components = VarianceComponents(
                reader=(ms["R"] - ms["T:R"]) / n_t - c1 + c3,
                condition_reader=ms["T:R"] - var + c1 + (c2 - c3),
                error=var,
                cov1=c1,
                cov2=c2,
                cov3=c3,
            )
        else:
            components = VarianceComponents(None, None, var, c1, c2, c3)

    # Per-condition estimates: each from that condition's data only.
    cond_estimates = []
    for ti, name in enumerate(layout.conditions):
        y = values[:, ti]
        ms_r = float(np.sum((y - y.mean()) ** 2) / (n_r - 1)) if n_r > 1 else 0.0
        cov2_t, var_t = 0.0, float("nan")
        if covariance is not None:
            block = covariance[ti * n_r : (ti + 1) * n_r, ti * n_r : (ti + 1) * n_r]
            var_t = float(np.mean(np.diag(block)))
            off = ~np.eye(n_r, dtype=bool)
            if design != "cases nested within readers" and n_r > 1:
                cov2_t = float(block[off].mean())
        if cases == "fixed":
            se, df = float(np.sqrt(ms_r / n_r)), float(n_r - 1)
            q = float(stats.t.ppf(alpha2, df))
        elif readers == "random":
            se = float(np.sqrt(ms_r / n_r + max(cov2_t, 0.0)))
            df = _hillis_df(ms_r + n_r * max(cov2_t, 0.0), ms_r, n_r - 1)
            q = float(stats.t.ppf(alpha2, df))
        else:
            se = float(np.sqrt((var_t + (n_r - 1) * max(cov2_t, 0.0)) / n_r))
            df, q = float("inf"), float(stats.norm.ppf(alpha2))
        lo, hi = _ci(float(y.mean()), se, q, unit)
        cond_estimates.append(ConditionEstimate(name, float(y.mean()), se, df, lo, hi, ms_r, cov2_t, var_t))

    differences = []
    if cases == "fixed":
        denominator = ms["T:R"]
        df2 = float((n_t - 1) * (n_r - 1))
        f = _ratio(ms["T"], denominator)
        global_test = GlobalTest(
            "F", f, n_t - 1, df2, _f_sf(f, n_t - 1, df2), ms["T"], ms["T:R"], denominator
        )
        se = float(np.sqrt(2.0 / n_r * ms["T:R"]))
        q = float(stats.t.ppf(alpha2, df2))
        for a, b in pairs:
            est = float(means[a] - means[b])
            tstat = _ratio(est, se)
            differences.append(
                Difference(
                    layout.conditions[a],
                    layout.conditions[b],
                    est,
                    se,
                    df2,
                    est - q * se,
                    est + q * se,
                    tstat,
                    _two_sided(tstat, df2),
                )
            )
    elif readers == "random":
        assert components is not None
        c2, c3 = components.cov2, components.cov3
        denominator = ms["T:R"] + n_r * max(c2 - c3, 0.0)
        df2 = _hillis_df(denominator, ms["T:R"], (n_t - 1) * (n_r - 1))
        f = _ratio(ms["T"], denominator)
        global_test = GlobalTest(
            "F", f, n_t - 1, df2, _f_sf(f, n_t - 1, df2), ms["T"], ms["T:R"], denominator
        )
        se = float(np.sqrt(2.0 / n_r * denominator))
        q = float(stats.t.ppf(alpha2, df2))
        for a, b in pairs:
            est = float(means[a] - means[b])
            tstat = _ratio(est, se)
            differences.append(
                Difference(
                    layout.conditions[a],
                    layout.conditions[b],
                    est,
                    se,
                    df2,
                    est - q * se,
                    est + q * se,
                    tstat,
                    _two_sided(tstat, df2),
                )
            )
    else:
        assert components is not None and covariance is not None
        var, c1, c2, c3 = components.error, components.cov1, components.cov2, components.cov3
        # max(Cov2 - Cov3, 0) as in Hillis's OR-DBM MRMC 2.51 and RJafroc (MRMCaov 0.3.0 omits the max;
        # the two agree whenever Cov2 >= Cov3, as on the Van Dyke data).
        denominator = var - c1 + (n_r - 1) * max(c2 - c3, 0.0)
        q = float(stats.norm.ppf(alpha2))
        se = float(np.sqrt(2.0 / n_r * denominator))
        for a, b in pairs:
            est = float(means[a] - means[b])
            z = _ratio(est, se)
            differences.append(
                Difference(
                    layout.conditions[a],
                    layout.conditions[b],
                    est,
                    se,
                    float("inf"),
                    est - q * se,
                    est + q * se,
                    z,
                    _two_sided(z, np.inf),
                )
            )
        x2 = _ratio((n_t - 1) * ms["T"], denominator)
        p_x2 = float(stats.chi2.sf(x2, n_t - 1)) if not np.isnan(x2) else float("nan")
        global_test = GlobalTest("X2", x2, n_t - 1, float("inf"), p_x2, ms["T"], None, denominator)
        for ri, rname in enumerate(layout.readers):
            var_r, c1_r, _, _ = averaged(covariance, reader_of == ri)
            se_r = float(np.sqrt(2.0 * (var_r - c1_r)))
            for a, b in pairs:
                est = float(values[ri, a] - values[ri, b])
                z = _ratio(est, se_r)
                reader_diffs.append(
                    Difference(
                        layout.conditions[a],
                        layout.conditions[b],
                        est,
                        se_r,
                        float("inf"),
                        est - q * se_r,
                        est + q * se_r,
                        z,
                        _two_sided(z, np.inf),
                        reader=rname,
                    )
                )

    zq = float(stats.norm.ppf(alpha2))
    for ti, cname in enumerate(layout.conditions):
        for ri, rname in enumerate(layout.readers):
            g = layout.group(ti, ri)
            est = float(values[ri, ti])
            if covariance is None:
                reader_estimates.append(
                    ReaderEstimate(rname, cname, est, int(n_cases_group[g]), None, None, None)
                )
                continue
            se_g = float(np.sqrt(covariance[g, g]))
            lo, hi = _ci(est, se_g, zq, unit)
            reader_estimates.append(ReaderEstimate(rname, cname, est, int(n_cases_group[g]), se_g, lo, hi))

    return MrmcResult(
        metric=metric,
        cov_method=cov if cases == "random" else None,
        readers_random=readers == "random",
        cases_random=cases == "random",
        design=design,
        conf_level=conf_level,
        conditions=layout.conditions,
        readers=layout.readers,
        n_cases=layout.n_cases,
        values=values,
        ms=ms,
        covariance=covariance,
        components=components,
        global_test=global_test,
        differences=tuple(differences),
        condition_estimates=tuple(cond_estimates),
        reader_estimates=tuple(reader_estimates),
        reader_differences=tuple(reader_diffs),
        threshold=thr,
    )
