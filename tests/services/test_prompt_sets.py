"""Choosing and naming saved prompt sets (vlmrm_core.services.prompt_sets), on a real SQLite store."""

from __future__ import annotations

from vlmrm_core.reward.spec import ModelRef, RewardSpec
from vlmrm_core.services.prompt_sets import (
    adapted_model_mismatch,
    free_prompt_set_name,
    guess_environment,
    starting_sets,
)
from vlmrm_core.store import PromptSet, init_db, save_prompt_set

GOAL = "pole vertically upright on top of the cart"
ADAPTED = RewardSpec((GOAL,), kind="adapted", weights=(0.5, -0.5, 0.25, 0.0), bias=0.1)


def test_an_adapted_set_is_scored_only_with_its_own_model():
    adapted = PromptSet("fitted", ModelRef("ViT-S-32-alt", None), ADAPTED)
    assert adapted_model_mismatch(adapted, ("ViT-S-32-alt", "")) is None  # random init: '' or None
    assert adapted_model_mismatch(adapted, ("ViT-S-32-alt", None)) is None
    message = adapted_model_mismatch(adapted, ("ViT-B-32", "laion2b_s34b_b79k"))
    assert message is not None
    assert "fitted" in message and "ViT-B-32 / laion2b_s34b_b79k" in message
    assert "pick it as the model" in message  # the fix
    on_weights = PromptSet("w", ModelRef("ViT-S-32-alt", "some-weights"), ADAPTED)
    assert "random init" in adapted_model_mismatch(on_weights, ("ViT-S-32-alt", ""))


def test_a_prompt_set_of_text_is_scored_with_any_model():
    text = PromptSet("text", ModelRef("ViT-S-32-alt", None), RewardSpec((GOAL,)))
    assert adapted_model_mismatch(text, ("ViT-B-32", "laion2b_s34b_b79k")) is None


def test_free_names_never_overwrite_and_never_take_a_builtin_name(data_dir):
    db = init_db()
    assert free_prompt_set_name(db, "  mine ") == "mine"
    save_prompt_set(db, PromptSet("mine", ModelRef("ViT-S-32-alt", None), RewardSpec((GOAL,))))
    assert free_prompt_set_name(db, "mine") == "mine (2)"
    save_prompt_set(db, PromptSet("mine (2)", ModelRef("ViT-S-32-alt", None), RewardSpec((GOAL,))))
    assert free_prompt_set_name(db, "mine") == "mine (3)"
    assert free_prompt_set_name(db, "paper: cartpole") == "cartpole (copy)"


def test_starting_sets_put_the_dataset_s_own_first(data_dir):
    db = init_db()
    for name, environment in (("a other", "MountainCar"), ("b mine", "CartPole"), ("c any", None)):
        save_prompt_set(
            db, PromptSet(name, ModelRef("ViT-S-32-alt", None), RewardSpec((GOAL,)), environment)
        )
    assert [p.name for p in starting_sets(db, "demo-cartpole")] == ["b mine", "c any", "a other"]


def test_the_environment_is_guessed_from_the_dataset_name():
    assert guess_environment("demo-cartpole") == "CartPole"
    assert guess_environment("MOUNTAINCAR textured") == "MountainCar"
    assert guess_environment("my uploads") == ""
