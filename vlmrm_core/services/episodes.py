"""Datasets as episodes in time: VOC of a reward over a stored dataset, and time-reversed copies.

Frames that carry an episode and a step (rollouts, training evaluations, LeRobot imports) form
episodes; frames without them (uploaded images, sweeps) are left out of everything here.

* :func:`dataset_voc` is the value-order correlation (:mod:`vlmrm_core.metrics.progress`) of
  one reward over a dataset's episodes: the successful ones (by their labels), or all of them
  for a dataset of demonstrations.
* :func:`dataset_voc_gap` compares it with the VOC on a reversed copy's episodes;
  :func:`reward_voc_gap` does so for a :class:`~vlmrm_core.reward.base.Reward`, scoring the
  copy in its own (reversed) time order when the reward looks at time.
* :func:`episode_rows` gives each episode's frames in time order; :func:`rewards_over_time`,
  :func:`score_stored_episode` and :func:`score_frames_over_time` score stored frames episode by
  episode in time order, so a reward that looks back (a window of k frames, a multi-frame judge)
  sees what it would see during training.
* :func:`make_reversed_copies` stores time-reversed copies of episodes as a new dataset
  (ReWiND's failure data). The frames are the same pixels, so nothing is decoded or written but
  membership rows: each frame keeps its episode id and gets the step it has when the episode
  plays backwards.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from vlmrm_core.errors import InvalidInputError, NotFoundError
from vlmrm_core.metrics.progress import (
    VocGap,
    VocResult,
    episode_groups,
    reversed_steps,
    successful_episodes,
    value_order_correlation,
    voc_gap,
)
from vlmrm_core.store import Engine, FrameInfo

if TYPE_CHECKING:
    from vlmrm_core.clip.models import ClipModel
    from vlmrm_core.frames import ProgressCallback
    from vlmrm_core.reward.base import Reward
    from vlmrm_core.reward.model import RewardScores
    from vlmrm_core.reward.spec import RewardSpec

__all__ = [
    "REVERSED_KEY",
    "EpisodeFrames",
    "dataset_voc",
    "dataset_voc_gap",
    "episode_frames",
    "episode_rows",
    "looks_at_time",
    "make_reversed_copies",
    "reversed_copies",
    "reward_voc_gap",
    "rewards_over_time",
    "clip_scores_over_time",
    "score_frames_over_time",
    "score_stored_episode",
]

SCORE_CHUNK = 32
"""Stored frames read and scored at a time (bounds memory; one progress report each)."""

REVERSED_KEY = "reversed_from"
"""Key of a reversed copy's ``meta`` (the source dataset and its episodes) and of each frame's
``extra`` (the step the frame had in the forward episode)."""


@dataclass(frozen=True)
class EpisodeFrames:
    """The frames of a dataset that belong to an episode, as arrays."""

    rows: np.ndarray
    """Indices into the frame list given to :func:`episode_frames`."""
    episodes: np.ndarray
    steps: np.ndarray


def episode_frames(frames: Sequence[FrameInfo]) -> EpisodeFrames:
    """The frames that have both an episode and a step, with those as arrays."""
    rows = [i for i, f in enumerate(frames) if f.episode is not None and f.step is not None]
    return EpisodeFrames(
        rows=np.array(rows, dtype=np.int64),
        episodes=np.array([frames[i].episode for i in rows], dtype=np.int64),
        steps=np.array([frames[i].step for i in rows], dtype=np.int64),
    )


def episode_rows(frames: Sequence[FrameInfo]) -> tuple[list[np.ndarray], np.ndarray]:
    """Each episode's frame rows in step order, and the rows of frames in no episode.

    What scoring over time needs (a windowed reward, progress shaping, an episode's curve):
    ``rows`` index ``frames``; episodes come in ascending id, the loose frames in their order.
    """
    found = episode_frames(frames)
    episodes = [
        found.rows[group[np.argsort(found.steps[group], kind="stable")]]
        for _, group in sorted(episode_groups(found.episodes).items())
    ]
    in_episode = np.zeros(len(frames), dtype=bool)
    in_episode[found.rows] = True
    return episodes, np.flatnonzero(~in_episode)


def looks_at_time(reward: Reward) -> bool:
    """Whether a reward's value at a frame depends on the frames before it in its episode (a
    windowed CLIP reward, a judge shown several frames, progress shaping): its
    :meth:`~vlmrm_core.reward.base.Reward.history` is not None."""
    return reward.history(1) is not None


def rewards_over_time(
    frames: Sequence[FrameInfo],
    score_episode: Callable[[np.ndarray], npt.ArrayLike],
    score_alone: Callable[[np.ndarray], npt.ArrayLike],
) -> np.ndarray:
    """One reward per frame (in the order of ``frames``), each episode scored in time order.

    Args:
        frames: Frames of a dataset (:func:`vlmrm_core.store.dataset_frames`), or a subset.
        score_episode: ``rows -> rewards`` of one episode's rows into ``frames``, given in
            step order (:func:`episode_rows`).
        score_alone: ``rows -> rewards`` of the frames in no episode (each frame alone).

    Returns:
        len(frames) float64 rewards.
    """
    rewards = np.zeros(len(frames), dtype=np.float64)
    episodes, loose = episode_rows(frames)
    for rows in episodes:
        rewards[rows] = np.asarray(score_episode(rows), dtype=np.float64).reshape(-1)
    if loose.size:
        rewards[loose] = np.asarray(score_alone(loose), dtype=np.float64).reshape(-1)
    return rewards


def score_stored_episode(
    reward: Reward,
    hashes: Sequence[str],
    *,
    progress: ProgressCallback | None = None,
    chunk_size: int = SCORE_CHUNK,
) -> np.ndarray:
    """Rewards of one stored episode's frames (pixel hashes in time order), as
    :meth:`~vlmrm_core.reward.base.Reward.score_episode` gives them, read and scored a chunk at
    a time.

    A reward that looks back scores the chunks through one
    :meth:`~vlmrm_core.reward.base.Reward.history`, which carries its window from one chunk to
    the next (as policy evaluation and the training wrappers do); any other reward scores
    each chunk frame by frame.

    Args:
        reward: Any reward source.
        hashes: The episode's frames, oldest first.
        progress: ``progress(done, total, message)`` after each chunk.
        chunk_size: Frames read at a time.

    Returns:
        len(hashes) float64 rewards.
    """
    from vlmrm_core.store import load_pixels

    history = reward.history(1)
    values = np.zeros(len(hashes), dtype=np.float64)
    for start in range(0, len(hashes), chunk_size):
        chunk = hashes[start : start + chunk_size]
        pixels = np.stack([load_pixels(h) for h in chunk])
        scored = reward(pixels) if history is None else history.score(pixels, [0] * len(chunk))
        values[start : start + len(chunk)] = np.asarray(scored, dtype=np.float64).reshape(-1)
        if progress is not None:
            done = start + len(chunk)
            progress(done, len(hashes), f"{done} of {len(hashes)} frames scored")
    return values


def score_frames_over_time(
    reward: Reward,
    frames: Sequence[FrameInfo],
    *,
    progress: ProgressCallback | None = None,
) -> np.ndarray:
    """One reward per stored frame (in the order of ``frames``): each episode scored in its
    time order (:func:`score_stored_episode`), frames in no episode each alone.

    Raises:
        FileNotFoundError: A frame's image file is missing.
    """
    total = len(frames)
    done = 0

    def scored(rows: np.ndarray) -> np.ndarray:
        nonlocal done
        offset = done

        def report(n: int, _total: int | None, _message: str) -> None:
            if progress is not None:
                progress(offset + n, total, f"{offset + n} of {total} frames scored")

        values = score_stored_episode(reward, [frames[int(r)].hash for r in rows], progress=report)
        done += len(rows)
        return values

    def alone(rows: np.ndarray) -> np.ndarray:
        if not looks_at_time(reward):
            return scored(rows)
        # Loose frames form no episode: each is its own, or a window would span unrelated frames.
        return np.concatenate([scored(rows[i : i + 1]) for i in range(len(rows))])

    return rewards_over_time(frames, scored, alone)


def clip_scores_over_time(
    clip: ClipModel,
    frames: Sequence[FrameInfo],
    embeddings: npt.ArrayLike,
    spec: RewardSpec,
) -> RewardScores:
    """A CLIP reward's scores of a dataset's frames from their cached embeddings, each episode
    in time order: :func:`~vlmrm_core.reward.model.score_episode_embeddings` per episode (a
    window of k looks back k frames, as :meth:`~vlmrm_core.reward.model.RewardModel.history`
    does in training), frames in no episode each alone.

    What ``vlmrm score --dataset`` and the Evaluate page share, so both give a windowed reward
    the same numbers.

    Args:
        clip: The model the embeddings came from.
        frames: A dataset's frames (:func:`vlmrm_core.store.dataset_frames`).
        embeddings: One embedding per frame (N×D), same order.
        spec: The reward definition.

    Returns:
        N rewards, and N probabilities for the contrastive kind (float64).

    Raises:
        InvalidInputError: Not one embedding per frame.
    """
    from vlmrm_core.reward.model import RewardScores, score_embeddings, score_episode_embeddings
    from vlmrm_core.reward.spec import RewardKind

    x = np.asarray(embeddings, dtype=np.float32)
    if x.ndim != 2 or x.shape[0] != len(frames):
        raise InvalidInputError(
            f"{x.shape[0] if x.ndim else 0} embeddings for {len(frames)} frames."
        )
    contrastive = spec.kind is RewardKind.CONTRASTIVE
    probability = np.zeros(len(frames), dtype=np.float64) if contrastive else None

    def kept(rows: np.ndarray, scores: RewardScores) -> np.ndarray:
        if probability is not None and scores.probability is not None:
            probability[rows] = np.asarray(scores.probability, dtype=np.float64).reshape(-1)
        return scores.rewards

    rewards = rewards_over_time(
        frames,
        lambda rows: kept(rows, score_episode_embeddings(clip, x[rows], spec)),
        # A loose frame is an episode of one: its window holds itself alone.
        lambda rows: kept(rows, score_embeddings(clip, x[rows], spec)),
    )
    return RewardScores(rewards, probability)


def reversed_copies(engine: Engine, dataset: str) -> list[str]:
    """Names of the datasets :func:`make_reversed_copies` made from ``dataset``, oldest first."""
    from vlmrm_core.store import list_datasets

    names = []
    for summary in list_datasets(engine):
        origin = (summary.meta or {}).get(REVERSED_KEY)
        if isinstance(origin, Mapping) and origin.get("dataset") == dataset:
            names.append(summary.name)
    return names


def _successful(
    frames: Sequence[FrameInfo], found: EpisodeFrames, labels: Mapping[str, float]
) -> set[int]:
    values = np.array(
        [labels.get(frames[i].hash, np.nan) for i in found.rows], dtype=np.float64
    ).reshape(-1)
    return successful_episodes(found.episodes, found.steps, values)


def dataset_voc(
    frames: Sequence[FrameInfo],
    rewards: npt.ArrayLike,
    *,
    labels: Mapping[str, float] | None = None,
    demonstrations: bool = False,
    n_boot: int = 1000,
    seed: int | None = 0,
) -> VocResult:
    """VOC of one reward over a dataset's episodes.

    Args:
        frames: The dataset's frames (:func:`vlmrm_core.store.dataset_frames`).
        rewards: One reward per frame, in the same order.
        labels: Label per frame hash (e.g. :func:`vlmrm_core.store.consensus_labels`); an
            episode counts when its last labelled frame is a success.
        demonstrations: Every episode counts (the dataset holds demonstrations); labels are
            then not needed.
        n_boot: Bootstrap resamples of the episodes.
        seed: Bootstrap seed.

    Returns:
        The VOC with its interval (``voc`` None, with a note, when no episode counts).

    Raises:
        InvalidInputError: Not one reward per frame, or neither labels nor demonstrations.
    """
    values = np.asarray(rewards, dtype=np.float64).reshape(-1)
    if values.shape[0] != len(frames):
        raise InvalidInputError(f"{values.shape[0]} rewards for {len(frames)} frames.")
    found = episode_frames(frames)
    if demonstrations:
        include: set[int] | None = None
    elif labels is None:
        raise InvalidInputError(
            "VOC needs the successful episodes: give labels, or say the dataset holds "
            "demonstrations."
        )
    else:
        include = _successful(frames, found, labels)
    return value_order_correlation(
        values[found.rows], found.episodes, found.steps, include=include, n_boot=n_boot, seed=seed
    )


def dataset_voc_gap(
    forward: VocResult,
    frames: Sequence[FrameInfo],
    rewards: npt.ArrayLike,
    reversed_frames: Sequence[FrameInfo],
    reversed_rewards: npt.ArrayLike | None = None,
    *,
    n_boot: int = 1000,
    seed: int | None = 0,
) -> VocGap:
    """The VOC gap between a dataset's episodes and a reversed copy of them (ReWiND).

    Args:
        forward: :func:`dataset_voc` of ``frames`` (the episodes that count).
        frames: The forward dataset's frames.
        rewards: One reward per forward frame (NaN: not scored).
        reversed_frames: The frames of a :func:`make_reversed_copies` copy.
        reversed_rewards: One reward per copied frame; None takes each copied frame's reward
            from the forward frame with the same pixels, which is right for rewards of single
            frames (not for a windowed or shaped reward: score the copy itself).
        n_boot: Bootstrap resamples of the paired episodes.
        seed: Bootstrap seed.

    Returns:
        Forward minus reversed VOC over the episodes in both, every reversed episode counting.
    """
    values = np.asarray(rewards, dtype=np.float64).reshape(-1)
    if values.shape[0] != len(frames):
        raise InvalidInputError(f"{values.shape[0]} rewards for {len(frames)} frames.")
    if reversed_rewards is None:
        by_hash = {f.hash: float(v) for f, v in zip(frames, values, strict=True) if v == v}
        copied = np.array([by_hash.get(f.hash, np.nan) for f in reversed_frames])
    else:
        copied = np.asarray(reversed_rewards, dtype=np.float64).reshape(-1)
        if copied.shape[0] != len(reversed_frames):
            raise InvalidInputError(
                f"{copied.shape[0]} rewards for {len(reversed_frames)} reversed frames."
            )
    scored = np.flatnonzero(~np.isnan(copied)).tolist()
    backward = dataset_voc(
        [reversed_frames[i] for i in scored],
        copied[scored],
        demonstrations=True,  # played backwards, every copied episode is a failure to rank
        n_boot=n_boot,
        seed=seed,
    )
    return voc_gap(forward, backward, n_boot=n_boot, seed=seed)


def reward_voc_gap(
    reward: Reward,
    forward: VocResult,
    frames: Sequence[FrameInfo],
    rewards: npt.ArrayLike,
    reversed_frames: Sequence[FrameInfo],
    *,
    progress: ProgressCallback | None = None,
    n_boot: int = 1000,
    seed: int | None = 0,
    score_copy: Callable[[], npt.ArrayLike] | None = None,
) -> VocGap:
    """The VOC gap of a reward between a dataset's episodes and a reversed copy of them.

    A reward of single frames gives a copied frame what it gave the forward frame with the same
    pixels, so the forward rewards are reused (exact, and nothing is scored). A reward that
    looks at time (:func:`looks_at_time`: a window, a multi-frame judge) sees other frames
    before each frame when the episode plays backwards, so the copy is scored itself, each
    episode in its reversed time order (:func:`score_frames_over_time`).

    Args:
        reward: The reward ``rewards`` are of.
        forward: :func:`dataset_voc` of ``frames``.
        frames: The forward dataset's frames.
        rewards: ``reward``'s rewards of ``frames``, scored over time
            (:func:`score_frames_over_time` or its equivalent on cached embeddings).
        reversed_frames: The frames of a :func:`make_reversed_copies` copy.
        progress: ``progress(done, total, message)`` while the copy is scored.
        n_boot: Bootstrap resamples of the paired episodes.
        seed: Bootstrap seed.
        score_copy: For a reward that looks at time, how to score the copy over time instead
            of :func:`score_frames_over_time` (e.g. from cached embeddings with
            :func:`clip_scores_over_time`): one reward per reversed frame, same order. Not
            called for a reward of single frames.
    """
    copied: npt.ArrayLike | None = None
    if looks_at_time(reward):
        copied = (
            score_frames_over_time(reward, reversed_frames, progress=progress)
            if score_copy is None
            else score_copy()
        )
    return dataset_voc_gap(
        forward, frames, rewards, reversed_frames, copied, n_boot=n_boot, seed=seed
    )


def make_reversed_copies(
    engine: Engine,
    dataset: str,
    new_dataset: str,
    *,
    episodes: Collection[int] | None = None,
    demonstrations: bool = False,
) -> int:
    """Store time-reversed copies of a dataset's episodes as a new dataset (ReWiND).

    Each copied frame keeps its pixels, source, name, episode id and provenance; its step
    becomes ``first + last − step`` of its episode, and its ``extra['reversed_from']`` the
    step it had. Frames are in reversed time order within each episode. The new dataset's
    ``meta['reversed_from']`` names the source dataset and the episodes copied.

    Args:
        engine: The project database.
        dataset: The dataset to copy from.
        new_dataset: Name of the dataset to create (it must not exist).
        episodes: Episode ids to copy; None for the successful ones (their last labelled frame
            is a success), or all with ``demonstrations``.
        demonstrations: With ``episodes`` None, copy every episode.

    Returns:
        Frames in the new dataset.

    Raises:
        NotFoundError: No such dataset.
        InvalidInputError: The new dataset exists, the source has no episodes, no episode is
            labelled successful, or an asked-for episode is not in the dataset.
    """
    from vlmrm_core.services.dataset_import import check_dataset_name
    from vlmrm_core.store import consensus_labels, dataset_frames, get_dataset, update_dataset
    from vlmrm_core.store.datasets import add_frames_to_dataset

    target = check_dataset_name(new_dataset)
    source = get_dataset(engine, dataset)
    try:
        get_dataset(engine, target)
    except NotFoundError:
        pass
    else:
        raise InvalidInputError(f"A dataset named {target!r} exists already; choose a new name.")
    frames = dataset_frames(engine, dataset)
    found = episode_frames(frames)
    if found.rows.size == 0:
        raise InvalidInputError(
            f"Dataset {dataset!r} has no episodes (no frame has an episode and a step)."
        )
    present = set(int(e) for e in np.unique(found.episodes))
    if episodes is not None:
        chosen = set(int(e) for e in episodes)
        missing = sorted(chosen - present)
        if missing or not chosen:
            raise InvalidInputError(
                f"Episode(s) {missing or '(none)'} are not in {dataset!r}; it has "
                f"{len(present)} episodes ({min(present)} … {max(present)})."
            )
    elif demonstrations:
        chosen = present
    else:
        labels = consensus_labels(engine, dataset)
        chosen = _successful(frames, found, {str(k): float(v) for k, v in labels.items()})
        if not chosen:
            raise InvalidInputError(
                f"No episode of {dataset!r} is labelled successful (its last labelled frame a "
                "success); label the final frames, or copy all episodes as demonstrations."
            )
    new_steps = reversed_steps(found.episodes, found.steps)
    members = []
    for episode, group in episode_groups(found.episodes).items():
        if episode not in chosen:
            continue
        for k in group[np.argsort(new_steps[group], kind="stable")]:
            info = frames[int(found.rows[k])]
            members.append(
                {
                    "frame_hash": info.hash,
                    "source": info.source,
                    "name": info.name,
                    "env_id": info.env_id,
                    "episode": info.episode,
                    "step": int(new_steps[k]),
                    "state": info.state,
                    "param_name": info.param_name,
                    "param_value": info.param_value,
                    "extra": {**(info.extra or {}), REVERSED_KEY: info.step},
                }
            )
    added = add_frames_to_dataset(engine, target, source.kind, [], members, create=True)
    update_dataset(
        engine,
        target,
        description=f"Time-reversed copies of episodes of {dataset}",
        meta={REVERSED_KEY: {"dataset": dataset, "episodes": sorted(chosen)}},
    )
    return added
