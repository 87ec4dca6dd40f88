"""Building the environments of a run: training VecEnv with the CLIP reward, evaluation env."""

from __future__ import annotations

import inspect
from functools import partial
from typing import Any

import gymnasium as gym
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

from vlmrm_core.enums import RewardBatching
from vlmrm_core.envs.make import TEXTURED_FAMILIES, env_family
from vlmrm_core.envs.make import make_env as make_env_for
from vlmrm_core.reward.base import Reward
from vlmrm_core.training.config import ConfigError, TrainConfig
from vlmrm_core.wrappers import CLIPRewardVecEnv, RewardFn, make_clip_vec_env


def make_run_env(config: TrainConfig) -> gym.Env:
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


def discount_factor(config: TrainConfig) -> float:
    """γ of the run's algorithm: :attr:`TrainConfig.gamma`, or stable-baselines3's default."""
    if config.gamma is not None:
        return float(config.gamma)
    import stable_baselines3

    algorithm = getattr(stable_baselines3, config.algo.upper())  # DQN, SAC, PPO
    default = inspect.signature(algorithm.__init__).parameters["gamma"].default
    return float(default)


def training_reward(config: TrainConfig, reward_fn: RewardFn) -> RewardFn:
    """The reward the run trains on: ``reward_fn``, or its progress with ``progress_shaping``
    (:class:`~vlmrm_core.reward.shaping.ProgressShaping` with γ = :func:`discount_factor`)."""
    if not config.progress_shaping:
        return reward_fn
    from vlmrm_core.reward.shaping import ProgressShaping

    if not isinstance(reward_fn, Reward):
        raise ConfigError(
            "progress shaping needs a Reward (a reward file, prompt set or RewardModel), not a "
            "plain function of frames: wrap the function in a vlmrm_core.Reward subclass"
        )
    return ProgressShaping(reward_fn, discount_factor(config))


def make_run_vec_env(config: TrainConfig, reward_fn: RewardFn) -> CLIPRewardVecEnv:
    """The training VecEnv: ``n_envs`` envs of the run, rewards from ``reward_fn``.

    Built by :func:`vlmrm_core.wrappers.make_clip_vec_env` (the same function researchers use in
    their own SB3 scripts): ``Monitor`` records ground-truth returns, and every env renders the
    frame an episode ends in before it is reset. Envs step in the worker's own process
    (``DummyVecEnv``), where rendering classic-control scenes is cheap next to a CLIP forward
    pass; with ``subprocess_envs`` they step and render in parallel subprocesses. Either way the
    reward model stays in the worker and scores all frames of a step in one call, or, with
    ``reward_batching='rollout'``, all frames of a rollout window (the env then defers its
    rewards, and training needs :class:`~vlmrm_core.wrappers.RolloutRewardCallback`). With
    ``progress_shaping`` the envs return the shaped reward (:func:`training_reward`).

    Args:
        config: The run's configuration.
        reward_fn: The run's :class:`~vlmrm_core.reward.base.Reward` (any source; a CLIP
            ``RewardModel`` for runs defined by prompts).
    """
    parallel = config.subprocess_envs and config.n_envs > 1
    return make_clip_vec_env(
        partial(make_run_env, config),
        config.n_envs,
        training_reward(config, reward_fn),
        vec_env_cls=SubprocVecEnv if parallel else DummyVecEnv,
        defer=config.reward_batching == RewardBatching.ROLLOUT,
    )
