"""Rewards as success detectors: precision–recall and ROC summaries against binary labels.

Baumli et al. 2023 turn a CLIP score into a binary reward 1[p > β] and sweep β to draw
precision–recall curves; these functions give that curve and its one-number summaries for any
score (cosine reward, goal-baseline reward, contrastive probability).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from sklearn.metrics import average_precision_score, precision_recall_curve

from vlmrm_core.errors import InvalidInputError
from vlmrm_core.metrics.correlation import average_ranks

__all__ = [
    "SUCCESS_THRESHOLD",
    "average_precision",
    "binarize",
    "precision_recall",
    "roc_auc",
    "roc_auc_rows",
]

SUCCESS_THRESHOLD = 0.5
"""A graded label counts as a success when it is at least this (AP, ROC AUC, success rates)."""


def binarize(labels: npt.ArrayLike, threshold: float = SUCCESS_THRESHOLD) -> np.ndarray:
    """Turn graded labels into success (1) / failure (0).

    Args:
        labels: 1-D array of finite graded labels, e.g. 0, 0.5, 1.
        threshold: A label counts as a success when it is ≥ ``threshold``.

    Returns:
        1-D int64 array of 0/1.

    Raises:
        ValueError: Labels are not a 1-D array of finite numbers.

    Example::

        >>> binarize([0.0, 0.5, 1.0, 0.2]).tolist()  # graded labels: 0.5 and up count as success
        [0, 1, 1, 0]
    """
    graded = np.asarray(labels, dtype=np.float64)
    if graded.ndim != 1:
        raise ValueError(f"labels must be a 1-D array, got shape {graded.shape}")
    if not np.isfinite(graded).all():
        raise InvalidInputError("labels contain NaN or infinite values")
    return (graded >= threshold).astype(np.int64)


def _validate(scores: npt.ArrayLike, labels: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Finite float scores and 0/1 int labels of the same length, with both classes present."""
    score_array = np.asarray(scores, dtype=np.float64)
    if score_array.ndim != 1 or np.ndim(labels) != 1:
        raise ValueError(
            f"rewards and labels must be 1-D arrays, got shapes {score_array.shape} and "
            f"{np.shape(labels)}"
        )
    if score_array.shape[0] != np.shape(labels)[0]:
        raise ValueError(
            f"rewards and labels must have the same length, got {score_array.shape[0]} and "
            f"{np.shape(labels)[0]}"
        )
    if not np.isfinite(score_array).all():
        raise ValueError("rewards contain NaN or infinite values")
    return score_array, _validate_labels(labels)


def _validate_labels(labels: npt.ArrayLike) -> np.ndarray:
    """0/1 int64 labels of a 1-D array with both classes present."""
    label_array = np.asarray(labels)
    if label_array.ndim != 1:
        raise ValueError(f"labels must be a 1-D array, got shape {label_array.shape}")
    if label_array.dtype == np.bool_:
        label_array = label_array.astype(np.int64)
    elif not np.issubdtype(label_array.dtype, np.number):
        raise InvalidInputError(
            f"labels must be 0/1 numbers or booleans, got dtype {label_array.dtype}"
        )
    values = np.unique(label_array)
    if np.isnan(values.astype(np.float64)).any():
        raise InvalidInputError("labels contain NaN")
    if not np.isin(values, [0, 1]).all():
        shown = ", ".join(repr(v) for v in values[:6].tolist())
        raise ValueError(
            f"labels must be binary (0/1), got values {shown}{', ...' if values.size > 6 else ''}; "
            "for graded labels use binarize(labels, threshold)"
        )
    if values.size < 2:
        kind = "successes" if values.size and values[0] == 1 else "failures"
        raise ValueError(
            f"labels contain only {kind}: precision/recall and ROC need at least one success "
            "and one failure"
        )
    return label_array.astype(np.int64)


