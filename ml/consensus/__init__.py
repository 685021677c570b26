"""Concord consensus engine: Dawid-Skene reader models, agreement statistics, contour consensus.

numpy/scipy only (an import-linter contract forbids django, celery, torch). Entry point::

    from ml.consensus import fit
    result = fit(items, readers, labels, n_classes=2, model="full", gold={17: 1})
"""

from ml.consensus import agreement, explain
from ml.consensus._counts import Patterns, update_patterns
from ml.consensus.contours import ContourConsensus, contour_consensus
from ml.consensus.dawid_skene import MODELS, fit, fit_patterns, patterns
from ml.consensus.result import NO_SMOOTHING, ConsensusResult, Smoothing, WarmStart

__all__ = [
    "MODELS",
    "NO_SMOOTHING",
    "ConsensusResult",
    "ContourConsensus",
    "Patterns",
    "Smoothing",
    "WarmStart",
    "agreement",
    "contour_consensus",
    "explain",
    "fit",
    "fit_patterns",
    "patterns",
    "update_patterns",
]
