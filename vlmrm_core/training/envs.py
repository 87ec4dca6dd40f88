"""Building the environments of a run: training VecEnv with the CLIP reward, evaluation env."""

from __future__ import annotations

from functools import partial
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

from vlmrm_core.sources.rollouts import headless_rendering
from vlmrm_core.training.config import TrainConfig, env_family
from vlmrm_core.training.reward_wrapper import CLIPRewardVecEnv, RewardFn, TerminalFrameWrapper


def make_env(config: TrainConfig) -> gym.Env:
    """One environment rendering RGB frames, with the run's episode length and textures.

    Args:
        config: The run's configuration (``env_id``, ``env_kwargs``, ``episode_length``,
            ``textured``).

    Returns:
        A gymnasium env with ``render_mode="rgb_array"``.
    """
    # Off-screen rendering (SDL dummy driver, MuJoCo EGL) when there is no display: workers run
    # detached from any terminal. Must happen before pygame or MuJoCo are first imported.
    headless_rendering()
    kwargs: dict[str, Any] = dict(config.env_kwargs)
    if config.episode_length is not None:
        kwargs["max_episode_steps"] = int(config.episode_length)
    if config.textured:
        textured = _make_textured_env(config.env_id, kwargs)
        if textured is not None:
            return textured
    return gym.make(config.env_id, render_mode="rgb_array", **kwargs)


class TexturedMountainCar(gym.Wrapper):
    """MountainCar drawn by the sources module's realistic renderer instead of line art.

    Rocamonde et al. (2023) found CLIP rewards for MountainCar better shaped on a textured
    scene; the renderer draws the same track, flag and scale as gymnasium's.

    Args:
        env: A ``MountainCar-v0`` or ``MountainCarContinuous-v0`` env.
    """

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        from vlmrm_core.sources.textures import TexturedMountainCarRenderer

        base = env.unwrapped
        self._renderer = TexturedMountainCarRenderer(
            min_position=float(base.min_position),
            max_position=float(base.max_position),
            goal_position=float(base.goal_position),
        )

    def render(self) -> np.ndarray:
        return self._renderer.render(float(self.env.unwrapped.state[0]))


def _make_textured_env(env_id: str, kwargs: dict[str, Any]) -> gym.Env | None:
    """A textured version of ``env_id`` where one exists, else None."""
    family = env_family(env_id)
    if family == "MountainCar":
        return TexturedMountainCar(gym.make(env_id, render_mode="rgb_array", **kwargs))
    if family == "Humanoid":
        from vlmrm_core.sources.humanoid import make_env as make_humanoid

        # The paper's scene: textured floor, sky and body; camera tracking the torso.
        return make_humanoid(env_id, render_mode="rgb_array", **kwargs)
    return None


def _make_train_env(config: TrainConfig) -> gym.Env:
    # Monitor records ground-truth episode returns (SB3 logs them as rollout/ep_rew_mean);
    # TerminalFrameWrapper goes outermost so it sees time-limit truncations too.
    return TerminalFrameWrapper(Monitor(make_env(config)))


def make_vec_env(config: TrainConfig, reward_fn: RewardFn) -> CLIPRewardVecEnv:
    """The training VecEnv: ``n_envs`` envs stepped in-process, rewards from ``reward_fn``.

    Envs are stepped in the worker's own process (``DummyVecEnv``), where rendering the
    classic-control scenes is cheap next to a CLIP forward pass; with ``subprocess_envs`` they
    step and render in parallel subprocesses (``SubprocVecEnv``). Either way the reward model
    stays in the worker and scores all frames of a step in one call.

    Args:
        config: The run's configuration.
        reward_fn: Batched frame reward (a ``RewardModel``).

    Returns:
        The wrapped VecEnv.
    """
    fns = [partial(_make_train_env, config) for _ in range(config.n_envs)]
    venv = SubprocVecEnv(fns) if config.subprocess_envs and config.n_envs > 1 else DummyVecEnv(fns)
    return CLIPRewardVecEnv(venv, reward_fn)
