"""Adapted prompt sets in the Prompt Lab: loading one never crashes the editor (whose reward kind
radio offers only the prompt kinds), and Compare shows its landscape with its own model only."""

from __future__ import annotations

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from tests.studio._pages import TINY, open_with_random_model
from vlmrm_core.reward.model import score_embeddings
from vlmrm_core.reward.spec import ModelRef, RewardSpec
from vlmrm_core.services.landscape import embed_dataset, reward_agreement
from vlmrm_core.store import PromptSet, save_prompt_set

GOAL = "pole vertically upright on top of the cart"
WEIGHTS = tuple(float(v) for v in np.random.default_rng(0).normal(size=256))


@pytest.fixture
def db(cartpole_db):
    engine = cartpole_db
    adapted = RewardSpec((GOAL,), kind="adapted", weights=WEIGHTS, bias=0.1)
    save_prompt_set(engine, PromptSet("a adapted", ModelRef(TINY, None), adapted))
    save_prompt_set(engine, PromptSet("b prompt", ModelRef(TINY, None), RewardSpec((GOAL,))))
    save_prompt_set(
        engine, PromptSet("c adapted elsewhere", ModelRef(TINY, "other-weights"), adapted)
    )
    return engine


def _open() -> AppTest:
    return open_with_random_model("prompt_lab", "lab")


def test_loading_an_adapted_set_keeps_the_editor_usable(db):
    at = _open()
    at.selectbox(key="lab-load-name").set_value("a adapted").run()
    at.button(key="lab-load").click().run()
    assert not at.exception and not at.error
    assert any("adapted reward" in i.value for i in at.info)
    assert at.text_area(key="lab-goal").value == GOAL
    assert at.radio(key="lab-kind").value == "regularized"  # the radio has no "adapted"


def test_compare_shows_the_adapted_reward_with_its_own_model_only(db, tiny_clip):
    at = _open()
    at.selectbox(key="lab-compare-a").set_value("a adapted")
    at.selectbox(key="lab-compare-b").set_value("b prompt").run()
    assert not at.exception and not at.error
    embedded = embed_dataset(db, tiny_clip, "cp9")
    adapted = score_embeddings(
        tiny_clip, embedded.embeddings, RewardSpec((GOAL,), kind="adapted", weights=WEIGHTS)
    ).rewards
    prompt = score_embeddings(tiny_clip, embedded.embeddings, RewardSpec((GOAL,))).rewards
    expected = reward_agreement(adapted, prompt).pearson
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Pearson r (A, B)"] == f"{expected:.3f}"

    at.selectbox(key="lab-compare-a").set_value("c adapted elsewhere").run()
    assert not at.exception
    assert any("only scored with that model" in e.value for e in at.error)
