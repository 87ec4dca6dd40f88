"""VOC over a stored dataset and time-reversed copies of its episodes (ReWiND)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests._lerobot_data import LENGTHS, write_lerobot_dataset
from vlmrm_core.errors import InvalidInputError
from vlmrm_core.reward.spec import RewardSpec
from vlmrm_core.services.episodes import REVERSED_KEY, dataset_voc, make_reversed_copies


@pytest.fixture
def robot_db(tmp_path: Path, data_dir: Path):
    """A store holding a 3-episode LeRobot import called ``robot`` (episodes of 5, 9, 7)."""
    from vlmrm_core.services.dataset_import import import_lerobot
    from vlmrm_core.store import init_db

    engine = init_db()
    import_lerobot(engine, write_lerobot_dataset(tmp_path / "lr", "v3.0"), "robot")
    return engine


def green(engine, name: str) -> tuple[list, np.ndarray]:
    """The frames of a dataset and a reward that rises through each test episode (its green
    channel grows with the frame index)."""
    from vlmrm_core.store import dataset_frames, load_pixels

    frames = dataset_frames(engine, name)
    return frames, np.array([load_pixels(f.hash)[..., 1].mean() for f in frames])


def test_reversed_copies_keep_pixels_and_episodes_and_mirror_steps(robot_db) -> None:
    from vlmrm_core.store import dataset_frames, get_dataset

    added = make_reversed_copies(robot_db, "robot", "robot reversed", demonstrations=True)
    assert added == sum(LENGTHS)
    forward = dataset_frames(robot_db, "robot")
    backward = dataset_frames(robot_db, "robot reversed")
    by_key = {(f.episode, f.step): f.hash for f in forward}
    for copy in backward:
        length = LENGTHS[copy.episode or 0]
        original_step = copy.extra[REVERSED_KEY] if copy.extra else None
        assert original_step == length - 1 - (copy.step or 0)
        assert by_key[(copy.episode, original_step)] == copy.hash
    # positions run forward in the reversed time: episode by episode, step 0 first
    assert [(f.episode, f.step) for f in backward] == [
        (e, s) for e, n in enumerate(LENGTHS) for s in range(n)
    ]
    summary = get_dataset(robot_db, "robot reversed")
    assert summary.kind == "lerobot" and summary.n_images == get_dataset(robot_db, "robot").n_images
    assert summary.meta[REVERSED_KEY] == {"dataset": "robot", "episodes": [0, 1, 2]}


def test_only_successful_episodes_are_reversed_by_default(robot_db) -> None:
    from vlmrm_core.store import add_label, dataset_frames

    with pytest.raises(InvalidInputError, match="labelled successful"):
        make_reversed_copies(robot_db, "robot", "rev")
    frames = dataset_frames(robot_db, "robot")
    last = {f.episode: f for f in frames}  # the last frame of each episode
    add_label(robot_db, "robot", last[1].hash, "ann", 1.0)
    add_label(robot_db, "robot", last[2].hash, "ann", 0.0)
    assert make_reversed_copies(robot_db, "robot", "rev") == LENGTHS[1]
    with pytest.raises(InvalidInputError, match="exists already"):
        make_reversed_copies(robot_db, "robot", "rev", episodes=[0])
    with pytest.raises(InvalidInputError, match=r"\[7\] are not in"):
        make_reversed_copies(robot_db, "robot", "rev2", episodes=[0, 7])


def test_voc_of_a_rising_reward_and_the_gap_to_reversed_copies(robot_db) -> None:
    from vlmrm_core.metrics.progress import voc_gap

    frames, rewards = green(robot_db, "robot")
    forward = dataset_voc(frames, rewards, demonstrations=True, n_boot=200)
    assert forward.voc == pytest.approx(1.0) and forward.n_episodes == 3
    make_reversed_copies(robot_db, "robot", "back", demonstrations=True)
    back_frames, back_rewards = green(robot_db, "back")
    backward = dataset_voc(back_frames, back_rewards, demonstrations=True, n_boot=200)
    assert backward.voc == pytest.approx(-1.0)
    assert voc_gap(forward, backward).gap == pytest.approx(2.0)


def test_voc_uses_labels_unless_demonstrations(robot_db) -> None:
    from vlmrm_core.store import add_label, consensus_labels

    frames, rewards = green(robot_db, "robot")
    with pytest.raises(InvalidInputError, match="demonstrations"):
        dataset_voc(frames, rewards)
    add_label(robot_db, "robot", [f for f in frames if f.episode == 2][-1].hash, "ann", 1.0)
    labels = consensus_labels(robot_db, "robot").to_dict()
    result = dataset_voc(frames, rewards, labels=labels)
    assert result.per_episode.keys() == {2}
    with pytest.raises(InvalidInputError, match="rewards for"):
        dataset_voc(frames, rewards[:-1], demonstrations=True)


def test_episode_rows_are_each_episode_in_step_order_and_the_loose_frames(robot_db) -> None:
    from vlmrm_core.services.episodes import episode_rows
    from vlmrm_core.store import FrameInfo, dataset_frames

    frames = list(reversed(dataset_frames(robot_db, "robot")))  # steps now run backwards
    loose = FrameInfo(**{**frames[0].__dict__, "episode": None, "step": None})
    frames.insert(3, loose)
    episodes, others = episode_rows(frames)
    assert others.tolist() == [3]
    assert [len(rows) for rows in episodes] == list(LENGTHS)
    for e, rows in enumerate(episodes):
        assert [frames[i].episode for i in rows] == [e] * LENGTHS[e]
        assert [frames[i].step for i in rows] == list(range(LENGTHS[e]))


def test_reversed_copies_are_found_by_their_source(robot_db) -> None:
    from vlmrm_core.services.episodes import reversed_copies

    assert reversed_copies(robot_db, "robot") == []
    make_reversed_copies(robot_db, "robot", "back 1", demonstrations=True)
    make_reversed_copies(robot_db, "robot", "back 2", episodes=[1])
    make_reversed_copies(robot_db, "back 1", "back again", demonstrations=True)
    assert reversed_copies(robot_db, "robot") == ["back 1", "back 2"]


def test_voc_gap_against_a_reversed_copy_takes_the_rewards_of_the_same_pixels(robot_db) -> None:
    from vlmrm_core.services.episodes import dataset_voc_gap
    from vlmrm_core.store import dataset_frames

    frames, rewards = green(robot_db, "robot")
    make_reversed_copies(robot_db, "robot", "robot back", demonstrations=True)
    copied = dataset_frames(robot_db, "robot back")
    forward = dataset_voc(frames, rewards, demonstrations=True)
    gap = dataset_voc_gap(forward, frames, rewards, copied)
    assert forward.voc == pytest.approx(1.0) and gap.reversed.voc == pytest.approx(-1.0)
    assert gap.gap == pytest.approx(2.0) and gap.n_pairs == len(LENGTHS)
    # Rewards of the copy given explicitly (a reward that is not per frame scores it itself).
    flat = dataset_voc_gap(forward, frames, rewards, copied, np.zeros(len(copied)))
    assert flat.gap is None and flat.reversed.voc is None
    with pytest.raises(InvalidInputError, match="reversed frames"):
        dataset_voc_gap(forward, frames, rewards, copied, [1.0])


# Rewards that look at time (issue 19): scored over each episode in time order, and their VOC
# gap scored on the reversed copy itself.

WINDOWED = RewardSpec(("a robot arm reaching the goal",), ("a robot arm",), alpha=0.5, window=3)


def stored_episodes(engine, frames) -> list[np.ndarray]:
    """Each episode's pixels in step order."""
    from vlmrm_core.services.episodes import episode_rows
    from vlmrm_core.store import load_pixels

    return [
        np.stack([load_pixels(frames[i].hash) for i in rows]) for rows in episode_rows(frames)[0]
    ]


