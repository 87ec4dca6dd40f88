"""Judging reward models against human labels: metrics tables, mismatched frames, prompt search.

* :func:`labelled_frames` reads the consensus labels of a dataset (mean of each labeler's current
  label per frame); average precision and ROC AUC use them binarised at 0.5.
* :func:`evaluate_reward` scores one reward definition on the labelled frames' cached
  embeddings: EPIC distance with a bootstrap 95% interval, average precision, ROC AUC.
  :func:`evaluate_reward_over_time` does so for a reward that looks at time (a window of k
  frames): it scores the dataset's episodes in time order, as training does, and compares the
  labelled frames' rewards (:func:`labelled_rewards`).
* :func:`reward_label_mismatches` finds the frames that pull the reward furthest from the labels
  (not to be confused with :func:`vlmrm_core.metrics.labeller_disagreements`, frames on which
  the labellers disagree with each other).
* :func:`prompt_search` scores every combination of goal prompt × baseline prompt × α against the
  labels and ranks them by EPIC; every row is a reward of single frames (window 1). The
  rewards come from :func:`vlmrm_core.reward.math
  .regularized_reward_grid_from_dots` on one matrix product (prompts × frames) and the metrics
  from :mod:`vlmrm_core.metrics`, so once image embeddings are cached the cost is dominated by
  encoding the prompts. With :class:`SearchEpisodes` (the dataset's frames in episodes) the
  best rows also get their value-order correlation (VOC) over the episodes; ranking stays by
  EPIC.

All arithmetic lives in :mod:`vlmrm_core.reward.math` and :mod:`vlmrm_core.metrics`; this module
composes them and returns plain data (dataclasses, DataFrames with snake_case columns). Column
titles for display are the app's (``vlmrm_studio/widgets/tables.py``).
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from vlmrm_core.clip.embedding import PromptError, encode_texts
from vlmrm_core.clip.models import ClipModel
from vlmrm_core.errors import InvalidInputError
from vlmrm_core.frames import ProgressCallback
from vlmrm_core.metrics import (
    SUCCESS_THRESHOLD,
    ConstantRewardError,
    RewardMetrics,
    binarize,
    check_labels,
    pearson,
    precision_recall,
    reward_metrics,
    roc_auc_rows,
    standardize,
)
from vlmrm_core.reward.file import Provenance
from vlmrm_core.reward.math import regularized_reward_grid_from_dots
from vlmrm_core.reward.spec import RewardSpec
from vlmrm_core.services.landscape import (
    long_prompt_warnings,
    reward_values,
    score,
    spec_prompts,
)
from vlmrm_core.store import Engine, FrameInfo, consensus_labels

if TYPE_CHECKING:
    from vlmrm_core.reward.adaptation import HeldOutSelection

"""A consensus label at or above this counts as a success for AP, ROC AUC and PR curves."""

MAX_SEARCH_COMBINATIONS = 20_000
"""Upper bound on goal × baseline × α combinations in one prompt search (keeps memory and time bounded)."""

_CHUNK_ELEMENTS = 1 << 21
"""Rewards (frames × combinations) computed at once in a prompt search: 16 MiB of float64 (the ROC AUC
ranking of a chunk holds about six arrays of that size)."""


# --------------------------------------------------------------------------------------------
# Labels
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LabelledFrames:
    """The labelled frames of a dataset and their consensus labels."""

    dataset: str
    hashes: tuple[str, ...]
    """Distinct frame hashes, sorted."""
    labels: np.ndarray
    """Consensus label per frame in [0, 1] (float64)."""

    @property
    def n(self) -> int:
        return len(self.hashes)

    @property
    def binary(self) -> np.ndarray:
        """Success (1) / failure (0): consensus ≥ 0.5."""
        return binarize(self.labels, SUCCESS_THRESHOLD)

    @property
    def n_success(self) -> int:
        return int(self.binary.sum())


def labelled_frames(engine: Engine, dataset: str) -> LabelledFrames:
    """The consensus labels of a dataset's labelled frames.

    Args:
        engine: the project database.
        dataset: dataset name.

    Returns:
        Frames with at least one current label, sorted by hash, with the adjudicated label
        where a reviewer set one (Tasks page) and the mean current label otherwise.
    """
    from vlmrm_core.store.tasks import adjudicated_values

    consensus = consensus_labels(engine, dataset).sort_index()
    for frame_hash, value in adjudicated_values(engine, dataset).items():
        if frame_hash in consensus.index:
            consensus[frame_hash] = value
    return LabelledFrames(
        dataset, tuple(consensus.index), consensus.to_numpy(dtype=np.float64, copy=True)
    )


# --------------------------------------------------------------------------------------------
# Metrics of one reward
# --------------------------------------------------------------------------------------------


def model_parameter_count(clip: ClipModel) -> int:
    """Parameters of the whole CLIP model (image and text towers), the x axis of the scaling plot."""
    return int(sum(p.numel() for p in clip.model.parameters()))


@dataclass
class Evaluation:
    """One reward definition with one model, scored on the labelled frames."""

    prompt_set: str
    model: str
    """The model identity (architecture/weights)."""
    n_params: int
    rewards: np.ndarray
    metrics: RewardMetrics
    warnings: list[str] = field(default_factory=list)


def evaluate_reward(
    clip: ClipModel,
    embeddings: np.ndarray,
    labels: np.ndarray,
    spec: RewardSpec,
    *,
    prompt_set: str,
    n_boot: int = 1000,
    seed: int = 0,
) -> Evaluation:
    """Score a reward definition on labelled frames and compare it with the labels.

    Args:
        clip: the model.
        embeddings: N×D cached embeddings of the labelled frames (same order as ``labels``).
        labels: N consensus labels.
        spec: the reward definition.
        prompt_set: its display name.
        n_boot: bootstrap resamples for the EPIC interval.
        seed: bootstrap seed.

    Returns:
        The rewards and their metrics.

    Raises:
        ConstantRewardError: the labels are constant.
    """
    scores, warnings = score(clip, embeddings, spec)
    # The contrastive kind's reward is binary (1[p > β]); its probability ranks frames better
    # and is what Baumli et al. sweep β over, so it is what gets compared with the labels.
    values = reward_values(scores)
    metrics = reward_metrics(values, labels, n_boot=n_boot, seed=seed)
    return Evaluation(
        prompt_set, clip.identity, model_parameter_count(clip), values, metrics, warnings
    )


def labelled_rewards(
    frames: Sequence[FrameInfo], rewards: np.ndarray, hashes: Sequence[str]
) -> np.ndarray:
    """The rewards of labelled frames, picked from rewards of a dataset's frames.

    Labels belong to pixels (a frame hash), while a reward that looks at time gives the same
    pixels at two places (two episodes that start alike) two rewards: such a frame gets their
    mean.

    Args:
        frames: The dataset's frames.
        rewards: One reward per frame, same order.
        hashes: The labelled frames (:attr:`LabelledFrames.hashes`).

    Returns:
        One float64 reward per hash, NaN for a hash not among ``frames``.
    """
    values = np.asarray(rewards, dtype=np.float64).reshape(-1)
    if values.shape[0] != len(frames):
        raise InvalidInputError(f"{values.shape[0]} rewards for {len(frames)} frames.")
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    for frame, value in zip(frames, values, strict=True):
        sums[frame.hash] = sums.get(frame.hash, 0.0) + float(value)
        counts[frame.hash] = counts.get(frame.hash, 0) + 1
    return np.array([sums[h] / counts[h] if h in counts else np.nan for h in hashes])


def over_time_note(
    name: str, window: int, frames: Sequence[FrameInfo], hashes: Sequence[str]
) -> str | None:
    """What to tell the user when a reward that looks back ``window`` frames is evaluated on
    labelled frames that are in no episode (no episode and step): those were scored alone, as
    a window of one frame. None when every labelled frame is in an episode, or ``window`` is 1.
    """
    from vlmrm_core.services.episodes import episode_rows

    if window <= 1:
        return None
    _, loose = episode_rows(frames)
    alone = {frames[int(i)].hash for i in loose}
    n_alone = sum(h in alone for h in hashes)
    if n_alone == 0:
        return None
    if n_alone == len(hashes):
        return (
            f"{name} looks back {window} frames, but no labelled frame is in an episode (the "
            "dataset's frames have no episode and step): each was scored alone, so these "
            "numbers are of single frames, not of the reward as training sees it."
        )
    return (
        f"{name} looks back {window} frames, but {n_alone} of the {len(hashes)} labelled "
        "frames are in no episode (no episode and step): those were scored alone."
    )


def evaluate_reward_over_time(
    clip: ClipModel,
    frames: Sequence[FrameInfo],
    embeddings: np.ndarray,
    labelled: LabelledFrames,
    spec: RewardSpec,
    *,
    prompt_set: str,
    n_boot: int = 1000,
    seed: int = 0,
) -> Evaluation:
    """Score a reward definition as training sees it and compare it with the labels.

    Like :func:`evaluate_reward`, but the whole dataset is scored, each episode in time order
    (:func:`vlmrm_core.services.episodes.clip_scores_over_time`), so a windowed spec (window
    k > 1) scores each labelled frame on the mean of the k frames up to it. For a window of 1
    the rewards equal :func:`evaluate_reward`'s on the labelled frames.

    Args:
        clip: the model.
        frames: the dataset's frames (:func:`vlmrm_core.store.dataset_frames`).
        embeddings: one cached embedding per frame (N×D), same order.
        labelled: the dataset's labelled frames (every hash among ``frames``).
        spec: the reward definition.
        prompt_set: its display name.
        n_boot: bootstrap resamples for the EPIC interval.
        seed: bootstrap seed.

    Returns:
        The labelled frames' rewards (in ``labelled`` order) and their metrics; a warning when
        some labelled frames are in no episode and so were scored alone.

    Raises:
        ConstantRewardError: the labels are constant.
        InvalidInputError: not one embedding per frame, or a labelled frame not in ``frames``.
    """
    from vlmrm_core.services.episodes import clip_scores_over_time

    scores = clip_scores_over_time(clip, frames, embeddings, spec)
    values = labelled_rewards(frames, reward_values(scores), labelled.hashes)
    if np.isnan(values).any():
        raise InvalidInputError(
            f"some labelled frames are not in the frames given for {labelled.dataset!r}: "
            "pass the dataset's own frames"
        )
    warnings = long_prompt_warnings(clip, spec_prompts(spec))
    note = over_time_note(prompt_set, spec.window, frames, labelled.hashes)
    if note is not None:
        warnings.append(note)
    metrics = reward_metrics(values, labelled.labels, n_boot=n_boot, seed=seed)
    return Evaluation(
        prompt_set, clip.identity, model_parameter_count(clip), values, metrics, warnings
    )


EVALUATION_COLUMNS = (
    "prompt_set",
    "model",
    "n_params",
    "epic",
    "ci_low",
    "ci_high",
    "average_precision",
    "roc_auc",
    "n_labelled",
    "note",
)
"""The columns of :func:`evaluation_table`, in order."""


def evaluation_table(evaluations: Sequence[Evaluation]) -> pd.DataFrame:
    """One row per evaluation with the columns :data:`EVALUATION_COLUMNS` (None for undefined
    metrics; the ``note`` column says why)."""
    rows = [
        (
            e.prompt_set,
            e.model,
            e.n_params,
            e.metrics.epic_distance,
            e.metrics.ci_low,
            e.metrics.ci_high,
            e.metrics.average_precision,
            e.metrics.roc_auc,
            e.metrics.n,
            e.metrics.note,
        )
        for e in evaluations
    ]
    return pd.DataFrame(rows, columns=list(EVALUATION_COLUMNS))


def best_evaluation(evaluations: Sequence[Evaluation]) -> Evaluation | None:
    """The evaluation with the lowest EPIC distance (None when none has one)."""
    scored = [e for e in evaluations if e.metrics.epic_distance is not None]
    return min(scored, key=lambda e: e.metrics.epic_distance) if scored else None  # type: ignore[arg-type,return-value]


@dataclass(frozen=True)
class PRCurve:
    """A precision–recall curve of one evaluation."""

    name: str
    precision: np.ndarray
    recall: np.ndarray
    average_precision: float


def pr_curves(evaluations: Sequence[Evaluation], binary: np.ndarray) -> list[PRCurve]:
    """Precision–recall curves of evaluations against binary labels (those with AP defined).

    Args:
        evaluations: scored rewards.
        binary: the binarised labels.

    Returns:
        One curve per evaluation whose AP is defined, named ``prompt set · model``.
    """
    curves = []
    for e in evaluations:
        if e.metrics.average_precision is None:
            continue
        precision, recall, _ = precision_recall(e.rewards, binary)
        curves.append(
            PRCurve(f"{e.prompt_set} · {e.model}", precision, recall, e.metrics.average_precision)
        )
    return curves


def reward_label_mismatches(rewards: np.ndarray, labels: np.ndarray, k: int = 12) -> pd.DataFrame:
    """The frames where reward and labels disagree most.

    EPIC against labels is the Pearson distance, and with u, v the rewards and labels centred
    and scaled to unit norm, 1 − ρ = Σᵢ (uᵢ − vᵢ)² / 2. Each frame's term of that sum is its
    share of the disagreement: the frames with the largest shares are those to look at.

    Args:
        rewards: N rewards.
        labels: N labels.
        k: how many frames to return.

    Returns:
        Up to k rows sorted by share, descending: ``frame`` (index), ``reward``, ``label``,
        ``share`` (of 1 − ρ; all N shares sum to 1 − ρ).

    Raises:
        ConstantRewardError: rewards or labels are constant.
    """
    r = np.asarray(rewards, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    check_labels(y)
    if r.shape != y.shape:
        raise ValueError(f"{len(r)} rewards for {len(y)} labels")
    u, constant = standardize(r)
    if constant:
        raise ConstantRewardError(
            f"the rewards are all the same value ({float(r[0])!r}): no frame disagrees more "
            "than another; check the prompts",
            side="rewards",
            value=float(r[0]),
        )
    v, _ = standardize(y)
    share = (u - v) ** 2 / 2
    order = np.argsort(-share, kind="stable")[: max(0, k)]
    return pd.DataFrame(
        {"frame": order, "reward": r[order], "label": y[order], "share": share[order]}
    )


# --------------------------------------------------------------------------------------------
# Prompt search
# --------------------------------------------------------------------------------------------


def parse_alphas(text: str) -> list[float]:
    """α values from text like ``0, 0.25, 0.5`` (commas, semicolons or spaces between).

    Returns:
        Distinct values in [0, 1], in the order given.

    Raises:
        ValueError: no value, or a token that is not a number in [0, 1].
    """
    tokens = [t for t in re.split(r"[,;\s]+", text or "") if t]
    if not tokens:
        raise InvalidInputError("enter at least one α value in [0, 1], e.g. 0, 0.5, 1")
    values = []
    for token in tokens:
        try:
            value = float(token)
        except ValueError:
            raise InvalidInputError(
                f"{token!r} is not a number: write α values like 0, 0.5, 1"
            ) from None
        if not (math.isfinite(value) and 0.0 <= value <= 1.0):
            raise InvalidInputError(f"α must be in [0, 1], got {token}")
        values.append(value)
    return list(dict.fromkeys(values))


def encode_prompts(
    clip: ClipModel,
    prompts: Sequence[str],
    *,
    batch_size: int = 32,
    progress: ProgressCallback | None = None,
) -> np.ndarray:
    """Text embeddings of many prompts, in batches, with progress (already encoded ones are free).

    Args:
        clip: the model.
        prompts: non-empty prompts.
        batch_size: prompts per forward pass.
        progress: ``progress(done, total, message)`` after each batch.

    Returns:
        P×D float32, normalised.
    """
    if not prompts:
        raise PromptError("no prompts given: enter at least one prompt")
    parts = []
    total = len(prompts)
    for start in range(0, total, batch_size):
        parts.append(encode_texts(clip, list(prompts[start : start + batch_size])))
        if progress is not None:
            done = min(start + batch_size, total)
            progress(done, total, f"encoded {done} of {total} prompts")
    return np.concatenate(parts)


@dataclass
class PromptSearchResult:
    """Every goal × baseline × α combination, best (lowest EPIC) first.

    ``table`` columns: ``rank``, ``goal``, ``baseline`` (None for α = 0, where the baseline
    plays no part), ``alpha``, ``epic``, ``roc_auc`` for every row; ``ci_low``, ``ci_high``,
    ``average_precision`` for the detailed top rows; ``note`` where a metric is undefined;
    with :class:`SearchEpisodes`, ``voc``, ``voc_ci_low``, ``voc_ci_high`` and
    ``voc_episodes`` for its ``top`` rows (NaN where undefined or not computed).
    """

    table: pd.DataFrame
    n_frames: int
    n_prompts: int
    """Distinct prompts encoded."""
    text_seconds: float
    score_seconds: float
    detail_seconds: float
    warnings: list[str] = field(default_factory=list)
    voc_seconds: float = 0.0
    """Time spent on VOC (0 without episodes)."""

    def best(self) -> pd.Series | None:
        """The top row (None when no combination has a defined EPIC distance)."""
        if self.table.empty or self.table["epic"].isna().iloc[0]:
            return None
        return self.table.iloc[0]


@dataclass(frozen=True)
class SearchEpisodes:
    """What a prompt search needs to add each row's VOC: the dataset's frames and embeddings.

    VOC (:func:`vlmrm_core.services.episodes.dataset_voc`) is over all frames of the episodes,
    labelled or not, so it needs more than the labelled frames the search ranks with.
    """

    frames: Sequence[FrameInfo]
    """The dataset's frames (frames outside episodes are ignored)."""
    embeddings: np.ndarray
    """One embedding per frame, same model as the search, same order."""
    labels: Mapping[str, float] | None = None
    """Label per frame hash: an episode counts when its last labelled frame is a success."""
    demonstrations: bool = False
    """Every episode counts (labels are then not needed)."""
    top: int = 500
    """VOC for this many best rows (each takes a bootstrap); NaN for the rest."""


