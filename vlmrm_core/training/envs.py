"""Building the environments of a run: training VecEnv with the CLIP reward, evaluation env."""

from __future__ import annotations

from functools import partial
from typing import Any

import gymnasium as gym
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

from vlmrm_core.envs import TEXTURED_FAMILIES, env_family
from vlmrm_core.envs import make_env as make_env_for
from vlmrm_core.training.config import TrainConfig
from vlmrm_core.wrappers import CLIPRewardVecEnv, RewardFn, TerminalFrameWrapper


def make_env(config: TrainConfig) -> gym.Env:
    """One environment rendering RGB frames, with the run's episode length and textures.

    Args:
        config: The run's configuration (``env_id``, ``env_kwargs``, ``episode_length``,
            ``textured``).

    Returns:
        A gymnasium env with ``render_mode="rgb_array"``.
    """
    kwargs: dict[str, Any] = dict(config.env_kwargs)
    if config.episode_length is not None:
        kwargs["max_episode_steps"] = int(config.episode_length)
    # Textured MountainCar, or Humanoid in the paper's scene and camera, where asked for and
    # where they exist (other environments render as gymnasium draws them).
    textured = config.textured and env_family(config.env_id) in TEXTURED_FAMILIES
    return make_env_for(config.env_id, textured=textured, **kwargs)


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
