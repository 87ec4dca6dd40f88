"""Label page → Pairs: comparisons stored under the typed name with the buttons the keyboard
shortcuts (← → E K U) trigger, undo and skip, progress, the two orders, and a pairwise task,
against a real SQLite store (and a tiny random-init CLIP model for "most informative first")."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from tests.studio._pages import TINY, page_test
from tests.studio.test_label_page import make_dataset
from vlmrm_core.reward.spec import ModelRef, RewardSpec
from vlmrm_core.services.labeling import labeler_seed
from vlmrm_core.services.preferences import candidate_pairs
from vlmrm_core.store import PromptSet, init_db, save_prompt_set
from vlmrm_core.store.comparisons import comparison_history, current_comparisons
from vlmrm_core.store.tasks import create_task
from vlmrm_studio.widgets.text import md_escape

SESSIONS = "label-pair-sessions"


@pytest.fixture
def app(data_dir: Path) -> AppTest:
    return page_test("label")


def open_pairs(at: AppTest, name: str = "alice", count: int = 4) -> AppTest:
    at.run()
    at.text_input(key="label-name").set_value(name).run()
    at.button(key="label-mode-1").click().run()  # Pairs
    at.number_input(key="label-pair-count").set_value(count).run()
    assert not at.exception, at.exception
    return at


def shown_pair(at: AppTest, dataset: str = "ds", name: str = "alice") -> tuple[str, str]:
    return at.session_state[SESSIONS][(dataset, name, None)].queue(init_db())[0]


def progress(at: AppTest) -> str:
    return at.get("progress")[0].proto.text


def test_answers_undo_and_skip_are_stored_under_the_typed_name(app: AppTest) -> None:
    make_dataset(5)
    open_pairs(app)
    expected = candidate_pairs(init_db(), "ds", 4, seed=labeler_seed("alice"))
    assert shown_pair(app) == expected[0]  # random order: the labeller's own reproducible pairs
    assert progress(app) == "Pairs done: 0/4"
    assert md_escape("Which frame is closer to the goal?") in [s.value for s in app.subheader]

    answers = {}
    for key, choice in (("label-pair-a", "a"), ("label-pair-b", "b")):
        pair = shown_pair(app)
        app.button(key=key).click().run()
        answers[pair] = choice
    assert progress(app) == "Pairs done: 2/4"
    stored = current_comparisons(init_db(), "ds")
    assert {(r.frame_a, r.frame_b): r.choice for r in stored.itertuples()} == answers
    assert set(stored["labeler"]) == {"alice"}

    # undo: the latest answer goes, and its pair is asked again first
    second = expected[1]
    app.button(key="label-pair-undo").click().run()
    assert len(current_comparisons(init_db(), "ds")) == 1
    assert shown_pair(app) == second and progress(app) == "Pairs done: 1/4"
    assert any(md_escape("Undid your answer (right closer)") in c.value for c in app.caption)

    # skip: the pair moves to the end, nothing stored
    app.button(key="label-pair-skip").click().run()
    assert shown_pair(app) == expected[2]
    assert len(comparison_history(init_db(), "ds")) == 1
    for key in ("label-pair-equal", "label-pair-a", "label-pair-b"):
        app.button(key=key).click().run()
    assert not app.exception
    assert progress(app) == "Pairs done: 4/4"
    assert any("All pairs done" in s.value for s in app.success)
    final = current_comparisons(init_db(), "ds")
    assert sorted(final["choice"]) == ["a", "a", "b", "equal"]
    assert {tuple(sorted(p)) for p in zip(final["frame_a"], final["frame_b"], strict=True)} == {
        tuple(sorted(p)) for p in expected
    }


def test_another_labeller_gets_their_own_queue(app: AppTest) -> None:
    make_dataset(5)
    open_pairs(app, "alice")
    app.button(key="label-pair-a").click().run()
    other = page_test("label")
    open_pairs(other, "bob")
    assert progress(other) == "Pairs done: 0/4"  # alice's answer is hers only
    other.button(key="label-pair-undo").click().run()  # nothing of bob's to undo
    assert len(current_comparisons(init_db(), "ds")) == 1
    assert any(md_escape("Nothing to undo") in c.value for c in other.caption)


@pytest.mark.slow
def test_most_informative_first_reorders_the_pairs(app: AppTest, tiny_clip) -> None:
    from vlmrm_core.reward.model import score_embeddings
    from vlmrm_core.services.landscape import embed_dataset, reward_values
    from vlmrm_core.services.preferences import informative_pairs

    make_dataset(6)
    specs = {
        "bright": RewardSpec(("a bright image",)),
        "dark": RewardSpec(("a dark image",), ("an image",), alpha=0.5),
    }
    for name, spec in specs.items():
        save_prompt_set(init_db(), PromptSet(name, ModelRef(TINY, None), spec))
    open_pairs(app, count=10)
    app.button(key="label-pair-order-1").click().run()  # most informative first
    assert not app.exception and not app.error
    assert any(md_escape("Ranked with") in c.value for c in app.caption)

    embedded = embed_dataset(init_db(), tiny_clip, "ds")
    x = np.asarray(embedded.embeddings)
    hashes = [f.hash for f in embedded.frames]
    rewards = [reward_values(score_embeddings(tiny_clip, x, s)) for s in specs.values()]
    pairs = candidate_pairs(init_db(), "ds", 10, seed=labeler_seed("alice"))
    expected = informative_pairs(pairs, hashes, x, rewards, seed=labeler_seed("alice"))
    session = app.session_state[SESSIONS][("ds", "alice", None)]
    assert session.pairs == expected
    assert shown_pair(app) == expected[0]

    app.button(key="label-pair-order-0").click().run()  # random
    assert app.session_state[SESSIONS][("ds", "alice", None)].pairs == pairs


def test_informative_without_prompt_sets_says_so(app: AppTest) -> None:
    make_dataset(4)
    open_pairs(app)
    app.button(key="label-pair-order-1").click().run()  # most informative first
    assert not app.exception
    assert any(md_escape("needs a saved prompt set") in c.value for c in app.caption)


def test_a_pairwise_task_asks_pairs_of_its_frames(app: AppTest) -> None:
    names = make_dataset(6)
    subset = list(names)[:3]
    create_task(
        init_db(), "pairs-1", "ds", "Which pole is more upright?", actor=None,
        assignees=["carol"], frame_hashes=subset, pairwise=True,
    )  # fmt: skip
    app.run()
    app.text_input(key="label-name").set_value("carol").run()
    assert not app.exception
    assert app.button(key="label-mode-1").disabled  # the task's kind decides
    assert md_escape("Which pole is more upright?") in [s.value for s in app.subheader]
    app.number_input(key="label-pair-count").set_value(10).run()
    assert progress(app) == "Pairs done: 0/3"  # three frames: three pairs
    app.button(key="label-pair-b").click().run()
    stored = current_comparisons(init_db(), "ds")
    assert stored["task"].tolist() == ["pairs-1"]
    assert {stored["frame_a"][0], stored["frame_b"][0]} <= set(subset)


def make_episodes(episodes: int = 3, steps: int = 6) -> None:
    """A rollout-like dataset ``ds``: ``episodes`` episodes of ``steps`` frames each."""
    from vlmrm_core.frames import FrameRecord
    from vlmrm_core.store import ingest_frames

    records = [
        FrameRecord(
            pixels=np.full((10, 14, 3), 20 * e + 5 * s, np.uint8),
            source="rollout",
            name=f"ep{e} t{s}",
            episode=e,
            step=s,
        )  # fmt: skip
        for e in range(episodes)
        for s in range(steps)
    ]
    ingest_frames(init_db(), "ds", records)


def test_clips_are_shown_as_animations_and_answered_with_the_same_keys(app: AppTest) -> None:
    from vlmrm_core.store.comparisons import Clip

    make_episodes()
    open_pairs(app, count=3)
    app.button(key="label-pair-unit-1").click().run()  # Clips
    app.number_input(key="label-pair-clip-frames").set_value(3).run()
    assert not app.exception, app.exception
    first = shown_pair(app)
    assert all(isinstance(c, Clip) and c.length == 3 for c in first)
    assert [i.captions[0].split(":")[0] for i in app.image] == [
        "Left (3 frames)", "Right (3 frames)",
    ]  # fmt: skip
    app.button(key="label-pair-a").click().run()
    second = shown_pair(app)
    app.button(key="label-pair-equal").click().run()
    assert progress(app) == "Pairs done: 2/3"
    app.button(key="label-pair-undo").click().run()
    assert shown_pair(app) == second  # the undone pair is asked again first
    current = current_comparisons(init_db(), "ds")
    assert current[["length", "position_a", "position_b", "choice"]].values.tolist() == [
        [3, first[0].position, first[1].position, "a"]
    ]


def open_clip_pairs(at: AppTest, length: int, count: int) -> AppTest:
    """Label → Pairs → Clips of ``length`` frames, ``count`` pairs asked."""
    open_pairs(at, count=count)
    at.button(key="label-pair-unit-1").click().run()  # Clips
    at.number_input(key="label-pair-clip-frames").set_value(length).run()
    assert not at.exception, at.exception
    return at


@pytest.mark.slow
def test_most_informative_first_ranks_clips_on_their_summed_rewards(
    app: AppTest, tiny_clip
) -> None:
    from vlmrm_core.reward.model import score_embeddings
    from vlmrm_core.services.landscape import embed_dataset, reward_values
    from vlmrm_core.services.preferences import candidate_clip_pairs, informative_pairs
    from vlmrm_core.store.comparisons import clip_frames

    make_episodes(4, 6)  # two clips of 3 per episode: eight clips, 28 pairs
    specs = {
        "bright": RewardSpec(("a bright image",)),
        "dark": RewardSpec(("a dark image",), ("an image",), alpha=0.5),
    }
    for name, spec in specs.items():
        save_prompt_set(init_db(), PromptSet(name, ModelRef(TINY, None), spec))
    open_clip_pairs(app, 3, count=20)
    app.button(key="label-pair-order-1").click().run()  # most informative first
    assert not app.exception and not app.error
    assert any(md_escape("Ranked with") in c.value for c in app.caption)

    embedded = embed_dataset(init_db(), tiny_clip, "ds")
    x = np.asarray(embedded.embeddings)
    hashes = [f.hash for f in embedded.frames]
    rewards = [reward_values(score_embeddings(tiny_clip, x, s)) for s in specs.values()]
    seed = labeler_seed("alice")
    pairs = candidate_clip_pairs(init_db(), "ds", 20, 3, seed=seed)
    members = clip_frames(init_db(), "ds", [c for p in pairs for c in p])
    expected = informative_pairs(pairs, hashes, x, rewards, clip_members=members, seed=seed)
    assert expected != pairs  # the ranking changes the order: the test tells them apart
    session = app.session_state[SESSIONS][("ds", "alice", None)]
    assert session.pairs == expected
    assert shown_pair(app) == expected[0]

    app.button(key="label-pair-order-0").click().run()  # random
    assert app.session_state[SESSIONS][("ds", "alice", None)].pairs == pairs


def test_informative_clips_without_prompt_sets_say_so(app: AppTest) -> None:
    from vlmrm_core.services.preferences import candidate_clip_pairs

    make_episodes()
    open_clip_pairs(app, 3, count=4)
    app.button(key="label-pair-order-1").click().run()  # most informative first
    assert not app.exception
    assert any(md_escape("needs a saved prompt set") in c.value for c in app.caption)
    pairs = candidate_clip_pairs(init_db(), "ds", 4, 3, seed=labeler_seed("alice"))
    assert app.session_state[SESSIONS][("ds", "alice", None)].pairs == pairs  # random meanwhile