def test_stored_episodes_are_scored_in_time_order_across_chunks(robot_db, tiny_clip) -> None:
    from vlmrm_core.reward.model import RewardModel
    from vlmrm_core.services.episodes import (
        episode_rows,
        score_frames_over_time,
        score_stored_episode,
    )
    from vlmrm_core.store import dataset_frames

    reward = RewardModel(tiny_clip, WINDOWED)
    frames = list(reversed(dataset_frames(robot_db, "robot")))  # the store's order is not time's
    rows = episode_rows(frames)[0][1]
    hashes = [frames[i].hash for i in rows]
    pixels = stored_episodes(robot_db, frames)[1]
    seen: list[tuple[int, int | None]] = []
    chunked = score_stored_episode(
        reward, hashes, chunk_size=2, progress=lambda d, t, _m: seen.append((d, t))
    )
    # the window carries over from one chunk to the next: the whole episode's rewards
    np.testing.assert_allclose(chunked, reward.score_episode(pixels), rtol=1e-5, atol=1e-6)
    assert seen[-1] == (len(hashes), len(hashes)) and len(seen) == (len(hashes) + 1) // 2
    every = score_frames_over_time(reward, frames)
    for rows, episode in zip(
        episode_rows(frames)[0], stored_episodes(robot_db, frames), strict=True
    ):
        np.testing.assert_allclose(every[rows], reward.score_episode(episode), rtol=1e-5, atol=1e-6)
    # frame by frame (no window) differs: the window matters on these frames
    assert not np.allclose(reward(pixels), chunked, rtol=1e-5, atol=1e-6)


