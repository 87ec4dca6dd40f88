"""Pairwise preferences, as the Label, Tasks and Evaluate pages and ``vlmrm prefs`` use them.

* :class:`PairSession`: one labeller comparing pairs of frames (or of clips) of one dataset in
  one browser session (answer ``a`` / ``b`` / ``equal``, skip, undo), every answer committed at
  once under the store's rules (:mod:`vlmrm_core.store.comparisons`); the pairs to ask come from
  :func:`candidate_pairs` (random), or for clips of k consecutive frames of an episode from
  :func:`candidate_clip_pairs` (random), either reordered by :func:`informative_pairs` (most
  informative first).
* Clips are scored by the sum of their frames' rewards (Christiano et al. 2017): pair accuracy,
  the Bradley–Terry fit and the informative order reduce each clip to its sum
  (:meth:`ComparisonData.item_values`).
* :func:`preference_agreement`: agreement between labellers on pairs, and their disagreements;
  a pair is its two sides' full identities (a clip is not its first frame).
* :func:`comparison_data` and :func:`pair_accuracy_of`: each reward source's pair accuracy
  against the comparisons (beside its EPIC on Evaluate); :func:`reward_pair_accuracy` for any
  :class:`~vlmrm_core.reward.base.Reward`.
* :func:`fit_preference_reward`: the Bradley–Terry reward pulled toward a prompt set, held out
  by frame groups, as an ``adapted`` reward spec with its provenance (``vlmrm adapt
  --preferences``).
* :func:`judge_preferences`: a VLM judge answers the pairwise question for given pairs (both
  orders, to cancel its position bias), stored under a machine labeller (:func:`judge_labeler`);
  :func:`judge_agreement` measures it against people's comparisons.
* :func:`read_preference_csv`, :func:`import_preferences`, :func:`export_preferences`: the CSV
  import (``frame_a,frame_b,choice``) and the CSV / JSONL / TRL exports.

Machine labellers (names starting ``judge:``, :func:`~vlmrm_core.store.comparisons.is_machine_labeler`)
are never mixed with people's comparisons unless the caller chooses: every reader here
(agreement, pair accuracy, the Bradley–Terry fit, the exports) takes ``include_machine=False``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import pandas as pd

from vlmrm_core.errors import CliError, InvalidInputError
from vlmrm_core.metrics.pairs import (
    OUTCOME,
    PairAccuracy,
    PairAgreement,
    canonical_pairs,
    clip_sums,
    pair_accuracy,
    pair_agreement,
)
from vlmrm_core.services.frame_csv import csv_rows
from vlmrm_core.services.labeling import labeler_seed
from vlmrm_core.store import Engine, dataset_frames, frame_image_file, get_dataset, load_pixels
from vlmrm_core.store.comparisons import (
    MACHINE_LABELER_PREFIX,
    Clip,
    ComparisonRecord,
    Item,
    add_comparison,
    check_choice,
    clip_frames,
    comparison_table,
    current_comparisons,
    export_comparisons,
    is_machine_labeler,
    item_keys,
    people_only,
    undo_last_comparison,
)
from vlmrm_core.store.users import require_researcher

if TYPE_CHECKING:
    from vlmrm_core.frames import ProgressCallback
    from vlmrm_core.judge import JudgeModel, JudgeReward
    from vlmrm_core.reward.adaptation import PreferenceReport
    from vlmrm_core.reward.base import Reward
    from vlmrm_core.reward.file import Provenance
    from vlmrm_core.reward.spec import ModelRef, RewardSpec
    from vlmrm_core.store import FrameInfo

__all__ = [
    "EXPORT_FORMATS",
    "PAIR_ORDERS",
    "ComparisonData",
    "PairSession",
    "PreferenceFit",
    "candidate_clip_pairs",
    "candidate_pairs",
    "episode_clips",
    "has_episodes",
    "comparison_data",
    "export_preferences",
    "fit_preference_reward",
    "import_preferences",
    "JUDGE_PAIR_ANSWERS",
    "JUDGE_PAIR_QUESTION",
    "JudgeAgreement",
    "JudgedPair",
    "JudgePreferences",
    "informative_pairs",
    "judge_agreement",
    "judge_labeler",
    "judge_preferences",
    "machine_labelers",
    "machine_suggestions",
    "pair_accuracy_of",
    "preference_agreement",
    "read_preference_csv",
    "CLIP_COLUMNS",
    "PreferenceRow",
    "reward_pair_accuracy",
    "trl_rows",
]

Pair = tuple[str, str]
"""Two frame hashes: (first / left, second / right)."""

ClipPair = tuple[Clip, Clip]
"""Two clips of the same length: (first / left, second / right)."""

AnyPair = Pair | ClipPair
"""What a :class:`PairSession` asks: two frames or two clips."""

PairT = TypeVar("PairT", Pair, ClipPair)
"""Pairs of frames or pairs of clips, the same kind in and out."""

PAIR_ORDERS = ("random", "informative")
"""Orders of the pairs to ask: random pairs, or most informative first."""

EXPORT_FORMATS = ("csv", "jsonl", "trl")
"""``vlmrm prefs export`` formats: the store's CSV and JSONL, and TRL's preference layout."""

TRL_PROMPT = "Which image shows the task closer to done?"
"""The ``prompt`` of TRL rows when no task question is known."""


def _key(a: Item, b: Item) -> tuple[str, str]:
    """The unordered pair as text (see :func:`~vlmrm_core.store.comparisons.item_keys`)."""
    x, y = (a.key if isinstance(a, Clip) else a), (b.key if isinstance(b, Clip) else b)
    return (x, y) if x <= y else (y, x)


# --------------------------------------------------------------------------------------------
# Which pairs to ask
# --------------------------------------------------------------------------------------------


def candidate_pairs(
    engine: Engine,
    dataset: str,
    count: int,
    *,
    seed: int = 0,
    frames: Sequence[str] | None = None,
) -> list[Pair]:
    """``count`` random pairs of distinct frames of a dataset (or of ``frames``, e.g. a task's).

    Reproducible for a seed; each pair is shown in a random order (no side bias).
    """
    from vlmrm_core.reward.active_labels import random_pairs

    if frames is None:
        frames = list(dict.fromkeys(f.hash for f in dataset_frames(engine, dataset)))
    hashes = list(frames)
    return [(hashes[i], hashes[j]) for i, j in random_pairs(len(hashes), count, seed=seed)]


def episode_clips(
    frames: Sequence[FrameInfo], length: int, *, within: Sequence[str] | None = None
) -> list[Clip]:
    """The clips of ``length`` frames that tile each episode from its first step (so no two
    overlap): steps 0…k−1, k…2k−1, …; an episode's last frames that make no whole clip are
    left out.

    Args:
        frames: the dataset's memberships (:func:`~vlmrm_core.store.dataset_frames`).
        length: frames per clip (at least 2).
        within: only clips whose every frame is among these hashes (a task's frames).
    """
    from vlmrm_core.services.episodes import episode_rows

    if length < 2:
        raise InvalidInputError(f"a clip has at least 2 frames, got {length}")
    allowed = None if within is None else set(within)
    clips = []
    for rows in episode_rows(frames)[0]:
        for start in range(0, len(rows) - length + 1, length):
            span = [frames[int(i)] for i in rows[start : start + length]]
            if allowed is None or all(f.hash in allowed for f in span):
                clips.append(Clip(span[0].position, length))
    return clips


def has_episodes(frames: Sequence[FrameInfo]) -> bool:
    """Whether some episode of the dataset has two frames or more (clips can be compared)."""
    from vlmrm_core.services.episodes import episode_rows

    return any(len(rows) >= 2 for rows in episode_rows(frames)[0])


def candidate_clip_pairs(
    engine: Engine,
    dataset: str,
    count: int,
    length: int,
    *,
    seed: int = 0,
    frames: Sequence[str] | None = None,
) -> list[ClipPair]:
    """``count`` random pairs of clips of ``length`` frames (:func:`episode_clips`: two
    episodes, or two spans of one that do not overlap), each shown in a random order.

    Args:
        engine: the project database.
        dataset: the dataset.
        count: how many pairs (fewer when there are not that many clips).
        length: frames per clip.
        seed: reproducible for a seed.
        frames: only clips within these frames (a task's).
    """
    from vlmrm_core.reward.active_labels import random_pairs

    clips = episode_clips(dataset_frames(engine, dataset), length, within=frames)
    return [(clips[i], clips[j]) for i, j in random_pairs(len(clips), count, seed=seed)]


def informative_pairs(
    pairs: Sequence[PairT],
    hashes: Sequence[str],
    embeddings: np.ndarray,
    reward_sets: Sequence[np.ndarray],
    *,
    comparisons: pd.DataFrame | None = None,
    clip_members: Mapping[Clip, Sequence[str]] | None = None,
    prior: np.ndarray | None = None,
    explore: float | None = None,
    seed: int = 0,
) -> list[PairT]:
    """Pairs reordered "most informative first" (the pairs version of the Label page's order).

    The pairs are of frames, or of clips of one length. A clip is scored as its frames summed
    (:func:`~vlmrm_core.metrics.pairs.clip_sums`, as the fits and pair accuracy score it): each
    reward source's reward of a clip is the sum of its frames' rewards, and the Bradley–Terry
    reward is fitted to the comparisons of clips of that length on the clips' summed
    embeddings. Every other step is the frames' (:func:`~vlmrm_core.reward.active_labels.
    pair_informativeness`, :func:`~vlmrm_core.reward.active_labels.informative_pair_order`),
    with clips in place of frames.

    Args:
        pairs: the candidate pairs (frame hashes, or :class:`Clip` s of one length).
        hashes: frames with an embedding: row i of ``embeddings`` and of each reward set.
        embeddings: len(hashes)×D normalised embeddings.
        reward_sets: the reward sources' rewards on those frames.
        comparisons: the current comparisons so far (the store's table): pairs of the same
            kind (frames, or clips of the same length) already compared count as uses of their
            items, and (with enough decided ones) fit the Bradley–Terry reward whose
            uncertainty is scored too.
        clip_members: each clip's frames in time order
            (:func:`~vlmrm_core.store.comparisons.clip_frames`): needed for clips, covering
            every clip of ``pairs``; compared clips it leaves out are not used.
        prior: the prompt's direction for that fit (None: plain Bradley–Terry).
        explore: share of random pairs mixed in (None:
            :data:`~vlmrm_core.reward.active_labels.PAIR_EXPLORE`).
        seed: inner cross-validation seed, and the seed of those random pairs.

    Returns:
        The same pairs, most informative first; pairs with a frame without an embedding keep
        their order at the end.

    Raises:
        InvalidInputError: pairs of frames and of clips (or clips of several lengths) mixed, or
            a clip of ``pairs`` missing from ``clip_members``.
    """
    from vlmrm_core.reward.active_labels import (
        PAIR_EXPLORE,
        fitted_pair_uncertainty,
        informative_pair_order,
        pair_informativeness,
    )
    from vlmrm_core.reward.adaptation import MIN_PAIRS, AdaptationError, fit_preference

    if explore is None:
        explore = PAIR_EXPLORE
    lengths = {side.length if isinstance(side, Clip) else 1 for pair in pairs for side in pair}
    if len(lengths) > 1:
        raise InvalidInputError(
            "informative order ranks pairs of frames or of clips of one length, not a mix: "
            f"got lengths {sorted(lengths)}"
        )
    length = lengths.pop() if lengths else 1
    row = {h: i for i, h in enumerate(hashes)}
    x = np.asarray(embeddings, dtype=np.float64)
    # The items ranked: the frames, or the clips of that length whose frames all have an
    # embedding (each as its frame rows, summed wherever rewards or embeddings are used).
    index: dict[Item, int] = {h: i for h, i in row.items()}
    clip_rows: list[list[int]] | None = None
    if length > 1:
        members = dict(clip_members or {})
        lacking = next((c for p in pairs for c in p if c not in members), None)
        if lacking is not None:
            raise InvalidInputError(
                f"no frames given for clip {lacking}: pass clip_members=clip_frames(...)"
            )
        clips = [
            c for c, frames in members.items()
            if c.length == length and all(h in row for h in frames)
        ]  # fmt: skip
        index = {c: i for i, c in enumerate(clips)}
        clip_rows = [[row[h] for h in members[c]] for c in clips]
    known = [p for p in pairs if p[0] in index and p[1] in index]
    asked: list[tuple[int, int]] = []
    outcomes = np.zeros(0)
    if comparisons is not None and not comparisons.empty:
        same_kind = comparisons[comparisons["length"] == length]
        sides = list(zip(_items_of(same_kind, "a"), _items_of(same_kind, "b"), strict=True))
        usable = [n for n, (a, b) in enumerate(sides) if a in index and b in index]
        asked = [(index[sides[n][0]], index[sides[n][1]]) for n in usable]
        outcomes = _outcomes(same_kind["choice"].iloc[usable])
    done_pairs = np.asarray(asked, dtype=np.int64).reshape(-1, 2)
    candidate = np.asarray([(index[a], index[b]) for a, b in known], dtype=np.int64).reshape(-1, 2)
    everything = np.concatenate([done_pairs, candidate])
    fitted: tuple[np.ndarray, np.ndarray] | None = None
    # Below MIN_PAIRS decided answers the fit is the prompt's direction as it is: its
    # uncertainty would say nothing about the answers, so the sources alone rank the pairs.
    if int((outcomes != 0.5).sum()) >= MIN_PAIRS:
        try:
            fit = fit_preference(x, done_pairs, outcomes, prior, clips=clip_rows, seed=seed)
            fitted = fitted_pair_uncertainty(x, everything, done_pairs, fit, clips=clip_rows)
        except AdaptationError:
            fitted = None
    item_rewards = [
        np.asarray(r, dtype=np.float64) if clip_rows is None else clip_sums(r, clip_rows)
        for r in reward_sets
    ]
    done = np.zeros(len(everything), bool)
    done[: len(asked)] = True
    scores = pair_informativeness(
        everything,
        item_rewards,
        fitted=None if fitted is None else fitted[0],
        fitted_variances=None if fitted is None else fitted[1],
    )
    order = informative_pair_order(everything, scores, asked=done, explore=explore, seed=seed)
    ordered = [known[i - len(asked)] for i in order if i >= len(asked)]
    return ordered + [p for p in pairs if not (p[0] in index and p[1] in index)]


def _outcomes(choices: pd.Series) -> np.ndarray:
    return np.asarray([OUTCOME[str(c)] for c in choices], dtype=np.float64)


# --------------------------------------------------------------------------------------------
# A labelling session of pairs
# --------------------------------------------------------------------------------------------


@dataclass
class PairSession:
    """One labeller comparing pairs of one dataset in one browser session.

    The pairs to ask are given (:func:`candidate_pairs`, optionally reordered by
    :func:`informative_pairs`); :meth:`queue` leaves out the pairs this labeller has answered
    (in either order), puts pairs whose answer was undone first and skipped pairs last. A
    skipped pair is not stored, as a skipped frame is not.
    """

    dataset: str
    labeler: str
    pairs: list[AnyPair] = field(default_factory=list)
    """The pairs to ask, in order: two frames or two clips (:func:`candidate_clip_pairs`)."""
    front: list[AnyPair] = field(default_factory=list)
    skipped: list[AnyPair] = field(default_factory=list)
    session_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    """Tags every comparison this session writes; Undo removes only those."""
    signed_in: bool = False
    """True when ``labeler`` is a signed-in email: writes go through the permission checks."""
    task: str | None = None
    """The labelling task worked on, stored with each comparison."""

    @property
    def seed(self) -> int:
        """The labeller's seed for :func:`candidate_pairs` (see :func:`labeler_seed`)."""
        return labeler_seed(self.labeler)

    def queue(self, engine: Engine) -> list[AnyPair]:
        """The pairs left for this labeller, next first."""
        current = current_comparisons(engine, self.dataset)
        mine = current[current["labeler"] == self.labeler.strip()]
        done = {(a, b) if a <= b else (b, a) for a, b in zip(*item_keys(mine), strict=True)}
        pending = [p for p in self.pairs if _key(*p) not in done]
        keys = {_key(*p) for p in pending}
        first = [p for p in self.front if _key(*p) in keys]
        last = [p for p in self.skipped if _key(*p) in keys and p not in first]
        moved = {_key(*p) for p in first + last}
        return first + [p for p in pending if _key(*p) not in moved] + last

    def compare(self, engine: Engine, pair: AnyPair, choice: str) -> ComparisonRecord:
        """Commit the answer about a pair (``a``, ``b`` or ``equal``) now."""
        a, b = pair
        if self.signed_in:
            from vlmrm_core.store.comparisons import add_comparison_as

            record = add_comparison_as(
                engine, self.labeler, self.dataset, a, b, choice,
                session_id=self.session_id, task=self.task,
            )  # fmt: skip
        else:
            record = add_comparison(
                engine, self.dataset, a, b, self.labeler, choice,
                session_id=self.session_id, task=self.task,
            )  # fmt: skip
        self._forget(pair)
        return record

    def skip(self, pair: AnyPair) -> None:
        """Move a pair to the end of this session's queue without answering it."""
        self._forget(pair)
        self.skipped.append(pair)

    def undo(self, engine: Engine) -> ComparisonRecord | None:
        """Delete this session's latest comparison (never anyone else's) and ask it again first."""
        if self.signed_in:
            from vlmrm_core.store.comparisons import undo_comparison_as

            record = undo_comparison_as(
                engine, self.labeler, self.dataset, session_id=self.session_id
            )
        else:
            record = undo_last_comparison(
                engine, self.dataset, self.labeler, session_id=self.session_id
            )
        if record is not None:
            pair = record.items
            self._forget(pair)
            self.front.insert(0, pair)
        return record

    def _forget(self, pair: AnyPair) -> None:
        key = _key(*pair)
        self.front = [p for p in self.front if _key(*p) != key]
        self.skipped = [p for p in self.skipped if _key(*p) != key]


def preference_agreement(
    engine: Engine, dataset: str, *, include_machine: bool = False
) -> PairAgreement:
    """Agreement between the labellers' current answers about the same pairs
    (:func:`~vlmrm_core.metrics.pairs.pair_agreement`: share agreeing, Krippendorff's α,
    disagreements); people's only unless ``include_machine`` (see :func:`judge_agreement` for a
    machine labeller against people)."""
    current = current_comparisons(engine, dataset)
    return _pair_agreement(current if include_machine else people_only(current))


def _pair_agreement(table: pd.DataFrame) -> PairAgreement:
    """:func:`~vlmrm_core.metrics.pairs.pair_agreement` of comparison rows, each side keyed by
    its full identity (:func:`~vlmrm_core.store.comparisons.item_keys`: two clips with the same
    first frame, or a clip and a frame, are different items). The disagreements gain the
    columns ``length`` (frames per side: 1 for two frames) and ``position_a`` /
    ``position_b`` (where each clip starts; missing for frames)."""
    keys = item_keys(table)
    report = pair_agreement(table, keys=keys)
    lengths: dict[str, int] = {}
    starts: dict[str, Any] = {}
    for side, key in zip(("a", "b"), keys, strict=True):
        lengths.update(zip(key, table["length"].astype(int), strict=True))
        starts.update(zip(key, table[f"position_{side}"], strict=True))
    found = report.disagreements
    found = found.assign(
        length=found["item_a"].map(lengths).astype("int64"),
        position_a=found["item_a"].map(starts).astype("Int64"),
        position_b=found["item_b"].map(starts).astype("Int64"),
    )
    return replace(report, disagreements=found)


# --------------------------------------------------------------------------------------------
# Comparisons as arrays, and pair accuracy of rewards
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ComparisonData:
    """A dataset's current comparisons as arrays (one row per labeller and pair).

    The compared *items* are frames or clips: ``pairs`` index ``items``, each item's frames
    are rows of ``hashes``. When only frames were compared, item i is frame i (``pairs`` index
    ``hashes`` too, and :attr:`clips` is None).
    """

    dataset: str
    hashes: tuple[str, ...]
    """The frames of the compared items, sorted."""
    pairs: np.ndarray
    """P×2 int64 indices into ``items``: (first, second)."""
    outcomes: np.ndarray
    """P outcomes: 1 (first closer to the goal), 0 (second) or ½ (equal)."""
    labelers: tuple[str, ...]
    items: tuple[tuple[int, ...], ...] = ()
    """Each compared item's frames (rows of ``hashes``, in time order); empty: the frames."""

    @property
    def n_pairs(self) -> int:
        return len(self.outcomes)

    @property
    def clips(self) -> list[list[int]] | None:
        """The items' frame rows when some item is a clip (what the fits and pair accuracy
        sum rewards over); None when every item is one frame, in ``hashes`` order."""
        if not any(len(rows) > 1 for rows in self.items):
            return None
        return [list(rows) for rows in self.items]

    def item_values(self, values: np.ndarray) -> np.ndarray:
        """Per-frame values (rewards, or embeddings as rows) of ``hashes`` → per item: the sum
        over each clip's frames (:func:`~vlmrm_core.metrics.pairs.clip_sums`)."""
        clips = self.clips
        return np.asarray(values, dtype=np.float64) if clips is None else clip_sums(values, clips)


def comparison_data(
    engine: Engine,
    dataset: str,
    *,
    labelers: Sequence[str] | None = None,
    include_machine: bool = False,
) -> ComparisonData:
    """The current comparisons of a dataset (of some labellers only, if given) as arrays.

    Args:
        engine: the project database.
        dataset: the dataset.
        labelers: exactly these labellers' comparisons (naming a machine labeller here is
            choosing it); None: every person's, and machine labellers' too with
            ``include_machine``.
        include_machine: with ``labelers=None``, also machine labellers' comparisons.

    Raises:
        NotFoundError: no such dataset.
    """
    current = current_comparisons(engine, dataset)
    if labelers is not None:
        wanted = {name.strip() for name in labelers}
        current = current[current["labeler"].isin(wanted)]
    elif not include_machine:
        current = people_only(current)
    sides = [_items_of(current, side) for side in ("a", "b")]
    found = clip_frames(engine, dataset, [c for side in sides for c in side if isinstance(c, Clip)])

    def frames(item: Item) -> tuple[str, ...]:
        return tuple(found[item]) if isinstance(item, Clip) else (item,)

    keys = sorted({frames(item) for side in sides for item in side})
    hashes = tuple(sorted({h for key in keys for h in key}))
    row = {h: i for i, h in enumerate(hashes)}
    index = {key: i for i, key in enumerate(keys)}
    pairs = np.asarray(
        [(index[frames(a)], index[frames(b)]) for a, b in zip(*sides, strict=True)],
        dtype=np.int64,
    ).reshape(-1, 2)
    return ComparisonData(
        dataset,
        hashes,
        pairs,
        _outcomes(current["choice"]),
        tuple(sorted(set(current["labeler"]))),
        tuple(tuple(row[h] for h in key) for key in keys),
    )


def _items_of(table: pd.DataFrame, side: str) -> list[Item]:
    """The ``side`` (``a`` or ``b``) of each comparison row: its frame hash, or its clip."""
    return [
        Clip(int(position), int(length)) if length > 1 else str(frame)
        for frame, position, length in zip(
            table[f"frame_{side}"], table[f"position_{side}"], table["length"], strict=True
        )
    ]


def pair_accuracy_of(
    data: ComparisonData,
    hashes: Sequence[str],
    rewards: np.ndarray,
    *,
    n_boot: int = 1000,
    seed: int = 0,
) -> PairAccuracy:
    """Pair accuracy of rewards known for some frames (e.g. Evaluate's rewards of the labelled
    frames) against the comparisons whose two sides have a reward on every frame (a clip's
    reward is the sum over its frames).

    Args:
        data: the comparisons (:func:`comparison_data`).
        hashes: the frames the rewards are of.
        rewards: one reward per frame of ``hashes``.
        n_boot: bootstrap resamples for the interval.
        seed: bootstrap seed.

    Returns:
        :func:`~vlmrm_core.metrics.pairs.pair_accuracy` on those comparisons (``equal`` ones
        left out); ``n_pairs`` says how many were scored.
    """
    values = np.asarray(rewards, dtype=np.float64).ravel()
    if values.size != len(hashes):
        raise InvalidInputError(f"{values.size} rewards for {len(hashes)} frames")
    by_hash = dict(zip(hashes, values, strict=True))
    mapped = data.item_values(
        np.array([by_hash.get(h, np.nan) for h in data.hashes], dtype=np.float64)
    )
    if data.n_pairs == 0:
        return PairAccuracy(None, None, None, 0, 0)
    a, b = mapped[data.pairs[:, 0]], mapped[data.pairs[:, 1]]
    known = np.isfinite(a) & np.isfinite(b)
    return pair_accuracy(a[known], b[known], data.outcomes[known], n_boot=n_boot, seed=seed)


def reward_pair_accuracy(
    engine: Engine,
    dataset: str,
    reward: Reward,
    *,
    data: ComparisonData | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    batch_size: int = 64,
    include_machine: bool = False,
) -> PairAccuracy:
    """Pair accuracy of any :class:`~vlmrm_core.reward.base.Reward` on the compared frames.

    Args:
        engine: the project database.
        dataset: the dataset compared on.
        reward: the reward source (called on the stored frames' pixels).
        data: the comparisons, if already read.
        n_boot: bootstrap resamples for the interval.
        seed: bootstrap seed.
        batch_size: frames per call of the reward (frames of one size are batched).
        include_machine: when ``data`` is not given, also machine labellers' comparisons.
    """
    if data is None:
        data = comparison_data(engine, dataset, include_machine=include_machine)
    values = np.zeros(len(data.hashes))
    for start in range(0, len(data.hashes), batch_size):
        chunk = data.hashes[start : start + batch_size]
        pixels = [load_pixels(h) for h in chunk]
        if len({p.shape for p in pixels}) == 1:
            values[start : start + len(chunk)] = reward(np.stack(pixels))
        else:  # frames of different sizes: one at a time
            values[start : start + len(chunk)] = [float(reward(p)[0]) for p in pixels]
    return pair_accuracy_of(data, data.hashes, values, n_boot=n_boot, seed=seed)


# --------------------------------------------------------------------------------------------
# The Bradley–Terry reward of a dataset's comparisons
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PreferenceFit:
    """A Bradley–Terry reward fitted to a dataset's comparisons, ready to save."""

    report: PreferenceReport
    spec: RewardSpec
    """The ``adapted`` reward spec (the starting prompts kept, the fitted weights, bias 0)."""
    provenance: Provenance
    data: ComparisonData


def fit_preference_reward(
    engine: Engine,
    dataset: str,
    ref: ModelRef,
    spec: RewardSpec,
    *,
    started_from: str,
    labelers: Sequence[str] | None = None,
    include_machine: bool = False,
    device: str | None = None,
    folds: int = 5,
    n_boot: int = 1000,
    seed: int = 0,
) -> PreferenceFit:
    """Fit the Bradley–Terry reward to a dataset's comparisons, pulled toward ``spec``'s
    direction, and measure it (and the zero-shot reward) by held-out pair accuracy.

    Args:
        engine: the project database.
        dataset: the compared dataset.
        ref: the CLIP model (its embeddings are cached as for labels).
        spec: the starting reward (its direction is the prior; its own rewards the zero-shot).
        started_from: what ``spec`` is, for the provenance (e.g. ``prompt set 'x'``).
        labelers: only these labellers' comparisons (None: every person's).
        include_machine: with ``labelers=None``, also machine labellers' comparisons.
        device: torch device.
        folds: outer folds of the frame groups.
        n_boot: bootstrap resamples for the intervals.
        seed: fold and bootstrap seed.

    Raises:
        InvalidInputError: no comparisons.
        AdaptationError: no decided comparison, or nothing can be held out.
    """
    from vlmrm_core.reward.adaptation import (
        adapted_spec,
        cross_validate_preferences,
        frame_groups,
        preference_provenance,
    )
    from vlmrm_core.reward.model import RewardModel, reward_direction
    from vlmrm_core.services.landscape import embed_hashes, reward_values

    data = comparison_data(engine, dataset, labelers=labelers, include_machine=include_machine)
    if data.n_pairs == 0:
        raise InvalidInputError(
            f"dataset {dataset!r} has no comparisons: import some with `vlmrm prefs import`"
        )
    reward_model = RewardModel.from_ref(ref, spec, device=device)
    clip = reward_model.clip
    embeddings = embed_hashes(
        engine, clip, list(data.hashes), aspect=ref.aspect, resize=ref.resize
    ).astype(np.float64)
    zero_shot = reward_values(reward_model.score_embeddings(embeddings))
    prior = reward_direction(clip, spec, embeddings)
    groups = frame_groups(list(data.hashes), dataset_frames(engine, dataset))
    report = cross_validate_preferences(
        embeddings, data.pairs, data.outcomes, groups, prior, zero_shot, clips=data.clips,
        folds=folds, n_boot=n_boot, seed=seed,
    )  # fmt: skip
    provenance = preference_provenance(
        report,
        dataset=dataset,
        labelers=data.labelers,
        started_from=started_from,
        starting_reward=spec,
    )
    return PreferenceFit(report, adapted_spec(spec, report.fit), provenance, data)


# --------------------------------------------------------------------------------------------
# Machine preferences: a VLM judge answers the pairwise question
# --------------------------------------------------------------------------------------------

JUDGE_PAIR_QUESTION = "Which image shows the task closer to done? Answer 1 or 2."
"""The pairwise question asked of a judge (RL-VLM-F's form); image 1 is shown first."""

JUDGE_PAIR_ANSWERS = ("1", "2")
"""The judge's two answers: image 1 or image 2 is closer to done."""

DEFAULT_JUDGE_MARGIN = 0.5
"""Combined log-odds (nats) below which the judge is taken as undecided (about 62% : 38%)."""

JUDGE_TIES = ("skip", "equal")
"""What an undecided judge's pair becomes: no answer (not stored), or an ``equal`` answer."""


@dataclass(frozen=True)
class JudgedPair:
    """The judge's answer about one pair, asked in both orders."""

    frame_a: str
    frame_b: str
    first: float
    """log P(1) − log P(2) with ``frame_a`` shown as image 1 (positive: a preferred)."""
    second: float
    """log P(1) − log P(2) with ``frame_b`` shown as image 1 (positive: b preferred)."""
    choice: str | None
    """``a``, ``b``, ``equal`` (an undecided pair with ``ties='equal'``) or None (not stored)."""

    @property
    def log_odds(self) -> float:
        """The judge's preference for ``frame_a``, its position bias cancelled: the mean of
        the two orders' log-odds for a, ``(first − second) / 2``."""
        return (self.first - self.second) / 2.0


@dataclass(frozen=True)
class JudgePreferences:
    """What :func:`judge_preferences` asked and stored."""

    labeler: str
    """The machine labeller the answers are stored under."""
    question: str
    margin: float
    pairs: list[JudgedPair]
    """Every pair asked, in order (pairs the labeller had already answered are not asked)."""
    n_stored: int
    n_already: int
    """Pairs left out because this machine labeller had answered them already."""


def judge_labeler(reward: JudgeReward) -> str:
    """The machine labeller's name for a judge asking a question: ``judge:<model>#<hash>``,
    the hash (8 hex digits) of the judge's identity (model, precision, preprocessing, question,
    answers), so another model or question is another labeller."""
    import hashlib

    digest = hashlib.sha256(reward.identity.encode("utf-8")).hexdigest()[:8]
    return f"{MACHINE_LABELER_PREFIX}{reward.judge.label[:200]}#{digest}"


def _pair_judge(
    judge: JudgeReward | JudgeModel | str | Path,
    question: str,
    *,
    device: str | None,
    precision: str,
) -> JudgeReward:
    """A log-odds judge of two images with the answers 1 / 2, sharing a given judge's model and
    feature cache."""
    from vlmrm_core.judge import JudgeModel, JudgeReward, load_judge

    if isinstance(judge, JudgeReward):
        return judge.with_question(question, JUDGE_PAIR_ANSWERS, mode="log-odds", frames=2)
    model = (
        judge
        if isinstance(judge, JudgeModel)
        else load_judge(judge, device=device, precision=precision)
    )
    return JudgeReward(model, question, JUDGE_PAIR_ANSWERS, mode="log-odds", frames=2)


def judge_preferences(
    engine: Engine,
    dataset: str,
    judge: JudgeReward | JudgeModel | str | Path,
    pairs: Sequence[Pair],
    *,
    question: str = JUDGE_PAIR_QUESTION,
    margin: float = DEFAULT_JUDGE_MARGIN,
    ties: str = "skip",
    skip_answered: bool = True,
    progress: ProgressCallback | None = None,
    device: str | None = None,
    precision: str = "auto",
    chunk_size: int = 64,
    actor: str | None = None,
) -> JudgePreferences:
    """Ask a VLM judge which frame of each pair is closer to done, and store its answers as a
    machine labeller's comparisons (RL-VLM-F's preference labels, as suggestions).

    Each pair (a, b) is asked twice, as two images of one question: a then b, and b then a.
    Each order's answer is read through the judge's own scoring path (its chat template, the
    answer position, one token per answer): log P(1) − log P(2). The two are combined as
    ``(first − second) / 2`` (:attr:`JudgedPair.log_odds`), which cancels a constant preference
    for a position. ``|log_odds| < margin`` is an undecided judge: with ``ties='skip'`` (the
    default, as RL-VLM-F drops "no preference") nothing is stored for the pair; with
    ``ties='equal'`` an ``equal`` answer is. Otherwise ``a`` or ``b`` is stored.

    Args:
        engine: the project database.
        dataset: the dataset the frames belong to.
        judge: a :class:`~vlmrm_core.judge.JudgeReward` (its model and feature cache are
            reused, its question is not), a loaded :class:`~vlmrm_core.judge.JudgeModel`, or a
            model to load (hub id or folder).
        pairs: (frame_a, frame_b) pixel hashes of the dataset.
        question: the pairwise question; it should ask to answer 1 or 2.
        margin: combined log-odds below which the judge is undecided (≥ 0).
        ties: ``skip`` or ``equal``, see above.
        skip_answered: leave out pairs this machine labeller answered already (the same judge
            and question answer them the same way).
        progress: ``progress(done, total, message)`` after each chunk.
        device: where to load a judge given by name.
        precision: precision of a judge given by name.
        chunk_size: pairs judged at a time (bounds memory).
        actor: the signed-in user asking (None: the local user without sign-in). Running a
            judge and storing its answers is research work: admins and researchers only.

    Returns:
        The labeller, every pair's two log-odds and answer, and how many were stored.

    Raises:
        InvalidInputError: a negative margin, an unknown ``ties``, or a pair with the same
            frame twice or a frame outside the dataset.
        AnswerError: the judge's vocabulary has no single token for ``1`` or ``2``.
        NotFoundError: no such dataset.
        AccessError: ``actor`` is signed in but not an admin or researcher.
    """
    from vlmrm_core.judge import score_windows

    require_researcher(engine, actor)
    if not margin >= 0:
        raise InvalidInputError(f"the judge's margin must be ≥ 0 (log-odds), got {margin!r}")
    if ties not in JUDGE_TIES:
        raise InvalidInputError(f"ties must be one of {', '.join(JUDGE_TIES)}, got {ties!r}")
    get_dataset(engine, dataset)  # NotFoundError names the dataset
    members = {f.hash for f in dataset_frames(engine, dataset)}
    for a, b in pairs:
        if a == b:
            raise InvalidInputError("a pair to judge needs two different frames")
        missing = next((h for h in (a, b) if h not in members), None)
        if missing is not None:
            raise InvalidInputError(f"frame {missing[:12]}… is not in dataset {dataset!r}")
    reward = _pair_judge(judge, question, device=device, precision=precision)
    labeler = judge_labeler(reward)
    todo = list(dict.fromkeys(pairs))
    n_already = 0
    if skip_answered:
        current = current_comparisons(engine, dataset)
        mine = current[current["labeler"] == labeler]
        done = {_key(a, b) for a, b in zip(mine["frame_a"], mine["frame_b"], strict=True)}
        kept = [p for p in todo if _key(*p) not in done]
        n_already, todo = len(todo) - len(kept), kept
    session_id = uuid.uuid4().hex
    judged: list[JudgedPair] = []
    stored = 0
    for start in range(0, len(todo), chunk_size):
        chunk = todo[start : start + chunk_size]
        hashes = list(dict.fromkeys(h for pair in chunk for h in pair))
        index = {h: i for i, h in enumerate(hashes)}
        items = [(h, partial(load_pixels, h)) for h in hashes]
        windows = [
            window for a, b in chunk for window in ((index[a], index[b]), (index[b], index[a]))
        ]
        values = score_windows(reward, items, windows).astype(np.float64)
        for n, (a, b) in enumerate(chunk):
            first, second = float(values[2 * n]), float(values[2 * n + 1])
            combined = (first - second) / 2.0
            choice: str | None
            if abs(combined) < margin:
                choice = "equal" if ties == "equal" else None
            else:
                choice = "a" if combined > 0 else "b"
            if choice is not None:
                add_comparison(
                    engine, dataset, a, b, labeler, choice, session_id=session_id, machine=True
                )
                stored += 1
            judged.append(JudgedPair(a, b, first, second, choice))
        if progress is not None:
            progress(len(judged), len(todo), f"{len(judged)} pairs judged, {stored} stored")
    return JudgePreferences(labeler, reward.question, float(margin), judged, stored, n_already)


@dataclass(frozen=True)
class JudgeAgreement:
    """How well a machine labeller agrees with people on the pairs both answered."""

    machine: str
    n_pairs: int
    """Pairs answered by the machine and at least one person."""
    n_answers: int
    """(machine, person) answer pairs compared: one per person per shared pair."""
    percent_agreement: float | None
    """Share of those answer pairs that agree (None without a shared pair)."""
    alpha: float | None
    """Krippendorff's α (nominal) between the machine and people, each (pair, person) one item
    rated by the two (None when undefined, see ``alpha_note``)."""
    alpha_note: str
    per_person: dict[str, PairAgreement]
    """The machine against each person alone (:func:`~vlmrm_core.metrics.pairs.pair_agreement`
    on the pairs both answered)."""


def judge_agreement(engine: Engine, dataset: str, machine: str) -> JudgeAgreement:
    """Agreement of a machine labeller's current answers with people's, on the pairs both
    answered (answers compared from the same side of each pair, whichever order was shown).

    Raises:
        InvalidInputError: ``machine`` is not a machine labeller's name.
        NotFoundError: no such dataset.
    """
    from vlmrm_core.metrics.agreement import UndefinedAgreementError, krippendorff_alpha

    machine = machine.strip()
    if not is_machine_labeler(machine):
        raise InvalidInputError(
            f"{machine!r} is not a machine labeller (their names start with "
            f"{MACHINE_LABELER_PREFIX!r})"
        )
    current = current_comparisons(engine, dataset)
    people = people_only(current)
    mine = current[current["labeler"] == machine]
    if mine.empty or people.empty:
        return JudgeAgreement(machine, 0, 0, None, None, "no pair answered by both", {})
    machine_values = dict(zip(*(_canonical(mine)[c] for c in ("item", "value")), strict=True))
    keyed = _canonical(people)
    shared = keyed[keyed["item"].isin(machine_values)]
    if shared.empty:
        return JudgeAgreement(machine, 0, 0, None, None, "no pair answered by both", {})
    theirs = shared["value"].tolist()
    ours = [machine_values[item] for item in shared["item"]]
    percent = float(np.mean([x == y for x, y in zip(ours, theirs, strict=True)]))
    alpha: float | None = None
    try:
        alpha = krippendorff_alpha(np.asarray([ours, theirs], dtype=object), level="nominal")
        note = f"nominal level, {len(theirs)} answers of people on pairs the judge answered"
    except UndefinedAgreementError:
        note = "undefined: the judge and people gave one and the same answer everywhere"
    per_person: dict[str, PairAgreement] = {}
    mine_items = _canonical(mine)["item"].to_numpy()
    for person in sorted(set(shared["labeler"])):
        rows = people[people["labeler"] == person]
        row_items = _canonical(rows)["item"].to_numpy()
        both = [item for item in row_items if item in machine_values]
        together = pd.concat(
            [mine[np.isin(mine_items, both)], rows[np.isin(row_items, both)]], ignore_index=True
        )
        per_person[person] = _pair_agreement(together)
    return JudgeAgreement(
        machine,
        int(shared["item"].nunique()),
        len(theirs),
        percent,
        alpha,
        note,
        per_person,
    )


def _canonical(table: pd.DataFrame) -> pd.DataFrame:
    """:func:`~vlmrm_core.metrics.pairs.canonical_pairs` of comparison rows keyed by each
    side's full identity (:func:`~vlmrm_core.store.comparisons.item_keys`)."""
    return canonical_pairs(table, item_keys(table))


def machine_suggestions(engine: Engine, dataset: str, pair: Pair) -> dict[str, str]:
    """Each machine labeller's current answer about a pair, as seen from the pair's order:
    ``a`` (the first frame, shown left, is closer), ``b`` or ``equal``; whichever order the
    machine was asked in. For showing a judge's suggestion beside the pair a person answers.
    """
    current = current_comparisons(engine, dataset)
    machine = current["labeler"].map(is_machine_labeler).astype(bool)
    machines = current[machine & (current["length"] == 1)]  # a clip is not its first frame
    swap = {"a": "b", "b": "a", "equal": "equal"}
    found: dict[str, str] = {}
    for a, b, choice, name in zip(
        machines["frame_a"], machines["frame_b"], machines["choice"], machines["labeler"],
        strict=True,
    ):  # fmt: skip
        if (a, b) == pair:
            found[str(name)] = str(choice)
        elif (b, a) == pair:
            found[str(name)] = swap[str(choice)]
    return dict(sorted(found.items()))


def machine_labelers(engine: Engine, dataset: str) -> list[str]:
    """The machine labellers with current comparisons in a dataset, sorted."""
    current = current_comparisons(engine, dataset)
    return sorted({name for name in current["labeler"] if is_machine_labeler(name)})


# --------------------------------------------------------------------------------------------
# Import and export
# --------------------------------------------------------------------------------------------


CLIP_COLUMNS = ("length", "episode_a", "step_a", "episode_b", "step_b")
"""Optional columns of a preference CSV for clips: frames per side (empty or 1: two frames),
and where each clip starts (episode and step of its first frame; needed only when that frame's
pixels occur more than once in episodes)."""


@dataclass(frozen=True)
class PreferenceRow:
    """One row of a preference CSV (:func:`read_preference_csv`)."""

    line: int
    frame_a: str
    frame_b: str
    choice: str
    length: int = 1
    """1: two frames; k ≥ 2: two clips of k consecutive frames starting at the two frames."""
    start_a: tuple[int, int] | None = None
    """(episode, step) of the first clip's first frame, when given."""
    start_b: tuple[int, int] | None = None


def _whole(cell: str, column: str, where: str, fix: str) -> int:
    try:
        return int(cell)
    except ValueError:
        raise CliError(f"{where}: {column} {cell!r} is not a whole number: {fix}") from None


def _clip_start(row: dict[str, Any], side: str, where: str) -> tuple[int, int] | None:
    episode = (row.get(f"episode_{side}") or "").strip()
    step = (row.get(f"step_{side}") or "").strip()
    if not episode and not step:
        return None
    if not episode or not step:
        raise CliError(f"{where}: give both episode_{side} and step_{side}, or neither")
    fix = "the episode and step of the clip's first frame"
    return (
        _whole(episode, f"episode_{side}", where, fix),
        _whole(step, f"step_{side}", where, fix),
    )


def read_preference_csv(path: Path) -> list[PreferenceRow]:
    """The rows of a CSV with columns frame_a, frame_b, choice (and optionally
    :data:`CLIP_COLUMNS`).

    ``choice`` is ``a``, ``b`` or ``equal`` (case ignored). A UTF-8 byte-order mark is accepted.
    With ``length`` k ≥ 2 the row compares two clips of k consecutive frames of an episode,
    starting at frame_a and frame_b (at ``episode_a``/``step_a`` and ``episode_b``/``step_b``
    when given).

    Raises:
        CliError: a missing file or column, an empty cell, an unknown answer, the same frame on
            both sides, a bad length or clip start, or no rows; the message names the line.
    """
    rows: list[PreferenceRow] = []
    with csv_rows(path) as (fields, lines):
        missing = [c for c in ("frame_a", "frame_b", "choice") if c not in fields]
        if missing:
            raise CliError(
                f"{path} needs columns frame_a, frame_b and choice "
                f"(found: {', '.join(fields) or 'none'})"
            )
        for line, row in lines:
            where = f"{path} line {line}"
            a = (row.get("frame_a") or "").strip()
            b = (row.get("frame_b") or "").strip()
            if not a or not b:
                raise CliError(f"{where}: frame_a and frame_b must both be given")
            try:
                choice = check_choice(row.get("choice") or "")
            except InvalidInputError:
                raise CliError(
                    f"{where}: choice {row.get('choice')!r} is not a, b or equal"
                ) from None
            cell = (row.get("length") or "").strip()
            fix = "1 (or empty) for two frames, 2 or more for clips"
            length = _whole(cell, "length", where, fix) if cell else 1
            if length < 1:
                raise CliError(f"{where}: length {cell!r} must be {fix}")
            starts: tuple[tuple[int, int] | None, tuple[int, int] | None] = (None, None)
            if length > 1:
                starts = (_clip_start(row, "a", where), _clip_start(row, "b", where))
            if a == b and (length == 1 or None in starts or starts[0] == starts[1]):
                raise CliError(f"{where}: frame_a and frame_b are the same frame")
            rows.append(PreferenceRow(line, a, b, choice, length, *starts))
    if not rows:
        raise CliError(f"{path} has no comparison rows")
    return rows


def _import_clip(
    frames: Sequence[FrameInfo], frame_hash: str, start: tuple[int, int] | None, where: str
) -> int:
    """The membership a clip of an imported row starts at: at its episode and step if given
    (which must show the named frame), else the first membership of the frame in an episode."""
    if start is not None:
        at = [f for f in frames if (f.episode, f.step) == start]
        if not at:
            raise CliError(
                f"{where}: the dataset has no frame at episode {start[0]} step {start[1]}"
            )
        if at[0].hash != frame_hash:
            raise CliError(
                f"{where}: the frame at episode {start[0]} step {start[1]} is not the one named: "
                "fix the frame or the episode and step"
            )
        return at[0].position
    for f in frames:
        if f.hash == frame_hash and f.episode is not None and f.step is not None:
            return f.position
    raise CliError(f"{where}: the clip's first frame is in no episode: clips need episodes")


def import_preferences(engine: Engine, dataset: str, path: Path, labeler: str) -> int:
    """Store the comparisons of a ``frame_a,frame_b,choice`` CSV under ``labeler``.

    Frames are named as in ``vlmrm labels import`` (a unique name or end of one, or the pixel
    hash; :func:`~vlmrm_core.services.frame_csv.resolve_frame_names`). Rows with a ``length``
    of 2 or more compare clips (:func:`read_preference_csv`). Every row is read and resolved
    (each clip checked to lie within its episode) before the first is stored, so a bad file
    stores nothing.

    Returns:
        How many comparisons were stored.

    Raises:
        CliError: a bad file, frames that match no frame (or several) of the dataset, or a clip
            that is not within one episode.
        NotFoundError: no such dataset.
    """
    from vlmrm_core.services.frame_csv import resolve_frame_names

    get_dataset(engine, dataset)  # NotFoundError names the dataset
    rows = read_preference_csv(path)
    members = dataset_frames(engine, dataset)
    known: list[tuple[str, str]] = []
    for f in members:
        known.append((f.hash, f.hash))
        if f.name:
            known.append((f.name, f.hash))
    wanted = list(dict.fromkeys(name for r in rows for name in (r.frame_a, r.frame_b)))
    found = resolve_frame_names(wanted, known, source=str(path), where=f"dataset {dataset!r}")
    resolved: list[tuple[AnyPair, str]] = []
    for r in rows:
        where = f"{path} line {r.line}"
        a, b = found[r.frame_a], found[r.frame_b]
        if r.length == 1:
            if a == b:
                raise CliError(f"{where}: {r.frame_a!r} and {r.frame_b!r} are the same frame")
            resolved.append(((a, b), r.choice))
            continue
        clips = (
            Clip(_import_clip(members, a, r.start_a, where), r.length),
            Clip(_import_clip(members, b, r.start_b, where), r.length),
        )
        if clips[0] == clips[1]:
            raise CliError(f"{where}: both clips start at the same frame: give episode/step")
        try:
            clip_frames(engine, dataset, clips)
        except InvalidInputError as exc:
            raise CliError(f"{where}: {exc}") from None
        resolved.append((clips, r.choice))
    for pair, choice in resolved:
        add_comparison(engine, dataset, pair[0], pair[1], labeler, choice)
    return len(resolved)


def trl_rows(
    engine: Engine, dataset: str, *, prompt: str = TRL_PROMPT, include_machine: bool = False
) -> list[dict[str, Any]]:
    """The decided comparisons in the prompt / chosen / rejected layout of TRL preference data.

    One row per labeller and decided pair (``equal`` answers have no chosen side and are left
    out, and so are comparisons of clips): ``prompt``, ``chosen`` and ``rejected`` (the frames'
    PNG files), ``images`` (the same
    two files, chosen first, for vision loaders), and ``chosen_hash``, ``rejected_hash``,
    ``labeler``, ``dataset``. People's comparisons only unless ``include_machine``.
    """
    table = comparison_table(engine, dataset, include_machine=include_machine)
    table = table[table["length"] == 1]  # TRL's rows hold one image per side: no clips
    rows = []
    for a, b, choice, who in zip(
        table["frame_a"], table["frame_b"], table["choice"], table["labeler"], strict=True
    ):
        if choice == "equal":
            continue
        chosen, rejected = (a, b) if choice == "a" else (b, a)
        # A PNG file for every frame: video-backed frames get one made (and kept) on demand.
        chosen_file, rejected_file = str(frame_image_file(chosen)), str(frame_image_file(rejected))
        rows.append(
            {
                "prompt": prompt,
                "chosen": chosen_file,
                "rejected": rejected_file,
                "images": [chosen_file, rejected_file],
                "chosen_hash": chosen,
                "rejected_hash": rejected,
                "labeler": who,
                "dataset": dataset,
            }
        )
    return rows


def export_preferences(
    engine: Engine,
    dataset: str,
    path: str | Path,
    fmt: str = "csv",
    *,
    prompt: str | None = None,
    include_machine: bool = False,
) -> Path:
    """Write a dataset's current comparisons: ``csv`` / ``jsonl`` (the store's table, which
    ``vlmrm prefs import`` reads back) or ``trl`` (JSONL rows of :func:`trl_rows`); people's
    only unless ``include_machine``.

    Raises:
        InvalidInputError: an unknown format.
    """
    if fmt not in EXPORT_FORMATS:
        raise InvalidInputError(
            f"export format must be one of {', '.join(EXPORT_FORMATS)}, got {fmt!r}"
        )
    if fmt != "trl":
        return export_comparisons(engine, dataset, path, fmt, include_machine=include_machine)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = trl_rows(engine, dataset, prompt=prompt or TRL_PROMPT, include_machine=include_machine)
    with out.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    return out
