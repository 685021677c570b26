"""MRMC reader-study analysis: does a condition (e.g. AI aid) change readers' accuracy? numpy/scipy only.

Obuchowski–Rockette with Hillis's degrees of freedom, DeLong / jackknife / unbiased covariance, random or
fixed readers and cases, factorial, nested and partially paired designs. Entry point::

    from ml.readerstudy import mrmc
    result = mrmc(reader, case, condition, truth, rating, metric="auc", cov="jackknife")
    result.differences[0].estimate, result.global_test.p_value
"""

from ml.readerstudy.analysis import COV_METHODS, mrmc
from ml.readerstudy.metrics import METRICS, roc_points
from ml.readerstudy.result import (
    ConditionEstimate,
    Difference,
    GlobalTest,
    MrmcResult,
    ReaderEstimate,
    VarianceComponents,
)

__all__ = [
    "COV_METHODS",
    "METRICS",
    "ConditionEstimate",
    "Difference",
    "GlobalTest",
    "MrmcResult",
    "ReaderEstimate",
    "VarianceComponents",
    "mrmc",
    "roc_points",
]
