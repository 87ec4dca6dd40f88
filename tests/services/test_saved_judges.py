"""Saved judges: judge reward files kept under a name in the data dir."""

from __future__ import annotations

import numpy as np
import pytest

from tests.studio._judges import QUESTION, tiny_judge_source
from vlmrm_core.errors import InvalidInputError
from vlmrm_core.reward.file import load_reward
from vlmrm_core.services.judge_scores import JudgeRequest, load_judge_reward
from vlmrm_core.services.saved_judges import JudgeExistsError, list_saved_judges, save_judge

__all__ = ["tiny_judge_source"]  # a fixture used below


def test_save_list_overwrite_and_load_as_a_reward(data_dir, tiny_judge_source):
    reward = load_judge_reward(JudgeRequest(str(tiny_judge_source), QUESTION), device="cpu")
    save_judge("b: upright?", reward, environment="CartPole")
    save_judge("a/other", reward.with_question("Is the pole on the cart?"), environment="Robot")
    assert [j.name for j in list_saved_judges()] == ["a/other", "b: upright?"]
    # the ones written for the environment come first
    assert [j.name for j in list_saved_judges(environment="cartpole-sweep")] == [
        "b: upright?",
        "a/other",
    ]
    with pytest.raises(JudgeExistsError, match="overwrite"):
        save_judge("b: upright?", reward)
    with pytest.raises(InvalidInputError, match="name"):
        save_judge("  ", reward)
    saved = save_judge("b: upright?", reward.with_question("Is it?"), overwrite=True)
    assert saved.request.question == "Is it?" and saved.environment is None
    assert saved.model_label == tiny_judge_source.name
    # a saved judge is a reward file: load_reward gives the same rewards
    frames = np.random.default_rng(0).integers(0, 255, (3, 24, 24, 3), dtype=np.uint8)
    loaded = load_reward(saved.path, device="cpu")
    assert np.allclose(loaded(frames), reward.with_question("Is it?")(frames), atol=1e-5)


def test_files_that_are_not_saved_judges_are_skipped(data_dir):
    folder = data_dir / "judges"
    folder.mkdir()
    (folder / "judge-broken.json").write_text("{not json")
    (folder / "judge-other.json").write_text('{"format": "vlmrm-reward"}')
    assert list_saved_judges() == []
