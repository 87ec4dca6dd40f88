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
    """
    scores, binary = _validate(rewards, labels)
    return float(_auc_rows(scores[None, :], binary)[0])


def roc_auc_rows(rewards: npt.ArrayLike, labels: npt.ArrayLike) -> np.ndarray:
    """ROC AUC of each row of a K×N matrix of rewards against one vector of N binary labels.

    The same statistic as :func:`roc_auc` (which is this function on one row), for scoring many
    rewards at once (the prompt sweep).

    Args:
        rewards: K×N finite scores, one reward per row.
        labels: N binary labels (0/1 or booleans) with both classes present.

    Returns:
        K AUCs in [0, 1].

    Raises:
        ValueError: Mismatched or non-finite inputs, non-binary labels, or a single class.
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

    Sorting along the rows of a contiguous matrix is about four times faster than ranking along
    axis 0.
    """
    n = scores.shape[1]
    n_pos = int(binary.sum())
    n_neg = n - n_pos
    by_row = np.ascontiguousarray(scores)
    order = np.argsort(by_row, axis=1, kind="stable")
    success = (binary == 1)[order].astype(np.float64)
    ordered = np.take_along_axis(by_row, order, axis=1)
    starts = np.ones(ordered.shape, dtype=bool)
    starts[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    positions = np.broadcast_to(np.arange(n), ordered.shape)
    # Each element's tie group runs from the last group start at or before it to the element
    # before the next group start after it; its average 1-based rank is the midpoint + 1.
    first = np.maximum.accumulate(np.where(starts, positions, 0), axis=1)
    ends = np.ones(ordered.shape, dtype=bool)
    ends[:, :-1] = starts[:, 1:]
    last = np.minimum.accumulate(np.where(ends, positions, n - 1)[:, ::-1], axis=1)[:, ::-1]
    ranks = (first + last) / 2.0 + 1.0
    rank_sum = np.einsum("kn,kn->k", success, ranks)
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
