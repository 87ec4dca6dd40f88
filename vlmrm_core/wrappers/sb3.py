"""stable-baselines3 wrappers whose rewards come from rendered frames.

SB3's VecEnvs reset an env inside ``step`` as soon as its episode ends: the observation they
return for it is already the first of the next episode, and ``get_images()`` after ``step``
would draw the reset state. So each env is wrapped in :class:`TerminalFrameWrapper`, which
renders the final frame inside ``env.step`` and passes it on in ``info["terminal_frame"]``;
:class:`CLIPRewardVecEnv` scores that frame for envs that are done and the ``get_images()`` frame
for the others. :func:`make_clip_vec_env` builds the whole thing on SB3's ``make_vec_env``.

Two schedules of reward calls:

- Immediate (default): one reward call per env step, on the ``n_envs`` frames of that step.
- Deferred (``defer=True``, off-policy algorithms only): the frames of a whole rollout window
  (``train_freq`` steps × ``n_envs``) are kept and scored in one call when the window ends, before
  the gradient steps, as the official VLM-RM code did; the VecEnv returns placeholder (NaN)
  rewards and :class:`RolloutRewardCallback` writes the real ones into the replay buffer. Larger
  batches keep a GPU busy; the price is memory for the window's frames.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv, VecEnvWrapper
from stable_baselines3.common.vec_env.base_vec_env import VecEnvObs, VecEnvStepReturn
from stable_baselines3.her.her_replay_buffer import HerReplayBuffer

from vlmrm_core.wrappers.gymnasium import (
    ORIGINAL_REWARD_KEY,
    TERMINAL_FRAME_KEY,
    RewardFn,
    TerminalFrameWrapper,
    WrapperError,
    require_rgb_array,
    reward_history,
    score_frames,
    score_with_history,
    stack_frames,
)

EPISODE_CLIP_KEY = "episode_clip"
"""The info key of an ended episode's ``{"clip_return", "gt_return", "length"}``."""

PLACEHOLDER_REWARD = float("nan")
"""What a deferred :class:`CLIPRewardVecEnv` returns from ``step`` until the frame is scored:
NaN, so a reward that was never replaced poisons the losses instead of passing for a real 0."""

ScoredStepSink = Callable[[np.ndarray, list[dict[str, Any]]], None]
"""Receives each scored step, in step order: its ``n_envs`` CLIP rewards and its infos (with
``info["episode_clip"]`` where an episode ended). See :attr:`CLIPRewardVecEnv.on_scored`."""


@dataclass
class _Step:
    """One env step whose frames are scored: the frames and what episode accounting needs."""

    frames: np.ndarray
    original: np.ndarray
    dones: np.ndarray
    infos: list[dict[str, Any]]


