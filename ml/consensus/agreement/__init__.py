"""Agreement statistics with percentile (cluster) bootstrap CIs (SPEC.md §5).

Every function returns frozen dataclasses whose ``value`` is a float or None (undefined, e.g. κ when all
readings share one class); no function returns NaN. ``undefined=`` substitutes a number for None, as
scikit-learn's ``replace_undefined_by``. Reference implementations the tests match to 1e-9: scikit-learn
``cohen_kappa_score``, statsmodels ``fleiss_kappa``, ``krippendorff.alpha``, pingouin ``intraclass_corr``.
"""

from ml.consensus.agreement._bootstrap import Agreement, bootstrap
from ml.consensus.agreement.alpha import krippendorff_alpha
from ml.consensus.agreement.icc import ICC_FORMS, icc
from ml.consensus.agreement.kappa import cohen_kappa, fleiss_kappa
from ml.consensus.agreement.readers import IntraReader, ReaderAccuracy, intra_reader_kappa, reader_accuracy

__all__ = [
    "ICC_FORMS",
    "Agreement",
    "IntraReader",
    "ReaderAccuracy",
    "bootstrap",
    "cohen_kappa",
    "fleiss_kappa",
    "icc",
    "intra_reader_kappa",
    "krippendorff_alpha",
    "reader_accuracy",
]
