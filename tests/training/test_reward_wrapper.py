"""CLIPRewardVecEnv: one batched reward call per step, terminal frames before auto-reset."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3.common.vec_env import DummyVecEnv

from vlmrm_core.training.reward_wrapper import CLIPRewardVecEnv, TerminalFrameWrapper


class CounterEnv(gym.Env):
    """State is a step counter; the frame's pixels spell it out; the episode ends at ``length``."""

    metadata = {"render_modes": ["rgb_array"]}

    def __init__(self, length: int, render_mode: str = "rgb_array") -> None:
        self.length = length
        self.render_mode = render_mode
        self.observation_space = gym.spaces.Box(0, 100, shape=(1,), dtype=np.float32)
        self.action_space = gym.spaces.Discrete(2)
        self.t = 0

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[Any, dict]:
        super().reset(seed=seed)
        self.t = 0
        return np.array([self.t], dtype=np.float32), {}

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        self.t += 1
        return np.array([self.t], dtype=np.float32), -1.0, self.t >= self.length, False, {}

    def render(self) -> np.ndarray:
        return np.full((6, 8, 3), self.t, dtype=np.uint8)


class CountingReward:
    """Reward = the counter drawn in the frame; records the batch size of every call."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        assert frames.ndim == 4 and frames.dtype == np.uint8
        self.calls.append(len(frames))
        return frames[:, 0, 0, 0].astype(np.float32)


def make_venv(lengths: list[int], reward: CountingReward) -> CLIPRewardVecEnv:
    fns = [lambda n=n: TerminalFrameWrapper(CounterEnv(n)) for n in lengths]
    return CLIPRewardVecEnv(DummyVecEnv(fns), reward)


def test_one_batched_call_per_step_and_terminal_frame_before_reset() -> None:
    reward = CountingReward()
    venv = make_venv([3, 5], reward)
    venv.reset()
    actions = np.zeros(2, dtype=np.int64)
    seen_rewards = []
    seen_infos = []
    for _ in range(6):
        _, rewards, dones, infos = venv.step(actions)
        seen_rewards.append(rewards.copy())
        seen_infos.append(infos)
    # One reward call per step, with all envs' frames at once.
    assert reward.calls == [2] * 6
    # Env 0 ends at t=3: its terminal step is scored on the frame of t=3, not the reset frame (0).
    assert [r[0] for r in seen_rewards] == [1, 2, 3, 1, 2, 3]
    assert [r[1] for r in seen_rewards] == [1, 2, 3, 4, 5, 1]
    # Ground truth is kept, and episode summaries appear exactly at episode ends.
    assert all(info["gt_reward"] == -1.0 for infos in seen_infos for info in infos)
    assert seen_infos[2][0]["episode_clip"] == {"clip_return": 6.0, "gt_return": -3.0, "length": 3}
    assert seen_infos[4][1]["episode_clip"] == {"clip_return": 15.0, "gt_return": -5.0, "length": 5}
    assert "episode_clip" not in seen_infos[3][0]
    # The frame does not stay in infos (the algorithm keeps infos around).
    assert all("terminal_frame" not in info for infos in seen_infos for info in infos)


def test_without_terminal_frame_wrapper_warns() -> None:
    reward = CountingReward()
    with pytest.warns(UserWarning, match="TerminalFrameWrapper"):
        CLIPRewardVecEnv(DummyVecEnv([lambda: CounterEnv(3)]), reward)


def test_needs_rgb_array_render_mode() -> None:
    with pytest.raises(ValueError, match="rgb_array"):
        CLIPRewardVecEnv(
            DummyVecEnv([lambda: CounterEnv(3, render_mode="human")]), CountingReward()
        )


def test_wrong_reward_shape_is_reported() -> None:
    venv = make_venv([3, 3], CountingReward())
    venv.reward_fn = lambda frames: np.zeros(1, dtype=np.float32)
    venv.reset()
    with pytest.raises(ValueError, match="shape"):
        venv.step(np.zeros(2, dtype=np.int64))


def test_cartpole_with_time_limit_truncation() -> None:
    """A real env: truncation by TimeLimit also yields the pre-reset frame."""
    reward = CountingReward()

    def make() -> gym.Env:
        return TerminalFrameWrapper(
            gym.make("CartPole-v1", render_mode="rgb_array", max_episode_steps=4)
        )

    venv = CLIPRewardVecEnv(DummyVecEnv([make, make]), lambda f: reward(f[:, :1, :1]))
    venv.reset()
    for _ in range(4):
        _, _, dones, infos = venv.step(np.zeros(2, dtype=np.int64))
    assert dones.all()
    assert all(info["episode_clip"]["length"] == 4 for info in infos)
    assert reward.calls == [2] * 4