class CLIPRewardVecEnv(VecEnvWrapper):
    """An SB3 ``VecEnvWrapper`` whose rewards are ``reward`` of the frames of the states reached.

    After every step it renders all envs; for an env whose episode just ended it takes the final
    frame that :class:`TerminalFrameWrapper` rendered before SB3's auto-reset. The env's own
    reward goes to ``info["original_reward"]``. When an episode ends, ``info["episode_clip"]``
    holds ``{"clip_return", "gt_return", "length"}`` of that episode (``gt_return``: the env's own
    return).

    Immediate mode (default) calls ``reward`` once per step on the ``n_envs`` frames and returns
    those rewards. Deferred mode (``defer=True``) keeps the frames and returns
    :data:`PLACEHOLDER_REWARD`; :class:`RolloutRewardCallback` scores a whole rollout window in
    one call before the gradient steps and writes the rewards into the replay buffer. The
    window's ``info["episode_clip"]`` entries are filled in then, and every scored step is passed
    to the functions in :attr:`on_scored` (in both modes), the way to log CLIP returns.

    Args:
        venv: VecEnv with ``render_mode="rgb_array"``, each env wrapped (outermost) in
            :class:`TerminalFrameWrapper`; :func:`make_clip_vec_env` builds one.
        reward: The :class:`~vlmrm_core.reward.base.Reward` of the frames, e.g.
            ``vlmrm_core.load_reward("reward.json")`` (or a function: see
            :data:`~vlmrm_core.wrappers.RewardFn`).
        defer: Score a rollout window at once (off-policy algorithms, with
            :class:`RolloutRewardCallback`); memory: ``train_freq × n_envs`` frames.

    Raises:
        WrapperError: The envs do not render RGB arrays or are not wrapped in
            :class:`TerminalFrameWrapper`.

    Example::

        from stable_baselines3.common.env_util import make_vec_env
        from vlmrm_core.wrappers import CLIPRewardVecEnv, TerminalFrameWrapper

        venv = make_vec_env("CartPole-v1", n_envs=8, wrapper_class=TerminalFrameWrapper,
                            env_kwargs={"render_mode": "rgb_array"})
        venv = CLIPRewardVecEnv(venv, vlmrm_core.load_reward("reward.json"))
    """

    def __init__(self, venv: VecEnv, reward: RewardFn, *, defer: bool = False) -> None:
        super().__init__(venv)
        require_rgb_array(getattr(venv, "render_mode", None), "CLIPRewardVecEnv")
        if not all(venv.env_is_wrapped(TerminalFrameWrapper)):
            raise WrapperError(
                "CLIPRewardVecEnv: SB3 VecEnvs reset an env within the step that ends its "
                "episode, so the final frame must be rendered inside the env, and these envs are "
                "not wrapped in TerminalFrameWrapper. Build the VecEnv with "
                "vlmrm_core.wrappers.make_clip_vec_env(env_id, n_envs, reward), or pass "
                "wrapper_class=TerminalFrameWrapper to SB3's make_vec_env."
            )
        self.reward_fn = reward
        self.history = reward_history(reward, self.num_envs)
        """The reward's memory of each env's episode (windowed or shaped rewards), else None.
        Steps reach it in step order (deferred: when their window is scored); cleared after the
        frame that ends an episode, and on ``reset``."""
        self.defer = defer
        self.on_scored: list[ScoredStepSink] = []
        """Called with every scored step, in order (deferred: when its window is scored)."""
        self._clip_return = np.zeros(self.num_envs, dtype=np.float64)
        self._gt_return = np.zeros(self.num_envs, dtype=np.float64)
        self._length = np.zeros(self.num_envs, dtype=np.int64)
        self._pending: list[_Step] = []
        self._writer: RolloutRewardCallback | None = None
        self.render_seconds = 0.0
        """Wall time spent rendering frames (for profiling)."""
        self.reward_seconds = 0.0
        """Wall time spent in ``reward`` (for profiling)."""

    def reset(self) -> VecEnvObs:
        obs = self.venv.reset()
        self._clip_return[:] = 0.0
        self._gt_return[:] = 0.0
        self._length[:] = 0
        self._pending.clear()  # frames of episodes the reset ended: no transition follows them
        if self.history is not None:
            self.history.reset()
        return obs

    def step_wait(self) -> VecEnvStepReturn:
        obs, original, dones, infos = self.venv.step_wait()
        t0 = time.perf_counter()
        step = _Step(self._frames(dones, infos), np.asarray(original), np.asarray(dones), infos)
        self.render_seconds += time.perf_counter() - t0
        for i, info in enumerate(infos):
            info[ORIGINAL_REWARD_KEY] = float(original[i])
        if not self.defer:
            return obs, self._score([step])[0], dones, infos
        if self._writer is None:
            raise WrapperError(
                "CLIPRewardVecEnv(defer=True) returns placeholder (NaN) rewards that "
                "RolloutRewardCallback replaces in the replay buffer, and none is attached: "
                "pass callback=RolloutRewardCallback() to the off-policy algorithm's learn(), "
                "or build the env with defer=False"
            )
        self._pending.append(step)
        return obs, np.full(self.num_envs, PLACEHOLDER_REWARD, dtype=np.float32), dones, infos

    @property
    def pending_steps(self) -> int:
        """Steps whose frames wait to be scored (deferred mode)."""
        return len(self._pending)

    def score_pending(self, n_steps: int | None = None) -> np.ndarray:
        """Score the oldest ``n_steps`` waiting steps (default: all) in one ``reward`` call.

        Their episode returns are accounted for and :attr:`on_scored` is called, as immediate
        mode does at each step.

        Args:
            n_steps: How many of the waiting steps, oldest first.

        Returns:
            ``n_steps × n_envs`` float32 rewards.
        """
        n = len(self._pending) if n_steps is None else n_steps
        if not 0 <= n <= len(self._pending):
            raise ValueError(f"{n} steps asked for, {len(self._pending)} waiting")
        steps = self._pending[:n]
        del self._pending[:n]
        return self._score(steps)

    def discard_pending(self) -> int:
        """Forget the waiting steps (their transitions never reached a buffer); how many."""
        n = len(self._pending)
        self._pending.clear()
        return n

    def _score(self, steps: list[_Step]) -> np.ndarray:
        """One ``reward`` call on the frames of ``steps``; episode accounting in step order."""
        if not steps:
            return np.zeros((0, self.num_envs), dtype=np.float32)
        frames = steps[0].frames if len(steps) == 1 else np.concatenate([s.frames for s in steps])
        t0 = time.perf_counter()
        if self.history is None:
            rewards = score_frames(self.reward_fn, frames).astype(np.float32)
        else:
            envs = np.tile(np.arange(self.num_envs), len(steps))
            ends = np.concatenate([s.dones for s in steps])
            rewards = score_with_history(self.history, frames, envs, ends).astype(np.float32)
        self.reward_seconds += time.perf_counter() - t0
        rewards = rewards.reshape(len(steps), self.num_envs)
        for step, step_rewards in zip(steps, rewards, strict=True):
            self._end_episodes(step, step_rewards)
            for sink in self.on_scored:
                sink(step_rewards, step.infos)
        return rewards

    def _end_episodes(self, step: _Step, rewards: np.ndarray) -> None:
        """Add a step to the running returns; ``info["episode_clip"]`` where an episode ended."""
        self._clip_return += rewards
        self._gt_return += step.original
        self._length += 1
        for i in np.flatnonzero(step.dones):
            step.infos[i][EPISODE_CLIP_KEY] = {
                "clip_return": float(self._clip_return[i]),
                "gt_return": float(self._gt_return[i]),
                "length": int(self._length[i]),
            }
            self._clip_return[i] = 0.0
            self._gt_return[i] = 0.0
            self._length[i] = 0

    def _frames(self, dones: np.ndarray, infos: list[dict[str, Any]]) -> np.ndarray:
        """The frame of each env's post-step state, stacked ``N×H×W×3``."""
        images = list(self.venv.get_images())
        for i, info in enumerate(infos):
            # Popped so that large arrays do not linger in infos the algorithm keeps around.
            terminal = info.pop(TERMINAL_FRAME_KEY, None)
            if dones[i]:
                if terminal is None:
                    raise WrapperError(
                        "CLIPRewardVecEnv: an episode ended without a terminal frame: put "
                        "TerminalFrameWrapper outermost (outside TimeLimit and Monitor)"
                    )
                images[i] = terminal
        return stack_frames(images, "CLIPRewardVecEnv")


