"""Agreement between human labelers: how far the success labels that EPIC is measured against
can be trusted.

* :func:`cohens_kappa` for two labelers over the same items;
* :func:`krippendorff_alpha` for any number of labelers with missing labels (Krippendorff 2011,
  "Computing Krippendorff's Alpha-Reliability"), via the coincidence matrix;
* :func:`pairwise_kappa` and :func:`labeller_disagreements` on a long table of labels
  (item, labeler, value), where only each labeler's latest label for an item counts
  (:func:`current_labels`).
"""

from __future__ import annotations

from contextlib import suppress
from itertools import combinations
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from vlmrm_core.errors import InvalidInputError, VlmrmError

__all__ = [
    "UndefinedAgreementError",
    "cohens_kappa",
    "current_labels",
    "labeller_disagreements",
    "krippendorff_alpha",
    "pairwise_kappa",
]

AlphaLevel = Literal["nominal", "ordinal", "interval", "ratio"]


class UndefinedAgreementError(VlmrmError, ValueError):
    """Chance-corrected agreement is 0/0: the labels show no variation at all (every label is
    the same value), so agreement cannot be told apart from chance."""


def _pair_codes(a: npt.ArrayLike, b: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray, int]:
    """Integer category codes for the items both labelers labelled, and the category count."""
    if np.ndim(a) != 1 or np.ndim(b) != 1:
        raise ValueError("a and b must be 1-D sequences of labels")
    first = pd.Series(np.asarray(a, dtype=object))
    second = pd.Series(np.asarray(b, dtype=object))
    if len(first) != len(second):
        raise ValueError(
            f"a and b must label the same items, got {len(first)} and {len(second)} labels"
        )
    # Factorizing both together gives one shared code per category; NaN/None become -1.
    codes, categories = pd.factorize(pd.concat([first, second], ignore_index=True))
    codes_a, codes_b = codes[: len(first)], codes[len(first) :]
    both = (codes_a >= 0) & (codes_b >= 0)
    return codes_a[both], codes_b[both], len(categories)


def _kappa_from_codes(codes_a: np.ndarray, codes_b: np.ndarray, n_categories: int) -> float:
    n = codes_a.shape[0]
    observed = float(np.mean(codes_a == codes_b))
    share_a = np.bincount(codes_a, minlength=n_categories) / n
    share_b = np.bincount(codes_b, minlength=n_categories) / n
    expected = float(share_a @ share_b)
    if expected >= 1.0:
        raise UndefinedAgreementError(
            "both labelers gave every item the same label: Cohen's kappa is undefined without "
            "variation in the labels"
        )
    return (observed - expected) / (1.0 - expected)


def cohens_kappa(a: npt.ArrayLike, b: npt.ArrayLike) -> float:
    """Cohen's kappa between two labelers over the same items.

    κ = (p_o − p_e) / (1 − p_e), with p_o the share of items both labelled alike and p_e the
    agreement expected by chance from each labeler's own label frequencies.

    Args:
        a: 1-D sequence of labels from the first labeler (binary, categorical or strings).
        b: 1-D sequence of labels from the second labeler for the same items, in the same
            order. Items missing (None/NaN) on either side are left out.

    Returns:
        κ in [-1, 1]: 1 for perfect agreement, 0 for chance-level agreement.

    Raises:
        UndefinedAgreementError: Both labelers used one and the same label for every item.
        ValueError: The sequences differ in length or share no labelled item.

    Example::

        >>> cohens_kappa(["up", "up", "down", "down"], ["up", "up", "down", "down"])
        1.0
        >>> cohens_kappa(["up", "up", "down", "down"], ["up", "down", "down", "down"])  # 3 of 4
        0.5
    """
    codes_a, codes_b, n_categories = _pair_codes(a, b)
    if codes_a.shape[0] == 0:
        raise InvalidInputError("the two labelers share no labelled item")
    return _kappa_from_codes(codes_a, codes_b, n_categories)


