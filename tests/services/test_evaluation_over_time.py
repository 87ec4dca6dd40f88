"""Evaluating a reward that looks at time: a windowed prompt set scored over each episode in time
order (as training sees it), and the labelled frames' rewards picked from it."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import frame_info, unit_rows
from vlmrm_core.clip.embedding import embedding_dim
from vlmrm_core.metrics import reward_metrics
from vlmrm_core.reward.model import score_embeddings, score_episode_embeddings, window_means
from vlmrm_core.reward.spec import RewardKind, RewardSpec
from vlmrm_core.services import evaluation
from vlmrm_core.services.episodes import clip_scores_over_time

LENGTHS = (4, 5, 3)
WINDOWED = RewardSpec(("a bright green robot",), window=3)


def _episode_frames() -> list:
    """Three episodes whose frames are stored out of time order (steps descending), so that
    scoring in storage order would get every window wrong."""
    frames = []
    for episode, length in enumerate(LENGTHS):
        for step in reversed(range(length)):
            frames.append(
                frame_info(len(frames), hash=f"e{episode}s{step}", episode=episode, step=step)
            )
    return frames


def _by_hand(clip, frames, x: np.ndarray, spec: RewardSpec) -> dict[str, float]:
    """Each frame's reward from scoring its episode's embeddings in step order."""
    rewards: dict[str, float] = {}
    for episode in range(len(LENGTHS)):
        rows = sorted(
            (i for i, f in enumerate(frames) if f.episode == episode), key=lambda i: frames[i].step
        )
        values = score_episode_embeddings(clip, x[rows], spec).rewards
        rewards.update({frames[i].hash: float(v) for i, v in zip(rows, values, strict=True)})
    return rewards


def _labelled(frames, values: dict[str, float]) -> evaluation.LabelledFrames:
    hashes = tuple(sorted(values))
    return evaluation.LabelledFrames("robot", hashes, np.array([values[h] for h in hashes]))


def test_a_windowed_set_is_evaluated_over_each_episode_in_time_order(tiny_clip) -> None:
    frames = _episode_frames()
    x = unit_rows(len(frames), embedding_dim(tiny_clip), seed=3)
    # Labels: late frames succeed; a few frames left unlabelled still feed their successors.
    labels = {f.hash: float(f.step >= 2) for f in frames if f.step != 1}
    labelled = _labelled(frames, labels)

    result = evaluation.evaluate_reward_over_time(
        tiny_clip, frames, x, labelled, WINDOWED, prompt_set="windowed", n_boot=200
    )

    expected = _by_hand(tiny_clip, frames, x, WINDOWED)
    want = np.array([expected[h] for h in labelled.hashes])
    np.testing.assert_allclose(result.rewards, want, rtol=1e-6, atol=1e-7)
    metrics = reward_metrics(want, labelled.labels, n_boot=200, seed=0)
    assert result.metrics.epic_distance == pytest.approx(metrics.epic_distance, abs=1e-9)
    assert result.metrics.roc_auc == pytest.approx(metrics.roc_auc, abs=1e-9)
    assert not result.warnings  # every labelled frame is in an episode
    # Frame by frame (the old evaluation) is another reward.
    index = {f.hash: i for i, f in enumerate(frames)}
    alone = evaluation.evaluate_reward(
        tiny_clip,
        x[[index[h] for h in labelled.hashes]],
        labelled.labels,
        WINDOWED,
        prompt_set="windowed",
        n_boot=200,
    )
    assert not np.allclose(alone.rewards, result.rewards, atol=1e-4)
    assert alone.metrics.epic_distance != pytest.approx(result.metrics.epic_distance, abs=1e-6)


def test_a_window_of_one_gives_the_frame_by_frame_rewards(tiny_clip) -> None:
    frames = _episode_frames()
    x = unit_rows(len(frames), embedding_dim(tiny_clip), seed=4)
    spec = RewardSpec(("a bright green robot",), ("a robot",), alpha=0.5)
    over_time = clip_scores_over_time(tiny_clip, frames, x, spec)
    np.testing.assert_allclose(
        over_time.rewards, score_embeddings(tiny_clip, x, spec).rewards, rtol=1e-6, atol=1e-7
    )


def test_contrastive_probability_is_of_the_window_mean(tiny_clip) -> None:
    frames = _episode_frames()[:4]  # episode 0, steps 3 … 0
    x = unit_rows(len(frames), embedding_dim(tiny_clip), seed=5)
    spec = RewardSpec(
        ("a bright green robot",),
        kind=RewardKind.CONTRASTIVE,
        negatives=("a dark robot",),
        window=2,
    )
    scores = clip_scores_over_time(tiny_clip, frames, x, spec)
    in_time = x[::-1]  # steps 0 … 3
    want = score_embeddings(tiny_clip, window_means(in_time, 2), spec)
    assert scores.probability is not None and want.probability is not None
    np.testing.assert_allclose(scores.probability[::-1], want.probability, rtol=1e-6, atol=1e-7)


def test_frames_in_no_episode_are_scored_alone_and_the_user_is_told(tiny_clip) -> None:
    frames = [frame_info(i, hash=f"h{i}") for i in range(6)]  # uploads: no episode, no step
    x = unit_rows(len(frames), embedding_dim(tiny_clip), seed=6)
    labelled = _labelled(frames, {f.hash: float(i % 2) for i, f in enumerate(frames)})
    result = evaluation.evaluate_reward_over_time(
        tiny_clip, frames, x, labelled, WINDOWED, prompt_set="windowed", n_boot=0
    )
    single = score_embeddings(tiny_clip, x, WINDOWED).rewards
    np.testing.assert_allclose(result.rewards, single, rtol=1e-6, atol=1e-7)
    assert any(
        "looks back 3 frames" in w and "no labelled frame is in an episode" in w
        for w in result.warnings
    ), result.warnings

    mixed = [*_episode_frames(), frame_info(99, hash="loose")]
    x = unit_rows(len(mixed), embedding_dim(tiny_clip), seed=7)
    labelled = _labelled(mixed, {f.hash: float(f.step == 0) for f in mixed})
    result = evaluation.evaluate_reward_over_time(
        tiny_clip, mixed, x, labelled, WINDOWED, prompt_set="windowed", n_boot=0
    )
    assert any(f"1 of the {len(mixed)} labelled frames" in w for w in result.warnings)


def test_labelled_rewards_average_the_places_of_the_same_pixels() -> None:
    frames = [frame_info(0, hash="a"), frame_info(1, hash="b"), frame_info(2, hash="a")]
    got = evaluation.labelled_rewards(frames, np.array([1.0, 5.0, 3.0]), ["a", "b", "c"])
    np.testing.assert_allclose(got[:2], [2.0, 5.0])
    assert np.isnan(got[2])


def test_a_judge_of_two_frames_is_evaluated_over_each_episode(data_dir, tmp_path) -> None:
    from tests.judge._tiny_judges import write_idefics3
    from vlmrm_core.frames import FrameRecord
    from vlmrm_core.services.judge_evaluation import evaluate_judge, judge_rewards
    from vlmrm_core.services.judge_scores import JudgeRequest, load_judge_reward, score_dataset
    from vlmrm_core.store import add_label, dataset_frames, ingest_frames, init_db, load_pixels

    engine = init_db()
    rng = np.random.default_rng(2)
    records = [
        FrameRecord(
            rng.integers(0, 255, (16, 16, 3), dtype=np.uint8), "rollout", f"{e}/{t}", "R", e, t
        )
        for e, length in enumerate((3, 4))
        for t in range(length)
    ]
    ingest_frames(engine, "robot", iter(records), kind="rollout")
    frames = dataset_frames(engine, "robot")
    for f in frames:
        add_label(engine, "robot", f.hash, "ann", float(f.step >= 2))
    labelled = evaluation.labelled_frames(engine, "robot")
    folder = write_idefics3(tmp_path / "judge")
    question = "Is the pole upright? Answer yes or no."
    reward = load_judge_reward(JudgeRequest(str(folder), question, frames=2), device="cpu")

    result = evaluate_judge(
        reward, labelled, name="two", n_boot=0, over_time=score_dataset(engine, "robot", reward)
    )

    by_hand: dict[str, float] = {}
    for episode in (0, 1):
        ordered = sorted((f for f in frames if f.episode == episode), key=lambda f: f.step)
        values = reward.score_episode(np.stack([load_pixels(f.hash) for f in ordered]))
        by_hand.update({f.hash: float(v) for f, v in zip(ordered, values, strict=True)})
    want = np.array([by_hand[h] for h in labelled.hashes])
    np.testing.assert_allclose(result.rewards, want, rtol=1e-4, atol=1e-5)
    alone = judge_rewards(reward, labelled.hashes)  # each frame judged alone: another reward
    assert not np.allclose(alone, want, rtol=1e-4, atol=1e-5)
