"""Evaluate: each reward source's pair accuracy against the dataset's comparisons, as a column
beside its EPIC against the labels.

The numbers are :func:`vlmrm_core.services.preferences.pair_accuracy_of` on the rewards each
evaluation already holds (the labelled frames'): a comparison counts when both its frames are
labelled, ``equal`` answers are left out. Display only.
"""

from __future__ import annotations

from collections.abc import Sequence

from vlmrm_core.metrics.pairs import PairAccuracy
from vlmrm_core.services.evaluation import Evaluation
from vlmrm_core.services.preferences import comparison_data, pair_accuracy_of
from vlmrm_core.store import Engine

__all__ = ["PAIR_COLUMN", "pair_accuracy_column", "pair_accuracy_text"]

PAIR_COLUMN = "pair accuracy (95% CI)"
"""The column's title in the Evaluate table."""


def pair_accuracy_text(result: PairAccuracy) -> str:
    """``0.83 (0.71–0.92), 40 pairs``, or ``–`` without a decided pair."""
    if result.accuracy is None:
        return "–"
    interval = (
        "" if result.ci_low is None or result.ci_high is None
        else f" ({result.ci_low:.2f}–{result.ci_high:.2f})"
    )  # fmt: skip
    return f"{result.accuracy:.2f}{interval}, {result.n_pairs} pairs"


def pair_accuracy_column(
    db: Engine,
    dataset: str,
    hashes: Sequence[str],
    evaluations: Sequence[Evaluation],
    *,
    n_boot: int = 1000,
) -> list[str] | None:
    """The :data:`PAIR_COLUMN` of the Evaluate table (one cell per evaluation, same order), or
    None when the dataset has no comparisons (the column is then left out).

    Args:
        db: the project database.
        dataset: the evaluated dataset.
        hashes: the labelled frames the evaluations' rewards are of.
        evaluations: the table's rows.
        n_boot: bootstrap resamples for the interval.
    """
    data = comparison_data(db, dataset)
    if data.n_pairs == 0:
        return None
    return [
        pair_accuracy_text(pair_accuracy_of(data, hashes, e.rewards, n_boot=n_boot))
        for e in evaluations
    ]