def search_row_spec(row: pd.Series) -> RewardSpec:
    """The reward definition of one row of a prompt search table."""
    baseline = row["baseline"]
    return RewardSpec(
        goal_prompts=(row["goal"],),
        baseline_prompts=(baseline,) if isinstance(baseline, str) and baseline else (),
        alpha=float(row["alpha"]),
    )


def prompt_search(
    clip: ClipModel,
    embeddings: np.ndarray,
    labels: np.ndarray,
    goals: Sequence[str],
    baselines: Sequence[str],
    alphas: Sequence[float],
    *,
    progress: ProgressCallback | None = None,
    detail_top: int = 5,
    n_boot: int = 1000,
    seed: int = 0,
    batch_size: int = 32,
    episodes: SearchEpisodes | None = None,
) -> PromptSearchResult:
    """Score every goal prompt × baseline prompt × α against labels and rank by EPIC distance.

    Each combination is the regularized reward (Rocamonde et al., Def. 1) of one goal prompt
    and one baseline prompt. With x, g, b unit vectors the reward only needs x·g and x·b, so all
    combinations come from one product of the prompts with the frames
    (:func:`~vlmrm_core.reward.math.regularized_reward_grid_from_dots`), scored in blocks of bounded
    memory by the row-wise :func:`~vlmrm_core.metrics.pearson` and
    :func:`~vlmrm_core.metrics.roc_auc_rows`.

    Every row is a reward of single frames (window 1, as :func:`search_row_spec` saves it): the
    search ranks prompts, not windows. A windowed definition is evaluated over time with
    :func:`evaluate_reward_over_time` once saved with its window.

    Args:
        clip: the model the embeddings came from.
        embeddings: N×D embeddings of the labelled frames.
        labels: N consensus labels (graded labels are fine for EPIC; ROC AUC binarises at 0.5).
        goals: candidate goal prompts.
        baselines: candidate baseline prompts (none: only α = 0 is scored).
        alphas: α grid in [0, 1].
        progress: ``progress(done, total, message)`` while encoding prompts.
        detail_top: this many best rows are re-scored through the standard path
            (``score_embeddings`` + :func:`reward_metrics`) to add the bootstrap interval and AP.
        n_boot: bootstrap resamples for the detailed rows.
        seed: bootstrap seed.
        batch_size: prompts per text-encoder pass.
        episodes: the dataset's frames in episodes: the ``episodes.top`` best rows get their
            VOC (mean, bootstrap interval over episodes, episodes counted); ranking stays by
            EPIC.

    Returns:
        The ranked combinations with timings.

    Raises:
        PromptError: no goal prompt, or an empty one.
        ValueError: bad α values, too many combinations, mismatched shapes.
        ConstantRewardError: constant labels.
    """
    x = np.asarray(embeddings)
    y = np.asarray(labels, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] != y.shape[0]:
        raise ValueError(f"{x.shape[0] if x.ndim else 0} embeddings for {y.shape[0]} labels")
    check_labels(y)
    grid = _search_grid(goals, baselines, alphas)
    prompts = list(dict.fromkeys([*grid.goals, *grid.baselines]))
    warnings = [*grid.warnings, *long_prompt_warnings(clip, prompts)]

    started = time.perf_counter()
    text = encode_prompts(clip, prompts, batch_size=batch_size, progress=progress).astype(
        np.float64
    )
    text_seconds = time.perf_counter() - started

    started = time.perf_counter()
    table = _ranked_table(x, y, text, prompts, grid)
    score_seconds = time.perf_counter() - started

    started = time.perf_counter()
    _add_detail(table, clip, x, y, detail_top=detail_top, n_boot=n_boot, seed=seed)
    detail_seconds = time.perf_counter() - started

    started = time.perf_counter()
    if episodes is not None:
        _add_voc(table, text, prompts, episodes, n_boot=n_boot, seed=seed)
    voc_seconds = time.perf_counter() - started
    return PromptSearchResult(
        table,
        len(y),
        len(prompts),
        text_seconds,
        score_seconds,
        detail_seconds,
        warnings,
        voc_seconds,
    )


