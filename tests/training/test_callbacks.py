"""The training callbacks, in-process, on CartPole with a cheap pixel reward (no CLIP)."""

from __future__ import annotations

import sys
import threading
import time
import types
from pathlib import Path
from typing import Any

import av
import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3 import DQN

from vlmrm_core.frames import FrameRecord
from vlmrm_core.reward.spec import RewardSpec
from vlmrm_core.training.callbacks import (
    CLIP_EP_REW_MEAN,
    CancelCallback,
    CheckpointCallback,
    EvalCallback,
    Heartbeat,
    MetricsCallback,
)
from vlmrm_core.training.checkpoints import list_checkpoints
from vlmrm_core.training.config import TrainConfig
from vlmrm_core.training.envs import make_run_env, make_run_vec_env
from vlmrm_core.training.policy_eval import evaluate_policy


def pixel_reward(frames: np.ndarray) -> np.ndarray:
    """Cheap stand-in for CLIP: mean brightness of a downsampled frame."""
    return frames[:, ::20, ::20].mean(axis=(1, 2, 3)).astype(np.float32) / 255.0


CONFIG = TrainConfig(
    env_id="CartPole-v1", algo="dqn", n_envs=4, reward=RewardSpec(goal_prompts=("x",))
)


def make_model() -> DQN:
    venv = make_run_vec_env(CONFIG, pixel_reward)
    return DQN("MlpPolicy", venv, learning_starts=16, buffer_size=500, train_freq=1, seed=0)


@pytest.mark.slow
def test_checkpoints_count_env_steps_and_keep_one_replay_buffer(tmp_path: Path) -> None:
    model = make_model()
    saved = []
    cb = CheckpointCallback(tmp_path, every_steps=40, on_save=saved.append)
    model.learn(120, callback=cb)
    # n_envs=4: SB3's own callback would save every 40 *calls* = 160 steps; ours every 40 steps.
    assert [c.steps for c in list_checkpoints(tmp_path)] == [40, 80, 120]
    assert [c.steps for c in saved] == [40, 80, 120]
    assert sorted(p.name for p in tmp_path.glob("replay_*.pkl")) == ["replay_120.pkl"]
    assert not list(tmp_path.glob("*.tmp"))
    assert DQN.load(list_checkpoints(tmp_path)[0].model_path).num_timesteps == 40


@pytest.mark.slow
def test_metrics_rows(tmp_path: Path) -> None:
    model = make_model()
    rows: list[dict[str, Any]] = []
    model.learn(200, callback=MetricsCallback(rows.extend, every_steps=50, echo=False))
    assert [r["step"] for r in rows] == [52, 100, 152, 200]
    assert all(r["steps_per_s"] > 0 for r in rows)
    with_episodes = [r for r in rows if r["episodes"]]
    assert with_episodes, "CartPole episodes under a random policy end within 200 steps"
    for r in with_episodes:
        assert r["episode_length"] == r["episode_gt_return"]  # CartPole pays 1 per step
        assert 0 < r["episode_clip_return"] < r["episode_length"]
    assert "train/loss" in rows[-1]
    assert all(np.isfinite(v) for r in rows for v in r.values() if isinstance(v, float))


@pytest.mark.slow
def test_sb3_logger_gets_the_clip_return_next_to_the_env_return(tmp_path: Path) -> None:
    import pandas as pd
    from stable_baselines3.common.logger import configure

    model = make_model()
    model.set_logger(configure(str(tmp_path), ["csv"]))
    rows: list[dict[str, Any]] = []
    # log_interval=1: SB3 dumps its logger every time an episode ends
    model.learn(
        300, callback=MetricsCallback(rows.extend, every_steps=50, echo=False), log_interval=1
    )
    progress = pd.read_csv(tmp_path / "progress.csv")
    assert CLIP_EP_REW_MEAN in progress.columns
    logged = progress.dropna(subset=[CLIP_EP_REW_MEAN])
    assert len(logged) >= 2
    # ep_rew_mean is CartPole's own return (1 per step); the CLIP return is the pixel reward's,
    # below 1 per step: the two are different numbers, each under its own key
    assert (logged[CLIP_EP_REW_MEAN] < logged["rollout/ep_rew_mean"]).all()
    assert (logged["rollout/ep_rew_mean"] == logged["rollout/ep_len_mean"]).all()
    assert (logged[CLIP_EP_REW_MEAN] > 0).all()
    # the same episodes reach the store's rows: one mean over all of them, weighted per window
    episodes = sum(r["episodes"] for r in rows)
    total = sum(r["episode_clip_return"] * r["episodes"] for r in rows if r["episodes"])
    assert episodes < 100  # SB3's window holds them all
    assert logged[CLIP_EP_REW_MEAN].iloc[-1] == pytest.approx(total / episodes)


def test_cancel_saves_a_checkpoint_and_stops(tmp_path: Path) -> None:
    model = make_model()
    checkpointer = CheckpointCallback(tmp_path, every_steps=10_000)
    calls = {"n": 0}

    def should_cancel() -> bool:
        calls["n"] += 1
        return calls["n"] >= 3

    cancel = CancelCallback(should_cancel, checkpointer, check_interval_s=0.0)
    model.learn(10_000, callback=[checkpointer, cancel])
    assert cancel.cancelled
    assert model.num_timesteps == 12  # three steps of four envs
    assert [c.steps for c in list_checkpoints(tmp_path)] == [12]


