"""Display titles of the core's tables and options: the core returns snake_case columns and
plain keys; the pages show these words."""

from __future__ import annotations

import pandas as pd

__all__ = ["AXIS_LABELS", "EVALUATION_TITLES", "evaluation_display"]

EVALUATION_TITLES: dict[str, str] = {
    "prompt_set": "prompt set",
    "model": "model",
    "n_params": "parameters",
    "epic": "EPIC distance",
    "ci_low": "EPIC 95% CI low",
    "ci_high": "EPIC 95% CI high",
    "average_precision": "average precision",
    "roc_auc": "ROC AUC",
    "n_labelled": "n labelled",
    "note": "note",
}
"""Column titles of :func:`vlmrm_core.services.evaluation.evaluation_table`."""

AXIS_LABELS: dict[str, str] = {
    "parameter": "sweep parameter",
    "step": "step (one line per episode)",
    "rank": "rank by reward",
}
"""How the landscape's x axes (:data:`vlmrm_core.services.landscape.AXES`) are offered to the user."""


def evaluation_display(table: pd.DataFrame) -> pd.DataFrame:
    """An evaluation table with its display titles (missing columns are left alone)."""
    return table.rename(columns=EVALUATION_TITLES)
