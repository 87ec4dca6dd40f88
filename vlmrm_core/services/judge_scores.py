"""Scoring frames with a VLM judge: what ``vlmrm score --judge`` and the app's Judge mode share.

* :class:`JudgeRequest` is a judge as the user describes it (model, question, answers, mode,
  frames per question, precision); :func:`load_judge_reward` loads it as a
  :class:`~vlmrm_core.judge.JudgeReward` that keeps its vision features in the persistent
  feature cache (``<data dir>/judge_features``), so asking another question about the same
  frames re-runs only the language model, in this process and the next.
* :func:`score_dataset` scores a stored dataset's frames (with progress): frames whose features
  are cached are never read from disk. With ``frames=k`` each reward judges the frame with the
  k-1 frames before it in its episode (by step); frames outside an episode are judged alone.
* :func:`score_items` scores frames given in order (files, a video): with ``frames=k`` they form
  one sequence.

Example::

    >>> from vlmrm_core.services.judge_scores import JudgeRequest, load_judge_reward
    >>> judge = load_judge_reward(JudgeRequest("HuggingFaceTB/SmolVLM-256M-Instruct",
    ...                                        "Is the pole upright? Answer yes or no."))
    ... # doctest: +SKIP
    >>> scores = score_dataset(engine, "cartpole-sweep", judge, progress=print)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from vlmrm_core.enums import JudgeMode, Precision
from vlmrm_core.frames import ProgressCallback
from vlmrm_core.judge.prompt import DEFAULT_ANSWERS

if TYPE_CHECKING:
    from vlmrm_core.judge import FeatureCache, JudgeReward
    from vlmrm_core.store import Engine, FrameInfo


@dataclass(frozen=True)
class JudgeRequest:
    """A judge as the user describes it (plain values: no model loaded)."""

    model: str
    """A Hugging Face hub id (``HuggingFaceTB/SmolVLM-256M-Instruct``) or a model folder."""
    question: str
    """The yes/no question about the frames."""
    answers: tuple[str, str] = DEFAULT_ANSWERS
    """The positive and the negative answer, one token each."""
    mode: JudgeMode = JudgeMode.LOG_ODDS
    frames: int = 1
    """How many consecutive frames the judge sees per question (1: each frame alone)."""
    precision: Precision | str = Precision.AUTO
    """``auto``: bf16 on a GPU with native bfloat16, fp32 on a CPU."""


def load_judge_reward(
    request: JudgeRequest,
    *,
    device: str | None = None,
    batch_size: int | None = None,
    cache: FeatureCache | None = None,
) -> JudgeReward:
    """Load the judge a request names, with the persistent feature cache.

    Args:
        request: the judge, question and answers.
        device: ``cuda`` / ``cpu`` (default: cuda when available).
        batch_size: windows per language-model pass (default: the judge's).
        cache: where vision features are kept (default:
            :func:`vlmrm_core.judge.default_feature_cache`, under the data dir).

    Raises:
        ModelError: the judge cannot be loaded (the message names ``vlmrm models download``
            for a hub model that is not cached).
        AnswerError: an empty question, or answers that are not one known token each.
    """
    from vlmrm_core.judge import JudgeReward, default_feature_cache
    from vlmrm_core.judge.reward import DEFAULT_BATCH

    return JudgeReward.load(
        request.model,
        request.question,
        request.answers,
        device=device,
        precision=request.precision,
        mode=request.mode,
        frames=request.frames,
        batch_size=batch_size or DEFAULT_BATCH,
        cache=cache if cache is not None else default_feature_cache(),
    )


def frame_windows(
    episodes: Sequence[Hashable | None], steps: Sequence[int | None], k: int
) -> list[tuple[int, ...]]:
    """Each frame's window of the last ``k`` frames of its episode, as indices, oldest first.

    Frames of one episode are ordered by step; a frame without an episode or a step is judged
    alone, and the first frames of an episode see fewer than ``k`` frames (frame 0 alone).

    >>> frame_windows([0, 0, 0, None, 1], [0, 1, 2, None, 0], 2)
    [(0,), (0, 1), (1, 2), (3,), (4,)]
    """
    windows: list[tuple[int, ...]] = [(i,) for i in range(len(episodes))]
    by_episode: dict[Hashable, list[int]] = {}
    for i, (episode, step) in enumerate(zip(episodes, steps, strict=True)):
        if episode is not None and step is not None:
            by_episode.setdefault(episode, []).append(i)
    for members in by_episode.values():
        ordered = sorted(members, key=lambda i: (steps[i], i))
        for t, i in enumerate(ordered):
            windows[i] = tuple(ordered[max(0, t - k + 1) : t + 1])
    return windows


@dataclass(frozen=True)
class DatasetJudgeScores:
    """A judge's rewards of a stored dataset's frames, in dataset order."""

    frames: list[FrameInfo]
    rewards: np.ndarray
    """One float32 reward per frame."""


def score_dataset(
    engine: Engine,
    dataset: str,
    reward: JudgeReward,
    *,
    progress: ProgressCallback | None = None,
    chunk_size: int = 256,
) -> DatasetJudgeScores:
    """Score every frame of a stored dataset with a judge, through its feature cache.

    Args:
        engine: the store.
        dataset: the dataset's name.
        reward: the judge (from :func:`load_judge_reward`, to keep features across runs).
        progress: ``progress(done, total, message)`` after each chunk.
        chunk_size: frames (or windows) handled at a time.

    Raises:
        NotFoundError: no dataset of that name.
    """
    from vlmrm_core.judge import score_frames, score_windows
    from vlmrm_core.store import dataset_frames, get_dataset, load_pixels

    get_dataset(engine, dataset)  # a missing dataset fails here, by name
    frames = dataset_frames(engine, dataset)
    items: list[tuple[str, Any]] = [(f.hash, _loader(f.hash, load_pixels)) for f in frames]
    if reward.frames == 1:
        rewards = score_frames(
            reward, items, total=len(items), progress=progress, chunk_size=chunk_size
        )
    else:
        windows = frame_windows(
            [f.episode for f in frames], [f.step for f in frames], reward.frames
        )
        rewards = score_windows(reward, items, windows, progress=progress, chunk_size=chunk_size)
    return DatasetJudgeScores(frames, rewards)


def score_items(
    reward: JudgeReward,
    items: Iterable[tuple[str, Any]],
    *,
    total: int | None = None,
    progress: ProgressCallback | None = None,
) -> np.ndarray:
    """Score frames given in order as ``(pixel_hash, pixels_or_loader)`` pairs.

    With ``reward.frames == k > 1`` the frames form one sequence: reward t judges frames
    t-k+1..t (the first ones see fewer).
    """
    from vlmrm_core.judge import score_frames, score_windows

    if reward.frames == 1:
        return score_frames(reward, items, total=total, progress=progress)
    listed = list(items)
    positions = list(range(len(listed)))
    windows = frame_windows([0] * len(listed), positions, reward.frames)
    return score_windows(reward, listed, windows, progress=progress)


def _loader(frame_hash: str, load: Any) -> Any:
    return lambda: load(frame_hash)