def _add_voc(
    table: pd.DataFrame,
    text: np.ndarray,
    prompts: list[str],
    episodes: SearchEpisodes,
    *,
    n_boot: int,
    seed: int,
) -> None:
    """Add ``voc``, ``voc_ci_low``, ``voc_ci_high`` and ``voc_episodes`` (in place) for the
    ``episodes.top`` best rows, from one product of the prompts with the episodes' frames.

    Raises:
        InvalidInputError: not one embedding per frame.
    """
    from vlmrm_core.services.episodes import dataset_voc, episode_frames

    for column in ("voc", "voc_ci_low", "voc_ci_high", "voc_episodes"):
        table[column] = np.nan
    x = np.asarray(episodes.embeddings)
    if x.ndim != 2 or x.shape[0] != len(episodes.frames):
        raise InvalidInputError(
            f"{x.shape[0] if x.ndim else 0} embeddings for {len(episodes.frames)} frames."
        )
    rows = episode_frames(episodes.frames).rows
    if rows.size == 0:
        return
    frames = [episodes.frames[i] for i in rows]
    # Only the episodes' frames are scored, on the same dot products as the ranking.
    dots = (text.astype(x.dtype, copy=False) @ x[rows].T).astype(np.float64)
    index = {p: i for i, p in enumerate(prompts)}
    for i in range(min(episodes.top, len(table))):
        row = table.iloc[i]
        goal = index[row["goal"]]
        baseline = index[row["baseline"]] if isinstance(row["baseline"], str) else goal
        rewards = regularized_reward_grid_from_dots(
            dots[[goal]], dots[[baseline]], text[[goal]], text[[baseline]], [float(row["alpha"])]
        )[0, 0, 0]
        if np.isnan(rewards).any():  # goal = baseline: no direction, no reward
            continue
        voc = dataset_voc(
            frames,
            rewards,
            labels=episodes.labels,
            demonstrations=episodes.demonstrations,
            n_boot=n_boot,
            seed=seed,
        )
        table.at[i, "voc_episodes"] = voc.n_episodes
        if voc.voc is not None:
            table.at[i, "voc"] = voc.voc
        if voc.ci_low is not None and voc.ci_high is not None:
            table.at[i, "voc_ci_low"] = voc.ci_low
            table.at[i, "voc_ci_high"] = voc.ci_high


