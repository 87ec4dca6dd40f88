"""Deferred rewards: one reward call per rollout window of DQN / SAC, written into the buffer.

Each deferred run is compared with the same run (same seeds) in immediate mode, whose rewards
``tests/test_wrappers.py`` checks frame by frame. Rewards only steer learning through the replay
buffer, so if the deferred run wrote every reward where the immediate run stored it before any
gradient step, both runs take the same actions and end with identical replay buffers. The reward
is a deterministic fingerprint of each frame (no CLIP), and buffers are small, so they wrap.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from stable_baselines3 import DQN, PPO, SAC
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.vec_env import VecNormalize

from vlmrm_core.reward.base import Reward
from vlmrm_core.reward.shaping import ProgressShaping
from vlmrm_core.training.callbacks import CheckpointCallback, MetricsCallback
from vlmrm_core.wrappers import (
    CLIPRewardVecEnv,
    RolloutRewardCallback,
    WrapperError,
    make_clip_vec_env,
)


class FrameReward:
    """A number in [0, 1) that identifies the frame (CRC32); records every call's batch size."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        self.calls.append(len(frames))
        crc = [zlib.crc32(np.ascontiguousarray(f).tobytes()) % 16_777_213 for f in frames]
        return np.array(crc, dtype=np.float32) / 16_777_216  # exact in float32


class StopAt(BaseCallback):
    """Stops ``learn()`` at the ``n``-th step: in the middle of a rollout window."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n

    def _on_step(self) -> bool:
        return self.n_calls < self.n


def stored_rewards(model: OffPolicyAlgorithm) -> np.ndarray:
    buffer = model.replay_buffer
    assert buffer is not None
    return buffer.rewards[: buffer.buffer_size if buffer.full else buffer.pos]


def checked(algo: type[OffPolicyAlgorithm]) -> type[OffPolicyAlgorithm]:
    """``algo`` whose ``train()`` first checks that no stored reward is a placeholder."""

    class Checked(algo):  # type: ignore[valid-type,misc]
        trained_at: list[int]

        def train(self, *args: Any, **kwargs: Any) -> None:
            assert not np.isnan(stored_rewards(self)).any(), "a placeholder reached train()"
            self.trained_at.append(self.num_timesteps)
            super().train(*args, **kwargs)

    return Checked


DQN_SETUP: dict[str, Any] = {
    "algo": DQN,
    "env_id": "CartPole-v1",
    "env_kwargs": None,
    "kwargs": {
        "learning_starts": 10,
        "batch_size": 8,
        "target_update_interval": 20,
        "policy_kwargs": {"net_arch": [16]},
    },
}
SAC_SETUP: dict[str, Any] = {
    "algo": SAC,
    "env_id": "Pendulum-v1",
    "env_kwargs": {"max_episode_steps": 15},  # so that episodes end (and wrap the accounting)
    "kwargs": {"learning_starts": 10, "batch_size": 8, "policy_kwargs": {"net_arch": [16]}},
}


class Run:
    """One short training run; its reward calls, episode summaries and replay buffer."""

    def __init__(
        self,
        setup: dict[str, Any],
        *,
        defer: bool,
        total: int,
        n_envs: int = 2,
        callbacks: Sequence[BaseCallback] = (),
        reward: Any = None,
        **kwargs: Any,
    ) -> None:
        self.reward = FrameReward() if reward is None else reward
        self.venv = make_clip_vec_env(
            setup["env_id"],
            n_envs,
            self.reward,
            seed=3,
            env_kwargs=setup["env_kwargs"],
            defer=defer,
        )
        self.episodes: list[dict[str, Any]] = []
        self.venv.on_scored.append(self._episodes)
        algo = checked(setup["algo"])
        self.model = algo(
            "MlpPolicy", self.venv, seed=0, device="cpu", **{**setup["kwargs"], **kwargs}
        )
        self.trained_at: list[int] = []
        self.model.trained_at = self.trained_at
        first = [RolloutRewardCallback()] if defer else []
        self.model.learn(total, callback=[*first, *callbacks])

    def _episodes(self, rewards: np.ndarray, infos: list[dict[str, Any]]) -> None:
        assert not np.isnan(rewards).any()
        self.episodes += [info["episode_clip"] for info in infos if "episode_clip" in info]

    @property
    def buffer(self) -> Any:
        return self.model.replay_buffer

    def assert_same_buffer_as(self, other: Run) -> None:
        assert (self.buffer.pos, self.buffer.full) == (other.buffer.pos, other.buffer.full)
        np.testing.assert_array_equal(self.buffer.rewards, other.buffer.rewards)
        np.testing.assert_array_equal(self.buffer.actions, other.buffer.actions)
        np.testing.assert_array_equal(self.buffer.observations, other.buffer.observations)


@pytest.mark.parametrize(
    ("setup", "train_freq", "buffer_size"),
    [
        pytest.param(DQN_SETUP, 4, 30, id="dqn"),
        # A rollout window (8 steps) longer than the buffer (5 rows): rows written twice in it.
        pytest.param(DQN_SETUP, 8, 10, id="dqn-window-longer-than-buffer"),
        pytest.param(SAC_SETUP, 3, 24, id="sac"),
    ],
)
def test_deferred_run_equals_the_immediate_run_with_one_call_per_window(
    setup: dict[str, Any], train_freq: int, buffer_size: int
) -> None:
    n_envs, total = 2, 96
    kwargs = {"train_freq": train_freq, "buffer_size": buffer_size}
    step = Run(setup, defer=False, total=total, n_envs=n_envs, **kwargs)
    deferred = Run(setup, defer=True, total=total, n_envs=n_envs, **kwargs)

    assert deferred.buffer.full  # wrapped around
    deferred.assert_same_buffer_as(step)
    assert not np.isnan(deferred.buffer.rewards).any()
    # One batched call per rollout window, each on all its frames; immediate: one per step.
    window = train_freq * n_envs
    assert deferred.reward.calls == [window] * -(-total // window)
    assert step.reward.calls == [n_envs] * (step.model.num_timesteps // n_envs)
    # Training started (after learning_starts) and never saw a placeholder.
    assert deferred.trained_at and deferred.trained_at == step.trained_at
    # CLIP episode returns: the same episodes, the same returns.
    assert deferred.episodes and deferred.episodes == step.episodes
    assert deferred.venv.pending_steps == 0


class FrameRewardSource(Reward):
    """:class:`FrameReward` as a ``Reward``, which progress shaping wraps."""

    identity = "test/frame-crc"
    description = "CRC32 of the pixels"

    def __init__(self) -> None:
        self.fingerprint = FrameReward()

    def reward(self, frames: Any) -> np.ndarray:
        return self.fingerprint(frames)


def test_deferred_shaped_run_equals_the_immediate_one() -> None:
    """The shaping's per-env previous reward sees a window's steps in step order, episode ends
    included, so scoring a rollout window at once gives the rewards of scoring every step."""
    kwargs = {"train_freq": 4, "buffer_size": 30}
    runs = {}
    for defer in (False, True):
        shaped = ProgressShaping(FrameRewardSource(), gamma=0.9)
        runs[defer] = Run(DQN_SETUP, defer=defer, total=96, reward=shaped, **kwargs)
    runs[True].assert_same_buffer_as(runs[False])
    assert runs[True].reward.base.fingerprint.calls == [8] * 12  # one call per window
    # Shaped rewards: some negative (the potential fell), unlike the fingerprint itself.
    assert (runs[True].buffer.rewards < 0).any()
    assert runs[True].episodes and runs[True].episodes == runs[False].episodes


class CheckedCheckpoints(CheckpointCallback):
    """The Studio's checkpoints every 10 env steps; notes whether each saved buffer had NaNs."""

    def __init__(self, folder: Path) -> None:
        super().__init__(folder, every_steps=10)
        self.saved_with_placeholders: list[bool] = []

    def save(self) -> Any:
        checkpoint = super().save()
        assert isinstance(self.model, OffPolicyAlgorithm)
        self.saved_with_placeholders.append(bool(np.isnan(stored_rewards(self.model)).any()))
        return checkpoint


