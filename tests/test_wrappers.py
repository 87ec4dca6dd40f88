"""vlmrm_core.wrappers: the frame scored is the state reached, also on the step ending an episode.

Real CartPole envs; the reward is a deterministic fingerprint of the frame (CRC32 of its pixels),
so a test knows exactly which frame was scored. The expected frames come from a replica: a
single env reset with the same seed and stepped with the same actions, rendered after each step.
"""

from __future__ import annotations

import zlib
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

from tests.reward._brightness import BrightnessReward
from vlmrm_core.reward.base import Reward
from vlmrm_core.wrappers import (
    CLIPReward,
    CLIPRewardVecEnv,
    CLIPRewardVector,
    TerminalFrameWrapper,
    WrapperError,
    make_clip_vec_env,
    make_clip_vector_env,
)

EPISODE_STEPS = 12
"""Short enough that TimeLimit truncates some episodes; random actions terminate others."""


def fingerprint(frame: np.ndarray) -> float:
    """A number that identifies the frame; < 2**24 so float32 holds it exactly."""
    return float(zlib.crc32(np.ascontiguousarray(frame, dtype=np.uint8).tobytes()) % 16_777_213)


class FingerprintReward:
    """Batched reward = each frame's fingerprint; records the batch size of every call."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        assert frames.ndim == 4 and frames.shape[-1] == 3 and frames.dtype == np.uint8
        self.calls.append(len(frames))
        return np.array([fingerprint(f) for f in frames], dtype=np.float32)


def cartpole(max_episode_steps: int = EPISODE_STEPS) -> gym.Env:
    return gym.make("CartPole-v1", render_mode="rgb_array", max_episode_steps=max_episode_steps)


class Replica:
    """A single env that follows one sub-env of a vector env: same seed, same actions."""

    def __init__(self, seed: int) -> None:
        self.env = cartpole()
        self.env.reset(seed=seed)
        self.resetting = False

    def step(self, action: int) -> tuple[float, bool, bool]:
        """Step; return the fingerprint of the state reached and (terminated, truncated)."""
        _, _, terminated, truncated, _ = self.env.step(action)
        return fingerprint(self.env.render()), bool(terminated), bool(truncated)


# ------------------------------------------------------------------ gymnasium: one env


def test_clip_reward_scores_the_frame_after_each_step_and_keeps_the_original() -> None:
    reward = FingerprintReward()
    env = CLIPReward(cartpole(), reward)
    replica = Replica(seed=3)
    env.reset(seed=3)
    for t in range(30):
        action = t % 2
        _, r, terminated, truncated, info = env.step(action)
        expected, replica_terminated, replica_truncated = replica.step(action)
        assert r == expected
        assert info["original_reward"] == 1.0
        assert (terminated, truncated) == (replica_terminated, replica_truncated)
        if terminated or truncated:
            break
    assert reward.calls == [1] * (t + 1)


def test_clip_reward_needs_rgb_array() -> None:
    with pytest.raises(WrapperError, match="render_mode='rgb_array'"):
        CLIPReward(gym.make("CartPole-v1"), FingerprintReward())


def test_clip_reward_reports_a_reward_function_of_the_wrong_shape() -> None:
    env = CLIPReward(cartpole(), lambda frames: np.zeros((len(frames), 2)))
    env.reset(seed=0)
    with pytest.raises(WrapperError, match="one reward per frame"):
        env.step(0)


# ------------------------------------------------------------------ gymnasium: vector env


def run_vector(
    envs: CLIPRewardVector, mode: AutoresetMode, reward: FingerprintReward, steps: int = 30
) -> dict[str, int]:
    """Step ``envs`` with random actions; assert every reward equals its replica's frame.

    Returns counts of the terminal steps checked (by kind) and of reset steps.
    """
    n, seed = envs.num_envs, 7
    replicas = [Replica(seed + i) for i in range(n)]
    envs.reset(seed=seed)
    rng = np.random.default_rng(0)
    counts = {"terminated": 0, "truncated": 0, "reset_steps": 0}
    expected_batches: list[int] = []
    for _ in range(steps):
        # Sub-env 0 always pushes right, so its pole falls (termination); the others act at
        # random and mostly reach the time limit (truncation).
        actions = rng.integers(0, 2, size=n)
        actions[0] = 1
        _, rewards, terminations, truncations, infos = envs.step(actions)
        expected = np.zeros(n)
        reset_only = 0
        for i, replica in enumerate(replicas):
            if replica.resetting:  # NEXT_STEP: this step only resets the sub-env
                replica.env.reset()
                replica.resetting = False
                counts["reset_steps"] += 1
                reset_only += 1
                assert not terminations[i] and not truncations[i]
                continue
            expected[i], terminated, truncated = replica.step(int(actions[i]))
            assert (terminations[i], truncations[i]) == (terminated, truncated)
            counts["terminated"] += terminated
            counts["truncated"] += truncated
            if terminated or truncated:
                if mode == AutoresetMode.SAME_STEP:
                    replica.env.reset()
                    # The vector env already shows the next episode: scoring its render would
                    # give a different reward, so this test catches the pitfall.
                    assert fingerprint(envs.render()[i]) != expected[i]
                else:
                    replica.resetting = mode == AutoresetMode.NEXT_STEP
        expected_batches.append(n - reset_only)
        np.testing.assert_array_equal(rewards, expected)
        assert "terminal_frame" not in infos and "terminal_frame" not in infos.get("final_info", {})
        # The env's own reward: 1 per CartPole step, 0 on NEXT_STEP reset steps.
        np.testing.assert_array_equal(infos["original_reward"], (expected != 0).astype(float))
        if mode == AutoresetMode.DISABLED:
            done = np.logical_or(terminations, truncations)
            if done.any():
                envs.reset(options={"reset_mask": done})
                for i in np.flatnonzero(done):
                    replicas[i].env.reset()
    # One batched reward call per step, on the frames of the sub-envs that moved.
    assert reward.calls == [b for b in expected_batches if b > 0]
    envs.close()
    return counts


@pytest.mark.parametrize("mode", list(AutoresetMode), ids=lambda m: m.value)
@pytest.mark.parametrize("vectorization_mode", ["sync", "async"])
def test_vector_terminal_step_scores_the_final_state(
    mode: AutoresetMode, vectorization_mode: str
) -> None:
    reward = FingerprintReward()
    envs = make_clip_vector_env(
        "CartPole-v1",
        3,
        reward,
        vectorization_mode=vectorization_mode,
        autoreset_mode=mode,
        env_kwargs={"max_episode_steps": EPISODE_STEPS},
    )
    assert envs.autoreset_mode == mode
    counts = run_vector(envs, mode, reward)
    # Both kinds of episode end were checked, and NEXT_STEP reset steps were seen.
    assert counts["terminated"] > 0 and counts["truncated"] > 0
    assert (counts["reset_steps"] > 0) == (mode == AutoresetMode.NEXT_STEP)


@pytest.mark.parametrize("mode", [AutoresetMode.NEXT_STEP, AutoresetMode.DISABLED])
def test_vector_without_terminal_frame_wrapper_is_right_when_the_env_is_not_reset_in_step(
    mode: AutoresetMode,
) -> None:
    """NEXT_STEP and DISABLED need no sub-env wrapper: plain ``make_vec`` works."""
    reward = FingerprintReward()
    envs = gym.make_vec(
        "CartPole-v1",
        num_envs=2,
        vectorization_mode="sync",
        vector_kwargs={"autoreset_mode": mode},
        render_mode="rgb_array",
        max_episode_steps=EPISODE_STEPS,
    )
    counts = run_vector(CLIPRewardVector(envs, reward), mode, reward)
    assert counts["terminated"] + counts["truncated"] > 0


@pytest.mark.parametrize("vectorization_mode", ["sync", "async"])
def test_same_step_without_terminal_frame_wrapper_is_refused(vectorization_mode: str) -> None:
    envs = gym.make_vec(
        "CartPole-v1",
        num_envs=2,
        vectorization_mode=vectorization_mode,
        vector_kwargs={"autoreset_mode": AutoresetMode.SAME_STEP},
        render_mode="rgb_array",
    )
    try:
        with pytest.raises(WrapperError, match="make_clip_vector_env"):
            CLIPRewardVector(envs, FingerprintReward())
    finally:
        envs.close()


def test_same_step_with_terminal_frame_wrapper_inside_time_limit_fails_at_the_truncation() -> None:
    """Wrapped, but inside TimeLimit: the truncation's frame is missing, and that is an error."""

    def make() -> gym.Env:
        return gym.wrappers.TimeLimit(TerminalFrameWrapper(cartpole(500)), max_episode_steps=2)

    envs = CLIPRewardVector(
        gym.vector.SyncVectorEnv([make], autoreset_mode=AutoresetMode.SAME_STEP),
        FingerprintReward(),
    )
    envs.reset(seed=0)
    envs.step(np.array([0]))
    with pytest.raises(WrapperError, match="outermost"):
        envs.step(np.array([1]))