@dataclass(frozen=True)
class _SearchGrid:
    """The checked candidates of a prompt search: distinct, stripped, α split at zero."""

    goals: list[str]
    baselines: list[str]
    zero_alpha: list[float]
    """``[0.0]`` when α = 0 is scored (one row per goal), else empty."""
    positive_alphas: list[float]
    """α > 0, scored for every goal × baseline."""
    warnings: list[str]


def _search_grid(
    goals: Sequence[str], baselines: Sequence[str], alphas: Sequence[float]
) -> _SearchGrid:
    """Check the candidates and bound the number of combinations.

    Raises:
        PromptError: no goal prompt, or an empty one.
        ValueError: bad α values or too many combinations.
    """
    goals = list(dict.fromkeys(_check_prompts(goals, "goal")))
    baselines = list(dict.fromkeys(_check_prompts(baselines, "baseline")))
    if not goals:
        raise PromptError("enter at least one candidate goal prompt")
    alphas = list(dict.fromkeys(float(a) for a in alphas))
    if not alphas:
        raise InvalidInputError("enter at least one α value")
    if any(not 0.0 <= a <= 1.0 for a in alphas):
        raise InvalidInputError(f"α values must be in [0, 1], got {alphas}")
    warnings: list[str] = []
    positive = [a for a in alphas if a > 0]
    if positive and not baselines:
        warnings.append("no baseline prompts: only α = 0 was scored (α > 0 needs a baseline)")
        positive = []
    zero = [0.0] if 0.0 in alphas or not positive else []
    n_combos = len(goals) * len(zero) + len(goals) * len(baselines) * len(positive)
    if n_combos > MAX_SEARCH_COMBINATIONS:
        raise InvalidInputError(
            f"{n_combos} combinations is more than {MAX_SEARCH_COMBINATIONS}: use fewer prompts "
            "or α values"
        )
    return _SearchGrid(goals, baselines, zero, positive, warnings)


