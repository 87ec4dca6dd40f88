"""Rewards that look at more than one frame: the windowed CLIP reward and progress shaping."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import TINY_MODEL
from tests.reward._brightness import BrightnessReward
from vlmrm_core.clip.embedding import encode_images
from vlmrm_core.reward.file import load_reward, read_reward_file, save_reward
from vlmrm_core.reward.model import RewardModel, score_embeddings
from vlmrm_core.reward.shaping import ProgressShaping
from vlmrm_core.reward.spec import RewardSpec, SpecError

GOAL = ("a pole standing upright",)


def episode(n: int = 7, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 40, 56, 3), dtype=np.uint8)


def by_hand(clip, frames: np.ndarray, spec: RewardSpec) -> np.ndarray:
    """Frame t's reward: the prompt reward of the plain mean of embeddings t−k+1 … t."""
    x = encode_images(clip, frames)
    k = spec.window
    means = np.stack([x[max(0, t - k + 1) : t + 1].mean(axis=0) for t in range(len(x))])
    return score_embeddings(clip, means, spec).rewards


@pytest.mark.parametrize("bad", [0, -1, 1.5, "two", True, None])
def test_window_must_be_a_whole_number_of_at_least_one(bad: object) -> None:
    with pytest.raises(SpecError, match="window must be a whole number of frames ≥ 1"):
        RewardSpec(GOAL, window=bad)  # type: ignore[arg-type]


def test_window_is_serialised_only_when_above_one() -> None:
    single = RewardSpec(GOAL)
    assert "window" not in single.to_dict()  # old files and identities are unchanged
    windowed = RewardSpec(GOAL, window=3)
    assert windowed.to_dict()["window"] == 3
    assert RewardSpec.from_dict(windowed.to_dict()) == windowed
    assert RewardSpec.from_dict({"goal_prompts": list(GOAL), "window": 2.0}).window == 2


@pytest.mark.parametrize(
    "spec",
    [
        RewardSpec(GOAL, ("a pole",), alpha=0.5, window=3),
        RewardSpec(GOAL, kind="contrastive", negatives=("a pole lying down",), window=2),
    ],
    ids=["regularized", "contrastive"],
)
def test_score_episode_is_the_reward_of_the_mean_of_the_last_k_embeddings(
    tiny_clip, spec: RewardSpec
) -> None:
    frames = episode()
    model = RewardModel(tiny_clip, spec)
    np.testing.assert_allclose(
        model.score_episode(frames), by_hand(tiny_clip, frames, spec), atol=1e-5
    )
    # reward() scores frames alone; the window changes the rewards after the first frame.
    alone = model.reward(frames)
    single = RewardModel(tiny_clip, spec.replace(window=1))
    np.testing.assert_allclose(alone, single.score_episode(frames), atol=1e-6)
    if spec.kind.value == "regularized":
        assert not np.allclose(model.score_episode(frames)[1:], alone[1:], atol=1e-4)


def test_history_gives_score_episode_frame_by_frame_for_interleaved_envs(tiny_clip) -> None:
    spec = RewardSpec(GOAL, ("a pole",), alpha=1.0, window=3)
    model = RewardModel(tiny_clip, spec)
    a, b = episode(5, seed=1), episode(4, seed=2)
    history = model.history(2)
    assert history is not None and RewardModel(tiny_clip, spec.replace(window=1)).history(2) is None
    # Env 0 runs episode a then the first frames of b; env 1 runs b. Two steps per call.
    got0: list[float] = []
    got1: list[float] = []
    for t in range(0, 8, 2):
        frames, envs, ends = [], [], []
        for s in (t, t + 1):
            frames += [a[s] if s < 5 else b[s - 5], b[s % 4]]
            envs += [0, 1]
            ends += [s == 4, s % 4 == 3]
        out = history.score(np.stack(frames), envs, ends)
        got0 += out[0::2].tolist()
        got1 += out[1::2].tolist()
    np.testing.assert_allclose(got0[:5], by_hand(tiny_clip, a, spec), atol=1e-5)
    np.testing.assert_allclose(got0[5:], by_hand(tiny_clip, b[:3], spec), atol=1e-5)
    np.testing.assert_allclose(got1, np.tile(by_hand(tiny_clip, b, spec), 2), atol=1e-5)
    history.reset([1])  # a reset sub-env starts a fresh window
    np.testing.assert_allclose(
        history.score(a[:1], [1]), by_hand(tiny_clip, a[:1], spec), atol=1e-5
    )


def test_windowed_reward_file_round_trips_as_a_clip_file(tiny_clip, tmp_path: Path) -> None:
    spec = RewardSpec(GOAL, ("a pole",), alpha=0.5, window=4)
    path = tmp_path / "windowed.json"
    save_reward(path, RewardModel(tiny_clip, spec))
    data = json.loads(path.read_text())
    assert data["source"] == "clip" and data["reward"]["window"] == 4
    assert read_reward_file(path).reward == spec
    loaded = load_reward(path, device="cpu")
    assert isinstance(loaded, RewardModel) and loaded.spec.window == 4
    assert "mean of the last 4 frames" in loaded.description
    # The window is part of what the identity keys on.
    assert loaded.identity != RewardModel(tiny_clip, spec.replace(window=1)).identity
    data["reward"]["window"] = 0
    path.write_text(json.dumps(data))
    with pytest.raises(Exception, match="window must be a whole number"):
        read_reward_file(path)
    assert TINY_MODEL in loaded.identity


