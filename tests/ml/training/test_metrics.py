"""Numpy metrics against hand-worked answers."""

from __future__ import annotations

import numpy as np
import pytest

from ml.training.metrics import (
    accuracy,
    average_ranks,
    confusion_matrix,
    macro_auc,
    roc_auc,
)


def test_average_ranks_share_ties() -> None:
    assert average_ranks([3.0, 1.0, 3.0, 2.0]).tolist() == [3.5, 1.0, 3.5, 2.0]


def test_auc_hand_worked() -> None:
    assert roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)
    assert roc_auc([0, 1], [0.5, 0.5]) == pytest.approx(0.5)
    assert roc_auc([1, 1, 0], [0.9, 0.8, 0.1]) == 1.0
    assert np.isnan(roc_auc([1, 1], [0.2, 0.3]))


def test_macro_auc_and_accuracy() -> None:
    probs = np.array([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8], [0.6, 0.3, 0.1]])
    assert macro_auc([0, 1, 2, 0], probs) == 1.0
    assert accuracy([0, 1, 2, 0], probs.argmax(1)) == 1.0
    assert accuracy([0, 1], [1, 1]) == 0.5


def test_confusion_matrix_rows_are_the_truth() -> None:
    assert confusion_matrix([0, 1, 1], [1, 1, 0], 2).tolist() == [[0, 1], [1, 1]]