def _ranked_table(
    x: np.ndarray, y: np.ndarray, text: np.ndarray, prompts: list[str], grid: _SearchGrid
) -> pd.DataFrame:
    """Every combination of ``grid`` scored, best (lowest EPIC) first, with a ``rank`` column
    and the prompts as text."""
    index = {p: i for i, p in enumerate(prompts)}
    table = _score_grid(
        x,
        y,
        text,
        [index[g] for g in grid.goals],
        [index[b] for b in grid.baselines],
        grid.zero_alpha,
        grid.positive_alphas,
    )
    table["goal"] = [prompts[i] for i in table["goal"]]
    table["baseline"] = [prompts[i] if i >= 0 else None for i in table["baseline"]]
    table = table.sort_values("epic", na_position="last", kind="stable").reset_index(drop=True)
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    return table


def _add_detail(
    table: pd.DataFrame,
    clip: ClipModel,
    x: np.ndarray,
    y: np.ndarray,
    *,
    detail_top: int,
    n_boot: int,
    seed: int,
) -> None:
    """Re-score the ``detail_top`` best rows of ``table`` (in place) through the standard path,
    adding the bootstrap interval and AP (NaN for the other rows)."""
    table["ci_low"] = np.nan
    table["ci_high"] = np.nan
    table["average_precision"] = np.nan
    has_epic = table["epic"].notna().to_numpy()
    for i in range(min(detail_top, len(table))):
        if not has_epic[i]:
            break
        evaluation = evaluate_reward(
            clip,
            x,
            y,
            search_row_spec(table.iloc[i]),
            prompt_set="prompt search",
            n_boot=n_boot,
            seed=seed,
        )
        m = evaluation.metrics
        # The standard path is the reference: its value replaces the vectorised one (they agree
        # to float32 rounding).
        table.at[i, "epic"] = m.epic_distance if m.epic_distance is not None else np.nan
        table.at[i, "ci_low"] = m.ci_low if m.ci_low is not None else np.nan
        table.at[i, "ci_high"] = m.ci_high if m.ci_high is not None else np.nan
        table.at[i, "average_precision"] = (
            m.average_precision if m.average_precision is not None else np.nan
        )
        if m.note:
            table.at[i, "note"] = m.note


