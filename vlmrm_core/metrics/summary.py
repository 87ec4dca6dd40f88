"""How well one reward matches human labels: EPIC distance with its interval, AP and ROC AUC.

The one summary used by Evaluate, the prompt search, ``vlmrm epic`` and the held-out folds of
an adapted reward.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from vlmrm_core.errors import InvalidInputError
from vlmrm_core.metrics.classification import (
    SUCCESS_THRESHOLD,
    average_precision,
    binarize,
    roc_auc,
)
from vlmrm_core.metrics.epic import ConstantRewardError, evaluate_epic


@dataclass(frozen=True)
class RewardMetrics:
    """How well one reward matches the labels. None marks a metric that is undefined here (the
    note says why); no field is ever NaN."""

    n: int
    epic_distance: float | None
    ci_low: float | None = None
    ci_high: float | None = None
    average_precision: float | None = None
    roc_auc: float | None = None
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_labels(labels: npt.ArrayLike) -> None:
    """Raise when labels can't judge a reward: fewer than 2 frames, or all the same value.

    Raises:
        InvalidInputError: fewer than 2 labelled frames.
        ConstantRewardError: constant labels (``side='labels'``), with a message naming the fix.

    Example::

        >>> check_labels([0.0, 1.0, 1.0])  # fine: both kinds present
        >>> check_labels([1.0, 1.0, 1.0])
        Traceback (most recent call last):
        ...
        vlmrm_core.metrics.epic.ConstantRewardError: all 3 labelled frames are successes: ...
    """
    values = np.asarray(labels, dtype=np.float64)
    if values.size < 2:
        raise InvalidInputError(
            f"{values.size} labelled frame{'s' if values.size != 1 else ''}: label at least two "
            "frames (a success and a failure) to evaluate a reward"
        )
    if float(values.min()) == float(values.max()):
        value = float(values[0])
        kind = {1.0: "successes", 0.0: "failures"}.get(value, f"the value {value:g}")
        raise ConstantRewardError(
            f"all {values.size} labelled frames are {kind}: EPIC distance, precision and ROC are "
            "undefined when the labels don't vary; label at least one success and one failure",
            side="labels",
            value=value,
        )


def reward_metrics(
    rewards: npt.ArrayLike, labels: npt.ArrayLike, *, n_boot: int = 1000, seed: int = 0
) -> RewardMetrics:
    """EPIC distance (with a bootstrap 95% CI), average precision and ROC AUC of a reward.

    Args:
        rewards: N rewards.
        labels: N consensus labels in [0, 1] (binarised at ``SUCCESS_THRESHOLD`` for AP and
            ROC AUC).
        n_boot: bootstrap resamples for the interval (0: no interval).
        seed: bootstrap seed.

    Returns:
        The metrics; a reward that is constant gets ``epic_distance=None`` and a note.

    Raises:
        ConstantRewardError: the labels are constant (see :func:`check_labels`).

    Example::

        >>> metrics = reward_metrics([0.1, 0.2, 0.7, 0.9], [0, 0, 1, 1], n_boot=0)
        >>> round(metrics.epic_distance, 4), metrics.average_precision, metrics.roc_auc
        (0.119, 1.0, 1.0)
        >>> reward_metrics([0.5, 0.5, 0.5, 0.5], [0, 0, 1, 1], n_boot=0).epic_distance is None
        True
    """
    r = np.asarray(rewards, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    check_labels(y)
    notes: list[str] = []
    epic = low = high = None
    try:
        result = evaluate_epic(r, y, n_boot=n_boot, seed=seed)
        epic, low, high = result.epic_distance, result.ci_low, result.ci_high
    except ConstantRewardError as exc:
        if exc.side == "labels":
            raise
        if exc.side == "bootstrap":
            epic = evaluate_epic(r, y, n_boot=0).epic_distance
            notes.append(f"no interval: {exc}")
        else:
            notes.append(str(exc))
    ap = auc = None
    try:
        binary = binarize(y, SUCCESS_THRESHOLD)
        ap, auc = average_precision(r, binary), roc_auc(r, binary)
    except ValueError as exc:
        notes.append(f"no AP/ROC AUC: {exc}")
    return RewardMetrics(len(y), epic, low, high, ap, auc, "; ".join(notes))
