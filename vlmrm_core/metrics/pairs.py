"""Pairwise preferences: how well a reward orders compared frames, and how well people agree.

A comparison says which of two frames is closer to the goal: ``a`` (the first), ``b`` (the
second) or ``equal``. As a number, its *outcome* is the share of the win that goes to ``a``:
1, 0 or ½ (:func:`pair_outcomes`).

* :func:`clip_sums`: a clip's reward (or embedding) as the sum over its frames, how comparisons
  of clips are scored (Christiano et al. 2017); a single frame is a clip of one.
* :func:`pair_accuracy`: the share of decided comparisons (``equal`` ones left out) whose winner
  gets the higher reward, with a bootstrap 95% interval; a reward that ties the two frames
  gets half a point (it orders nothing, like a coin).
* :func:`pair_agreement`: agreement between labellers on the pairs several of them answered:
  the share of agreeing answer pairs, Krippendorff's α on the outcomes (via
  :func:`~vlmrm_core.metrics.agreement.krippendorff_alpha`) and the pairs they disagree on.

Pure functions on numpy arrays and pandas tables.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from itertools import combinations
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from vlmrm_core.errors import InvalidInputError
from vlmrm_core.metrics.agreement import (
    AlphaLevel,
    UndefinedAgreementError,
    krippendorff_alpha,
    labeller_disagreements,
)

__all__ = [
    "OUTCOME",
    "PairAccuracy",
    "PairAgreement",
    "canonical_pairs",
    "clip_sums",
    "pair_accuracy",
    "pair_agreement",
    "pair_outcomes",
]

OUTCOME = {"a": 1.0, "b": 0.0, "equal": 0.5}
"""The share of the win that goes to the first frame, per answer."""


def pair_outcomes(choices: npt.ArrayLike) -> np.ndarray:
    """Outcomes (1, 0 or ½ for ``a``, ``b``, ``equal``) of a sequence of answers.

    >>> pair_outcomes(["a", "b", "equal"]).tolist()
    [1.0, 0.0, 0.5]

    Raises:
        InvalidInputError: an answer other than a, b or equal.
    """
    out = []
    for choice in np.asarray(choices, dtype=object).ravel():
        value = OUTCOME.get(str(choice).strip().lower())
        if value is None:
            raise InvalidInputError(f"a comparison's answer must be a, b or equal, got {choice!r}")
        out.append(value)
    return np.asarray(out, dtype=np.float64)


def clip_sums(values: npt.ArrayLike, clips: Sequence[Sequence[int]]) -> np.ndarray:
    """Each clip's sum of per-frame values: rewards (N) or embeddings (N×D) → one row per clip.

    A comparison of two clips is scored by the sum of the per-frame rewards over each clip
    (Christiano et al. 2017); for a linear reward that is the reward of the summed embedding,
    so the same sums reduce embeddings for a fit. A NaN frame value makes its clip's sum NaN.

    Args:
        values: per-frame values, the first axis indexing frames.
        clips: each clip's frame rows (a single frame is a clip of one row).

    >>> clip_sums([1.0, 2.0, 4.0], [[0, 1], [2], [1, 2]]).tolist()
    [3.0, 4.0, 6.0]

    Raises:
        InvalidInputError: an empty clip, or a row outside ``values``.
    """
    v = np.asarray(values, dtype=np.float64)
    out = np.zeros((len(clips), *v.shape[1:]))
    for i, rows in enumerate(clips):
        r = np.asarray(rows, dtype=np.int64)
        if r.size == 0 or r.min() < 0 or r.max() >= v.shape[0]:
            raise InvalidInputError(f"clip {i} must list frame rows in [0, {v.shape[0]})")
        out[i] = v[r].sum(axis=0)
    return out


@dataclass(frozen=True)
class PairAccuracy:
    """How often a reward prefers the frame people preferred."""

    accuracy: float | None
    """Share of decided pairs ordered as people did (None without any decided pair)."""
    ci_low: float | None
    ci_high: float | None
    n_pairs: int
    """Decided pairs (``a`` or ``b``) the accuracy is measured on."""
    n_equal: int
    """Pairs answered ``equal``, left out."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def pair_accuracy(
    rewards_a: npt.ArrayLike,
    rewards_b: npt.ArrayLike,
    outcomes: npt.ArrayLike,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> PairAccuracy:
    """The share of decided comparisons whose preferred frame gets the higher reward.

    Pairs answered ``equal`` (outcome ½) are left out: a reward cannot be right or wrong about
    them. A reward that gives both frames the same value scores ½ on that pair. The interval is
    the bootstrap percentile interval over pairs (``n_boot=0``: none).

    Args:
        rewards_a: the reward of each pair's first frame.
        rewards_b: the reward of each pair's second frame.
        outcomes: 1 (``a`` preferred), 0 (``b``) or ½ (equal), see :func:`pair_outcomes`.
        n_boot: bootstrap resamples.
        seed: bootstrap seed.
        level: the interval's coverage.

    Returns:
        The accuracy with its interval; ``accuracy`` is None when no pair is decided.

    >>> r = pair_accuracy([0.9, 0.2, 0.5, 0.4], [0.1, 0.7, 0.5, 0.3], [1, 0, 1, 0.5], n_boot=0)
    >>> r.accuracy, r.n_pairs, r.n_equal  # right, right, a tie (½); the equal pair left out
    (0.8333333333333334, 3, 1)
    >>> pair_accuracy([1.0], [0.0], [0.5], n_boot=0).accuracy is None
    True

    Raises:
        InvalidInputError: arrays of different lengths, outcomes other than 0, ½ and 1, or
            non-finite rewards.
    """
    a = np.asarray(rewards_a, dtype=np.float64).ravel()
    b = np.asarray(rewards_b, dtype=np.float64).ravel()
    y = np.asarray(outcomes, dtype=np.float64).ravel()
    if not a.size == b.size == y.size:
        raise InvalidInputError(
            f"pair accuracy needs as many rewards as pairs: {a.size}, {b.size} and {y.size}"
        )
    if not np.isin(y, (0.0, 0.5, 1.0)).all():
        raise InvalidInputError("pair outcomes must be 1 (a), 0 (b) or 0.5 (equal)")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise InvalidInputError("rewards contain NaN or infinite values")
    decided = y != 0.5
    n_equal = int((~decided).sum())
    if not decided.any():
        return PairAccuracy(None, None, None, 0, n_equal)
    diff = (a - b)[decided]
    winner_first = y[decided] == 1.0
    correct = np.where(diff == 0, 0.5, ((diff > 0) == winner_first).astype(np.float64))
    accuracy = float(correct.mean())
    low = high = None
    if n_boot > 0 and correct.size > 1:
        rng = np.random.default_rng(seed)
        means = correct[rng.integers(0, correct.size, (n_boot, correct.size))].mean(axis=1)
        tail = (1.0 - level) / 2.0
        low, high = (float(v) for v in np.quantile(means, [tail, 1.0 - tail]))
    return PairAccuracy(accuracy, low, high, int(correct.size), n_equal)