def test_vector_needs_rgb_array() -> None:
    envs = gym.make_vec("CartPole-v1", num_envs=2, vectorization_mode="sync")
    with pytest.raises(WrapperError, match="rgb_array"):
        CLIPRewardVector(envs, FingerprintReward())
    with pytest.raises(WrapperError, match="rgb_array"):
        make_clip_vector_env(
            "CartPole-v1", 2, FingerprintReward(), env_kwargs={"render_mode": None}
        )
    with pytest.raises(WrapperError, match="'sync' or 'async'"):
        make_clip_vector_env(
            "CartPole-v1", 2, FingerprintReward(), vectorization_mode="vector_entry_point"
        )


def test_vector_reports_a_reward_function_of_the_wrong_shape() -> None:
    envs = make_clip_vector_env("CartPole-v1", 3, lambda frames: np.zeros(1))
    envs.reset(seed=0)
    with pytest.raises(WrapperError, match=r"shape \(1,\) for 3 frames"):
        envs.step(np.zeros(3, dtype=np.int64))


# ------------------------------------------------------------------ stable-baselines3


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


def make_counter_venv(lengths: list[int], reward: CountingReward) -> CLIPRewardVecEnv:
    fns = [lambda n=n: TerminalFrameWrapper(CounterEnv(n)) for n in lengths]
    return CLIPRewardVecEnv(DummyVecEnv(fns), reward)


