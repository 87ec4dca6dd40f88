"""Policy evaluation during training: deterministic rollouts, scored, filmed and kept as frames.

The episodes are played by the same loop that records rollout datasets
(:func:`vlmrm_core.sources.rollouts.rollout_env`), so an evaluation dataset has the same frames,
names, state keys (``observation``, ``action``, ``reward``, ``terminated``, ``truncated``) and
seeding as a rollout of the same policy made on the Frames page: the first reset is seeded with
``seed`` and later episodes continue the environment's random stream.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm

from vlmrm_core.frames import FrameRecord
from vlmrm_core.reward.base import Reward
from vlmrm_core.sources.rollouts import rollout_env
from vlmrm_core.training.video import VideoWriter
from vlmrm_core.wrappers import RewardFn

__all__ = ["EvalResult", "FrameSink", "evaluate_policy"]


@dataclass
class EvalResult:
    """Summary of one evaluation."""

    step: int
    """Training step it was run at."""
    clip_returns: list[float]
    """Per episode: the CLIP rewards of the states reached by its steps (not the reset state)."""
    gt_returns: list[float]
    """Per episode: the environment's own rewards."""
    lengths: list[int]
    """Per episode: steps taken."""
    video_path: Path | None
    dataset: Any = None
    """What the frame sink returned (the store's ingest report), if any."""


FrameSink = Callable[[int, Iterable[FrameRecord]], Any]
"""Receives ``(training_step, frame_records)`` and must consume the iterable."""

_NO_PIXELS = np.zeros((0, 0, 3), dtype=np.uint8)


