"""stable-baselines3 callbacks: the extension points of a training run.

Each callback does one job and talks to the outside world through a plain callable (a "sink")
given to its constructor, so the same callbacks work with the store, in tests, or in a notebook.
The worker (:mod:`vlmrm_core.training.worker`) wires them to the database.

- :class:`MetricsCallback`: a row of scalars every N env steps (episode CLIP / ground-truth
  return, episode length, steps/s, SB3 losses); with rewards scored per rollout window, between
  windows.
- :class:`Heartbeat` + :class:`HeartbeatCallback`: a background thread that reports liveness and
  progress every few seconds, even while the main thread is busy (model loading, evaluation,
  checkpointing), so a slow step is never mistaken for a crash.
- :class:`CancelCallback`: polls a cancellation flag, saves a checkpoint and stops cleanly.
- :class:`CheckpointCallback`: a checkpoint every N env steps (not every N calls), with the
  replay buffer's rewards scored first when they are deferred to the end of a rollout window.
- :class:`EvalCallback`: a policy evaluation (:func:`~.policy_eval.evaluate_policy`: rollouts
  by the frame sources' loop, saved as a frame dataset and an MP4 video) every M env steps.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import numpy.typing as npt
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecEnv

from vlmrm_core.training.checkpoints import Checkpoint, save_checkpoint
from vlmrm_core.training.policy_eval import EvalResult, FrameSink, evaluate_policy
from vlmrm_core.wrappers import RewardFn
from vlmrm_core.wrappers.sb3 import (
    EPISODE_CLIP_KEY,
    CLIPRewardVecEnv,
    find_clip_vec_env,
    score_stored_rewards,
)

log = logging.getLogger(__name__)

CLIP_EP_REW_MEAN = "rollout/clip_ep_rew_mean"
"""SB3 logger key of the mean CLIP episode return, over the same window of recent episodes as
SB3's own ``rollout/ep_rew_mean``. That one is the environment's return: SB3's ``Monitor``
wraps each env inside the CLIP reward wrapper, so it never sees CLIP rewards."""

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

    With a deferred :class:`~vlmrm_core.wrappers.CLIPRewardVecEnv` (``defer=True``) the rewards
    of a rollout window exist only once the window is scored, so the callback takes each step
    from the env as it is scored (:attr:`~vlmrm_core.wrappers.CLIPRewardVecEnv.on_scored`) and
    writes rows between windows: at the first rollout start at or after every ``every_steps``.

    It also gives SB3's logger (console, TensorBoard, CSV) the CLIP return next to SB3's own
    ``rollout/ep_rew_mean`` (the environment's return): :data:`CLIP_EP_REW_MEAN`, the mean
    CLIP return of the last ``stats_window_size`` episodes (SB3's window, 100 by default).

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
        self._deferred_env: CLIPRewardVecEnv | None = None
        self._recent_clip_returns: deque[float] = deque(maxlen=100)

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
        # SB3's ep_info_buffer window, so both episode means cover the same episodes.
        window = int(getattr(self.model, "_stats_window_size", 100))
        self._recent_clip_returns = deque(self._recent_clip_returns, maxlen=max(1, window))
        env = find_clip_vec_env(self.training_env)
        if env is not None and env.defer:
            if self.record not in env.on_scored:  # still there when a learn() raised
                env.on_scored.append(self.record)
            self._deferred_env = env

    def _reward_seconds(self) -> float:
        env: VecEnv | None = self.training_env
        seconds = 0.0
        while env is not None:
            seconds += getattr(env, "reward_seconds", 0.0) + getattr(env, "render_seconds", 0.0)
            env = getattr(env, "venv", None)
        return seconds

    def record(self, rewards: npt.ArrayLike | None, infos: Iterable[Mapping[str, Any]]) -> None:
        """Add one env step of all envs to the current row: CLIP rewards, infos.

        Args:
            rewards: The step's CLIP rewards (None: not known).
            infos: The step's infos (``original_reward``, ``episode_clip`` where one ended).
        """
        if rewards is not None:
            self._clip_sum += float(np.sum(rewards))
            self._n_rewards += int(np.size(rewards))
        for info in infos:
            if "original_reward" in info:
                self._gt_sum += float(info["original_reward"])
            episode = info.get(EPISODE_CLIP_KEY)
            if episode is not None:
                self._ep_clip.append(episode["clip_return"])
                self._ep_gt.append(episode["gt_return"])
                self._ep_len.append(episode["length"])
                self._recent_clip_returns.append(float(episode["clip_return"]))
        self._log_clip_returns()

    def _log_clip_returns(self) -> None:
        """Hand the recent CLIP episode returns' mean to SB3's logger (see :data:`CLIP_EP_REW_MEAN`).

        Recorded again on every step: SB3 clears the logger's values each time it dumps them.
        """
        if self._recent_clip_returns and getattr(self, "model", None) is not None:
            self.logger.record(CLIP_EP_REW_MEAN, float(np.mean(self._recent_clip_returns)))

    def _remember_train_values(self) -> None:
        # SB3 clears its logger values whenever it dumps them, so remember the latest ones.
        for key, value in self.model.logger.name_to_value.items():
            if key.startswith("train/") and isinstance(value, int | float | np.floating):
                self._train_values[key] = float(value)

    def _on_step(self) -> bool:
        self._remember_train_values()
        if self._deferred_env is not None:
            self._log_clip_returns()
            return True  # placeholder rewards: the env hands over the scored step later
        self.record(self.locals.get("rewards"), self.locals.get("infos", ()))
        if self.num_timesteps >= self._next:
            self.flush()
        return True

    def _on_rollout_start(self) -> None:
        # Every step before this point has been scored, whichever callback scored it.
        if self._deferred_env is not None and self.num_timesteps >= self._next:
            self._remember_train_values()
            self.flush()

    def _on_training_end(self) -> None:
        if self._deferred_env is not None:
            self._deferred_env.on_scored.remove(self.record)
            self._deferred_env = None
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
            # Deferred rewards: the transitions stored so far in this window get theirs first,
            # or the saved replay buffer would keep placeholders after a resume.
            score_stored_rewards(self.model.get_env())
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
        result = evaluate_policy(
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