def test_stopped_and_checkpointed_in_the_middle_of_windows(tmp_path: Path) -> None:
    runs = {}
    for defer in (False, True):
        checkpoints = CheckedCheckpoints(tmp_path / str(defer))
        run = Run(
            DQN_SETUP,
            defer=defer,
            total=400,
            # Windows of 4 steps × 2 envs; checkpoints at 10, 20, ... env steps; stop at step 30.
            callbacks=[checkpoints, StopAt(30)],
            train_freq=4,
            buffer_size=80,
        )
        runs[defer] = (run, checkpoints)
    (step, _), (deferred, checkpoints) = runs[False], runs[True]

    # SB3 returns before storing the stopping step's transition: 29 stored.
    assert deferred.model.num_timesteps == step.model.num_timesteps == 60
    assert deferred.buffer.pos == 29 and not np.isnan(stored_rewards(deferred.model)).any()
    deferred.assert_same_buffer_as(step)
    assert deferred.episodes == step.episodes
    assert deferred.venv.pending_steps == 0
    # Every checkpoint was saved inside a window, with complete rewards.
    assert len(checkpoints.saved_with_placeholders) == 6
    assert not any(checkpoints.saved_with_placeholders)
    (replay,) = (tmp_path / "True").glob("replay_*.pkl")
    probe = DQN("MlpPolicy", deferred.venv, buffer_size=80, device="cpu")
    probe.load_replay_buffer(replay)
    np.testing.assert_array_equal(probe.replay_buffer.rewards, step.buffer.rewards)


