"""Judge reward files: save_reward → vlmrm_core.load_reward gives the same judge, on two
architectures, against the in-memory reward and a plain transformers forward pass."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

import vlmrm_core
from tests.judge.test_reward import QUESTION, frames, plain_log_probs
from vlmrm_core.errors import VlmrmError
from vlmrm_core.judge import JudgeReward
from vlmrm_core.reward.file import (
    REWARD_SOURCES,
    RewardFileError,
    read_reward_data,
    reward_file_data,
    save_reward,
    write_reward_data,
)


def test_the_judge_source_is_registered_and_imported_only_when_loaded():
    source = REWARD_SOURCES["judge"]
    assert source.keys == ("model", "judge")
    assert isinstance(source.builder, str)  # "module:qualname": reading a file imports nothing


def test_write_then_load_gives_the_same_rewards(arch, judge_folders, loaded_judges, tmp_path):
    reward = JudgeReward(loaded_judges[arch], QUESTION, mode="log-odds")
    path = tmp_path / "judge.json"
    written = save_reward(path, reward, {"dataset": "cp9", "n_labels": 3})
    data = json.loads(path.read_text())
    assert data == written
    assert (data["format"], data["version"], data["source"]) == ("vlmrm-reward", 2, "judge")
    assert data["provenance"]["dataset"] == "cp9"
    assert data["judge"] == {
        "question": QUESTION,
        "answers": ["yes", "no"],
        "mode": "log-odds",
        "frames": 1,
    }

    loaded = vlmrm_core.load_reward(path, device="cpu")
    assert isinstance(loaded, JudgeReward) and loaded.identity == reward.identity
    batch = frames(4, seed=11)
    got = loaded(batch)
    assert got.dtype == np.float32 and np.isfinite(got).all()
    np.testing.assert_allclose(got, reward(batch), atol=1e-5)
    yes, no = loaded.tokens.positive, loaded.tokens.negative
    for frame, value in zip(batch, got, strict=True):
        plain = plain_log_probs(judge_folders[arch], QUESTION, [frame])
        assert value == pytest.approx(float(plain[yes] - plain[no]), abs=1e-5)


def test_a_relative_judge_folder_travels_with_its_reward_file(
    judge_folders, loaded_judges, tmp_path
):
    bundle = tmp_path / "bundle"
    name = judge_folders["idefics3"].name  # the identity names the folder and hashes its files
    shutil.copytree(judge_folders["idefics3"], bundle / name)
    reward = JudgeReward(loaded_judges["idefics3"], QUESTION, frames=2, mode="probability")
    data = reward.to_dict()
    data["model"]["path"] = name  # relative to the reward file
    write_reward_data(bundle / "r.json", reward_file_data(data))

    moved = tmp_path / "elsewhere"
    shutil.move(bundle, moved)
    loaded = vlmrm_core.load_reward(moved / "r.json", device="cpu")
    assert isinstance(loaded, JudgeReward) and loaded.identity == reward.identity
    episode = frames(3, seed=12)
    np.testing.assert_allclose(loaded.score_episode(episode), reward.score_episode(episode))


def test_bad_judge_files_fail_with_one_line(loaded_judges, tmp_path):
    reward = JudgeReward(loaded_judges["idefics3"], QUESTION)
    data = reward_file_data(reward.to_dict())
    extra = dict(data, reward={"goal_prompts": ["x"]})  # a CLIP key in a judge file
    (tmp_path / "extra.json").write_text(json.dumps(extra))
    with pytest.raises(RewardFileError, match='unknown key "reward".*judge reward file'):
        read_reward_data(tmp_path / "extra.json")
    with pytest.raises(RewardFileError, match='no "judge" key'):
        write_reward_data(
            tmp_path / "missing.json", {k: v for k, v in data.items() if k != "judge"}
        )
    assert not (tmp_path / "missing.json").exists()
    empty = dict(data, judge={"answers": ["yes", "no"]})
    (tmp_path / "empty.json").write_text(json.dumps(empty))
    with pytest.raises(VlmrmError, match="not a judge reward"):
        vlmrm_core.load_reward(tmp_path / "empty.json", device="cpu")


def test_a_reward_that_cannot_describe_itself_is_refused(tmp_path):
    from vlmrm_core.reward.base import Reward

    class Brightness(Reward):
        source = "example"
        identity = "example/brightness"
        description = "mean pixel value"

        def reward(self, frames):
            return np.zeros(len(frames), np.float32)

    with pytest.raises(RewardFileError, match="cannot be saved as a reward file"):
        save_reward(tmp_path / "b.json", Brightness())


def test_a_windowed_judge_trains_over_time_as_it_scores_episodes(loaded_judges):
    """Two sub-envs stepped together, one episode ending mid-way: the wrappers' history gives
    each episode exactly what score_episode gives it."""
    reward = JudgeReward(loaded_judges["idefics3"], QUESTION, frames=2)
    assert JudgeReward(loaded_judges["idefics3"], QUESTION).history(2) is None
    history = reward.history(2)
    assert history is not None
    a, b = frames(4, seed=21), frames(3, seed=22)
    # step 0: a0 b0; step 1: a1 b1; step 2: a2 b2 (b's episode ends); step 3: a3 and b's next
    # episode starts with a3's pixels, judged alone.
    got = [
        history.score(np.stack([a[0], b[0]]), [0, 1]),
        history.score(np.stack([a[1], b[1]]), [0, 1]),
        history.score(np.stack([a[2], b[2]]), [0, 1], ends=[False, True]),
        history.score(np.stack([a[3], a[3]]), [0, 1]),
    ]
    np.testing.assert_allclose([g[0] for g in got], reward.score_episode(a), atol=1e-5)
    np.testing.assert_allclose([g[1] for g in got[:3]], reward.score_episode(b), atol=1e-5)
    assert got[3][1] == pytest.approx(reward(a[3:4])[0], abs=1e-5)
    history.reset()
    assert history.score(a[1:2], [0])[0] == pytest.approx(reward(a[1:2])[0], abs=1e-5)
