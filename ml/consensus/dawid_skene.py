"""Dawid & Skene (1979) EM label aggregation: full, one-coin and ordinal reader models.

Dawid AP, Skene AM, J R Stat Soc C 28(1):20-28 (1979); MAP smoothing as in Passonneau & Carpenter,
TACL 2014; one-coin as crowd-kit ``OneCoinDawidSkene``; ordinal model SPEC.md §4.6. EM runs on distinct
reading patterns (``_counts``), so every step is a pair of sparse products over patterns. Loop order,
initialisation, 1e-10 clipping and the per-reading ELBO stop rule follow crowd-kit ``DawidSkene`` so that
``smoothing=None`` reproduces it (SPEC.md §4.2).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import xlogy

from ml.consensus._counts import Patterns, as_readings, count_matrix, group_patterns
from ml.consensus.ordinal import fit_ordinal_params, ordinal_log_confusion
from ml.consensus.result import ConsensusResult, ModelName, Repeats, Smoothing, WarmStart, as_smoothing

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

_Groups = tuple[IntArray, IntArray, float]  # annotator -> reader, annotator -> session, tie strength
EPS = 1e-10  # crowd-kit's floor for zero confusion cells and priors
MODELS: tuple[ModelName, ...] = ("full", "one_coin", "ordinal")


@dataclass(frozen=True)
class _Params:
    """Model parameters: log confusion (R, K, K) indexed [k, j, l], log prior (K,), model extras."""

    log_confusion: FloatArray
    log_prior: FloatArray
    bias: FloatArray | None = None
    spread: FloatArray | None = None
    skill: FloatArray | None = None


def fit(
    items: ArrayLike,
    readers: ArrayLike,
    labels: ArrayLike,
    n_classes: int,
    *,
    model: ModelName = "full",
    gold: Mapping[int, int] | None = None,
    smoothing: Smoothing | float | tuple[float, float] | None = Smoothing(),  # noqa: B008 (frozen)
    max_iter: int = 500,
    tol: float = 1e-7,
    seed: int = 0,
    n_items: int | None = None,
    n_readers: int | None = None,
    sessions: ArrayLike | None = None,
    repeats: Repeats = "pool",
    session_tie: float = 2.0,
    init: WarmStart | ConsensusResult | None = None,
) -> ConsensusResult:
    """Estimate true classes and reader error models from flat readings by (MAP-)EM.

    items, readers, labels: (n_readings,) ints, one entry per reading; repeats of one (item, reader) are
    repeat sessions, pooled as independent readings (SPEC §4.4 option 1); missing readings are absent.
    n_classes: K; labels lie in [0, K). model: "full" (KxK matrix per reader), "one_coin" (one skill per
    reader) or "ordinal" (bias and spread per reader, SPEC §4.6). gold: item -> known class; such items
    are clamped to a one-hot posterior but still calibrate their readers (SPEC §4.3).
    smoothing: Dirichlet pseudo-counts, default ``Smoothing(diagonal=1.0, off_diagonal=0.1)``; None or
    0 gives plain ML-EM with crowd-kit's 1e-10 clipping (identical to crowd-kit ``DawidSkene``).
    max_iter, tol: stop when the gain of the objective per reading falls below ``tol``; the objective is
    the ELBO (plus the log Dirichlet prior when smoothing). crowd-kit's stop rule uses a different ELBO
    (its prior term counts once per reading), so exact parity needs a fixed iteration count:
    ``tol=-inf, max_iter=n`` here and ``DawidSkene(n_iter=n, tol=-inf)`` there agree to 1e-12.
    seed: reserved for randomised restarts; EM itself is deterministic. n_items, n_readers: sizes when
    items or readers without readings must appear (default max index + 1); unread items get the prior.
    sessions, repeats: (n_readings,) session index of each reading; ``repeats="pool"`` (default) pools a
    reader's sessions in one confusion matrix (SPEC §4.4 option 1, ``sessions`` ignored);
    ``repeats="session"`` makes every (reader, session) its own annotator (option 2) whose confusion has
    the tied prior Dir(session_tie · K · π^(k)) around its reader's pooled matrix π^(k) (empirical Bayes,
    re-estimated every M-step, and left out of the stop rule's objective); the result then has one matrix
    per annotator, annotator a = reader · S + session (S = number of sessions), mapped back by
    ``annotator_reader`` / ``annotator_session``.
    init: warm start, e.g. ``previous.warm_start()``: EM starts from these parameters instead of the
    soft majority vote; from converged parameters of nearly the same data it stops within a few
    iterations at the same fixed point (readers beyond the init's get the mean reader, ``WarmStart.extend``).
    ``repeats="mean"`` (correlation-robust): a reader's n readings of one item each count 1/n, so a
    reader's sessions contribute their mean log-likelihood, one reading's worth of evidence (repeats of
    one reader are correlated through memory; pooling counts them as independent and is overconfident).
    Raises ValueError on malformed input. Returns a ``ConsensusResult``; never NaN.
    """
    del seed  # deterministic; kept so the signature stays stable when restarts are added
    if repeats not in ("pool", "session", "mean"):
        raise ValueError(f"repeats must be 'pool', 'session' or 'mean', got {repeats!r}")
    groups = None
    if repeats == "session":
        if sessions is None:
            raise ValueError("repeats='session' needs sessions")
        if session_tie < 0:
            raise ValueError("session_tie must be >= 0")
        rd, ss = np.asarray(readers, dtype=np.int64).ravel(), np.asarray(sessions, dtype=np.int64).ravel()
        if rd.shape != ss.shape:
            raise ValueError(f"readers and sessions differ in length: {rd.size}, {ss.size}")
        if ss.size and ss.min() < 0:
            raise ValueError("sessions must be >= 0")
        n_sess = int(ss.max()) + 1 if ss.size else 1
        n_r = n_readers if n_readers is not None else (int(rd.max()) + 1 if rd.size else 0)
        readers, n_readers = rd * n_sess + ss, n_r * n_sess
        groups = (np.arange(n_readers) // n_sess, np.arange(n_readers) % n_sess, session_tie)
    if model not in MODELS:
        raise ValueError(f"model must be one of {MODELS}, got {model!r}")
    if max_iter < 1:
        raise ValueError("max_iter must be >= 1")
    pats = patterns(items, readers, labels, n_classes, gold=gold, n_items=n_items, n_readers=n_readers)
    n_r = pats.counts.shape[1] // n_classes
    if repeats == "mean":
        pats = _mean_repeats(pats, n_r, n_classes)
    return _run_em(pats, n_r, n_classes, model, as_smoothing(smoothing), max_iter, tol, groups, init)


def fit_patterns(
    pats: Patterns,
    n_readers: int,
    n_classes: int,
    *,
    model: ModelName = "full",
    smoothing: Smoothing | float | tuple[float, float] | None = Smoothing(),  # noqa: B008 (frozen)
    max_iter: int = 500,
    tol: float = 1e-7,
    init: WarmStart | ConsensusResult | None = None,
) -> ConsensusResult:
    """``fit`` on a ready pattern table (``ml.consensus.patterns``), e.g. one kept up to date incrementally.

    The result is per row of ``pats.inverse`` (per pattern when ``inverse`` is ``arange(n_patterns)``).
    Patterns of weight 0 (no item has them any more) carry no information.
    """
    if model not in MODELS:
        raise ValueError(f"model must be one of {MODELS}, got {model!r}")
    if max_iter < 1:
        raise ValueError("max_iter must be >= 1")
    if pats.counts.shape[1] != n_readers * n_classes:
        raise ValueError(
            f"pattern counts have {pats.counts.shape[1]} columns, expected {n_readers * n_classes}"
        )
    return _run_em(pats, n_readers, n_classes, model, as_smoothing(smoothing), max_iter, tol, None, init)


def patterns(
    items: ArrayLike,
    readers: ArrayLike,
    labels: ArrayLike,
    n_classes: int,
    *,
    gold: Mapping[int, int] | None = None,
    n_items: int | None = None,
    n_readers: int | None = None,
) -> Patterns:
    """The distinct reading patterns of flat readings (``fit``'s first step), ``inverse`` per item."""
    gold_items, gold_labels = _gold_arrays(gold, n_classes)
    if n_items is None and gold_items.size:
        n_items = max(int(np.max(items, initial=-1)) + 1, int(gold_items.max()) + 1)
    r = as_readings(items, readers, labels, n_classes, n_items, n_readers)
    clamp = np.full(r.n_items, -1, dtype=np.int64)
    if gold_items.size and gold_items.max() >= r.n_items:
        raise ValueError(f"gold item {int(gold_items.max())} outside n_items={r.n_items}")
    clamp[gold_items] = gold_labels
    return group_patterns(count_matrix(r), clamp)


def _mean_repeats(pats: Patterns, n_readers: int, n_classes: int) -> Patterns:
    """Divide each pattern's counts of reader k by that reader's number of readings in the pattern."""
    counts = pats.counts.astype(np.float64).tocsr()
    row = np.repeat(np.arange(counts.shape[0]), np.diff(counts.indptr))
    reader = counts.indices // n_classes
    per = np.zeros((counts.shape[0], n_readers))
    np.add.at(per, (row, reader), counts.data)
    counts.data = counts.data / per[row, reader]
    return replace(pats, counts=counts)


def _gold_arrays(gold: Mapping[int, int] | None, n_classes: int) -> tuple[IntArray, IntArray]:
    """Return (items, classes) of the gold mapping, validated."""
    if not gold:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    keys = np.fromiter((int(k) for k in gold), dtype=np.int64, count=len(gold))
    vals = np.fromiter((int(v) for v in gold.values()), dtype=np.int64, count=len(gold))
    if keys.min() < 0 or vals.min() < 0 or vals.max() >= n_classes:
        raise ValueError("gold items must be >= 0 and gold classes in [0, n_classes)")
    return keys, vals


class _Problem:
    """Pattern-level arrays shared by every EM step (U patterns, C = R·K count columns)."""

    def __init__(
        self,
        pats: Patterns,
        n_readers: int,
        n_classes: int,
        smoothing: Smoothing,
        model: ModelName,
        groups: _Groups | None = None,
    ) -> None:
        self.n_readers, self.n_classes, self.smoothing = n_readers, n_classes, smoothing
        self.groups = groups
        self.counts = pats.counts.astype(np.float64)
        self.counts_t = self.counts.T.tocsr()
        self.clamped = pats.clamp >= 0
        self.clamp = pats.clamp
        self.active = pats.has_readings | self.clamped
        self.weight = pats.weight * self.active  # empty free patterns carry no information
        self.n_readings = max(float(np.sum(pats.weight * np.asarray(self.counts.sum(axis=1)).ravel())), 1.0)
        self.pseudo = smoothing.confusion_pseudo_counts(n_classes) * _pseudo_scale(model, n_classes)

    # Posteriors and scores are class-major, (K, U): reductions over the K classes then run across
    # contiguous rows. numpy's axis=1 reductions over a short inner axis (and BLAS matrix-vector
    # products, which contend for threads on 2 cores) were 10x slower at 1e5 distinct patterns.

    def initial_posterior(self) -> FloatArray:
        """(K, U) soft majority vote: each pattern's share of readings per class; clamped one-hot."""
        per_label = np.ascontiguousarray((self.counts @ _label_indicator(self.n_readers, self.n_classes)).T)
        total = per_label.sum(axis=0)
        post = np.divide(per_label, total, out=np.full_like(per_label, 1.0 / self.n_classes), where=total > 0)
        return self.apply_clamp(post)

    def apply_clamp(self, post: FloatArray) -> FloatArray:
        """Overwrite clamped columns of ``post`` (K, U) with their one-hot gold class, in place."""
        cols = np.flatnonzero(self.clamped)
        post[:, cols] = 0.0
        post[self.clamp[cols], cols] = 1.0
        return post

    def weighted_sum(self, values: FloatArray) -> FloatArray:
        """Σ_u w_u values[..., u] without BLAS (see the class comment)."""
        return np.asarray(np.sum(values * self.weight, axis=-1))

    def expected_counts(self, post: FloatArray) -> FloatArray:
        """(R, K, K) Σ_i T_ij n_il^(k), indexed [k, j, l], from post (K, U)."""
        flat = self.counts_t @ (post * self.weight).T  # [k*K + l, j]
        return np.asarray(flat.reshape(self.n_readers, self.n_classes, self.n_classes).transpose(0, 2, 1))

    def scores(self, params: _Params) -> FloatArray:
        """(K, U) s_ju = log p_j + Σ_k Σ_l n_ul^(k) log π_jl^(k)."""
        table = params.log_confusion.transpose(0, 2, 1).reshape(-1, self.n_classes)
        return np.ascontiguousarray((self.counts @ table).T) + params.log_prior[:, None]

    def e_step(self, scores: FloatArray) -> tuple[FloatArray, FloatArray, float]:
        """Return the (K, U) posterior, its log, and the observed-data log-likelihood (log space)."""
        top = np.max(scores, axis=0)
        log_post = scores - top
        total = np.sum(np.exp(log_post), axis=0)
        log_post -= np.log(total)
        norm = top + np.log(total)
        cols = np.flatnonzero(self.clamped)
        norm[cols] = scores[self.clamp[cols], cols]  # known class: joint log-probability
        log_post[:, cols] = 0.0  # one-hot: T log T = 0 in every class
        return self.apply_clamp(np.exp(log_post)), log_post, float(self.weighted_sum(norm))

    def objective(self, post: FloatArray, log_post: FloatArray, scores: FloatArray, params: _Params) -> float:
        """ELBO per reading, plus the log Dirichlet prior density of ``params`` when smoothing.

        ELBO = Σ_u w_u Σ_j T_ju (s_ju − log T_ju), with log T from the E-step (no log of zero).
        """
        elbo = float(np.sum(self.weighted_sum(post * (scores - log_post))))
        log_prior = float(np.sum(self.pseudo[None] * params.log_confusion))
        log_prior += self.smoothing.prior * float(params.log_prior.sum())
        return (elbo + log_prior) / self.n_readings


def _pseudo_scale(model: ModelName, n_classes: int) -> float:
    """Share of the Dirichlet pseudo-counts a model receives.

    The ordinal model's two parameters replace the K(K-1) free cells of a row-stochastic matrix, so it
    gets the pseudo-counts in that proportion; at full strength they swamp readers with few reads
    (benchmark, 5 classes, ~45 reads per reader: accuracy 75% at full strength, 78-81% scaled).
    """
    if model != "ordinal" or n_classes < 2:
        return 1.0
    return min(1.0, 2.0 / (n_classes * (n_classes - 1)))


def _label_indicator(n_readers: int, n_classes: int) -> FloatArray:
    """(R·K, K) matrix mapping column reader·K + label to its label."""
    return np.tile(np.eye(n_classes), (n_readers, 1))


def _normalise_log(table: FloatArray) -> FloatArray:
    """Clip at EPS and normalise the last axis, crowd-kit style; return logs."""
    clipped = np.maximum(table, EPS)
    return np.asarray(np.log(clipped / clipped.sum(axis=-1, keepdims=True)))


def _m_step(prob: _Problem, post: FloatArray, model: ModelName, previous: _Params | None) -> _Params:
    """Return MAP parameters given the posterior (K, U)."""
    sm = prob.smoothing
    class_mass = prob.weighted_sum(post) + sm.prior
    log_prior = _normalise_log(class_mass)
    weights = prob.expected_counts(post) + prob.pseudo[None]
    if prob.groups is not None:
        weights = weights + _tied_pseudo_counts(weights, prob.groups)
    if model == "full":
        return _Params(_normalise_log(weights), log_prior)
    if model == "one_coin":
        return _one_coin(weights, log_prior)
    r, k = prob.n_readers, prob.n_classes
    bias0 = previous.bias if previous is not None and previous.bias is not None else np.zeros(r)
    spread0 = previous.spread if previous is not None and previous.spread is not None else np.ones(r)
    bias, spread = fit_ordinal_params(weights, bias0, spread0)
    return _Params(ordinal_log_confusion(bias, spread, k), log_prior, bias=bias, spread=spread)


def _tied_pseudo_counts(weights: FloatArray, groups: _Groups) -> FloatArray:
    """(A, K, K) pseudo-counts c · K · π^(k) tying each (reader, session) annotator to its reader.

    π^(k) is the reader's pooled matrix: its annotators' expected counts (with smoothing) summed and
    row-normalised; c · K spreads c readings per row (SPEC §4.4 option 2, Dir(c · π^(k)) per row).
    """
    reader, _, tie = groups
    n_classes = weights.shape[1]
    pooled = np.zeros((int(reader.max()) + 1 if reader.size else 0, n_classes, n_classes))
    np.add.at(pooled, reader, weights)
    rows = pooled.sum(axis=2, keepdims=True)
    pi = np.divide(pooled, rows, out=np.full_like(pooled, 1.0 / n_classes), where=rows > 0)
    return np.asarray(tie * n_classes * pi[reader])


def _one_coin(weights: FloatArray, log_prior: FloatArray) -> _Params:
    """One skill per reader: s_k = expected share of correct readings (with pseudo-counts)."""
    n_classes = weights.shape[1]
    total = weights.sum(axis=(1, 2))
    correct = np.trace(weights, axis1=1, axis2=2)
    skill = np.divide(correct, total, out=np.full_like(total, 1.0 / n_classes), where=total > 0)
    if n_classes == 1:
        return _Params(np.zeros_like(weights), log_prior, skill=skill)
    skill = np.clip(skill, EPS, 1.0 - EPS)
    off = (1.0 - skill) / (n_classes - 1)
    eye = np.eye(n_classes, dtype=bool)[None]
    conf = np.where(eye, skill[:, None, None], off[:, None, None])
    return _Params(np.log(conf), log_prior, skill=skill)


def _run_em(
    pats: Patterns,
    n_readers: int,
    n_classes: int,
    model: ModelName,
    smoothing: Smoothing,
    max_iter: int,
    tol: float,
    groups: _Groups | None = None,
    init: WarmStart | ConsensusResult | None = None,
) -> ConsensusResult:
    """Iterate E- and M-steps on patterns until the objective gain per reading drops below ``tol``."""
    prob = _Problem(pats, n_readers, n_classes, smoothing, model, groups)
    post = prob.initial_posterior()
    if init is None:
        params = _m_step(prob, post, model, None)
    else:
        params = _warm_params(init, model, n_readers, n_classes)
    scores = prob.scores(params)
    previous, objective, loglik, converged, n_iter = -np.inf, -np.inf, 0.0, False, 0
    for n_iter in range(1, max_iter + 1):  # noqa: B007 (n_iter is reported)
        post, log_post, loglik = prob.e_step(scores)
        params = _m_step(prob, post, model, params)
        scores = prob.scores(params)
        objective = prob.objective(post, log_post, scores, params)
        if objective - previous < tol:
            converged = True
            break
        previous = objective
    post[:, ~prob.active] = np.exp(params.log_prior)[:, None]  # no readings: the posterior is the prior
    return _assemble(prob, pats, post, params, model, loglik, objective, n_iter, converged)


def _warm_params(
    init: WarmStart | ConsensusResult, model: ModelName, n_readers: int, n_classes: int
) -> _Params:
    """Parameters of a warm start, checked against the problem's shape and model."""
    start = init.warm_start() if isinstance(init, ConsensusResult) else init
    if start.confusion.shape[1:] != (n_classes, n_classes) or start.prior.shape != (n_classes,):
        raise ValueError(f"init has {start.prior.shape[0]} classes, expected {n_classes}")
    if start.confusion.shape[0] > n_readers:
        raise ValueError(f"init has {start.confusion.shape[0]} readers, the data {n_readers}")
    start = start.extend(n_readers)
    log_prior = _normalise_log(np.asarray(start.prior, dtype=np.float64))
    if model == "ordinal":
        if start.bias is None or start.spread is None:
            raise ValueError("an ordinal warm start needs bias and spread")
        log_confusion = ordinal_log_confusion(start.bias, start.spread, n_classes)
        return _Params(log_confusion, log_prior, bias=start.bias, spread=start.spread)
    log_confusion = _normalise_log(np.asarray(start.confusion, dtype=np.float64))
    return _Params(log_confusion, log_prior, skill=start.skill if model == "one_coin" else None)


def _argmax_classes(post: FloatArray) -> IntArray:
    """(U,) MAP class of post (K, U), lowest class on ties; a loop over classes, not patterns."""
    best, label = post[0].copy(), np.zeros(post.shape[1], dtype=np.int64)
    for j in range(1, post.shape[0]):
        better = post[j] > best
        label[better], best[better] = j, post[j, better]
    return label


def _assemble(
    prob: _Problem,
    pats: Patterns,
    post: FloatArray,
    params: _Params,
    model: ModelName,
    loglik: float,
    objective: float,
    n_iter: int,
    converged: bool,
) -> ConsensusResult:
    """Expand pattern-level posteriors to items and package the result."""
    entropy = -np.sum(xlogy(post, post), axis=0)
    posterior = np.ascontiguousarray(post.T)[pats.inverse]
    return ConsensusResult(
        model=model,
        posterior=posterior,
        labels=_argmax_classes(post)[pats.inverse],
        entropy=np.maximum(entropy[pats.inverse], 0.0),
        confusion=np.exp(params.log_confusion),
        confusion_counts=prob.expected_counts(post),
        prior=np.exp(params.log_prior),
        log_likelihood=loglik,
        objective=float(objective),
        n_iter=n_iter,
        converged=converged,
        smoothing=prob.smoothing,
        n_patterns=int(pats.weight.size),
        bias=params.bias,
        spread=params.spread,
        skill=params.skill,
        annotator_reader=None if prob.groups is None else prob.groups[0],
        annotator_session=None if prob.groups is None else prob.groups[1],
    )