def precision_recall(
    rewards: npt.ArrayLike, labels: npt.ArrayLike
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision–recall curve of a reward used as a success detector.

    A state is predicted successful when its reward is ≥ the threshold.

    Args:
        rewards: 1-D array of finite scores, higher meaning more likely a success.
        labels: 1-D array of binary labels (0/1 or booleans) for the same states.

    Returns:
        (precision, recall, thresholds): ``precision[i]`` and ``recall[i]`` are those of the
        detector ``reward ≥ thresholds[i]`` for i < len(thresholds), thresholds increasing; the
        arrays end with the point precision = 1, recall = 0, which has no threshold (so they
        are one longer than ``thresholds``).

    Raises:
        ValueError: Mismatched or non-finite inputs, non-binary labels, or a single class.

    Example::

        >>> precision, recall, thresholds = precision_recall([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1])
        >>> thresholds.tolist()
        [0.1, 0.35, 0.4, 0.8]
        >>> precision.round(3).tolist(), recall.tolist()  # reward ≥ 0.35 finds both successes
        ([0.5, 0.667, 0.5, 1.0, 1.0], [1.0, 1.0, 0.5, 0.5, 0.0])
    """
    scores, binary = _validate(rewards, labels)
    precision, recall, thresholds = precision_recall_curve(binary, scores)
    return precision, recall, thresholds


def average_precision(rewards: npt.ArrayLike, labels: npt.ArrayLike) -> float:
    """Average precision: the area under the precision–recall step curve.

    Args:
        rewards: 1-D array of finite scores.
        labels: 1-D array of binary labels for the same states.

    Returns:
        AP in [0, 1]; 1 when every success scores above every failure; about the success rate
        for an uninformative score.

    Raises:
        ValueError: Mismatched or non-finite inputs, non-binary labels, or a single class.

    Example::

        >>> average_precision([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1])  # one failure outranks a success
        0.8333333333333333
        >>> average_precision([0.1, 0.2, 0.7, 0.8], [0, 0, 1, 1])
        1.0
    """
    scores, binary = _validate(rewards, labels)
    return float(average_precision_score(binary, scores))


def roc_auc(rewards: npt.ArrayLike, labels: npt.ArrayLike) -> float:
    """Area under the ROC curve: the probability that a random success outscores a random
    failure (ties count one half).

    Args:
        rewards: 1-D array of finite scores.
        labels: 1-D array of binary labels for the same states.

    Returns:
        AUC in [0, 1]: 1 for a perfect ranking, 0.5 for chance, 0 for a reversed ranking.

    Raises:
        ValueError: Mismatched or non-finite inputs, non-binary labels, or a single class.

    Example::

        >>> roc_auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1])  # 3 of the 4 success–failure pairs ordered
        0.75
        >>> roc_auc([0.5, 0.5, 0.5, 0.5], [0, 0, 1, 1])  # ties count one half
        0.5
    """
    scores, binary = _validate(rewards, labels)
    return float(_auc_rows(scores[None, :], binary)[0])


def roc_auc_rows(rewards: npt.ArrayLike, labels: npt.ArrayLike) -> np.ndarray:
    """ROC AUC of each row of a K×N matrix of rewards against one vector of N binary labels.

    The same statistic as :func:`roc_auc` (which is this function on one row), for scoring many
    rewards at once (the prompt search).

    Args:
        rewards: K×N finite scores, one reward per row.
        labels: N binary labels (0/1 or booleans) with both classes present.

    Returns:
        K AUCs in [0, 1].

    Raises:
        ValueError: Mismatched or non-finite inputs, non-binary labels, or a single class.

    Example::

        >>> roc_auc_rows([[0.1, 0.4, 0.35, 0.8], [0.8, 0.35, 0.4, 0.1]], [0, 0, 1, 1]).tolist()
        [0.75, 0.25]
    """
    scores = np.asarray(rewards, dtype=np.float64)
    if scores.ndim != 2:
        raise ValueError(f"rewards must be a K×N matrix, got shape {scores.shape}")
    binary = _validate_labels(labels)
    if scores.shape[1] != binary.shape[0]:
        raise ValueError(f"{scores.shape[1]} rewards per row for {binary.shape[0]} labels")
    if not np.isfinite(scores).all():
        raise ValueError("rewards contain NaN or infinite values")
    return _auc_rows(scores, binary)


def _auc_rows(scores: np.ndarray, binary: np.ndarray) -> np.ndarray:
    """Mann–Whitney AUC of each row: the rank sum of the successes, tied rewards sharing their
    average rank (which is what counting ties one half amounts to).

    Ranking along the rows of a contiguous matrix is about four times faster than along axis 0.
    """
    n_pos = int(binary.sum())
    n_neg = binary.shape[0] - n_pos
    ranks = average_ranks(np.ascontiguousarray(scores))
    rank_sum = ranks[:, binary == 1].sum(axis=1)
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