def find_clip_vec_env(venv: VecEnv | None) -> CLIPRewardVecEnv | None:
    """The :class:`CLIPRewardVecEnv` in a chain of VecEnv wrappers (``venv`` itself or inside)."""
    while venv is not None:
        if isinstance(venv, CLIPRewardVecEnv):
            return venv
        venv = getattr(venv, "venv", None)
    return None


class RolloutRewardCallback(BaseCallback):
    """Scores a deferred :class:`CLIPRewardVecEnv`'s rollout window and fixes the replay buffer.

    SB3's off-policy algorithms collect ``train_freq`` steps, call ``on_rollout_end``, then take
    their gradient steps. This callback notes ``replay_buffer.pos`` when a rollout starts and, when
    it ends, scores all the window's frames in one reward call and writes the rewards over the
    placeholders at their rows (wrapping around the circular buffer), so every transition has
    its real reward before any gradient step samples it (also during ``learning_starts``). When
    ``learn()`` is stopped in the middle of a rollout (a callback returned False), the steps
    stored so far are scored at ``on_training_end`` (put this callback first in the list, so
    that callbacks which log at training end see them). Code that saves the replay buffer in the
    middle of a rollout calls :func:`score_stored_rewards` first (the Studio's checkpoints do).

    Supports ``ReplayBuffer`` and ``DictReplayBuffer`` (also with ``optimize_memory_usage``);
    refuses HER (it recomputes rewards from the env), ``VecNormalize`` (it would normalise the
    placeholders) and on-policy algorithms.

    Example::

        venv = make_clip_vec_env("CartPole-v1", 8, reward, defer=True)
        DQN("MlpPolicy", venv, train_freq=16).learn(100_000, callback=RolloutRewardCallback())
    """

    def __init__(self, verbose: int = 0) -> None:
        super().__init__(verbose)
        self._env: CLIPRewardVecEnv | None = None
        self._start = 0
        """Replay buffer row of the oldest waiting step."""

    def _on_training_start(self) -> None:
        env = find_clip_vec_env(self.training_env)
        if env is None or not env.defer:
            raise WrapperError(
                "RolloutRewardCallback scores the frames a CLIPRewardVecEnv(defer=True) keeps, "
                "and the training env has none: build it with make_clip_vec_env(..., defer=True)"
            )
        self._check_algorithm(env)
        env.discard_pending()
        env._writer = self
        self._env = env
        self._start = self._buffer().pos

    def _check_algorithm(self, env: CLIPRewardVecEnv) -> None:
        if not isinstance(self.model, OffPolicyAlgorithm):
            raise WrapperError(
                f"RolloutRewardCallback writes rewards into a replay buffer, and "
                f"{type(self.model).__name__} is not an off-policy algorithm: use "
                "CLIPRewardVecEnv(defer=False), which scores every step"
            )
        buffer = self.model.replay_buffer
        if isinstance(buffer, HerReplayBuffer) or not isinstance(buffer, ReplayBuffer):
            raise WrapperError(
                f"RolloutRewardCallback cannot fix the rewards of a {type(buffer).__name__} "
                "(HER recomputes rewards from the env): use ReplayBuffer or DictReplayBuffer, "
                "or CLIPRewardVecEnv(defer=False)"
            )
        if buffer.buffer_size < 2 or buffer.rewards.shape != (buffer.buffer_size, env.num_envs):
            raise WrapperError(
                f"RolloutRewardCallback needs a replay buffer of at least 2 rows of "
                f"{env.num_envs} envs (buffer_size ≥ {2 * env.num_envs}); this one's rewards "
                f"have shape {buffer.rewards.shape}"
            )
        if self.model.get_vec_normalize_env() is not None:
            raise WrapperError(
                "RolloutRewardCallback: VecNormalize would normalise the placeholder rewards; "
                "use CLIPRewardVecEnv(defer=False) with VecNormalize"
            )

    def _buffer(self) -> ReplayBuffer:
        assert isinstance(self.model, OffPolicyAlgorithm) and self.model.replay_buffer is not None
        return self.model.replay_buffer

    def _on_rollout_start(self) -> None:
        assert self._env is not None
        self.score_stored()
        self._env.discard_pending()  # steps taken outside learn(): not in the buffer
        self._start = self._buffer().pos

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        self.score_stored()

    def _on_training_end(self) -> None:
        if self._env is None:
            return
        self.score_stored()
        # A stopped rollout's last step: SB3 returns before storing its transition.
        self._env.discard_pending()
        self._env._writer = None
        self._env = None

    def score_stored(self) -> int:
        """Score the waiting steps whose transitions are in the replay buffer; write their rewards.

        SB3 stores a step's transition after the ``on_step`` callbacks, so during ``on_step`` the
        newest waiting step is not in the buffer yet; it stays waiting. Which case holds is read
        off ``replay_buffer.pos``.

        Returns:
            The number of steps scored.
        """
        env = self._env
        if env is None or env.pending_steps == 0:
            return 0
        buffer = self._buffer()
        size = buffer.buffer_size
        advanced = (buffer.pos - self._start) % size
        waiting = env.pending_steps
        stored = next((n for n in (waiting, waiting - 1) if n % size == advanced), None)
        if stored is None:
            raise WrapperError(
                f"RolloutRewardCallback: the replay buffer advanced {advanced} rows while "
                f"{waiting} steps waited for rewards; something else adds to it"
            )
        if stored == 0:
            return 0
        rewards = env.score_pending(stored)
        # Rows written more than once within the window hold its latest steps.
        first = max(0, stored - size)
        rows = (self._start + np.arange(first, stored)) % size
        buffer.rewards[rows] = rewards[first:]
        self._start = (self._start + stored) % size
        return stored