def canonical_pairs(
    comparisons: pd.DataFrame, keys: tuple[pd.Series, pd.Series] | None = None
) -> pd.DataFrame:
    """Comparisons keyed by their unordered pair, the answer said from the pair's lower side.

    Args:
        comparisons: a table with columns frame_a, frame_b, choice, labeler (e.g. the store's
            current comparisons).
        keys: each row's two sides as text identities (the store's
            :func:`~vlmrm_core.store.comparisons.item_keys`: a frame's hash, or a clip's key);
            None: the frame_a / frame_b hashes, right when every row compares two frames.
            Rows whose sides' keys are equal are about the same pair, and only those.

    Returns:
        The columns ``item`` (``"<low>|<high>"``, the two sides' keys sorted), ``labeler``,
        ``value`` (``low``: the lower side is closer to the goal, ``high`` or ``equal``),
        ``low`` and ``high`` (the keys) and ``frame_low``, ``frame_high`` (each side's frame_a /
        frame_b: a clip's first frame).

    >>> table = pd.DataFrame({"frame_a": ["y", "x"], "frame_b": ["x", "y"],
    ...                       "choice": ["a", "a"], "labeler": ["ann", "bob"]})
    >>> canonical_pairs(table)[["item", "labeler", "value"]].values.tolist()
    [['x|y', 'ann', 'high'], ['x|y', 'bob', 'low']]
    """
    key_a, key_b = (comparisons["frame_a"], comparisons["frame_b"]) if keys is None else keys
    key_a, key_b = key_a.astype(str), key_b.astype(str)
    swapped = key_a > key_b
    low, high = key_a.where(~swapped, key_b), key_b.where(~swapped, key_a)
    frame_a, frame_b = comparisons["frame_a"], comparisons["frame_b"]
    outcome = pd.Series(pair_outcomes(comparisons["choice"].to_numpy()), index=comparisons.index)
    outcome = outcome.where(~swapped, 1.0 - outcome)
    value = outcome.map({1.0: "low", 0.0: "high", 0.5: "equal"})
    return pd.DataFrame(
        {
            "item": low + "|" + high,
            "labeler": comparisons["labeler"],
            "value": value,
            "low": low,
            "high": high,
            "frame_low": frame_a.where(~swapped, frame_b),
            "frame_high": frame_b.where(~swapped, frame_a),
        }
    ).reset_index(drop=True)


