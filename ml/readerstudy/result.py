"""Result types of an MRMC analysis: frozen dataclasses of plain floats, tuples and numpy arrays."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class VarianceComponents:
    """Obuchowski–Rockette variance components and error covariances (None where the model has none).

    ``reader`` = σ²_R, ``condition_reader`` = σ²_TR, ``error`` = Var(ε); ``cov1`` same reader, different
    condition; ``cov2`` different reader, same condition; ``cov3`` different reader and condition. The
    correlations are the covariances divided by ``error``.
    """

    reader: float | None
    condition_reader: float | None
    error: float
    cov1: float
    cov2: float
    cov3: float

    @property
    def correlations(self) -> tuple[float, float, float]:
        """Cov1, Cov2, Cov3 over Var(error); nan when the error variance is 0 (e.g. every case read right)."""
        if self.error == 0:
            return (float("nan"),) * 3
        return (self.cov1 / self.error, self.cov2 / self.error, self.cov3 / self.error)


@dataclass(frozen=True)
class GlobalTest:
    """Test of equal condition means: ``statistic`` is "F" (df2 = Hillis's ddf) or "X2" (df2 = inf)."""

    statistic: str
    value: float
    df1: float
    df2: float
    p_value: float
    ms_condition: float
    ms_condition_reader: float | None
    denominator: float


@dataclass(frozen=True)
class Difference:
    """``first`` minus ``second``, for all readers (reader None) or one reader (fixed readers)."""

    first: str
    second: str
    estimate: float
    std_err: float
    df: float
    ci_lower: float
    ci_upper: float
    statistic: float
    p_value: float
    reader: str | None = None


@dataclass(frozen=True)
class ConditionEstimate:
    """A condition's reader-averaged metric, from that condition's data only."""

    condition: str
    estimate: float
    std_err: float
    df: float
    ci_lower: float
    ci_upper: float
    ms_reader: float
    cov2: float
    var_error: float


@dataclass(frozen=True)
class ReaderEstimate:
    """One reader × condition metric value with its case-sampling standard error and Wald CI."""

    reader: str
    condition: str
    estimate: float
    n_cases: int
    std_err: float | None
    ci_lower: float | None
    ci_upper: float | None


@dataclass(frozen=True)
class MrmcResult:
    """An Obuchowski–Rockette analysis with Hillis's degrees of freedom.

    ``values`` is (n_readers, n_conditions) in the order of ``readers`` and ``conditions``; ``covariance`` is
    (G, G) over groups ordered condition-major (all readers of the first condition, then the next), or None
    with fixed cases.
    """

    metric: str
    cov_method: str | None
    readers_random: bool
    cases_random: bool
    design: str
    conf_level: float
    conditions: tuple[str, ...]
    readers: tuple[str, ...]
    n_cases: int
    values: FloatArray
    ms: dict[str, float]
    covariance: FloatArray | None
    components: VarianceComponents | None
    global_test: GlobalTest
    differences: tuple[Difference, ...]
    condition_estimates: tuple[ConditionEstimate, ...]
    reader_estimates: tuple[ReaderEstimate, ...]
    reader_differences: tuple[Difference, ...]
    threshold: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: arrays become nested lists, infinities become None."""

        def clean(obj: Any) -> Any:
            if isinstance(obj, dict):
                return {k: clean(v) for k, v in obj.items()}
            if isinstance(obj, list | tuple):
                return [clean(v) for v in obj]
            if isinstance(obj, np.ndarray):
                return clean(obj.tolist())
            if isinstance(obj, float | np.floating):
                return float(obj) if np.isfinite(obj) else None
            return obj

        out = asdict(self)
        if self.components is not None:
            out["components"]["correlations"] = list(self.components.correlations)
        return dict(clean(out))
