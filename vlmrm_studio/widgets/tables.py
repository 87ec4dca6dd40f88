"""Display titles of the core's tables and options: the core returns snake_case columns and
plain keys; the pages show these words."""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

__all__ = [
    "AXIS_LABELS",
    "EVALUATION_TITLES",
    "dash_missing",
    "evaluation_display",
    "fitting_width",
]

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


def dash_missing(table: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """A copy of ``table`` with the given metric columns as text: 3 decimals, or "–" where
    undefined (never "None" or "nan"). Columns it lacks are left alone."""
    table = table.copy()
    for column in columns:
        if column in table.columns:
            table[column] = [
                "–" if v is None or v != v else f"{float(v):.3f}" for v in table[column]
            ]
    return table


PX_PER_CHAR = 8
"""Width of one character of a table cell, in pixels (generous: the grid's font is ~7 px)."""
MIN_TEXT_PX = 100
"""The narrowest text column :func:`fitting_width` gives (room for the header)."""


def fitting_width(texts: Iterable[str]) -> int:
    """A column width in pixels that shows the longest of ``texts`` in full.

    ``st.dataframe`` sizes text columns to at most a few hundred pixels and cuts longer cells
    with an ellipsis; pass this as the column's ``width`` to show whole names instead (the table
    scrolls sideways when it is wider than the page).
    """
    longest = max((len(str(t)) for t in texts), default=0)
    return max(MIN_TEXT_PX, PX_PER_CHAR * longest + 24)  # + the cell's padding