def test_sb3_one_batched_call_per_step_and_terminal_frame_before_reset() -> None:
    reward = CountingReward()
    venv = make_counter_venv([3, 5], reward)
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
    # The env's own reward is kept, and episode summaries appear exactly at episode ends.
    assert all(info["original_reward"] == -1.0 for infos in seen_infos for info in infos)
    assert seen_infos[2][0]["episode_clip"] == {"clip_return": 6.0, "gt_return": -3.0, "length": 3}
    assert seen_infos[4][1]["episode_clip"] == {"clip_return": 15.0, "gt_return": -5.0, "length": 5}
    assert "episode_clip" not in seen_infos[3][0]
    # The frame does not stay in infos (the algorithm keeps infos around).
    assert all("terminal_frame" not in info for infos in seen_infos for info in infos)


def test_sb3_without_terminal_frame_wrapper_is_refused() -> None:
    with pytest.raises(WrapperError, match="make_clip_vec_env"):
        CLIPRewardVecEnv(DummyVecEnv([lambda: CounterEnv(3)]), CountingReward())


def test_sb3_needs_rgb_array_render_mode() -> None:
    with pytest.raises(WrapperError, match="rgb_array"):
        CLIPRewardVecEnv(
            DummyVecEnv([lambda: CounterEnv(3, render_mode="human")]), CountingReward()
        )
    with pytest.raises(WrapperError, match="rgb_array"):
        make_clip_vec_env("CartPole-v1", 1, CountingReward(), env_kwargs={"render_mode": "human"})


def test_sb3_wrong_reward_shape_is_reported() -> None:
    venv = make_counter_venv([3, 3], CountingReward())
    venv.reward_fn = lambda frames: np.zeros(1, dtype=np.float32)
    venv.reset()
    with pytest.raises(WrapperError, match="shape"):
        venv.step(np.zeros(2, dtype=np.int64))