def evaluate_policy(
    model: BaseAlgorithm,
    make_env: Callable[[], gym.Env],
    reward_fn: RewardFn,
    *,
    episodes: int,
    max_steps: int,
    step: int,
    video_path: Path | None = None,
    frame_sink: FrameSink | None = None,
    spool_dir: Path | None = None,
    seed: int = 0,
    env_id: str | None = None,
    run_id: int | None = None,
    batch_size: int = 32,
    fps: int = 30,
) -> EvalResult:
    """Roll out ``model`` deterministically; score, film and keep the frames.

    Each episode gives its reset frame (``step=0``) and one frame per step, as a rollout
    dataset does. The rollouts come first and the frame sink (a database import) only
    afterwards, so the import's write transaction is not held open while the policy and CLIP
    run. Meanwhile the frames wait in a memory-mapped spool file on disk rather than in RAM (an
    evaluation of 2 × 200 CartPole frames is ~300 MB of pixels). Frames are scored
    ``batch_size`` at a time.

    Args:
        model: The policy (anything with ``predict(obs, deterministic=True)``).
        make_env: Builds one env with ``render_mode="rgb_array"``.
        reward_fn: Batched CLIP reward, to report the CLIP return of each episode.
        episodes: Number of episodes.
        max_steps: Step limit per episode.
        step: Training step, recorded with the frames.
        video_path: Where to write an MP4 of all episodes; None for no video.
        frame_sink: Receives the frames as :class:`FrameRecord` (``source='training-eval'``).
        spool_dir: Folder for the temporary spool file (default: next to the video, else the
            system temp folder).
        seed: Seed of the first reset and the action space (later episodes continue the
            environment's random stream).
        env_id: Recorded with each frame; defaults to the env's own id.
        run_id: Recorded in each frame's ``extra``.
        batch_size: Frames scored per reward call.
        fps: Video frame rate.

    Returns:
        Returns and lengths per episode, the video path and what the sink returned.
    """
    result = EvalResult(step=step, clip_returns=[], gt_returns=[], lengths=[], video_path=None)
    writer = VideoWriter(video_path, fps) if video_path is not None else None
    if spool_dir is None and video_path is not None:
        spool_dir = video_path.parent
    spool: _FrameSpool | None = None
    records: list[FrameRecord] = []
    """Frame metadata in rollout order; pixels live in the spool."""
    env = make_env()
    try:
        env_id = env_id or (env.spec.id if env.spec is not None else "env")
        pending: list[np.ndarray] = []
        # A reward that looks back in time (a window, a multi-frame judge) scores the states
        # reached by an episode's steps in order, as the training wrappers do; the reset frame
        # is scored alone (it is recorded, never part of a return or of a history).
        history = reward_fn.history(1) if isinstance(reward_fn, Reward) else None

        def score_batch(first: int) -> np.ndarray:
            batch = np.stack(pending)
            if history is None:
                return np.asarray(reward_fn(batch), dtype=np.float64).reshape(-1)
            steps = [record.step for record in records[first:]]
            scored = np.empty(len(pending), dtype=np.float64)
            i = 0
            while i < len(steps):
                if not steps[i]:  # a reset frame: a new episode starts
                    history.reset()
                    scored[i] = float(np.asarray(reward_fn(batch[i : i + 1])).reshape(-1)[0])
                    i += 1
                    continue
                j = i  # the run of stepped frames of this episode, scored in one call
                while j < len(steps) and steps[j]:
                    j += 1
                scored[i:j] = np.asarray(history.score(batch[i:j], [0] * (j - i)), np.float64)
                i = j
            return scored

        def score_pending() -> None:
            first = len(records) - len(pending)
            scored = score_batch(first)
            for record, reward in zip(records[first:], scored, strict=True):
                record.extra["clip_reward"] = float(reward)
                if record.step:  # the reward of a state reached by a step
                    result.clip_returns[record.episode or 0] += float(reward)
            pending.clear()

        rollout = rollout_env(
            env,
            env_id,
            episodes=episodes,
            max_steps=max_steps,
            policy=model,
            seed=seed,
            policy_label=type(model).__name__,
        )
        for record in rollout:
            if not isinstance(record, FrameRecord):  # rollouts yield no rejections
                continue
            frame = record.pixels
            if spool is None:
                spool = _FrameSpool(spool_dir, episodes * (max_steps + 1), frame.shape)
            spool.append(frame)
            if writer is not None:
                writer.write(frame)
            episode = record.episode or 0
            if record.step == 0:
                result.clip_returns.append(0.0)
                result.gt_returns.append(0.0)
                result.lengths.append(0)
            else:
                result.gt_returns[episode] += float((record.state or {}).get("reward", 0.0))
                result.lengths[episode] += 1
            records.append(dataclasses.replace(record, pixels=_NO_PIXELS))
            pending.append(frame)
            if len(pending) >= batch_size:
                score_pending()
        if pending:
            score_pending()
        if writer is not None:
            result.video_path = writer.close()
            writer = None
        if frame_sink is not None and spool is not None:
            result.dataset = frame_sink(step, _eval_records(spool.frames(), records, step, run_id))
    finally:
        env.close()
        if writer is not None:
            writer.close()
        if spool is not None:
            spool.close()
    return result


def _eval_records(
    frames: np.ndarray, records: list[FrameRecord], train_step: int, run_id: int | None
) -> Iterator[FrameRecord]:
    """The rollout's records as an evaluation dataset's frames, pixels read from the spool."""
    for pixels, record in zip(frames, records, strict=True):
        yield dataclasses.replace(
            record,
            pixels=np.array(pixels),
            source="training-eval",
            name=f"{record.env_id} step{train_step} ep{record.episode} t{record.step}",
            extra={
                **record.extra,
                "run_id": run_id,
                "train_step": train_step,
                "gt_reward": (record.state or {}).get("reward"),
            },
        )


class _FrameSpool:
    """Frames of equal shape appended to a memory-mapped ``.npy`` file, deleted on close."""

    def __init__(self, folder: Path | None, capacity: int, shape: tuple[int, ...]) -> None:
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(suffix=".npy", prefix=".eval-spool-", dir=folder)
        os.close(fd)
        self.path = Path(name)
        self._array = np.lib.format.open_memmap(
            self.path, mode="w+", dtype=np.uint8, shape=(capacity, *shape)
        )
        self._n = 0

    def append(self, frame: np.ndarray) -> None:
        if frame.shape != self._array.shape[1:]:
            raise ValueError(f"frame shape changed during evaluation: {frame.shape}")
        self._array[self._n] = frame
        self._n += 1

    def frames(self) -> np.ndarray:
        return self._array[: self._n]

    def close(self) -> None:
        del self._array
        self.path.unlink(missing_ok=True)
