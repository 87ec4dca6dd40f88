"""Rollouts in real gymnasium environments, with random and stable-baselines3 policies."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

from vlmrm_core.frames import FrameRecord
from vlmrm_core.sources.rollouts import RolloutError, check_env_id, rollout_frames


def test_random_policy_is_reproducible_under_a_seed() -> None:
    a = list(rollout_frames("CartPole-v1", episodes=2, max_steps=15, seed=3))
    b = list(rollout_frames("CartPole-v1", episodes=2, max_steps=15, policy="seeded", seed=3))
    c = list(rollout_frames("CartPole-v1", episodes=2, max_steps=15, seed=4))
    assert [f.hash for f in a] == [f.hash for f in b]
    assert [f.state for f in a] == [f.state for f in b]
    assert [f.hash for f in a] != [f.hash for f in c]


def test_frames_carry_episode_step_and_state() -> None:
    seen: list[tuple[int, int | None]] = []
    frames = list(
        rollout_frames(
            "CartPole-v1",
            episodes=3,
            max_steps=5,
            seed=0,
            progress=lambda d, t, m: seen.append((d, t)),
        )
    )
    assert all(isinstance(f, FrameRecord) for f in frames)
    assert len(frames) == 3 * 6  # reset frame + 5 steps, CartPole cannot fail in 5 steps
    assert [(f.episode, f.step) for f in frames[:7]] == [(0, t) for t in range(6)] + [(1, 0)]
    first, second = frames[0], frames[1]
    assert first.source == "rollout" and first.env_id == "CartPole-v1"
    assert first.name == "CartPole-v1 ep0 t0" and second.name == "CartPole-v1 ep0 t1"
    assert len(first.state["observation"]) == 4 and "reward" not in first.state
    assert second.state["action"] in (0, 1) and second.state["reward"] == 1.0
    assert second.state["terminated"] is False
    assert first.pixels.shape == (400, 600, 3) and first.pixels.dtype == np.uint8
    assert seen[-1] == (18, 18)
    # Different episodes start differently (the env's RNG carries on between resets).
    assert frames[0].state != frames[6].state


def test_episodes_stop_at_termination() -> None:
    # A random CartPole policy falls within 200 steps; truncation (TimeLimit 500) never hits.
    frames = list(rollout_frames("CartPole-v1", episodes=2, max_steps=200, seed=1))
    by_episode = {e: [f for f in frames if f.episode == e] for e in (0, 1)}
    for ep_frames in by_episode.values():
        last = ep_frames[-1]
        assert last.state["terminated"] is True
        assert len(ep_frames) == last.step + 1 < 201
        assert not any(f.state.get("terminated") for f in ep_frames[:-1])


def test_textured_mountaincar_rollout() -> None:
    frames = list(rollout_frames("MountainCar-v0", max_steps=3, textured=True, seed=0))
    stock = list(rollout_frames("MountainCar-v0", max_steps=3, seed=0))
    assert [f.state for f in frames] == [f.state for f in stock]
    assert all(f.pixels.shape == (400, 600, 3) for f in frames)
    assert frames[0].hash != stock[0].hash


def test_unknown_env_id_suggests_close_matches() -> None:
    with pytest.raises(
        RolloutError, match=r"Unknown gymnasium environment 'CartPol-v1'.*CartPole-v1"
    ):
        rollout_frames("CartPol-v1")
    with pytest.raises(RolloutError, match="MountainCar-v0"):
        check_env_id("MountainCar-v9")


class _NoPixelsEnv(gym.Env):
    metadata = {"render_modes": ["human"]}
    observation_space = gym.spaces.Discrete(2)
    action_space = gym.spaces.Discrete(2)


def test_env_without_rgb_array_is_refused() -> None:
    env_id = "VlmrmTestNoPixels-v0"
    gym.register(env_id, entry_point=_NoPixelsEnv)
    try:
        with pytest.raises(RolloutError, match="cannot render images"):
            rollout_frames(env_id)
    finally:
        gym.registry.pop(env_id, None)


def test_textured_only_where_a_textured_renderer_exists() -> None:
    with pytest.raises(RolloutError, match="textured"):
        rollout_frames("CartPole-v1", textured=True)


def test_missing_policy_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RolloutError, match="neither 'random'/'seeded' nor"):
        rollout_frames("CartPole-v1", policy=str(tmp_path / "nope.zip"))
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"not a zip")
    # The same message for a missing and a malformed file: no existence oracle.
    with pytest.raises(RolloutError, match="neither 'random'/'seeded' nor a readable"):
        rollout_frames("CartPole-v1", policy=bad)


@pytest.mark.slow
def test_saved_sb3_policy_rolls_out_deterministically(tmp_path: Path) -> None:
    from stable_baselines3 import PPO

    model = PPO(
        "MlpPolicy", "CartPole-v1", n_steps=64, batch_size=32, n_epochs=1, seed=0, device="cpu"
    )
    model.learn(total_timesteps=64)
    path = tmp_path / "ppo_cartpole.zip"
    model.save(path)

    a = list(rollout_frames("CartPole-v1", episodes=1, max_steps=20, policy=str(path), seed=0))
    b = list(rollout_frames("CartPole-v1", episodes=1, max_steps=20, policy=path, seed=0))
    assert len(a) >= 2 and [f.hash for f in a] == [f.hash for f in b]
    assert a[0].extra["policy"] == str(path)
    # The actions are the loaded policy's deterministic predictions.
    for prev, cur in zip(a, a[1:], strict=False):
        expected, _ = model.predict(
            np.array(prev.state["observation"], np.float32), deterministic=True
        )
        assert cur.state["action"] == int(expected)

    with pytest.raises(RolloutError, match="observations of shape"):
        list(rollout_frames("MountainCar-v0", max_steps=2, policy=path))