def test_sb3_terminal_frame_wrapper_inside_time_limit_is_an_error_at_the_truncation() -> None:
    def make() -> gym.Env:
        return gym.wrappers.TimeLimit(TerminalFrameWrapper(cartpole(500)), max_episode_steps=2)

    venv = CLIPRewardVecEnv(DummyVecEnv([make]), CountingReward())
    venv.reset()
    venv.step(np.zeros(1, dtype=np.int64))
    with pytest.raises(WrapperError, match="outermost"):
        venv.step(np.zeros(1, dtype=np.int64))


@pytest.mark.parametrize(
    "vec_env_cls", [DummyVecEnv, pytest.param(SubprocVecEnv, marks=pytest.mark.slow)]
)
def test_make_clip_vec_env_scores_the_final_state_of_each_episode(vec_env_cls: type) -> None:
    """CartPole through SB3's make_vec_env: terminations and truncations, against replicas."""
    reward = FingerprintReward()
    seed, n = 11, 2
    venv = make_clip_vec_env(
        "CartPole-v1",
        n,
        reward,
        seed=seed,
        vec_env_cls=vec_env_cls,
        env_kwargs={"max_episode_steps": EPISODE_STEPS},
        # fork: forkserver children would re-import torch (seconds each).
        vec_env_kwargs={"start_method": "fork"} if vec_env_cls is SubprocVecEnv else None,
    )
    venv.reset()
    replicas = [Replica(seed + i) for i in range(n)]
    rng = np.random.default_rng(1)
    ends = {"terminated": 0, "truncated": 0}
    for _ in range(30):
        actions = rng.integers(0, 2, size=n)
        actions[0] = 1  # falls: termination; env 1 mostly truncates
        _, rewards, dones, infos = venv.step(actions)
        for i, replica in enumerate(replicas):
            expected, terminated, truncated = replica.step(int(actions[i]))
            assert rewards[i] == expected
            assert dones[i] == (terminated or truncated)
            assert infos[i]["original_reward"] == 1.0
            if dones[i]:
                assert infos[i]["episode_clip"]["length"] == infos[i]["episode"]["l"]
                assert fingerprint(venv.get_images()[i]) != expected  # the reset state
                replica.env.reset()
            ends["terminated"] += terminated
            ends["truncated"] += truncated
    assert ends["terminated"] > 0 and ends["truncated"] > 0
    assert reward.calls == [n] * 30
    venv.close()


def test_make_clip_vec_env_keeps_the_users_wrapper_inside() -> None:
    class Marker(gym.Wrapper):
        pass

    venv = make_clip_vec_env("CartPole-v1", 2, FingerprintReward(), wrapper_class=Marker)
    assert all(venv.env_is_wrapped(Marker)) and all(venv.env_is_wrapped(TerminalFrameWrapper))
    assert isinstance(venv.venv.envs[0], TerminalFrameWrapper)  # outermost
    venv.close()


# ------------------------------------------------------------- any Reward, not only CLIP


def test_a_reward_of_another_source_drives_the_gymnasium_wrappers() -> None:
    """A ``Reward`` subclass that is not CLIP (mean brightness) scores the frames reached."""
    reward = BrightnessReward()
    env = CLIPReward(cartpole(), reward)
    replica = Replica(seed=3)
    env.reset(seed=3)
    for action in (0, 1, 1, 0):
        _, got, _, _, info = env.step(action)
        replica.step(action)
        assert got == pytest.approx(float(reward(replica.env.render())[0]), abs=1e-6)
        assert info["original_reward"] == 1.0 and got < 1.0  # CartPole's own reward is 1
    envs = make_clip_vector_env("CartPole-v1", 3, reward)
    envs.reset(seed=0)
    _, rewards, _, _, _ = envs.step(np.array([0, 1, 0]))
    np.testing.assert_allclose(rewards, reward(np.stack(envs.render())), atol=1e-6)
    assert reward.calls[-2:] == [3, 3]  # one call for the step's three frames (then ours)
    envs.close()