def test_metrics_rows_between_windows_have_the_clip_returns() -> None:
    rows: dict[bool, list[dict[str, Any]]] = {False: [], True: []}
    runs = {
        defer: Run(
            DQN_SETUP,
            defer=defer,
            total=160,
            callbacks=[MetricsCallback(rows[defer].extend, every_steps=20, echo=False)],
            train_freq=4,
            buffer_size=50,
        )
        for defer in (False, True)
    }
    deferred, immediate = rows[True], rows[False]
    # Rows come between windows (8 env steps), at the first window end at or after 20, 40, ...
    assert [r["step"] for r in deferred] == [24, 40, 64, 80, 104, 120, 144, 160]
    assert all("clip_reward_mean" in r and "gt_reward_mean" in r for r in deferred)
    assert sum(r["episodes"] for r in deferred) == sum(r["episodes"] for r in immediate)

    def mean_return(rows: list[dict[str, Any]]) -> float:
        weighted = [(r["episode_clip_return"], r["episodes"]) for r in rows if r["episodes"]]
        return sum(v * n for v, n in weighted) / sum(n for _, n in weighted)

    assert mean_return(deferred) == pytest.approx(mean_return(immediate))
    assert mean_return(deferred) == pytest.approx(
        np.mean([e["clip_return"] for e in runs[True].episodes])
    )

    # Per-step CLIP reward means over the same 160 steps agree too.
    def overall_mean(rows: list[dict[str, Any]]) -> float:
        sizes = np.diff([0] + [r["step"] for r in rows])
        return float(np.dot([r["clip_reward_mean"] for r in rows], sizes) / sizes.sum())

    assert overall_mean(deferred) == pytest.approx(overall_mean(immediate), rel=1e-6)


def test_deferred_env_without_the_callback_is_refused() -> None:
    venv = make_clip_vec_env("CartPole-v1", 2, FrameReward(), defer=True)
    model = DQN("MlpPolicy", venv, device="cpu")
    with pytest.raises(WrapperError, match="RolloutRewardCallback"):
        model.learn(10)


@pytest.mark.parametrize("case", ["immediate-env", "ppo", "vec-normalize", "one-row-buffer"])
def test_what_the_callback_cannot_handle_is_refused(case: str) -> None:
    venv: Any = make_clip_vec_env("CartPole-v1", 2, FrameReward(), defer=case != "immediate-env")
    model: BaseAlgorithm
    if case == "ppo":
        model = PPO("MlpPolicy", venv, n_steps=8, batch_size=8, device="cpu")
        message = "not an off-policy"
    elif case == "vec-normalize":
        model = DQN("MlpPolicy", VecNormalize(venv), device="cpu")
        message = "VecNormalize"
    elif case == "one-row-buffer":
        model = DQN("MlpPolicy", venv, buffer_size=2, device="cpu")
        message = "at least 2 rows"
    else:
        model = DQN("MlpPolicy", venv, device="cpu")
        message = "defer=True"
    with pytest.raises(WrapperError, match=message):
        model.learn(16, callback=RolloutRewardCallback())


def test_score_pending_is_one_call_in_step_order() -> None:
    reward = FrameReward()
    venv = make_clip_vec_env("CartPole-v1", 2, reward, seed=0, defer=True)
    assert isinstance(venv, CLIPRewardVecEnv)
    venv._writer = RolloutRewardCallback()  # stepping by hand: nothing writes to a buffer
    venv.reset()
    frames = []
    for _ in range(3):
        _, rewards, _, _ = venv.step(np.zeros(2, dtype=np.int64))
        assert np.isnan(rewards).all()
        frames.append(np.stack(venv.get_images()))
    assert reward.calls == [] and venv.pending_steps == 3
    scored = venv.score_pending()
    assert reward.calls == [6] and venv.pending_steps == 0
    np.testing.assert_array_equal(scored, FrameReward()(np.concatenate(frames)).reshape(3, 2))
    venv.close()


@pytest.mark.slow
def test_readme_rollout_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import vlmrm_core

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    (block,) = [b for b in re.findall(r"^```py\n(.*?)^```", readme, re.M | re.S) if "defer" in b]
    for key, value in {
        "n_envs=8": "n_envs=2",
        "train_freq=16": "train_freq=4, learning_starts=8, batch_size=8",
        "total_timesteps=100_000": "total_timesteps=32",
    }.items():
        assert key in block
        block = block.replace(key, value)
    spec = vlmrm_core.RewardSpec(goal_prompts=("pole vertically upright on top of the cart",))
    reward_model = vlmrm_core.RewardModel.from_spec(
        spec, model="ViT-S-32-alt", pretrained=None, device="cpu"
    )
    namespace: dict[str, Any] = {"reward_model": reward_model}
    monkeypatch.chdir(tmp_path)
    exec(compile(block, "README.md rollout example", "exec"), namespace)  # noqa: S102
    model = namespace["model"]
    assert model.num_timesteps == 32
    assert not np.isnan(stored_rewards(model)).any()
    namespace["venv"].close()