def _squared_differences(
    values: np.ndarray, value_totals: np.ndarray, level: AlphaLevel
) -> np.ndarray:
    """δ²(c, k) between every pair of distinct values, per Krippendorff's metric for ``level``."""
    if level == "nominal":
        return 1.0 - np.eye(values.shape[0])
    if level == "interval":
        return (values[:, None] - values[None, :]) ** 2
    if level == "ratio":
        total = values[:, None] + values[None, :]
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = np.where(total == 0, 0.0, (values[:, None] - values[None, :]) / total)
        return ratio**2
    # Ordinal: the distance between two ranks grows with how many labels lie between them,
    # the two end values counting by half (values are sorted ascending).
    cumulative = np.cumsum(value_totals)
    index = np.arange(values.shape[0])
    low, high = np.minimum.outer(index, index), np.maximum.outer(index, index)
    between = cumulative[high] - cumulative[low] + value_totals[low]
    return (between - (value_totals[low] + value_totals[high]) / 2.0) ** 2


def krippendorff_alpha(matrix: npt.ArrayLike, level: AlphaLevel = "nominal") -> float:
    """Krippendorff's alpha for a labelers × items matrix with missing labels.

    α = 1 − D_o / D_e, computed from the coincidence matrix o_ck = Σ_u (number of ordered
    pairs of labels (c, k) in item u) / (m_u − 1), where m_u is how many labelers labelled item
    u; items with fewer than two labels cannot be paired and are left out. With n_c = Σ_k o_ck
    and n = Σ_c n_c: D_o ∝ Σ o_ck δ²_ck and D_e ∝ Σ n_c n_k δ²_ck / (n − 1).

    Args:
        matrix: 2-D array (or DataFrame) with one row per labeler and one column per item;
            NaN/None marks an item the labeler did not label. Values must be numeric except at
            the nominal level, where any hashable label works.
        level: Metric of the values: "nominal" (categories), "ordinal" (ranks), "interval"
            (differences matter) or "ratio" (ratios matter).

    Returns:
        α ≤ 1: 1 for perfect agreement, 0 for chance-level agreement, negative for systematic
        disagreement.

    Raises:
        UndefinedAgreementError: Every paired label has the same value, so expected
            disagreement is 0.
        ValueError: Not a 2-D matrix, an unknown level, non-numeric values at a numeric level,
            or no item labelled by at least two labelers.

    Example::

        >>> krippendorff_alpha([[1, 1, 0, 0], [1, 1, 0, None]])  # agree wherever both labelled
        1.0
        >>> krippendorff_alpha([[1, 1, 0, 0], [1, 0, 0, 1]])
        0.125
    """
    if level not in ("nominal", "ordinal", "interval", "ratio"):
        raise ValueError(
            f"level must be 'nominal', 'ordinal', 'interval' or 'ratio', got {level!r}"
        )
    table = np.asarray(matrix, dtype=object)
    if table.ndim != 2:
        raise ValueError(f"matrix must be 2-D (labelers × items), got shape {table.shape}")
    present = ~pd.isna(table)
    item_of_label = np.broadcast_to(np.arange(table.shape[1]), table.shape)[present]
    labels = table[present]
    if level == "nominal":
        codes, uniques = pd.factorize(pd.Series(labels, dtype=object))
        values = np.arange(len(uniques), dtype=np.float64)
    else:
        try:
            numeric = labels.astype(np.float64)
        except (TypeError, ValueError) as error:
            raise ValueError(f"{level} alpha needs numeric labels: {error}") from None
        if not np.isfinite(numeric).all():
            raise ValueError("labels contain infinite values")
        values, codes = np.unique(numeric, return_inverse=True)

    n_values = values.shape[0]
    # counts[u, c]: how many labelers gave item u the value c.
    counts = (
        np.bincount(item_of_label * n_values + codes, minlength=table.shape[1] * n_values)
        .reshape(table.shape[1], n_values)
        .astype(np.float64)
    )
    labels_per_item = counts.sum(axis=1)
    pairable = labels_per_item >= 2
    if not pairable.any():
        raise InvalidInputError("no item was labelled by at least two labelers: alpha needs pairs")
    counts = counts[pairable]
    inverse_pairs = 1.0 / (labels_per_item[pairable] - 1.0)
    # Σ_u N_uc N_uk / (m_u − 1) counts every ordered pair of labels in an item, including a
    # label paired with itself; the diagonal term removes those self-pairs.
    coincidences = (counts * inverse_pairs[:, None]).T @ counts
    coincidences -= np.diag(inverse_pairs @ counts)
    value_totals = coincidences.sum(axis=1)
    n_pairable = value_totals.sum()

    squared = _squared_differences(values, value_totals, level)
    observed = float((coincidences * squared).sum())
    expected = float((np.outer(value_totals, value_totals) * squared).sum()) / (n_pairable - 1.0)
    if expected <= 0.0:
        raise UndefinedAgreementError(
            "every paired label has the same value: Krippendorff's alpha is undefined without "
            "variation in the labels"
        )
    return float(1.0 - observed / expected)