def _check_prompts(prompts: Sequence[str], what: str) -> list[str]:
    if isinstance(prompts, str):
        prompts = [prompts]
    cleaned = []
    for i, prompt in enumerate(prompts):
        if not isinstance(prompt, str) or not prompt.strip():
            raise PromptError(f"{what} prompt {i + 1} is empty: remove it or write some text")
        cleaned.append(prompt.strip())
    return cleaned


def _score_grid(
    x: np.ndarray,
    labels: np.ndarray,
    text: np.ndarray,
    goals: Sequence[int],
    baselines: Sequence[int],
    zero_alpha: Sequence[float],
    positive_alphas: Sequence[float],
) -> pd.DataFrame:
    """EPIC distance and ROC AUC of every combination, scored in blocks of bounded size.

    Args:
        x: N×D image embeddings.
        labels: N consensus labels.
        text: P×D prompt embeddings (float64).
        goals: rows of ``text`` that are goal prompts.
        baselines: rows of ``text`` that are baseline prompts.
        zero_alpha: ``[0.0]`` to score α = 0 (one row per goal), else empty.
        positive_alphas: α > 0 to score for every goal × baseline.

    Returns:
        Columns ``goal``, ``baseline`` (rows of ``text``; -1 for α = 0), ``alpha``, ``epic``,
        ``roc_auc``, ``note``, in a fixed order (α = 0 first, then by α, goal, baseline, each
        as given) that does not depend on the block size.
    """
    # The one pass over the N×D matrix; everything after works on P×N dot products.
    dots = (text.astype(x.dtype, copy=False) @ x.T).astype(np.float64)
    binary = binarize(labels, SUCCESS_THRESHOLD)
    both_classes = 0 < int(binary.sum()) < len(binary)
    chunk = max(1, _CHUNK_ELEMENTS // max(1, x.shape[0]))
    goal_rows = np.asarray(goals, dtype=np.int64)
    baseline_rows = np.asarray(baselines, dtype=np.int64)
    parts: list[pd.DataFrame] = []
    if zero_alpha:
        # α = 0: R = 1 − ½‖x − g‖² whatever the baseline (the goal stands in for it).
        for start in range(0, len(goal_rows), chunk):
            rows = goal_rows[start : start + chunk]
            grid = regularized_reward_grid_from_dots(
                dots[rows], dots[rows[:1]], text[rows], text[rows[:1]], [0.0]
            )
            parts.append(_grid_metrics(grid[0, :, 0], labels, binary, both_classes, rows, -1, 0.0))
    for alpha in positive_alphas:
        per_block_baselines = min(len(baseline_rows), chunk)
        per_block_goals = max(1, chunk // per_block_baselines)
        for g_start in range(0, len(goal_rows), per_block_goals):
            g_rows = goal_rows[g_start : g_start + per_block_goals]
            for b_start in range(0, len(baseline_rows), per_block_baselines):
                b_rows = baseline_rows[b_start : b_start + per_block_baselines]
                grid = regularized_reward_grid_from_dots(
                    dots[g_rows], dots[b_rows], text[g_rows], text[b_rows], [alpha]
                )[0]
                parts.append(
                    _grid_metrics(
                        grid.reshape(-1, grid.shape[-1]),
                        labels,
                        binary,
                        both_classes,
                        np.repeat(g_rows, len(b_rows)),
                        np.tile(b_rows, len(g_rows)),
                        alpha,
                    )
                )
    columns = ["goal", "baseline", "alpha", "epic", "roc_auc", "note"]
    if not parts:
        return pd.DataFrame(columns=columns)
    table = pd.concat(parts, ignore_index=True)
    # Blocks run goal-major within baseline blocks: restore one order whatever the block size
    # (α as given, then goals and baselines as given).
    order = pd.DataFrame(
        {
            "alpha": table["alpha"].map(
                {a: k for k, a in enumerate([*zero_alpha, *positive_alphas])}
            ),
            "goal": table["goal"].map({g: k for k, g in enumerate(goal_rows.tolist())}),
            "baseline": table["baseline"].map(
                {b: k for k, b in enumerate([-1, *baseline_rows.tolist()])}
            ),
        }
    )
    table = table.loc[order.sort_values(["alpha", "goal", "baseline"], kind="stable").index]
    return table[columns].reset_index(drop=True)


def _grid_metrics(
    rewards: np.ndarray,
    labels: np.ndarray,
    binary: np.ndarray,
    both_classes: bool,
    goals: np.ndarray,
    baselines: np.ndarray | int,
    alpha: float,
) -> pd.DataFrame:
    """EPIC distance and ROC AUC of each row of a K×N reward matrix (NaN rows: no direction)."""
    k = rewards.shape[0]
    undefined = np.isnan(rewards[:, 0]) if rewards.shape[1] else np.zeros(k, dtype=bool)
    epic = np.full(k, np.nan)
    auc = np.full(k, np.nan)
    notes = np.full(k, "", dtype=object)
    notes[undefined] = "goal and baseline are the same prompt: no direction to project on"
    scored = np.flatnonzero(~undefined)
    if len(scored):
        # A spread at rounding level means the reward scores every frame alike: ρ is undefined.
        result = pearson(rewards[scored], labels, constant_rtol=1e-12)
        epic[scored] = result.distance
        constant = scored[~result.defined]
        notes[constant] = "the reward is the same for every frame: EPIC is undefined"
        varying = scored[result.defined]
        if not both_classes:
            notes[varying] = "no ROC AUC: the labels have one class"
        elif len(varying):
            auc[varying] = roc_auc_rows(rewards[varying], binary)
    return pd.DataFrame(
        {
            "goal": goals,
            "baseline": baselines,
            "alpha": alpha,
            "epic": epic,
            "roc_auc": auc,
            "note": notes,
        }
    )


def evaluation_provenance(result: Evaluation, dataset: str, labels: str) -> Provenance:
    """Where a reward was evaluated and how it scored, for its reward file.

    Args:
        result: the evaluation of one reward with one model.
        dataset: the labelled dataset's name.
        labels: which labels, e.g. ``"consensus (mean over labellers)"``.
    """
    m = result.metrics
    interval = (m.ci_low, m.ci_high) if m.ci_low is not None and m.ci_high is not None else None
    return Provenance(
        dataset=dataset,
        labels=labels,
        n_labels=m.n,
        epic_distance=m.epic_distance,
        epic_ci=interval,
        average_precision=m.average_precision,
        roc_auc=m.roc_auc,
        evaluated_at=datetime.now(UTC).isoformat(timespec="seconds"),
        extra={"prompt_set": result.prompt_set, "model_identity": result.model},
    )


def prompt_search_held_out(
    clip: ClipModel,
    embeddings: np.ndarray,
    labels: np.ndarray,
    result: PromptSearchResult,
    groups: np.ndarray,
    *,
    top: int = 200,
    folds: int = 5,
    n_boot: int = 1000,
    seed: int = 0,
) -> HeldOutSelection | None:
    """The prompt search winner's EPIC on held-out folds: picking the best of many combinations on the
    same labels flatters the winner, so in each fold the best of the ``top`` rows is chosen on
    the training frames and scored on the held-out episodes
    (:func:`vlmrm_core.reward.adaptation.held_out_best_of`). The ``top`` rows were ranked on all labels,
    which leaves a little optimism when the search has more rows than that.

    Args:
        clip: the model the embeddings came from.
        embeddings: N×D embeddings of the labelled frames (the search's order).
        labels: N labels.
        result: the prompt search.
        groups: N group ids (:func:`vlmrm_core.reward.adaptation.frame_groups`).
        top: how many of the best rows compete in each fold.
        folds: outer folds.
        n_boot: bootstrap resamples of the held-out interval.
        seed: fold and bootstrap seed.

    Returns:
        A :class:`vlmrm_core.reward.adaptation.HeldOutSelection`, or None when no row has an EPIC.
    """
    from vlmrm_core.reward.adaptation import held_out_best_of

    rows = result.table[result.table["epic"].notna()].head(top)
    if rows.empty:
        return None
    x = np.asarray(embeddings)
    columns = [reward_values(score(clip, x, search_row_spec(row))[0]) for _, row in rows.iterrows()]
    return held_out_best_of(
        np.stack(columns, axis=1), labels, groups, folds=folds, n_boot=n_boot, seed=seed
    )