def test_progress_shaping_of_an_episode_is_gamma_r_next_minus_r() -> None:
    base = BrightnessReward()
    frames = episode(6, seed=3)
    potential = base.score_episode(frames).astype(np.float64)
    shaped = ProgressShaping(base, gamma=0.9)
    expected = 0.9 * potential - np.concatenate([[0.0], potential[:-1]])
    np.testing.assert_allclose(shaped.score_episode(frames), expected, atol=1e-6)
    np.testing.assert_allclose(shaped.reward(frames), potential, atol=1e-6)  # the potential
    assert shaped.identity == f"{base.identity}+progress(γ=0.9)"
    with pytest.raises(SpecError, match="γ must be in"):
        ProgressShaping(base, gamma=0.0)


def test_progress_shaping_of_a_windowed_reward_shapes_the_windowed_values(tiny_clip) -> None:
    spec = RewardSpec(GOAL, window=2)
    frames = episode(5, seed=4)
    windowed = by_hand(tiny_clip, frames, spec).astype(np.float64)
    shaped = ProgressShaping(RewardModel(tiny_clip, spec), gamma=0.5)
    expected = 0.5 * windowed - np.concatenate([[0.0], windowed[:-1]])
    np.testing.assert_allclose(shaped.score_episode(frames), expected, atol=1e-5)
    history = shaped.history(1)
    steps = [history.score(frames[t : t + 1], [0], [t == 4])[0] for t in range(5)]
    np.testing.assert_allclose(steps, expected, atol=1e-5)
    # The episode ended: the next frame starts from potential 0 and a fresh window.
    np.testing.assert_allclose(history.score(frames[:1], [0]), expected[:1], atol=1e-5)


def test_a_windowed_prompt_set_keeps_its_window(data_dir: Path) -> None:
    from vlmrm_core.reward.spec import ModelRef
    from vlmrm_core.store import PromptSet, get_prompt_set, init_db, save_prompt_set

    engine = init_db()
    spec = RewardSpec(GOAL, ("a pole",), alpha=0.5, window=5)
    save_prompt_set(engine, PromptSet("windowed", ModelRef(TINY_MODEL, None), spec))
    assert get_prompt_set(engine, "windowed").reward.window == 5


def test_reward_show_names_the_window(tiny_clip, tmp_path: Path, capsys) -> None:
    from vlmrm_core.cli.main import main

    path = tmp_path / "windowed.json"
    save_reward(path, RewardModel(tiny_clip, RewardSpec(GOAL, window=4)))
    assert main(["reward", "show", str(path)]) == 0
    assert "window     mean of the last 4 frames of an episode" in capsys.readouterr().out


def test_policy_evaluation_scores_a_windowed_reward_over_each_episode(tiny_clip) -> None:
    """Evaluation returns use the window as training does: each episode's stepped frames in
    order, the history restarting with every episode (the reset frame is scored alone)."""
    import gymnasium as gym

    from vlmrm_core.frames import FrameRecord
    from vlmrm_core.training.policy_eval import evaluate_policy

    class Left:  # a fixed policy, enough for rollout_env
        def predict(self, observation, deterministic=True):  # noqa: ANN001, ANN201
            return 0, None

    model = RewardModel(tiny_clip, RewardSpec(GOAL, ("a pole",), alpha=1.0, window=3))
    received: list[FrameRecord] = []
    result = evaluate_policy(
        Left(),  # type: ignore[arg-type]
        lambda: gym.make("CartPole-v1", render_mode="rgb_array"),
        model,
        episodes=2,
        max_steps=6,
        step=0,
        frame_sink=lambda step, records: received.extend(records),
        seed=3,
        batch_size=4,  # batches that cut across episodes
    )
    for episode, clip_return in enumerate(result.clip_returns):
        stepped = [r for r in received if r.episode == episode and r.step]
        frames = np.stack([r.pixels for r in stepped])
        expected = model.score_episode(frames)
        got = [r.extra["clip_reward"] for r in stepped]
        np.testing.assert_allclose(got, expected, rtol=0, atol=5e-7)
        assert clip_return == pytest.approx(float(expected.sum()), abs=5e-6)
    # Frame by frame the rewards differ (by ~1e-5 on these near-identical random-init frames,
    # 20× the tolerance above): the window is really applied.
    stepped = [r for r in received if r.episode == 0 and r.step]
    alone = model.reward(np.stack([r.pixels for r in stepped]))
    got = np.array([r.extra["clip_reward"] for r in stepped])
    assert np.abs(alone[1:] - got[1:]).max() > 1e-5