def current_labels(
    labels_df: pd.DataFrame,
    item: str = "item",
    labeler: str = "labeler",
    value: str = "value",
    order_by: str | None = None,
) -> pd.DataFrame:
    """Each labeler's latest label per item (relabelling replaces the earlier label).

    Args:
        labels_df: Long table with one row per label.
        item: Column identifying the item (frame).
        labeler: Column identifying the labeler.
        value: Column holding the label.
        order_by: Optional column (e.g. a timestamp) defining which label is latest; without
            it, later rows are later labels.

    Returns:
        The columns ``item``, ``labeler``, ``value`` with one row per (item, labeler); rows
        whose value is missing are dropped.

    Raises:
        ValueError: A named column is missing.

    Example::

        >>> import pandas as pd
        >>> labels = pd.DataFrame(
        ...     {"item": ["f1", "f1", "f2", "f1"], "labeler": ["ann", "bob", "ann", "ann"],
        ...      "value": [1, 0, 0, 0]}
        ... )
        >>> current_labels(labels).values.tolist()  # ann relabelled f1 as 0
        [['f1', 'bob', 0], ['f2', 'ann', 0], ['f1', 'ann', 0]]
    """
    needed = [item, labeler, value] + ([order_by] if order_by is not None else [])
    missing = [column for column in needed if column not in labels_df.columns]
    if missing:
        raise ValueError(
            f"labels table lacks column(s) {missing}; it has {list(labels_df.columns)}"
        )
    table = labels_df
    if order_by is not None:
        table = table.sort_values(order_by, kind="stable")
    latest = table.drop_duplicates([item, labeler], keep="last")[[item, labeler, value]]
    return latest[latest[value].notna()].reset_index(drop=True)


