"""Evaluate with a saved VLM judge beside a prompt set, VOC over episodes, and phrasing search."""

from __future__ import annotations

import numpy as np
import pytest

from tests.studio._judges import QUESTION, judge_in_models_dir, tiny_judge_source
from tests.studio._pages import TINY, open_with_random_model
from vlmrm_core.frames import FrameRecord
from vlmrm_core.judge import load_judge
from vlmrm_core.metrics import evaluate_epic
from vlmrm_core.reward.spec import ModelRef, RewardSpec
from vlmrm_core.services.episodes import dataset_voc
from vlmrm_core.services.evaluation import labelled_frames
from vlmrm_core.services.judge_evaluation import judge_rewards
from vlmrm_core.services.judge_scores import JudgeRequest, load_judge_reward
from vlmrm_core.services.saved_judges import save_judge
from vlmrm_core.store import (
    PromptSet,
    add_label,
    consensus_labels,
    dataset_frames,
    ingest_frames,
    init_db,
    save_prompt_set,
)

__all__ = ["judge_in_models_dir", "tiny_judge_source"]  # fixtures used by the tests below

LENGTHS = (4, 5, 3)


def _episodes():
    """Three rollouts whose frames brighten through time (distinct pixels per frame)."""
    rng = np.random.default_rng(0)
    for episode, length in enumerate(LENGTHS):
        for step in range(length):
            pixels = rng.integers(0, 60, (32, 32, 3), dtype=np.uint8)
            pixels[..., 1] += np.uint8(40 * step)
            yield FrameRecord(pixels, "rollout", f"ep{episode} t{step}", "Robot", episode, step)


@pytest.fixture
def robot_db(data_dir, judge_in_models_dir):
    """A rollout dataset ``robot`` (episodes of 4, 5, 3 frames), labelled so that episodes 0 and
    1 end in success and 2 in failure, a prompt set and a saved random-weight judge."""
    engine = init_db()
    ingest_frames(engine, "robot", _episodes(), kind="rollout")
    frames = dataset_frames(engine, "robot")
    for f in frames:
        last = f.step == LENGTHS[f.episode] - 1
        add_label(engine, "robot", f.hash, "ann", float(last and f.episode != 2))
    save_prompt_set(
        engine,
        PromptSet("robot goal", ModelRef(TINY, None), RewardSpec(("a bright green robot",))),
    )
    judge = load_judge_reward(JudgeRequest(str(judge_in_models_dir), QUESTION), device="cpu")
    save_judge("pole judge", judge, environment="robot")
    return engine


def _table(at):
    return next(d.value for d in at.dataframe if "EPIC distance" in d.value.columns)


def test_judge_ranked_with_prompt_sets_and_voc(robot_db, judge_in_models_dir):
    at = open_with_random_model("evaluate", "eval", reselect=True)
    assert not at.error, [e.value for e in at.error]
    table = _table(at)
    rows = {r["prompt set"]: r for _, r in table.iterrows()}
    assert set(rows) == {"robot goal", "pole judge"}
    assert rows["pole judge"]["model"] == "judge tiny-smolvlm"
    # random weights are said to be meaningless
    assert any("random weights" in w.value and "meaningless" in w.value for w in at.warning)

    judge = load_judge_reward(JudgeRequest(str(judge_in_models_dir), QUESTION), device="cpu")
    labelled = labelled_frames(robot_db, "robot")
    labelled_rewards = judge_rewards(judge, labelled.hashes)
    epic = evaluate_epic(labelled_rewards, labelled.labels, n_boot=0).epic_distance
    assert rows["pole judge"]["EPIC distance"] == pytest.approx(epic)

    frames = dataset_frames(robot_db, "robot")
    all_rewards = judge_rewards(judge, [f.hash for f in frames])
    labels = consensus_labels(robot_db, "robot").to_dict()
    voc = dataset_voc(frames, all_rewards, labels=labels, n_boot=2)
    assert voc.n_episodes == 2  # the two successful episodes
    assert rows["pole judge"]["VOC"] == f"{voc.voc:.3f}"
    assert rows["robot goal"]["VOC"] != "–"

    at.checkbox(key="eval-voc-demos").check().run()
    assert not at.exception
    rows = {r["prompt set"]: r for _, r in _table(at).iterrows()}
    demos = dataset_voc(frames, all_rewards, demonstrations=True, n_boot=2)
    assert demos.n_episodes == 3
    assert rows["pole judge"]["VOC"] == f"{demos.voc:.3f}"

    # the inspected judge row downloads as a judge reward file
    at.selectbox(key="eval-inspect").select("pole judge · judge tiny-smolvlm").run()
    assert not at.exception
    assert at.download_button(key="eval-download-reward")


def test_phrasings_of_a_question_are_ranked(robot_db, judge_in_models_dir):
    at = open_with_random_model("evaluate", "eval", reselect=True)
    phrasings = ["Is the robot upright? Answer yes or no.", QUESTION]
    at.text_area(key="eval-phrase-text").input("\n".join(phrasings)).run()
    at.button(key="eval-phrase-run").click().run()
    assert not at.exception and not at.error
    table = next(d.value for d in at.dataframe if "phrasing" in d.value.columns)
    assert sorted(table["phrasing"]) == sorted(phrasings)
    epics = table["EPIC distance"].tolist()
    assert epics == sorted(epics)  # ranked, best first
    judge = load_judge(judge_in_models_dir, device="cpu")
    assert judge.untrained