def test_a_reward_of_another_source_trains_an_sb3_agent() -> None:
    from stable_baselines3 import PPO

    reward = BrightnessReward(scale=10.0)
    venv = make_clip_vec_env("CartPole-v1", 2, reward, seed=0)
    model = PPO("MlpPolicy", venv, n_steps=8, batch_size=16, n_epochs=1, seed=0, device="cpu")
    model.learn(total_timesteps=16)
    assert reward.calls == [2] * 8  # 16 timesteps: one rollout of 8 steps of 2 envs
    buffer = model.rollout_buffer.rewards
    assert buffer.shape == (8, 2) and np.all((buffer > 5.0) & (buffer < 10.0))  # not CartPole's 1
    venv.close()


# ------------------------------------------------- rewards that look at more than one frame


def _windows_by_hand(model: Any, frames: list[np.ndarray], episode: list[int]) -> np.ndarray:
    """Per frame: the prompt reward of the plain mean of the embeddings of the last k frames of
    its episode (``episode[j]`` names frame j's episode; frames in time order)."""
    from vlmrm_core.reward.model import score_embeddings

    x = model.embed(np.stack(frames))  # one batch
    k, means = model.spec.window, []
    for j in range(len(frames)):
        same = [i for i in range(max(0, j - k + 1), j + 1) if episode[i] == episode[j]]
        means.append(x[same].mean(axis=0))
    return score_embeddings(model.clip, np.stack(means), model.spec).rewards


@pytest.mark.parametrize("mode", list(AutoresetMode), ids=lambda m: m.value)
def test_windowed_clip_reward_averages_the_last_k_frames_of_each_episode(
    mode: AutoresetMode, tiny_clip: Any
) -> None:
    from vlmrm_core.reward.model import RewardModel
    from vlmrm_core.reward.spec import RewardSpec

    spec = RewardSpec(("a pole standing upright",), ("a pole",), alpha=0.5, window=3)
    model = RewardModel(tiny_clip, spec)
    n, seed, length = 2, 11, 4
    envs = make_clip_vector_env(
        "CartPole-v1", n, model, autoreset_mode=mode, env_kwargs={"max_episode_steps": length}
    )
    replicas = [cartpole(length) for _ in range(n)]
    for i, replica in enumerate(replicas):
        replica.reset(seed=seed + i)
    envs.reset(seed=seed)
    # Per sub-env: the frames it reached, their episode numbers and the rewards given.
    frames: list[list[np.ndarray]] = [[] for _ in range(n)]
    episode: list[list[int]] = [[] for _ in range(n)]
    got: list[list[float]] = [[] for _ in range(n)]
    current, resetting = [0] * n, [False] * n
    for t in range(9):
        actions = np.array([1, t % 2])
        _, rewards, terminations, truncations, _ = envs.step(actions)
        for i, replica in enumerate(replicas):
            if resetting[i]:  # NEXT_STEP: a reset step, reward 0, no frame scored
                replica.reset()
                resetting[i] = False
                assert rewards[i] == 0.0
                continue
            _, _, terminated, truncated, _ = replica.step(int(actions[i]))
            assert (terminations[i], truncations[i]) == (terminated, truncated)
            frames[i].append(replica.render())
            episode[i].append(current[i])
            got[i].append(float(rewards[i]))
            if terminated or truncated:
                current[i] += 1  # the next frame starts a fresh window
                if mode == AutoresetMode.SAME_STEP:
                    replica.reset()
                elif mode == AutoresetMode.NEXT_STEP:
                    resetting[i] = True
        if mode == AutoresetMode.DISABLED:
            done = np.logical_or(terminations, truncations)
            if done.any():
                envs.reset(options={"reset_mask": done})
                for i in np.flatnonzero(done):
                    replicas[i].reset()
    envs.close()
    assert sum(current) >= 3  # episodes ended, so windows were cut at their boundaries
    for i in range(n):
        expected = _windows_by_hand(model, frames[i], episode[i])
        np.testing.assert_allclose(got[i], expected, atol=1e-5)