def score_stored_rewards(venv: VecEnv | None) -> int:
    """Before saving a replay buffer in the middle of a rollout: give its transitions rewards.

    A no-op unless ``venv`` is (or wraps) a deferred :class:`CLIPRewardVecEnv` whose
    :class:`RolloutRewardCallback` is training. Costs one extra reward call for the window so far.

    Returns:
        The number of steps scored.
    """
    env = find_clip_vec_env(venv)
    if env is None or env._writer is None:
        return 0
    return env._writer.score_stored()


def make_clip_vec_env(
    env_id: str | Callable[..., gym.Env],
    n_envs: int,
    reward: RewardFn,
    seed: int | None = None,
    vec_env_cls: type[DummyVecEnv | SubprocVecEnv] | None = None,
    env_kwargs: dict[str, Any] | None = None,
    *,
    wrapper_class: Callable[..., gym.Env] | None = None,
    wrapper_kwargs: dict[str, Any] | None = None,
    vec_env_kwargs: dict[str, Any] | None = None,
    monitor_dir: str | None = None,
    defer: bool = False,
) -> CLIPRewardVecEnv:
    """An SB3 VecEnv of ``env_id`` rewarded by ``reward``, terminal frames handled.

    SB3's ``make_vec_env`` (``Monitor`` around each env, seeding, ``DummyVecEnv`` or
    ``SubprocVecEnv``) with ``render_mode="rgb_array"`` and :class:`TerminalFrameWrapper`
    outermost on every env, inside :class:`CLIPRewardVecEnv`.

    Args:
        env_id: A registered gymnasium env id, or a function returning an env (which must then
            render RGB arrays itself).
        n_envs: Number of envs.
        reward: The :class:`~vlmrm_core.reward.base.Reward` of the frames, e.g.
            ``vlmrm_core.load_reward("reward.json")`` (or a function: see
            :data:`~vlmrm_core.wrappers.RewardFn`).
        seed: Seed of the first env (the others get ``seed + 1``, ...).
        vec_env_cls: ``DummyVecEnv`` (default) or ``SubprocVecEnv``; the reward is computed
            in this process either way.
        env_kwargs: Keyword arguments of ``gymnasium.make`` (or of ``env_id`` when callable).
        wrapper_class: Your own wrapper for each env, applied inside
            :class:`TerminalFrameWrapper`.
        wrapper_kwargs: Keyword arguments of ``wrapper_class``.
        vec_env_kwargs: Keyword arguments of ``vec_env_cls``.
        monitor_dir: Where ``Monitor`` writes its CSV files (none by default).
        defer: One reward call per rollout window instead of per step (off-policy algorithms;
            train with ``callback=RolloutRewardCallback()``).

    Returns:
        The wrapped VecEnv.

    Example::

        import vlmrm_core
        from stable_baselines3 import PPO
        from vlmrm_core.wrappers import make_clip_vec_env

        venv = make_clip_vec_env("CartPole-v1", 8, vlmrm_core.load_reward("reward.json"))
        PPO("MlpPolicy", venv).learn(100_000)
    """
    kwargs = dict(env_kwargs or {})
    if isinstance(env_id, str):
        require_rgb_array(kwargs.setdefault("render_mode", "rgb_array"), "make_clip_vec_env")
    user_wrapper = wrapper_class
    user_wrapper_kwargs = dict(wrapper_kwargs or {})

    def wrap(env: gym.Env) -> gym.Env:
        if user_wrapper is not None:
            env = user_wrapper(env, **user_wrapper_kwargs)
        return TerminalFrameWrapper(env)

    venv = make_vec_env(
        env_id,
        n_envs=n_envs,
        seed=seed,
        env_kwargs=kwargs,
        vec_env_cls=vec_env_cls,
        vec_env_kwargs=vec_env_kwargs,
        wrapper_class=wrap,
        monitor_dir=monitor_dir,
    )
    return CLIPRewardVecEnv(venv, reward, defer=defer)
