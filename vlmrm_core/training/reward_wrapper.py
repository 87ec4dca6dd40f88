"""Replace an environment's reward with a CLIP reward computed from rendered frames.

The reward of a transition ``(s, a, s')`` is the CLIP reward of the frame of ``s'``, the state
the transition leads to (as in Rocamonde et al. 2023). All environments of a vectorised env are
rendered and scored together: one call of the batched reward function per ``step``, never one
model forward pass per environment.

Auto-reset. SB3's vectorised envs reset an environment inside ``step`` as soon as its episode
ends: the observation they return for that env is already the first one of the next episode
(the last one is kept in ``info["terminal_observation"]``), and ``get_images()`` after ``step``
would draw the reset state. Scoring that frame would give the final transition of every episode
the reward of a fresh start state, which for goal-reaching tasks is exactly the wrong reward at
the most important moment. So each env is wrapped in :class:`TerminalFrameWrapper`, which renders
the frame at the end of an episode inside ``env.step`` (before the vectorised env resets it) and
passes it on in ``info["terminal_frame"]``; :class:`CLIPRewardVecEnv` uses that frame for envs
that are done and the ``get_images()`` frame for the others.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper
from stable_baselines3.common.vec_env.base_vec_env import VecEnvObs, VecEnvStepReturn

RewardFn = Callable[[np.ndarray], np.ndarray]
"""A batched reward: ``N×H×W×3`` uint8 frames → ``N`` float rewards."""

TERMINAL_FRAME_KEY = "terminal_frame"


class TerminalFrameWrapper(gym.Wrapper):
    """Render the frame of the state an episode ends in, before the vectorised env resets it.

    Put it outermost (outside ``TimeLimit``) so that truncations are seen too. The frame is
    stored in ``info["terminal_frame"]`` of the final step only, so ordinary steps cost nothing.

    Args:
        env: An environment created with ``render_mode="rgb_array"``.
    """

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        if env.render_mode != "rgb_array":
            raise ValueError(
                f"TerminalFrameWrapper needs render_mode='rgb_array'; got {env.render_mode!r}"
            )

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        if terminated or truncated:
            info = dict(info)
            info[TERMINAL_FRAME_KEY] = np.asarray(self.env.render(), dtype=np.uint8)
        return obs, reward, terminated, truncated, info


class CLIPRewardVecEnv(VecEnvWrapper):
    """A ``VecEnvWrapper`` whose rewards come from a batched frame reward function.

    After every step it renders all envs, calls ``reward_fn`` once on the ``n_envs`` frames and
    returns those rewards. The environment's own reward goes to ``info["gt_reward"]``. When an
    episode ends, ``info["episode_clip"]`` holds ``{"clip_return", "gt_return", "length"}`` of
    that episode, which the metrics callback logs.

    Args:
        venv: Vectorised env with ``render_mode="rgb_array"``, each env wrapped in
            :class:`TerminalFrameWrapper` (see the module docstring for why).
        reward_fn: Batched reward function, e.g. a ``RewardModel``.
    """

    def __init__(self, venv: VecEnv, reward_fn: RewardFn) -> None:
        super().__init__(venv)
        if getattr(venv, "render_mode", None) != "rgb_array":
            raise ValueError(
                "CLIPRewardVecEnv renders frames: create the envs with render_mode='rgb_array'"
            )
        self.reward_fn = reward_fn
        self._has_terminal_frames = all(venv.env_is_wrapped(TerminalFrameWrapper))
        if not self._has_terminal_frames:
            warnings.warn(
                "envs are not wrapped in TerminalFrameWrapper: the last step of each episode "
                "will be scored on the frame after the automatic reset",
                stacklevel=2,
            )
        self._clip_return = np.zeros(self.num_envs, dtype=np.float64)
        self._gt_return = np.zeros(self.num_envs, dtype=np.float64)
        self._length = np.zeros(self.num_envs, dtype=np.int64)
        self.render_seconds = 0.0
        """Wall time spent rendering frames (for profiling)."""
        self.reward_seconds = 0.0
        """Wall time spent in ``reward_fn`` (for profiling)."""

    def reset(self) -> VecEnvObs:
        obs = self.venv.reset()
        self._clip_return[:] = 0.0
        self._gt_return[:] = 0.0
        self._length[:] = 0
        return obs

    def step_wait(self) -> VecEnvStepReturn:
        obs, gt_rewards, dones, infos = self.venv.step_wait()
        t0 = time.perf_counter()
        frames = self._frames(dones, infos)
        t1 = time.perf_counter()
        rewards = np.asarray(self.reward_fn(frames), dtype=np.float32).reshape(-1)
        self.reward_seconds += time.perf_counter() - t1
        self.render_seconds += t1 - t0
        if rewards.shape != (self.num_envs,):
            raise ValueError(
                f"reward function returned shape {rewards.shape} for {self.num_envs} frames"
            )
        self._clip_return += rewards
        self._gt_return += gt_rewards
        self._length += 1
        for i, info in enumerate(infos):
            info["gt_reward"] = float(gt_rewards[i])
            if dones[i]:
                info["episode_clip"] = {
                    "clip_return": float(self._clip_return[i]),
                    "gt_return": float(self._gt_return[i]),
                    "length": int(self._length[i]),
                }
                self._clip_return[i] = 0.0
                self._gt_return[i] = 0.0
                self._length[i] = 0
        return obs, rewards, dones, infos

    def _frames(self, dones: np.ndarray, infos: list[dict[str, Any]]) -> np.ndarray:
        """The frame of each env's post-step state, stacked ``N×H×W×3``."""
        images = list(self.venv.get_images())
        for i, info in enumerate(infos):
            # Popped so that large arrays do not linger in infos the algorithm keeps around.
            terminal = info.pop(TERMINAL_FRAME_KEY, None)
            if dones[i] and terminal is not None:
                images[i] = terminal
        if any(img is None for img in images):
            raise RuntimeError("an environment returned no frame; is render_mode 'rgb_array'?")
        return np.stack(images).astype(np.uint8, copy=False)
