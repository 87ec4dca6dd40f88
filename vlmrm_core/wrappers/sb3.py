"""A stable-baselines3 ``VecEnvWrapper`` whose rewards come from rendered frames.

SB3's VecEnvs reset an env inside ``step`` as soon as its episode ends: the observation they
return for it is already the first of the next episode, and ``get_images()`` after ``step``
would draw the reset state. So each env is wrapped in :class:`TerminalFrameWrapper`, which
renders the final frame inside ``env.step`` and passes it on in ``info["terminal_frame"]``;
:class:`CLIPRewardVecEnv` scores that frame for envs that are done and the ``get_images()`` frame
for the others. :func:`make_clip_vec_env` builds the whole thing on SB3's ``make_vec_env``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv, VecEnvWrapper
from stable_baselines3.common.vec_env.base_vec_env import VecEnvObs, VecEnvStepReturn

from vlmrm_core.wrappers.gymnasium import (
    ORIGINAL_REWARD_KEY,
    TERMINAL_FRAME_KEY,
    RewardFn,
    TerminalFrameWrapper,
    WrapperError,
    require_rgb_array,
    score_frames,
    stack_frames,
)


class CLIPRewardVecEnv(VecEnvWrapper):
    """An SB3 ``VecEnvWrapper`` whose rewards are ``reward`` of the frames of the states reached.

    After every step it renders all envs, calls ``reward`` once on the ``n_envs`` frames and
    returns those rewards; for an env whose episode just ended it scores the final frame that
    :class:`TerminalFrameWrapper` rendered before SB3's auto-reset. The env's own reward goes to
    ``info["original_reward"]``. When an episode ends, ``info["episode_clip"]`` holds
    ``{"clip_return", "gt_return", "length"}`` of that episode (``gt_return``: the env's own
    return).

    Args:
        venv: VecEnv with ``render_mode="rgb_array"``, each env wrapped (outermost) in
            :class:`TerminalFrameWrapper`; :func:`make_clip_vec_env` builds one.
        reward: Batched frame reward, e.g. ``vlmrm_core.load_reward("reward.json")``.

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

    def __init__(self, venv: VecEnv, reward: RewardFn) -> None:
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
        self._clip_return = np.zeros(self.num_envs, dtype=np.float64)
        self._gt_return = np.zeros(self.num_envs, dtype=np.float64)
        self._length = np.zeros(self.num_envs, dtype=np.int64)
        self.render_seconds = 0.0
        """Wall time spent rendering frames (for profiling)."""
        self.reward_seconds = 0.0
        """Wall time spent in ``reward`` (for profiling)."""

    def reset(self) -> VecEnvObs:
        obs = self.venv.reset()
        self._clip_return[:] = 0.0
        self._gt_return[:] = 0.0
        self._length[:] = 0
        return obs

    def step_wait(self) -> VecEnvStepReturn:
        obs, original, dones, infos = self.venv.step_wait()
        t0 = time.perf_counter()
        frames = self._frames(dones, infos)
        t1 = time.perf_counter()
        rewards = score_frames(self.reward_fn, frames).astype(np.float32)
        self.reward_seconds += time.perf_counter() - t1
        self.render_seconds += t1 - t0
        self._clip_return += rewards
        self._gt_return += original
        self._length += 1
        for i, info in enumerate(infos):
            info[ORIGINAL_REWARD_KEY] = float(original[i])
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
            if dones[i]:
                if terminal is None:
                    raise WrapperError(
                        "CLIPRewardVecEnv: an episode ended without a terminal frame: put "
                        "TerminalFrameWrapper outermost (outside TimeLimit and Monitor)"
                    )
                images[i] = terminal
        return stack_frames(images, "CLIPRewardVecEnv")


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
) -> CLIPRewardVecEnv:
    """An SB3 VecEnv of ``env_id`` rewarded by ``reward``, terminal frames handled.

    SB3's ``make_vec_env`` (``Monitor`` around each env, seeding, ``DummyVecEnv`` or
    ``SubprocVecEnv``) with ``render_mode="rgb_array"`` and :class:`TerminalFrameWrapper`
    outermost on every env, inside :class:`CLIPRewardVecEnv`.

    Args:
        env_id: A registered gymnasium env id, or a function returning an env (which must then
            render RGB arrays itself).
        n_envs: Number of envs.
        reward: Batched frame reward, e.g. ``vlmrm_core.load_reward("reward.json")``.
        seed: Seed of the first env (the others get ``seed + 1``, ...).
        vec_env_cls: ``DummyVecEnv`` (default) or ``SubprocVecEnv``; the reward is computed
            in this process either way.
        env_kwargs: Keyword arguments of ``gymnasium.make`` (or of ``env_id`` when callable).
        wrapper_class: Your own wrapper for each env, applied inside
            :class:`TerminalFrameWrapper`.
        wrapper_kwargs: Keyword arguments of ``wrapper_class``.
        vec_env_kwargs: Keyword arguments of ``vec_env_cls``.
        monitor_dir: Where ``Monitor`` writes its CSV files (none by default).

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
    return CLIPRewardVecEnv(venv, reward)
