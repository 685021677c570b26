"""Result and option types of the consensus engine (SPEC.md §4.8 outputs)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
ModelName = Literal["full", "one_coin", "ordinal"]
Repeats = Literal["pool", "session", "mean"]


@dataclass(frozen=True)
class Smoothing:
    """Dirichlet MAP pseudo-counts (SPEC.md §4.3), stored with each consensus version.

    Every confusion row gets alpha_jj - 1 = ``diagonal`` and alpha_jl - 1 = ``off_diagonal`` (l ≠ j) extra
    expected readings; the class prior gets β_j - 1 = ``prior``. ``diagonal > off_diagonal >= 0`` pins
    label identity (no permuted "perfectly wrong" solution). All zeros = plain maximum likelihood.
    The one-coin model pools a reader's table into one skill; the ordinal model receives the table
    scaled by 2 / (K(K-1)), its two parameters' share of the K(K-1) free cells of a confusion matrix.
    """

    diagonal: float = 1.0
    off_diagonal: float = 0.1
    prior: float = 0.0

    def __post_init__(self) -> None:
        if min(self.diagonal, self.off_diagonal, self.prior) < 0:
            raise ValueError(f"pseudo-counts must be >= 0: {self}")

    @property
    def is_zero(self) -> bool:
        """True when this is plain maximum likelihood."""
        return self.diagonal == 0 and self.off_diagonal == 0 and self.prior == 0

    def confusion_pseudo_counts(self, n_classes: int) -> FloatArray:
        """Return the (K, K) table alpha - 1 added to every reader's expected counts."""
        table = np.full((n_classes, n_classes), self.off_diagonal, dtype=np.float64)
        np.fill_diagonal(table, self.diagonal)
        return table


NO_SMOOTHING = Smoothing(0.0, 0.0, 0.0)


def as_smoothing(value: Smoothing | float | tuple[float, float] | None) -> Smoothing:
    """Normalise the ``smoothing=`` argument.

    None or 0 → no smoothing (plain ML-EM, crowd-kit compatible); a float ``a`` → ``Smoothing(a, 0)``;
    a pair ``(a, b)`` → ``Smoothing(a, b)``; a Smoothing is returned unchanged.
    """
    if value is None:
        return NO_SMOOTHING
    if isinstance(value, Smoothing):
        return value
    if isinstance(value, tuple):
        return Smoothing(float(value[0]), float(value[1]))
    return Smoothing(float(value), 0.0)


def _frozen(array: NDArray[np.generic]) -> NDArray[np.generic]:
    array.flags.writeable = False
    return array


@dataclass(frozen=True)
class WarmStart:
    """Model parameters to start EM from (``fit(..., init=...)``), e.g. a previous fit's.

    confusion: (n_readers, K, K) P(reader says l | truth j); prior: (K,); bias, spread: ordinal model;
    skill: one-coin model. Readers added since the previous fit get rows built by ``extend``.
    """

    confusion: FloatArray
    prior: FloatArray
    bias: FloatArray | None = None
    spread: FloatArray | None = None
    skill: FloatArray | None = None

    def extend(self, n_readers: int) -> WarmStart:
        """The same parameters for ``n_readers`` readers: new readers start as the mean reader."""
        extra = n_readers - self.confusion.shape[0]
        if extra < 0:
            raise ValueError(
                f"cannot shrink a warm start from {self.confusion.shape[0]} to {n_readers} readers"
            )
        if extra == 0:
            return self

        k = self.prior.shape[0]

        def grow(values: FloatArray | None, default: float) -> FloatArray | None:
            if values is None:
                return None
            if values.shape[0]:
                fill = values.mean(axis=0, keepdims=True)
            else:
                fill = np.full((1, *values.shape[1:]), default)
            return np.concatenate([values, np.repeat(fill, extra, axis=0)])

        confusion = grow(self.confusion, 1.0 / max(k, 1))
        assert confusion is not None
        return WarmStart(
            confusion,
            self.prior,
            grow(self.bias, 0.0),
            grow(self.spread, 1.0),
            grow(self.skill, 1.0 / max(k, 1)),
        )


@dataclass(frozen=True)
class ConsensusResult:
    """Outcome of one consensus fit; arrays are read-only.

    posterior: (n_items, K) P(truth = j | readings); rows sum to 1; clamped items are one-hot.
    labels: (n_items,) MAP class (lowest class on ties).
    entropy: (n_items,) posterior entropy in nats (0 = certain, log K = uninformative).
    confusion: (n_readers, K, K) P(reader says l | truth j), rows sum to 1.
    confusion_counts: (n_readers, K, K) expected readings behind each cell (sum = reads), no pseudo-counts.
    prior: (K,) class prior p_j.
    log_likelihood: observed-data log-likelihood (nats) at the parameters used for ``posterior``;
      clamped items contribute their joint probability with the known class.
    objective: final EM objective per reading (ELBO, plus the log Dirichlet prior when smoothing).
    bias, spread: (n_readers,) ordinal model only (SPEC §4.6), else None.
    skill: (n_readers,) one-coin model only, P(reader says the true class), else None.
    annotator_reader, annotator_session: with ``repeats="session"`` the reader axis indexes (reader,
      session) annotators; these (n_annotators,) arrays give each one's reader and session, else None.
    """

    model: ModelName
    posterior: FloatArray
    labels: IntArray
    entropy: FloatArray
    confusion: FloatArray
    confusion_counts: FloatArray
    prior: FloatArray
    log_likelihood: float
    objective: float
    n_iter: int
    converged: bool
    smoothing: Smoothing
    n_patterns: int
    bias: FloatArray | None = None
    spread: FloatArray | None = None
    skill: FloatArray | None = None
    annotator_reader: IntArray | None = None
    annotator_session: IntArray | None = None

    def __post_init__(self) -> None:
        for name in (
            "posterior",
            "labels",
            "entropy",
            "confusion",
            "confusion_counts",
            "prior",
            "bias",
            "spread",
            "skill",
            "annotator_reader",
            "annotator_session",
        ):
            value = getattr(self, name)
            if value is not None:
                _frozen(value)

    @property
    def n_reads(self) -> FloatArray:
        """(n_readers,) readings per reader behind its confusion matrix."""
        return np.asarray(self.confusion_counts.sum(axis=(1, 2)), dtype=np.float64)

    @property
    def sensitivity(self) -> FloatArray:
        """(n_readers,) π_11 for binary problems (SPEC §4.5); for K > 2, P(says K-1 | truth K-1)."""
        return np.asarray(self.confusion[:, -1, -1], dtype=np.float64)

    @property
    def specificity(self) -> FloatArray:
        """(n_readers,) π_00 for binary problems (SPEC §4.5)."""
        return np.asarray(self.confusion[:, 0, 0], dtype=np.float64)

    def warm_start(self) -> WarmStart:
        """This fit's parameters, to start the next fit from (``fit(..., init=result.warm_start())``)."""
        return WarmStart(self.confusion, self.prior, self.bias, self.spread, self.skill)

    def uncertain(self, threshold: float = 0.8) -> NDArray[np.bool_]:
        """(n_items,) items whose max posterior is below ``threshold`` (adjudication queue, SPEC §4.8)."""
        return np.asarray(self.posterior.max(axis=1) < threshold)