@dataclass(frozen=True)
class PairAgreement:
    """How much labellers agree about the pairs several of them compared."""

    n_pairs: int
    """Distinct (unordered) pairs with at least one answer."""
    n_shared: int
    """Pairs answered by two labellers or more."""
    percent_agreement: float | None
    """Share of agreeing answers among all pairs of answers about the same pair of frames
    (None without a shared pair)."""
    alpha: float | None
    """Krippendorff's α on the outcomes (None when undefined; see ``alpha_note``)."""
    alpha_note: str
    disagreements: pd.DataFrame
    """Pairs whose answers differ: frame_a, frame_b (each side's frame; a clip's first frame),
    item_a, item_b (the sides' sorted keys, see :func:`canonical_pairs`), n_labelers, answers
    (labeller → ``a`` / ``b`` / ``equal`` said of side a, side b in that order)."""


def pair_agreement(
    comparisons: pd.DataFrame,
    *,
    keys: tuple[pd.Series, pd.Series] | None = None,
    level: AlphaLevel = "nominal",
) -> PairAgreement:
    """Agreement between labellers' current answers about the same pairs.

    Args:
        comparisons: one current answer per labeller and pair: columns frame_a, frame_b,
            choice, labeler (the store's :func:`~vlmrm_core.store.comparisons.current_comparisons`).
        keys: each row's two sides' identities (:func:`canonical_pairs`); None: the frame
            hashes. Comparisons of clips need them: two clips with the same first frame are
            different items.
        level: Krippendorff's metric: ``nominal`` (three unordered answers) or ``ordinal``
            (``equal`` lies between the two wins).

    Returns:
        The agreement; α is None with a note when no pair has two answers or every answer
        is the same.

    >>> table = pd.DataFrame({"frame_a": ["x", "y", "x", "z", "z"],
    ...     "frame_b": ["y", "x", "z", "x", "y"], "choice": ["a", "b", "a", "a", "a"],
    ...     "labeler": ["ann", "bob", "ann", "bob", "ann"]})
    >>> report = pair_agreement(table)  # both prefer x to y; they differ on x vs z
    >>> report.n_pairs, report.n_shared, report.percent_agreement
    (3, 2, 0.5)
    >>> report.disagreements[["frame_a", "frame_b", "answers"]].values.tolist()
    [['x', 'z', {'ann': 'a', 'bob': 'b'}]]
    """
    columns = ["frame_a", "frame_b", "item_a", "item_b", "n_labelers", "answers"]
    if comparisons.empty:
        empty = pd.DataFrame(columns=columns)
        return PairAgreement(0, 0, None, None, "no comparisons yet", empty)
    keyed = canonical_pairs(comparisons, keys).drop_duplicates(["item", "labeler"], keep="last")
    per_pair = keyed.groupby("item")["labeler"].nunique()
    n_shared = int((per_pair >= 2).sum())
    agree = total = 0
    for _item, group in keyed.groupby("item"):
        for x, y in combinations(group["value"].tolist(), 2):
            total += 1
            agree += x == y
    percent = agree / total if total else None
    alpha: float | None = None
    if n_shared == 0:
        note = "needs at least one pair compared by two labellers"
    else:
        numeric = keyed["value"].map({"low": 1.0, "equal": 0.5, "high": 0.0})
        matrix = keyed.assign(value=numeric).pivot(index="labeler", columns="item", values="value")
        try:
            alpha = krippendorff_alpha(matrix.to_numpy(dtype=float), level=level)
            note = f"{level} level, {n_shared} pairs with two or more answers"
        except UndefinedAgreementError:
            note = "undefined: every pair compared twice got the same answer from everyone"
    found = labeller_disagreements(keyed[["item", "labeler", "value"]])
    sides = keyed.drop_duplicates("item").set_index("item")
    back = {"low": "a", "high": "b", "equal": "equal"}
    rows = [
        (
            *sides.loc[item, ["frame_low", "frame_high", "low", "high"]].tolist(),
            int(n),
            {who: back[v] for who, v in sorted(labels.items())},
        )
        for item, n, labels in zip(found["item"], found["n_labelers"], found["labels"], strict=True)
    ]
    return PairAgreement(
        int(len(per_pair)), n_shared, percent, alpha, note, pd.DataFrame(rows, columns=columns)
    )