def pairwise_kappa(
    labels_df: pd.DataFrame,
    item: str = "item",
    labeler: str = "labeler",
    value: str = "value",
    order_by: str | None = None,
) -> pd.DataFrame:
    """Cohen's kappa for every pair of labelers over the items both labelled.

    Args:
        labels_df: Long table (item, labeler, value), possibly with relabelling; see
            :func:`current_labels`.
        item: Item column.
        labeler: Labeler column.
        value: Label column.
        order_by: Optional column ordering the labels in time.

    Returns:
        DataFrame with one row per pair of labelers (in sorted order) and the columns
        ``labeler_a``, ``labeler_b``, ``n_common`` (items both labelled),
        ``observed_agreement`` (share of those labelled alike; NaN when ``n_common`` is 0) and
        ``kappa`` (NaN when there is no common item or no variation in the labels).

    Example::

        >>> import pandas as pd
        >>> labels = pd.DataFrame(
        ...     {"item": ["f1", "f2", "f3", "f1", "f2", "f3"], "labeler": ["ann"] * 3 + ["bob"] * 3,
        ...      "value": [1, 0, 1, 1, 0, 0]}
        ... )
        >>> row = pairwise_kappa(labels).iloc[0]
        >>> row["labeler_a"], row["labeler_b"], int(row["n_common"]), round(float(row["kappa"]), 3)
        ('ann', 'bob', 3, 0.4)
    """
    current = current_labels(labels_df, item, labeler, value, order_by)
    wide = current.pivot(index=item, columns=labeler, values=value)
    rows = []
    for first, second in combinations(sorted(wide.columns, key=str), 2):
        codes_a, codes_b, n_categories = _pair_codes(
            wide[first].to_numpy(dtype=object), wide[second].to_numpy(dtype=object)
        )
        n_common = int(codes_a.shape[0])
        observed = float(np.mean(codes_a == codes_b)) if n_common else float("nan")
        kappa = float("nan")
        if n_common:
            # Undefined kappa stays NaN: the table keeps one row per pair.
            with suppress(UndefinedAgreementError):
                kappa = _kappa_from_codes(codes_a, codes_b, n_categories)
        rows.append((first, second, n_common, observed, kappa))
    return pd.DataFrame(
        rows, columns=["labeler_a", "labeler_b", "n_common", "observed_agreement", "kappa"]
    ).astype({"n_common": np.int64, "observed_agreement": np.float64, "kappa": np.float64})


def labeller_disagreements(
    labels_df: pd.DataFrame,
    item: str = "item",
    labeler: str = "labeler",
    value: str = "value",
    order_by: str | None = None,
    min_spread: float = 0.0,
) -> pd.DataFrame:
    """Items whose current labels differ between labelers (not the frames where a reward and
    the labels disagree: see :func:`vlmrm_core.services.evaluation.reward_label_mismatches`).

    Args:
        labels_df: Long table (item, labeler, value), possibly with relabelling; see
            :func:`current_labels`.
        item: Item column.
        labeler: Labeler column.
        value: Label column.
        order_by: Optional column ordering the labels in time.
        min_spread: For numeric labels, items whose highest and lowest label differ by less
            than this are not counted (graded labels 0.6 and 0.7 hardly disagree); 0 counts
            every difference.

    Returns:
        DataFrame sorted by item with the columns ``item``, ``n_labelers``, ``values`` (the
        distinct current labels, as a list), ``labels`` (dict labeler → label), ``mean`` and
        ``spread`` (highest − lowest label; NaN for labels that are not numbers); empty when
        all labelers agree.

    Example::

        >>> import pandas as pd
        >>> labels = pd.DataFrame(
        ...     {"item": ["f1", "f2", "f1", "f2"], "labeler": ["ann", "ann", "bob", "bob"],
        ...      "value": [1.0, 0.0, 0.0, 0.0]}
        ... )
        >>> disagreements = labeller_disagreements(labels)
        >>> disagreements["item"].tolist(), disagreements["labels"].tolist()
        (['f1'], [{'ann': 1.0, 'bob': 0.0}])
    """
    current = current_labels(labels_df, item, labeler, value, order_by)
    rows = []
    for item_id, group in current.groupby(item, sort=True):
        distinct = pd.unique(group[value])
        if len(distinct) < 2:
            continue
        numeric = pd.to_numeric(group[value], errors="coerce")
        mean = spread = float("nan")
        if numeric.notna().all():
            mean = float(numeric.mean())
            spread = float(numeric.max() - numeric.min())
            if spread < min_spread:
                continue
        rows.append(
            (
                item_id,
                len(group),
                sorted(distinct.tolist(), key=_sort_key),
                dict(zip(group[labeler].tolist(), group[value].tolist(), strict=True)),
                mean,
                spread,
            )
        )
    return pd.DataFrame(rows, columns=["item", "n_labelers", "values", "labels", "mean", "spread"])


def _sort_key(label: Any) -> tuple[int, Any]:
    # Numbers sort numerically, everything else by its text, without comparing across kinds.
    if isinstance(label, int | float | np.number) and not isinstance(label, bool):
        return (0, float(label))
    return (1, str(label))
