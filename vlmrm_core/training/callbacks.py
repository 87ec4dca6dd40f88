"""stable-baselines3 callbacks: the extension points of a training run.

Each callback does one job and talks to the outside world through a plain callable (a "sink")
given to its constructor, so the same callbacks work with the store, in tests, or in a notebook.
The worker (:mod:`vlmrm_core.training.worker`) wires them to the database.

- :class:`MetricsCallback`: a row of scalars every N env steps (episode CLIP / ground-truth
  return, episode length, steps/s, SB3 losses).
- :class:`Heartbeat` + :class:`HeartbeatCallback`: a background thread that reports liveness and
  progress every few seconds, even while the main thread is busy (model loading, evaluation,
  checkpointing), so a slow step is never mistaken for a crash.
- :class:`CancelCallback`: polls a cancellation flag, saves a checkpoint and stops cleanly.
- :class:`CheckpointCallback`: a checkpoint every N env steps (not every N calls).
- :class:`EvalCallback`: deterministic rollouts every M env steps, saved as a frame dataset and
  an MP4 video.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback

from vlmrm_core.frames import FrameRecord
from vlmrm_core.training.checkpoints import Checkpoint, save_checkpoint
from vlmrm_core.training.reward_wrapper import RewardFn

log = logging.getLogger(__name__)

MetricsSink = Callable[[list[dict[str, Any]]], None]
"""Receives metric rows: ``{"step": int, "wall_time": float, <metric>: number, ...}``, the
format of the store's ``add_run_metrics``; non-finite values are left out."""


def _finite(data: dict[str, Any]) -> dict[str, Any]:
    # NaN/inf are not valid JSON (PostgreSQL rejects them), so missing values are left out.
    return {k: v for k, v in data.items() if not (isinstance(v, float) and not math.isfinite(v))}