def test_windowed_clip_reward_in_sb3_resets_the_window_at_the_terminal_frame(
    tiny_clip: Any,
) -> None:
    from vlmrm_core.reward.model import RewardModel
    from vlmrm_core.reward.spec import RewardSpec

    model = RewardModel(tiny_clip, RewardSpec(("a grey square",), window=2))
    fns = [lambda n=n: TerminalFrameWrapper(CounterEnv(n)) for n in (3, 4)]
    venv = CLIPRewardVecEnv(DummyVecEnv(fns), model)
    venv.reset()
    got = np.array([venv.step(np.zeros(2, dtype=np.int64))[1] for _ in range(7)])
    venv.close()
    for i, length in enumerate((3, 4)):
        counters = [step % length + 1 for step in range(7)]  # 1 again after a reset
        frames = [np.full((6, 8, 3), t, dtype=np.uint8) for t in counters]
        episode = [step // length for step in range(7)]
        np.testing.assert_allclose(got[:, i], _windows_by_hand(model, frames, episode), atol=1e-5)


class _Fingerprint(Reward):
    """The fingerprint of each frame as a Reward (progress shaping wraps Rewards)."""

    source = "fingerprint"
    identity = "test/fingerprint"
    description = "CRC32 of the pixels"

    def reward(self, frames: Any) -> np.ndarray:
        return np.array([fingerprint(f) for f in frames], dtype=np.float64) / 16_777_216


@pytest.mark.parametrize("mode", list(AutoresetMode), ids=lambda m: m.value)
def test_progress_shaping_over_a_gymnasium_rollout_is_gamma_r_next_minus_r(
    mode: AutoresetMode,
) -> None:
    from vlmrm_core.reward.shaping import ProgressShaping

    base, gamma = _Fingerprint(), 0.9
    envs = make_clip_vector_env(
        "CartPole-v1",
        2,
        ProgressShaping(base, gamma),
        autoreset_mode=mode,
        env_kwargs={"max_episode_steps": 4},
    )
    replicas = [Replica(5), Replica(6)]
    for replica in replicas:
        replica.env = cartpole(4)
    for i, replica in enumerate(replicas):
        replica.env.reset(seed=5 + i)
    envs.reset(seed=5)
    previous = [0.0, 0.0]  # R(s_0) = 0: the reset state is never rendered
    ends = 0
    for t in range(11):
        actions = np.array([1, t % 2])
        _, rewards, terminations, truncations, _ = envs.step(actions)
        for i, replica in enumerate(replicas):
            if replica.resetting:
                replica.env.reset()
                replica.resetting = False
                assert rewards[i] == 0.0
                continue
            _, _, terminated, truncated, _ = replica.env.step(int(actions[i]))
            potential = fingerprint(replica.env.render()) / 16_777_216
            assert rewards[i] == pytest.approx(gamma * potential - previous[i], abs=1e-6)
            previous[i] = potential
            if terminated or truncated:
                ends += 1
                previous[i] = 0.0
                if mode == AutoresetMode.SAME_STEP:
                    replica.env.reset()
                elif mode == AutoresetMode.NEXT_STEP:
                    replica.resetting = True
        if mode == AutoresetMode.DISABLED:
            done = np.logical_or(terminations, truncations)
            if done.any():
                envs.reset(options={"reset_mask": done})
                for i in np.flatnonzero(done):
                    replicas[i].env.reset()
    assert ends >= 3
    envs.close()


def test_progress_shaping_in_sb3_uses_the_previous_reward_of_the_same_episode() -> None:
    from vlmrm_core.reward.shaping import ProgressShaping

    class Counter(Reward):
        identity = "test/counter"
        description = "the counter drawn in the frame"

        def reward(self, frames: Any) -> np.ndarray:
            return np.asarray(frames)[:, 0, 0, 0].astype(np.float32)

    fns = [lambda: TerminalFrameWrapper(CounterEnv(3))]
    venv = CLIPRewardVecEnv(DummyVecEnv(fns), ProgressShaping(Counter(), gamma=0.5))
    venv.reset()
    got = [float(venv.step(np.zeros(1, dtype=np.int64))[1][0]) for _ in range(7)]
    # Counter 1, 2, 3 (the end), then 1, 2, 3, 1: r = 0.5·t − previous t, previous 0 at a start.
    assert got == [0.5, 0.0, -0.5, 0.5, 0.0, -0.5, 0.5]
    venv.reset()  # a reset forgets the previous reward too
    assert float(venv.step(np.zeros(1, dtype=np.int64))[1][0]) == 0.5
    venv.close()