def test_evaluate_policy_writes_video_and_frame_records(tmp_path: Path) -> None:
    model = make_model()
    received: list[FrameRecord] = []
    calls: list[int] = []

    def reward(frames: np.ndarray) -> np.ndarray:
        calls.append(len(frames))
        return pixel_reward(frames)

    def sink(step: int, records: Any) -> str:
        received.extend(records)
        return "stored"

    result = evaluate_policy(
        model,
        lambda: make_run_env(CONFIG.replace(episode_length=15)),
        reward,
        episodes=2,
        max_steps=12,
        step=7,
        video_path=tmp_path / "eval" / "eval_7.mp4",
        frame_sink=sink,
        env_id="CartPole-v1",
        run_id=3,
        batch_size=5,
    )
    n = sum(result.lengths) + 2  # each episode's reset frame, then one frame per step
    assert len(received) == n and max(calls) <= 5 and sum(calls) == n
    assert result.dataset == "stored"
    first = received[0]
    assert first.source == "training-eval" and first.env_id == "CartPole-v1"
    assert first.extra["run_id"] == 3 and first.extra["train_step"] == 7
    assert [r.step for r in received if r.episode == 0][:3] == [0, 1, 2]
    stepped = [r for r in received if r.step]
    assert np.isclose(sum(r.extra["clip_reward"] for r in stepped), sum(result.clip_returns))
    assert sum(r.extra["gt_reward"] for r in stepped) == sum(result.gt_returns)
    assert {r.episode for r in received} == {0, 1}
    assert len(first.state["observation"]) == 4
    with av.open(str(result.video_path)) as container:
        frames = list(container.decode(video=0))
    assert len(frames) == n
    assert (frames[0].height, frames[0].width) == (400, 600)
    assert not list((tmp_path / "eval").glob(".eval-spool-*"))  # spool file removed


def test_evaluation_is_the_rollout_loop_of_the_frame_sources() -> None:
    """Same policy, env and seed: the evaluation frames are the rollout dataset's frames."""
    from vlmrm_core.sources.rollouts import rollout_env

    model = make_model()
    received: list[FrameRecord] = []
    evaluate_policy(
        model,
        lambda: make_run_env(CONFIG),
        pixel_reward,
        episodes=2,
        max_steps=6,
        step=0,
        frame_sink=lambda step, records: received.extend(records),
        seed=5,
    )
    env = make_run_env(CONFIG)
    try:
        rolled = list(
            rollout_env(env, "CartPole-v1", episodes=2, max_steps=6, policy=model, seed=5)
        )
    finally:
        env.close()
    assert [(r.episode, r.step) for r in received] == [(r.episode, r.step) for r in rolled]
    for got, expected in zip(received, rolled, strict=True):
        np.testing.assert_array_equal(got.pixels, expected.pixels)
        assert got.state == expected.state


@pytest.mark.slow
def test_eval_callback_schedule(tmp_path: Path) -> None:
    model = make_model()
    rows: list[dict[str, Any]] = []
    cb = EvalCallback(
        lambda: make_run_env(CONFIG),
        pixel_reward,
        every_steps=40,
        episodes=1,
        max_steps=5,
        metrics_sink=rows.extend,
    )
    model.learn(100, callback=cb)
    assert [r.step for r in cb.results] == [40, 80]
    assert [r["step"] for r in rows] == [40, 80]
    assert rows[0]["eval/length"] == 5.0  # steps taken; the reset frame is not a step


def test_heartbeat_thread() -> None:
    beats: list[int] = []
    failed = threading.Event()

    def beat(steps: int) -> None:
        beats.append(steps)
        if len(beats) == 2:
            failed.set()
            raise RuntimeError("database is locked")  # must not stop the heartbeat

    hb = Heartbeat(beat, interval_s=0.02)
    with hb:
        hb.steps = 5
        deadline = time.monotonic() + 5
        while len(beats) < 4 and time.monotonic() < deadline:
            time.sleep(0.01)
        hb.steps = 9
    assert beats[0] == 0 and failed.is_set() and len(beats) >= 4
    assert beats[-1] == 9  # the final beat carries the final step count


@pytest.mark.parametrize("env_id", ["MountainCarContinuous-v0"])
def test_textured_env_renders(env_id: str) -> None:
    env = make_run_env(CONFIG.replace(env_id=env_id, algo="sac", textured=True))
    env.reset(seed=0)
    frame = env.render()
    plain = gym.make(env_id, render_mode="rgb_array")
    plain.reset(seed=0)
    assert frame.shape == plain.render().shape == (400, 600, 3)
    assert frame.std() > plain.render().std() * 0.5 and not np.array_equal(frame, plain.render())


@pytest.mark.slow
def test_subprocess_envs_give_terminal_frames_too(monkeypatch: pytest.MonkeyPatch) -> None:
    # Streamlit's AppTest (elsewhere in the suite) leaves a page script registered as __main__,
    # and multiprocessing's forkserver would re-run it in each env subprocess.
    monkeypatch.setitem(sys.modules, "__main__", types.ModuleType("__main__"))
    calls: list[int] = []

    def reward(frames: np.ndarray) -> np.ndarray:
        calls.append(len(frames))
        return pixel_reward(frames)

    venv = make_run_vec_env(
        CONFIG.replace(n_envs=2, subprocess_envs=True, episode_length=3), reward
    )
    try:
        venv.reset()
        for _ in range(3):
            _, _, dones, infos = venv.step(np.zeros(2, dtype=np.int64))
        assert dones.all() and all(info["episode_clip"]["length"] == 3 for info in infos)
        assert calls == [2, 2, 2]
    finally:
        venv.close()