class MetricsCallback(BaseCallback):
    """Write a row of training metrics every ``every_steps`` env steps.

    Row keys: ``steps_per_s``, ``episodes`` (episodes ended in the window), ``episode_clip_return``,
    ``episode_gt_return``, ``episode_length`` (means over those episodes, left out when none ended),
    ``clip_reward_mean`` / ``gt_reward_mean`` (per step, over the window), ``reward_time_frac``
    (share of wall time spent rendering and scoring frames) and the latest ``train/*`` values of
    the SB3 logger (losses, entropy coefficient...).

    Args:
        sink: Receives the rows, e.g. ``lambda rows: add_run_metrics(engine, run_id, rows)``.
        every_steps: Env steps between rows.
        echo: Also log a one-line summary of each row (goes to the run's log file).
    """

    def __init__(self, sink: MetricsSink, every_steps: int, *, echo: bool = True) -> None:
        super().__init__()
        self.sink = sink
        self.every_steps = max(1, int(every_steps))
        self.echo = echo
        self._reset_window()
        self._train_values: dict[str, float] = {}
        self._last_time = 0.0
        self._last_steps = 0
        self._next = 0
        self._last_reward_seconds = 0.0

    def _reset_window(self) -> None:
        self._ep_clip: list[float] = []
        self._ep_gt: list[float] = []
        self._ep_len: list[int] = []
        self._clip_sum = 0.0
        self._gt_sum = 0.0
        self._n_rewards = 0

    def _on_training_start(self) -> None:
        self._last_time = time.perf_counter()
        self._last_steps = self.num_timesteps
        self._next = (self.num_timesteps // self.every_steps + 1) * self.every_steps
        self._last_reward_seconds = self._reward_seconds()

    def _reward_seconds(self) -> float:
        env = self.training_env
        seconds = 0.0
        while env is not None:
            seconds += getattr(env, "reward_seconds", 0.0) + getattr(env, "render_seconds", 0.0)
            env = getattr(env, "venv", None)
        return seconds

    def _on_step(self) -> bool:
        rewards = self.locals.get("rewards")
        if rewards is not None:
            self._clip_sum += float(np.sum(rewards))
            self._n_rewards += int(np.size(rewards))
        for info in self.locals.get("infos", ()):
            if "gt_reward" in info:
                self._gt_sum += float(info["gt_reward"])
            episode = info.get("episode_clip")
            if episode is not None:
                self._ep_clip.append(episode["clip_return"])
                self._ep_gt.append(episode["gt_return"])
                self._ep_len.append(episode["length"])
        # SB3 clears its logger values whenever it dumps them, so remember the latest ones.
        for key, value in self.model.logger.name_to_value.items():
            if key.startswith("train/") and isinstance(value, int | float | np.floating):
                self._train_values[key] = float(value)
        if self.num_timesteps >= self._next:
            self.flush()
        return True

    def _on_training_end(self) -> None:
        if self.num_timesteps > self._last_steps:
            self.flush()

    def flush(self) -> None:
        """Write a row for the window since the last one and start a new window."""
        now = time.perf_counter()
        steps = self.num_timesteps
        elapsed = max(now - self._last_time, 1e-9)
        reward_seconds = self._reward_seconds()
        data: dict[str, Any] = {
            "steps_per_s": (steps - self._last_steps) / elapsed,
            "episodes": len(self._ep_clip),
            "reward_time_frac": min(1.0, (reward_seconds - self._last_reward_seconds) / elapsed),
        }
        if self._n_rewards:
            data["clip_reward_mean"] = self._clip_sum / self._n_rewards
            data["gt_reward_mean"] = self._gt_sum / self._n_rewards
        if self._ep_clip:
            data["episode_clip_return"] = float(np.mean(self._ep_clip))
            data["episode_gt_return"] = float(np.mean(self._ep_gt))
            data["episode_length"] = float(np.mean(self._ep_len))
        data.update(self._train_values)
        data = _finite(data)
        self.sink([{"step": steps, "wall_time": time.time(), **data}])
        if self.echo:
            summary = " ".join(
                f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in data.items()
            )
            log.info("step %d %s", steps, summary)
        self._last_time = now
        self._last_steps = steps
        self._last_reward_seconds = reward_seconds
        self._next = (steps // self.every_steps + 1) * self.every_steps
        self._reset_window()


class Heartbeat:
    """A daemon thread calling ``beat(steps_done)`` every ``interval_s`` seconds.

    Runs beside training so that liveness does not depend on the training loop returning to a
    callback (evaluations, checkpoints and large gradient batches can take longer than the
    crash-detection window). Errors from ``beat`` (e.g. a locked database) are logged and the
    next beat is tried as usual.

    Args:
        beat: Called with the latest step count, e.g. to update ``heartbeat_at`` and ``steps_done``.
        interval_s: Seconds between beats.
    """

    def __init__(self, beat: Callable[[int], None], interval_s: float) -> None:
        self.beat = beat
        self.interval_s = float(interval_s)
        self.steps = 0
        """Latest step count; set by :class:`HeartbeatCallback`."""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Heartbeat:
        """Beat once now, then every ``interval_s`` in the background."""
        self._beat_once()
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the thread and send a last beat with the final step count."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.interval_s + 5)
        self._beat_once()

    def __enter__(self) -> Heartbeat:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._beat_once()

    def _beat_once(self) -> None:
        try:
            self.beat(self.steps)
        except Exception:  # noqa: BLE001  (a missed beat must never kill training)
            log.warning("heartbeat failed", exc_info=True)


class HeartbeatCallback(BaseCallback):
    """Feed the training step count to a :class:`Heartbeat`."""

    def __init__(self, heartbeat: Heartbeat) -> None:
        super().__init__()
        self.heartbeat = heartbeat

    def _on_training_start(self) -> None:
        self.heartbeat.steps = self.num_timesteps

    def _on_step(self) -> bool:
        self.heartbeat.steps = self.num_timesteps
        return True


class CheckpointCallback(BaseCallback):
    """Save a checkpoint whenever ``num_timesteps`` crosses a multiple of ``every_steps``.

    Unlike SB3's own ``CheckpointCallback`` (which counts callback calls, i.e. ``n_envs`` steps
    each), this counts environment steps and so keeps its schedule across resumes.

    Args:
        checkpoint_dir: Destination folder.
        every_steps: Env steps between checkpoints.
        save_replay_buffer: Also save the replay buffer of off-policy algorithms.
        on_save: Called with each new checkpoint.
    """

    def __init__(
        self,
        checkpoint_dir: Path,
        every_steps: int,
        *,
        save_replay_buffer: bool = True,
        on_save: Callable[[Checkpoint], None] | None = None,
    ) -> None:
        super().__init__()
        self.checkpoint_dir = Path(checkpoint_dir)
        self.every_steps = max(1, int(every_steps))
        self.save_replay_buffer = save_replay_buffer
        self.on_save = on_save
        self.last: Checkpoint | None = None
        self._next = 0

    def _on_training_start(self) -> None:
        self._next = (self.num_timesteps // self.every_steps + 1) * self.every_steps

    def _on_step(self) -> bool:
        if self.num_timesteps >= self._next:
            self.save()
        return True

    def save(self) -> Checkpoint:
        """Save a checkpoint now (unless one exists for the current step)."""
        steps = int(self.model.num_timesteps)
        if self.last is None or self.last.steps != steps:
            self.last = save_checkpoint(
                self.model, self.checkpoint_dir, save_replay_buffer=self.save_replay_buffer
            )
            if self.on_save is not None:
                self.on_save(self.last)
        self._next = (steps // self.every_steps + 1) * self.every_steps
        return self.last


class CancelCallback(BaseCallback):
    """Stop training cleanly, after a checkpoint, once ``should_cancel()`` says so.

    ``should_cancel`` (e.g. a read of ``training_runs.cancel_requested``) is called at most every
    ``check_interval_s`` seconds, so the database is not queried on every step.

    Args:
        should_cancel: Returns True when the run should stop.
        checkpointer: Saves the final checkpoint before stopping.
        check_interval_s: Minimum seconds between checks.
    """

    def __init__(
        self,
        should_cancel: Callable[[], bool],
        checkpointer: CheckpointCallback,
        check_interval_s: float = 1.0,
    ) -> None:
        super().__init__()
        self.should_cancel = should_cancel
        self.checkpointer = checkpointer
        self.check_interval_s = check_interval_s
        self.cancelled = False
        """True once training was stopped by a cancellation."""
        self._last_check = 0.0

    def _on_step(self) -> bool:
        now = time.monotonic()
        if now - self._last_check < self.check_interval_s:
            return True
        self._last_check = now
        try:
            cancel = self.should_cancel()
        except Exception:  # noqa: BLE001  (a failed read is retried at the next check)
            log.warning("cancellation check failed", exc_info=True)
            return True
        if cancel:
            log.info("cancellation requested at step %d; saving a checkpoint", self.num_timesteps)
            self.checkpointer.save()
            self.cancelled = True
            return False
        return True


@dataclass
class EvalResult:
    """Summary of one evaluation."""

    step: int
    """Training step it was run at."""
    clip_returns: list[float]
    gt_returns: list[float]
    lengths: list[int]
    video_path: Path | None
    dataset: Any = None
    """What the frame sink returned (the store's ingest report), if any."""


FrameSink = Callable[[int, Iterable[FrameRecord]], Any]
"""Receives ``(training_step, frame_records)`` and must consume the iterable."""


def evaluate(
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

    The rollouts come first and the frame sink (a database import) only afterwards, so the
    import's write transaction is not held open while the policy and CLIP run. Meanwhile the
    frames wait in a memory-mapped spool file on disk rather than in RAM (an evaluation of
    2 × 200 CartPole frames is ~300 MB of pixels). Frames are scored ``batch_size`` at a time.

    Args:
        model: The policy.
        make_env: Builds one env with ``render_mode="rgb_array"``.
        reward_fn: Batched CLIP reward, to report the CLIP return of each episode.
        episodes: Number of episodes.
        max_steps: Step limit per episode.
        step: Training step, recorded with the frames.
        video_path: Where to write an MP4 of all episodes; None for no video.
        frame_sink: Receives the frames as :class:`FrameRecord` (``source='training-eval'``).
        spool_dir: Folder for the temporary spool file (default: next to the video, else the
            system temp folder).
        seed: Seed of the first episode (the others use ``seed + i``).
        env_id: Recorded with each frame.
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
    metas: list[dict[str, Any]] = []
    env = make_env()
    try:
        pending: list[np.ndarray] = []

        def score_pending() -> None:
            scored = np.asarray(reward_fn(np.stack(pending)), dtype=np.float64).reshape(-1)
            first = len(metas) - len(pending)
            for k, r in enumerate(scored):
                metas[first + k]["clip_reward"] = float(r)
                result.clip_returns[metas[first + k]["episode"]] += float(r)
            pending.clear()

        for episode in range(episodes):
            obs, _ = env.reset(seed=seed + episode)
            result.clip_returns.append(0.0)
            result.gt_returns.append(0.0)
            result.lengths.append(0)
            for t in range(max_steps):
                action, _ = model.predict(obs, deterministic=True)
                obs, reward, terminated, truncated, _ = env.step(action)
                frame = np.asarray(env.render(), dtype=np.uint8)
                if spool is None:
                    spool = _FrameSpool(spool_dir, episodes * max_steps, frame.shape)
                spool.append(frame)
                if writer is not None:
                    writer.write(frame)
                result.gt_returns[episode] += float(reward)
                result.lengths[episode] += 1
                metas.append({"episode": episode, "t": t, "obs": obs, "gt_reward": float(reward)})
                pending.append(frame)
                if len(pending) >= batch_size:
                    score_pending()
                if terminated or truncated:
                    break
            if pending:
                score_pending()
        if writer is not None:
            result.video_path = writer.close()
            writer = None
        if frame_sink is not None and spool is not None:
            frames = spool.frames()
            records = (
                _eval_record(frames[i], meta, step, env_id, run_id) for i, meta in enumerate(metas)
            )
            result.dataset = frame_sink(step, records)
    finally:
        env.close()
        if writer is not None:
            writer.close()
        if spool is not None:
            spool.close()
    return result


class _FrameSpool:
    """Frames of equal shape appended to a memory-mapped ``.npy`` file, deleted on close."""

    def __init__(self, folder: Path | None, capacity: int, shape: tuple[int, ...]) -> None:
        import tempfile

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


def _eval_record(
    frame: np.ndarray,
    meta: dict[str, Any],
    train_step: int,
    env_id: str | None,
    run_id: int | None,
) -> FrameRecord:
    obs = meta["obs"]
    state = {"obs": np.asarray(obs).tolist()} if isinstance(obs, np.ndarray) else None
    return FrameRecord(
        pixels=np.array(frame),
        source="training-eval",
        name=f"{env_id or 'env'} step{train_step} ep{meta['episode']} t{meta['t']}",
        env_id=env_id,
        episode=meta["episode"],
        step=meta["t"],
        state=state,
        extra={
            "run_id": run_id,
            "train_step": train_step,
            "clip_reward": meta.get("clip_reward"),
            "gt_reward": meta["gt_reward"],
        },
    )


class VideoWriter:
    """H.264 MP4 writer (PyAV) that opens lazily on the first frame, whose size it adopts.

    Frames go to ``<stem>.tmp.mp4`` and :meth:`close` renames it, so a reader never sees a
    half-written video.

    Args:
        path: Destination ``.mp4`` file.
        fps: Frame rate.
    """

    def __init__(self, path: Path, fps: int) -> None:
        self.path = Path(path)
        self.fps = fps
        self._container: Any = None
        self._stream: Any = None
        self._size: tuple[int, int] | None = None

    def write(self, frame: np.ndarray) -> None:
        import av  # imported here: only evaluations need it

        if self._container is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._tmp = self.path.with_name(self.path.stem + ".tmp.mp4")
            self._container = av.open(str(self._tmp), mode="w")
            self._stream = self._container.add_stream("libx264", rate=self.fps)
            # yuv420p needs even dimensions; odd ones are padded by one pixel.
            h, w = frame.shape[:2]
            self._size = (h + h % 2, w + w % 2)
            self._stream.height, self._stream.width = self._size
            self._stream.pix_fmt = "yuv420p"
            self._stream.options = {"crf": "28", "preset": "veryfast"}
        h, w = self._size  # type: ignore[misc]
        if frame.shape[:2] != (h, w):
            padded = np.zeros((h, w, 3), dtype=np.uint8)
            fh, fw = min(h, frame.shape[0]), min(w, frame.shape[1])
            padded[:fh, :fw] = frame[:fh, :fw]
            frame = padded
        video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        for packet in self._stream.encode(video_frame):
            self._container.mux(packet)

    def close(self) -> Path | None:
        if self._container is None:
            return None
        for packet in self._stream.encode():
            self._container.mux(packet)
        self._container.close()
        os.replace(self._tmp, self.path)
        return self.path


class EvalCallback(BaseCallback):
    """Evaluate the policy every ``every_steps`` env steps.

    The worker also calls :meth:`run_eval` once after training, unless training was cancelled.

    Args:
        make_env: Builds one evaluation env with ``render_mode="rgb_array"``.
        reward_fn: Batched CLIP reward.
        every_steps: Env steps between evaluations.
        episodes: Episodes per evaluation.
        max_steps: Step limit per episode.
        video_dir: Folder of the ``eval_<step>.mp4`` videos; None for no videos.
        frame_sink: Receives each evaluation's frames (e.g. stores them as a dataset).
        metrics_sink: Receives a row with ``eval/clip_return``, ``eval/gt_return``, ``eval/length``.
        on_result: Called with each :class:`EvalResult`.
        env_id: Recorded with the frames.
        run_id: Recorded with the frames.
        seed: Seed of the evaluation episodes.
    """

    def __init__(
        self,
        make_env: Callable[[], gym.Env],
        reward_fn: RewardFn,
        every_steps: int,
        *,
        episodes: int,
        max_steps: int,
        video_dir: Path | None = None,
        frame_sink: FrameSink | None = None,
        metrics_sink: MetricsSink | None = None,
        on_result: Callable[[EvalResult], None] | None = None,
        env_id: str | None = None,
        run_id: int | None = None,
        seed: int = 10_000,
    ) -> None:
        super().__init__()
        self.make_env = make_env
        self.reward_fn = reward_fn
        self.every_steps = max(1, int(every_steps))
        self.episodes = episodes
        self.max_steps = max_steps
        self.video_dir = video_dir
        self.frame_sink = frame_sink
        self.metrics_sink = metrics_sink
        self.on_result = on_result
        self.env_id = env_id
        self.run_id = run_id
        self.seed = seed
        self.results: list[EvalResult] = []
        self._next = 0
        self.last_step = -1
        """Training step of the latest evaluation (-1: none yet)."""

    def _on_training_start(self) -> None:
        self._next = (self.num_timesteps // self.every_steps + 1) * self.every_steps

    def _on_step(self) -> bool:
        if self.num_timesteps >= self._next:
            self.run_eval()
            self._next = (self.num_timesteps // self.every_steps + 1) * self.every_steps
        return True

    def run_eval(self) -> EvalResult:
        """Evaluate now."""
        step = int(self.model.num_timesteps)
        t0 = time.perf_counter()
        video = self.video_dir / f"eval_{step}.mp4" if self.video_dir is not None else None
        result = evaluate(
            self.model,
            self.make_env,
            self.reward_fn,
            episodes=self.episodes,
            max_steps=self.max_steps,
            step=step,
            video_path=video,
            frame_sink=self.frame_sink,
            seed=self.seed,
            env_id=self.env_id,
            run_id=self.run_id,
        )
        self.last_step = step
        self.results.append(result)
        data = {
            "eval/clip_return": float(np.mean(result.clip_returns)),
            "eval/gt_return": float(np.mean(result.gt_returns)),
            "eval/length": float(np.mean(result.lengths)),
        }
        if self.metrics_sink is not None:
            self.metrics_sink([{"step": step, "wall_time": time.time(), **_finite(data)}])
        log.info(
            "evaluation at step %d (%.1fs): clip_return=%.4g gt_return=%.4g length=%.1f",
            step,
            time.perf_counter() - t0,
            data["eval/clip_return"],
            data["eval/gt_return"],
            data["eval/length"],
        )
        if self.on_result is not None:
            self.on_result(result)
        return result
