"""Evaluate over episodes: each prompt-search row's VOC, the VOC gap to a reversed copy, and a
windowed prompt set scored over each episode in time order."""

from __future__ import annotations

import numpy as np
import pytest

from tests.studio._pages import TINY, open_with_random_model
from tests.studio.test_evaluate_judges import LENGTHS, _episodes
from vlmrm_core.frames import FrameRecord
from vlmrm_core.metrics import reward_metrics
from vlmrm_core.reward.model import score_embeddings, score_episode_embeddings
from vlmrm_core.reward.spec import ModelRef, RewardSpec
from vlmrm_core.services import evaluation, landscape
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


def _over_time_by_hand(clip, embedded, spec) -> np.ndarray:
    """One reward per frame of ``embedded``, from each episode's embeddings in step order."""
    frames = embedded.frames
    rewards = np.zeros(len(frames))
    for episode in sorted({f.episode for f in frames}):
        rows = sorted(
            (i for i, f in enumerate(frames) if f.episode == episode), key=lambda i: frames[i].step
        )
        rewards[rows] = score_episode_embeddings(clip, embedded.embeddings[rows], spec).rewards
    return rewards


NOISY_LENGTHS = (6, 7, 5)


@pytest.fixture
def noisy_db(data_dir):
    """Rollouts ``robot`` of random frames (episodes of 6, 7, 5; the last two frames of episodes
    0 and 1 succeed), so that no reward ranks an episode's frames perfectly, and its reversed
    copy ``robot back``."""
    engine = init_db()
    rng = np.random.default_rng(1)
    records = [
        FrameRecord(
            rng.integers(0, 255, (32, 32, 3), dtype=np.uint8),
            "rollout",
            f"ep{episode} t{step}",
            "Robot",
            episode,
            step,
        )
        for episode, length in enumerate(NOISY_LENGTHS)
        for step in range(length)
    ]
    ingest_frames(engine, "robot", iter(records), kind="rollout")
    for f in dataset_frames(engine, "robot"):
        late = f.step >= NOISY_LENGTHS[f.episode] - 2
        add_label(engine, "robot", f.hash, "ann", float(late and f.episode != 2))
    make_reversed_copies(engine, "robot", "robot back")
    return engine


def test_a_windowed_set_is_evaluated_as_training_sees_it(noisy_db, tiny_clip):
    """EPIC, VOC and the reversed copy's VOC of a window of 3 are those of each episode scored
    in time order (the copy's played backwards), not of single frames."""
    robot_db = noisy_db
    spec = RewardSpec((GOALS[0],), window=3)
    save_prompt_set(robot_db, PromptSet("robot window", ModelRef(TINY, None), spec))
    at = open_with_random_model("evaluate", "eval", reselect=True)
    assert not at.exception and not at.error, [e.value for e in at.error]
    row = _sets_table(at).set_index("prompt set").loc["robot window"]

    embedded = embed_dataset(robot_db, tiny_clip, "robot")
    rewards = _over_time_by_hand(tiny_clip, embedded, spec)
    labelled = evaluation.labelled_frames(robot_db, "robot")
    by_hash = {f.hash: r for f, r in zip(embedded.frames, rewards, strict=True)}
    ordered = np.array([by_hash[h] for h in labelled.hashes])
    epic = reward_metrics(ordered, labelled.labels, n_boot=0).epic_distance
    assert float(row["EPIC distance"]) == pytest.approx(epic, abs=1e-6)
    labels = consensus_labels(robot_db, "robot").to_dict()
    voc = dataset_voc(embedded.frames, rewards, labels=labels, n_boot=1000)
    assert float(row["VOC"]) == pytest.approx(voc.voc, abs=1e-3)

    copy = embed_dataset(robot_db, tiny_clip, "robot back")
    backward = dataset_voc(
        copy.frames, _over_time_by_hand(tiny_clip, copy, spec), demonstrations=True, n_boot=1000
    )
    assert float(row["reversed VOC"]) == pytest.approx(backward.voc, abs=1e-3)

    # Frame by frame (what Evaluate used to score) is another reward with other numbers.
    alone = landscape.reward_values(score_embeddings(tiny_clip, embedded.embeddings, spec))
    alone_by_hash = {f.hash: r for f, r in zip(embedded.frames, alone, strict=True)}
    alone_epic = reward_metrics(
        np.array([alone_by_hash[h] for h in labelled.hashes]), labelled.labels, n_boot=0
    ).epic_distance
    assert abs(alone_epic - epic) > 1e-3
    alone_voc = dataset_voc(embedded.frames, alone, labels=labels, n_boot=1000).voc
    assert abs(alone_voc - voc.voc) > 1e-3
    # played backwards, single frames give exactly −VOC (what reusing them gave); the window not
    assert abs(backward.voc + voc.voc) > 1e-3
