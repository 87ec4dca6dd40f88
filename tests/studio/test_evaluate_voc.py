"""Evaluate over episodes: each prompt-search row's VOC, and the VOC gap to a reversed copy."""

from __future__ import annotations

import pytest

from tests.studio._pages import TINY, open_with_random_model
from tests.studio.test_evaluate_judges import LENGTHS, _episodes
from vlmrm_core.reward.model import score_embeddings
from vlmrm_core.reward.spec import ModelRef, RewardSpec
from vlmrm_core.services import evaluation
from vlmrm_core.services.episodes import dataset_voc, make_reversed_copies
from vlmrm_core.services.landscape import embed_dataset
from vlmrm_core.store import (
    PromptSet,
    add_label,
    consensus_labels,
    dataset_frames,
    ingest_frames,
    init_db,
    save_prompt_set,
)

GOALS = ["a bright green robot", "a dark robot"]


@pytest.fixture
def robot_db(data_dir):
    """Rollouts ``robot`` (episodes of 4, 5, 3 frames; 0 and 1 end in success) and a prompt set."""
    engine = init_db()
    ingest_frames(engine, "robot", _episodes(), kind="rollout")
    for f in dataset_frames(engine, "robot"):
        last = f.step == LENGTHS[f.episode] - 1
        add_label(engine, "robot", f.hash, "ann", float(last and f.episode != 2))
    save_prompt_set(engine, PromptSet("robot goal", ModelRef(TINY, None), RewardSpec((GOALS[0],))))
    return engine


def _sets_table(at):
    return next(d.value for d in at.dataframe if "prompt set" in d.value.columns)


def test_voc_gap_to_the_reversed_copy_or_how_to_make_one(robot_db):
    at = open_with_random_model("evaluate", "eval", reselect=True)
    assert not at.error, [e.value for e in at.error]
    assert any("Make reversed copies" in c.value for c in at.caption)
    assert "VOC gap" not in _sets_table(at).columns

    make_reversed_copies(robot_db, "robot", "robot back")  # the two successful episodes
    at = open_with_random_model("evaluate", "eval", reselect=True)
    assert not at.error, [e.value for e in at.error]
    assert any("robot back" in c.value for c in at.caption)
    row = _sets_table(at).iloc[0]
    forward = float(row["VOC"])
    # a reward of single frames ranks each reversed episode exactly backwards
    assert float(row["reversed VOC"]) == pytest.approx(-forward, abs=1e-3)
    assert float(row["VOC gap"]) == pytest.approx(2 * forward, abs=2e-3)
    assert row["VOC gap 95% CI"] != "–"


def test_prompt_search_rows_have_their_voc(robot_db, tiny_clip):
    at = open_with_random_model("evaluate", "eval", reselect=True)
    at.text_area(key="eval-search-goals").input("\n".join(GOALS)).run()
    at.button(key="eval-search-run").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    table = next(d.value for d in at.dataframe if "goal" in d.value.columns)
    assert "voc" in table.columns

    embedded = embed_dataset(robot_db, tiny_clip, "robot")
    labels = consensus_labels(robot_db, "robot").to_dict()
    for _, row in table.iterrows():
        spec = evaluation.search_row_spec(row)
        rewards = score_embeddings(tiny_clip, embedded.embeddings, spec).rewards
        voc = dataset_voc(embedded.frames, rewards, labels=labels, n_boot=1000)
        assert voc.n_episodes == 2 and voc.voc is not None
        assert float(row["voc"]) == pytest.approx(voc.voc, abs=1e-3)

    at.checkbox(key="eval-search-demos").check().run()
    at.button(key="eval-search-run").click().run()
    assert not at.exception
    table = next(d.value for d in at.dataframe if "goal" in d.value.columns)
    row = table.iloc[0]
    rewards = score_embeddings(
        tiny_clip, embedded.embeddings, evaluation.search_row_spec(row)
    ).rewards
    demos = dataset_voc(embedded.frames, rewards, demonstrations=True, n_boot=1000)
    assert float(row["voc"]) == pytest.approx(demos.voc, abs=1e-3)
