"""Pairwise preferences, as the Label, Tasks and Evaluate pages and ``vlmrm prefs`` use them.

* :class:`PairSession`: one labeller comparing pairs of frames of one dataset in one browser
  session (answer ``a`` / ``b`` / ``equal``, skip, undo), every answer committed at once under
  the store's rules (:mod:`vlmrm_core.store.comparisons`); the pairs to ask come from
  :func:`candidate_pairs` (random) or :func:`informative_pairs` (most informative first).
* :func:`preference_agreement`: agreement between labellers on pairs, and their disagreements.
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
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from vlmrm_core.errors import CliError, InvalidInputError
from vlmrm_core.metrics.pairs import (
    OUTCOME,
    PairAccuracy,
    PairAgreement,
    pair_accuracy,
    pair_agreement,
)
from vlmrm_core.services.frame_csv import csv_rows
from vlmrm_core.services.labeling import labeler_seed
from vlmrm_core.store import Engine, dataset_frames, frame_path, get_dataset, load_pixels
from vlmrm_core.store.comparisons import (
    MACHINE_LABELER_PREFIX,
    ComparisonRecord,
    add_comparison,
    check_choice,
    comparison_table,
    current_comparisons,
    export_comparisons,
    is_machine_labeler,
    people_only,
    undo_last_comparison,
)

if TYPE_CHECKING:
    from vlmrm_core.frames import ProgressCallback
    from vlmrm_core.judge import JudgeModel, JudgeReward
    from vlmrm_core.reward.adaptation import PreferenceReport
    from vlmrm_core.reward.base import Reward
    from vlmrm_core.reward.file import Provenance
    from vlmrm_core.reward.spec import ModelRef, RewardSpec

__all__ = [
    "EXPORT_FORMATS",
    "PAIR_ORDERS",
    "ComparisonData",
    "PairSession",
    "PreferenceFit",
    "candidate_pairs",
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
    "pair_accuracy_of",
    "preference_agreement",
    "read_preference_csv",
    "reward_pair_accuracy",
    "trl_rows",
]

Pair = tuple[str, str]
"""Two frame hashes: (first / left, second / right)."""

PAIR_ORDERS = ("random", "informative")
"""Orders of the pairs to ask: random pairs, or most informative first."""

EXPORT_FORMATS = ("csv", "jsonl", "trl")
"""``vlmrm prefs export`` formats: the store's CSV and JSONL, and TRL's preference layout."""

TRL_PROMPT = "Which image shows the task closer to done?"
"""The ``prompt`` of TRL rows when no task question is known."""


def _key(a: str, b: str) -> tuple[str, str]:
    return (a, b) if a <= b else (b, a)


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


def informative_pairs(
    pairs: Sequence[Pair],
    hashes: Sequence[str],
    embeddings: np.ndarray,
    reward_sets: Sequence[np.ndarray],
    *,
    comparisons: pd.DataFrame | None = None,
    prior: np.ndarray | None = None,
    seed: int = 0,
) -> list[Pair]:
    """Pairs reordered "most informative first" (the pairs version of the Label page's order).

    Args:
        pairs: the candidate pairs (frame hashes).
        hashes: frames with an embedding: row i of ``embeddings`` and of each reward set.
        embeddings: len(hashes)×D normalised embeddings.
        reward_sets: the reward sources' rewards on those frames.
        comparisons: the current comparisons so far (the store's table): pairs already
            compared count as uses of their frames, and (with enough decided ones) fit the
            Bradley–Terry reward whose uncertainty is scored too.
        prior: the prompt's direction for that fit (None: plain Bradley–Terry).
        seed: inner cross-validation seed.

    Returns:
        The same pairs, most informative first; pairs with a frame without an embedding keep
        their order at the end.
    """
    from vlmrm_core.reward.active_labels import (
        informative_pair_order,
        pair_informativeness,
    )
    from vlmrm_core.reward.adaptation import AdaptationError, fit_preference

    row = {h: i for i, h in enumerate(hashes)}
    known = [p for p in pairs if p[0] in row and p[1] in row]
    x = np.asarray(embeddings, dtype=np.float64)
    asked: list[tuple[int, int]] = []
    fitted = None
    if comparisons is not None and not comparisons.empty:
        usable = comparisons[comparisons["frame_a"].isin(row) & comparisons["frame_b"].isin(row)]
        asked = [
            (row[a], row[b]) for a, b in zip(usable["frame_a"], usable["frame_b"], strict=True)
        ]
        if asked:
            try:
                fit = fit_preference(
                    x, np.asarray(asked), _outcomes(usable["choice"]), prior, seed=seed
                )
                fitted = fit.predict(x)
            except AdaptationError:
                fitted = None
    candidate = np.asarray([(row[a], row[b]) for a, b in known], dtype=np.int64).reshape(-1, 2)
    everything = np.concatenate([np.asarray(asked, dtype=np.int64).reshape(-1, 2), candidate])
    done = np.zeros(len(everything), bool)
    done[: len(asked)] = True
    scores = pair_informativeness(everything, reward_sets, fitted=fitted)
    order = informative_pair_order(everything, scores, asked=done)
    ordered = [known[i - len(asked)] for i in order if i >= len(asked)]
    return ordered + [p for p in pairs if not (p[0] in row and p[1] in row)]


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
    pairs: list[Pair] = field(default_factory=list)
    """The pairs to ask, in order."""
    front: list[Pair] = field(default_factory=list)
    skipped: list[Pair] = field(default_factory=list)
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

    def queue(self, engine: Engine) -> list[Pair]:
        """The pairs left for this labeller, next first."""
        current = current_comparisons(engine, self.dataset)
        mine = current[current["labeler"] == self.labeler.strip()]
        done = {_key(a, b) for a, b in zip(mine["frame_a"], mine["frame_b"], strict=True)}
        pending = [p for p in self.pairs if _key(*p) not in done]
        keys = {_key(*p) for p in pending}
        first = [p for p in self.front if _key(*p) in keys]
        last = [p for p in self.skipped if _key(*p) in keys and p not in first]
        moved = {_key(*p) for p in first + last}
        return first + [p for p in pending if _key(*p) not in moved] + last

    def compare(self, engine: Engine, pair: Pair, choice: str) -> ComparisonRecord:
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

    def skip(self, pair: Pair) -> None:
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
            pair = (record.frame_a, record.frame_b)
            self._forget(pair)
            self.front.insert(0, pair)
        return record

    def _forget(self, pair: Pair) -> None:
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
    return pair_agreement(current if include_machine else people_only(current))


# --------------------------------------------------------------------------------------------
# Comparisons as arrays, and pair accuracy of rewards
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ComparisonData:
    """A dataset's current comparisons as arrays (one row per labeller and pair)."""

    dataset: str
    hashes: tuple[str, ...]
    """The compared frames, sorted: the rows ``pairs`` index."""
    pairs: np.ndarray
    """P×2 int64 indices into ``hashes``: (first, second)."""
    outcomes: np.ndarray
    """P outcomes: 1 (first closer to the goal), 0 (second) or ½ (equal)."""
    labelers: tuple[str, ...]

    @property
    def n_pairs(self) -> int:
        return len(self.outcomes)


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
    hashes = tuple(sorted(set(current["frame_a"]) | set(current["frame_b"])))
    row = {h: i for i, h in enumerate(hashes)}
    pairs = np.asarray(
        [(row[a], row[b]) for a, b in zip(current["frame_a"], current["frame_b"], strict=True)],
        dtype=np.int64,
    ).reshape(-1, 2)
    return ComparisonData(
        dataset,
        hashes,
        pairs,
        _outcomes(current["choice"]),
        tuple(sorted(set(current["labeler"]))),
    )


def pair_accuracy_of(
    data: ComparisonData,
    hashes: Sequence[str],
    rewards: np.ndarray,
    *,
    n_boot: int = 1000,
    seed: int = 0,
) -> PairAccuracy:
    """Pair accuracy of rewards known for some frames (e.g. Evaluate's rewards of the labelled
    frames) against the comparisons whose two frames both have a reward.

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
    mapped = np.array([by_hash.get(h, np.nan) for h in data.hashes], dtype=np.float64)
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
        embeddings, data.pairs, data.outcomes, groups, prior, zero_shot,
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

    Returns:
        The labeller, every pair's two log-odds and answer, and how many were stored.

    Raises:
        InvalidInputError: a negative margin, an unknown ``ties``, or a pair with the same
            frame twice or a frame outside the dataset.
        AnswerError: the judge's vocabulary has no single token for ``1`` or ``2``.
        NotFoundError: no such dataset.
    """
    from vlmrm_core.judge import score_windows

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
    from vlmrm_core.metrics.pairs import canonical_pairs

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
    machine_values = dict(zip(*(canonical_pairs(mine)[c] for c in ("item", "value")), strict=True))
    keyed = canonical_pairs(people)
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
    mine_items = canonical_pairs(mine)["item"].to_numpy()
    for person in sorted(set(shared["labeler"])):
        rows = people[people["labeler"] == person]
        row_items = canonical_pairs(rows)["item"].to_numpy()
        both = [item for item in row_items if item in machine_values]
        together = pd.concat(
            [mine[np.isin(mine_items, both)], rows[np.isin(row_items, both)]], ignore_index=True
        )
        per_person[person] = pair_agreement(together)
    return JudgeAgreement(
        machine,
        int(shared["item"].nunique()),
        len(theirs),
        percent,
        alpha,
        note,
        per_person,
    )


def machine_labelers(engine: Engine, dataset: str) -> list[str]:
    """The machine labellers with current comparisons in a dataset, sorted."""
    current = current_comparisons(engine, dataset)
    return sorted({name for name in current["labeler"] if is_machine_labeler(name)})


# --------------------------------------------------------------------------------------------
# Import and export
# --------------------------------------------------------------------------------------------


def read_preference_csv(path: Path) -> list[tuple[int, str, str, str]]:
    """Rows ``(line, frame_a, frame_b, choice)`` of a CSV with columns frame_a, frame_b, choice.

    ``choice`` is ``a``, ``b`` or ``equal`` (case ignored). A UTF-8 byte-order mark is accepted.

    Raises:
        CliError: a missing file or column, an empty cell, an unknown answer, the same frame on
            both sides, or no rows; the message names the line.
    """
    rows: list[tuple[int, str, str, str]] = []
    with csv_rows(path) as (fields, lines):
        missing = [c for c in ("frame_a", "frame_b", "choice") if c not in fields]
        if missing:
            raise CliError(
                f"{path} needs columns frame_a, frame_b and choice "
                f"(found: {', '.join(fields) or 'none'})"
            )
        for line, row in lines:
            a = (row.get("frame_a") or "").strip()
            b = (row.get("frame_b") or "").strip()
            if not a or not b:
                raise CliError(f"{path} line {line}: frame_a and frame_b must both be given")
            if a == b:
                raise CliError(f"{path} line {line}: frame_a and frame_b are the same frame")
            try:
                choice = check_choice(row.get("choice") or "")
            except InvalidInputError:
                raise CliError(
                    f"{path} line {line}: choice {row.get('choice')!r} is not a, b or equal"
                ) from None
            rows.append((line, a, b, choice))
    if not rows:
        raise CliError(f"{path} has no comparison rows")
    return rows


def import_preferences(engine: Engine, dataset: str, path: Path, labeler: str) -> int:
    """Store the comparisons of a ``frame_a,frame_b,choice`` CSV under ``labeler``.

    Frames are named as in ``vlmrm labels import`` (a unique name or end of one, or the pixel
    hash; :func:`~vlmrm_core.services.frame_csv.resolve_frame_names`). Every row is read and
    resolved before the first is stored, so a bad file stores nothing.

    Returns:
        How many comparisons were stored.

    Raises:
        CliError: a bad file, or frames that match no frame (or several) of the dataset.
        NotFoundError: no such dataset.
    """
    from vlmrm_core.services.frame_csv import resolve_frame_names

    get_dataset(engine, dataset)  # NotFoundError names the dataset
    rows = read_preference_csv(path)
    known: list[tuple[str, str]] = []
    for f in dataset_frames(engine, dataset):
        known.append((f.hash, f.hash))
        if f.name:
            known.append((f.name, f.hash))
    wanted = list(dict.fromkeys(name for _line, a, b, _c in rows for name in (a, b)))
    found = resolve_frame_names(wanted, known, source=str(path), where=f"dataset {dataset!r}")
    resolved = []
    for line, a, b, choice in rows:
        if found[a] == found[b]:
            raise CliError(f"{path} line {line}: {a!r} and {b!r} are the same frame")
        resolved.append((found[a], found[b], choice))
    for a, b, choice in resolved:
        add_comparison(engine, dataset, a, b, labeler, choice)
    return len(resolved)


def trl_rows(
    engine: Engine, dataset: str, *, prompt: str = TRL_PROMPT, include_machine: bool = False
) -> list[dict[str, Any]]:
    """The decided comparisons in the prompt / chosen / rejected layout of TRL preference data.

    One row per labeller and decided pair (``equal`` answers have no chosen side and are left
    out): ``prompt``, ``chosen`` and ``rejected`` (the frames' PNG files), ``images`` (the same
    two files, chosen first, for vision loaders), and ``chosen_hash``, ``rejected_hash``,
    ``labeler``, ``dataset``. People's comparisons only unless ``include_machine``.
    """
    table = comparison_table(engine, dataset, include_machine=include_machine)
    rows = []
    for a, b, choice, who in zip(
        table["frame_a"], table["frame_b"], table["choice"], table["labeler"], strict=True
    ):
        if choice == "equal":
            continue
        chosen, rejected = (a, b) if choice == "a" else (b, a)
        chosen_file, rejected_file = str(frame_path(chosen)), str(frame_path(rejected))
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
