"""Precision–recall, average precision and ROC AUC of rewards as success detectors."""

from __future__ import annotations

import numpy as np
import pytest

from vlmrm_core.metrics import average_precision, binarize, precision_recall, roc_auc


def test_perfect_ranking_scores_one() -> None:
    rewards = np.array([0.1, 0.2, 0.3, 0.7, 0.8, 0.9])
    labels = np.array([0, 0, 0, 1, 1, 1])
    assert average_precision(rewards, labels) == 1.0
    assert roc_auc(rewards, labels) == 1.0


def test_reversed_ranking_has_auc_zero() -> None:
    rewards = np.array([0.9, 0.8, 0.7, 0.3, 0.2, 0.1])
    labels = np.array([0, 0, 0, 1, 1, 1])
    assert roc_auc(rewards, labels) == 0.0


def test_hand_computed_small_case() -> None:
    # Sorted by reward, descending: 0.9 (1), 0.8 (0), 0.6 (1), 0.4 (0), 0.2 (1).
    rewards = np.array([0.2, 0.9, 0.4, 0.6, 0.8])
    labels = np.array([1, 1, 0, 1, 0])
    # AP = Σ (R_k − R_{k−1}) P_k at each success: (1/3)(1) + (1/3)(2/3) + (1/3)(3/5).
    assert average_precision(rewards, labels) == pytest.approx((1 + 2 / 3 + 3 / 5) / 3)
    # Success/failure pairs ranked correctly: 0.9 beats both, 0.6 beats 0.4, 0.2 beats none.
    assert roc_auc(rewards, labels) == pytest.approx(3 / 6)


def test_ties_count_one_half_in_auc() -> None:
    assert roc_auc([0.5, 0.5], [0, 1]) == 0.5


def test_precision_recall_curve_points() -> None:
    rewards = np.array([0.2, 0.9, 0.4, 0.6, 0.8])
    labels = np.array([1, 1, 0, 1, 0])
    precision, recall, thresholds = precision_recall(rewards, labels)
    np.testing.assert_allclose(thresholds, [0.2, 0.4, 0.6, 0.8, 0.9])
    # Detector "reward ≥ t": at t = 0.6 it flags 0.6, 0.8, 0.9 (2 of them successes).
    np.testing.assert_allclose(precision, [3 / 5, 2 / 4, 2 / 3, 1 / 2, 1.0, 1.0])
    np.testing.assert_allclose(recall, [1.0, 2 / 3, 2 / 3, 1 / 3, 1 / 3, 0.0])


def test_boolean_and_float_labels_are_binary() -> None:
    rewards = [0.1, 0.9, 0.3]
    assert roc_auc(rewards, [False, True, False]) == roc_auc(rewards, [0.0, 1.0, 0.0]) == 1.0


def test_single_class_raises() -> None:
    with pytest.raises(ValueError, match="only successes"):
        average_precision([0.1, 0.2], [1, 1])
    with pytest.raises(ValueError, match="only failures"):
        roc_auc([0.1, 0.2], [0, 0])


def test_graded_labels_are_refused_with_a_pointer_to_binarize() -> None:
    with pytest.raises(ValueError, match="binarize"):
        roc_auc([0.1, 0.2, 0.3], [0.0, 0.5, 1.0])


def test_invalid_inputs_raise() -> None:
    with pytest.raises(ValueError, match="same length"):
        roc_auc([0.1, 0.2, 0.3], [0, 1])
    with pytest.raises(ValueError, match="NaN"):
        roc_auc([0.1, np.nan, 0.3], [0, 1, 0])
    with pytest.raises(ValueError, match="NaN"):
        roc_auc([0.1, 0.2, 0.3], [0, np.nan, 1])
    with pytest.raises(ValueError, match="dtype"):
        roc_auc([0.1, 0.2], ["yes", "no"])


def test_binarize_thresholds_graded_labels() -> None:
    np.testing.assert_array_equal(binarize([0.0, 0.25, 0.5, 1.0]), [0, 0, 1, 1])
    np.testing.assert_array_equal(binarize([0.0, 0.25, 0.5, 1.0], threshold=0.75), [0, 0, 0, 1])
    with pytest.raises(ValueError, match="NaN"):
        binarize([0.0, np.nan])


def test_roc_auc_rows_equal_roc_auc_of_each_row() -> None:
    from sklearn.metrics import roc_auc_score

    from vlmrm_core.metrics import roc_auc_rows

    rng = np.random.default_rng(3)
    labels = (rng.random(40) > 0.6).astype(np.int64)
    # Rounded scores: plenty of ties, which share their average rank.
    rewards = np.round(rng.standard_normal((5, 40)) + labels, 1)
    rows = roc_auc_rows(rewards, labels)
    for k in range(5):
        assert rows[k] == roc_auc(rewards[k], labels)
        assert rows[k] == pytest.approx(roc_auc_score(labels, rewards[k]), abs=1e-12)
    with pytest.raises(ValueError, match="only failures"):
        roc_auc_rows(rewards, np.zeros(40))
    with pytest.raises(ValueError, match="NaN"):
        roc_auc_rows(np.full((2, 40), np.nan), labels)