def test_voc_gap_of_a_windowed_reward_scores_the_reversed_copy(robot_db, tiny_clip) -> None:
    from vlmrm_core.reward.model import RewardModel
    from vlmrm_core.services.episodes import (
        dataset_voc_gap,
        episode_rows,
        reward_voc_gap,
        score_frames_over_time,
    )
    from vlmrm_core.store import dataset_frames

    reward = RewardModel(tiny_clip, WINDOWED)
    frames = dataset_frames(robot_db, "robot")
    rewards = score_frames_over_time(reward, frames)
    forward = dataset_voc(frames, rewards, demonstrations=True, n_boot=50)
    make_reversed_copies(robot_db, "robot", "robot back", demonstrations=True)
    copied = dataset_frames(robot_db, "robot back")
    # By hand: each copied episode played backwards through the window.
    by_hand = np.zeros(len(copied))
    for rows, pixels in zip(
        episode_rows(copied)[0], stored_episodes(robot_db, copied), strict=True
    ):
        by_hand[rows] = reward.score_episode(pixels)
    expected = dataset_voc_gap(forward, frames, rewards, copied, by_hand, n_boot=50)
    naive = dataset_voc_gap(forward, frames, rewards, copied, n_boot=50)  # reuses forward rewards
    gap = reward_voc_gap(reward, forward, frames, rewards, copied, n_boot=50)
    assert gap.reversed.voc == pytest.approx(expected.reversed.voc)
    assert gap.gap == pytest.approx(expected.gap)
    assert gap.gap != pytest.approx(naive.gap)  # reusing the forward rewards is wrong here


def test_voc_gap_of_a_single_frame_reward_reuses_the_forward_rewards(robot_db) -> None:
    from tests.reward._brightness import BrightnessReward
    from vlmrm_core.services.episodes import (
        dataset_voc_gap,
        looks_at_time,
        reward_voc_gap,
        score_frames_over_time,
    )
    from vlmrm_core.store import dataset_frames

    reward = BrightnessReward()
    assert not looks_at_time(reward)
    frames = dataset_frames(robot_db, "robot")
    rewards = score_frames_over_time(reward, frames)
    forward = dataset_voc(frames, rewards, demonstrations=True, n_boot=50)
    make_reversed_copies(robot_db, "robot", "robot back", demonstrations=True)
    copied = dataset_frames(robot_db, "robot back")
    calls = len(reward.calls)
    gap = reward_voc_gap(reward, forward, frames, rewards, copied, n_boot=50)
    assert len(reward.calls) == calls  # exact and free: nothing scored again
    assert gap == dataset_voc_gap(forward, frames, rewards, copied, n_boot=50)
    assert gap.gap == pytest.approx(2.0)  # brightness rises through every test episode
