"""Prompt sets: a name, a model reference and a reward spec, stored and protected."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import Engine

from vlmrm_core.reward.spec import ModelRef, RewardSpec, SpecError
from vlmrm_core.store import (
    BuiltinPromptSetError,
    NotFoundError,
    PromptSet,
    PromptSetExistsError,
    create_run,
    delete_prompt_set,
    get_prompt_set,
    get_run,
    list_prompt_sets,
    save_prompt_set,
)
from vlmrm_core.store.users import ensure_admins, set_user_role

MODEL = ModelRef("ViT-B-32", "laion2b_s34b_b79k")
REWARD = RewardSpec(("a humanoid robot kneeling",), ("a humanoid robot",), alpha=0.5)


def _set(name: str = "kneeling", **changes: object) -> PromptSet:
    return PromptSet(name=name, model=MODEL, reward=REWARD).replace(**changes)


def test_name_is_checked_and_trimmed() -> None:
    assert _set(" x ").name == "x"
    with pytest.raises(SpecError, match="needs a name"):
        _set(" ")
    with pytest.raises(SpecError, match="at most 255"):
        _set("x" * 256)


def test_save_get_overwrite_list_delete(engine: Engine) -> None:
    # with sign-in the saver is a user: a researcher saves, an admin may overwrite it
    ensure_admins(engine, ["b@x.org"])
    set_user_role(engine, "a@x.org", "researcher", actor="b@x.org")
    saved = save_prompt_set(engine, _set(environment="Humanoid", created_by="a@x.org"))
    assert saved.id is not None and saved.created_at is not None
    assert saved.created_at.tzinfo is not None
    got = get_prompt_set(engine, "kneeling")
    assert got.reward == REWARD and got.model == MODEL
    assert (got.environment, got.created_by) == ("Humanoid", "a@x.org")

    contrastive = RewardSpec(
        ("a humanoid robot kneeling",),
        kind="contrastive",
        negatives=("a robot standing", "a robot lying down"),
        tau=0.07,
        beta=0.8,
    )
    random_crop = ModelRef("ViT-B-32", None, aspect="center-crop")
    with pytest.raises(PromptSetExistsError, match="already exists"):
        save_prompt_set(engine, _set(reward=contrastive))
    updated = save_prompt_set(
        engine, _set(reward=contrastive, model=random_crop, created_by="b@x.org"), overwrite=True
    )
    assert updated.id == saved.id and updated.created_at == saved.created_at
    assert updated.created_by == "a@x.org"  # the creator stays the creator
    assert updated.updated_at is not None and updated.updated_at >= saved.updated_at  # type: ignore[operator]
    got = get_prompt_set(engine, "kneeling")
    assert got.reward == contrastive and got.model == random_crop

    save_prompt_set(engine, _set("another"))
    assert [p.name for p in list_prompt_sets(engine)] == ["another", "kneeling"]

    # A run keeps existing when the prompt set it came from is deleted.
    run = create_run(
        engine,
        name="r",
        env_id="CartPole-v1",
        algo="dqn",
        config={"prompt_set": "kneeling"},
        total_steps=10,
        prompt_set_id=saved.id,
    )
    assert delete_prompt_set(engine, "kneeling") is True
    assert delete_prompt_set(engine, "kneeling") is False
    assert get_run(engine, run.id).prompt_set_id is None
    with pytest.raises(NotFoundError, match="kneeling"):
        get_prompt_set(engine, "kneeling")


def test_builtin_sets_are_read_only(engine: Engine) -> None:
    save_prompt_set(engine, _set("paper: humanoid"), builtin=True)
    for name in ("paper: humanoid", "Paper: new one"):
        with pytest.raises(BuiltinPromptSetError, match="built-in"):
            save_prompt_set(engine, _set(name), overwrite=True)
    with pytest.raises(BuiltinPromptSetError, match="cannot be deleted"):
        delete_prompt_set(engine, "paper: humanoid")
    assert get_prompt_set(engine, "paper: humanoid").builtin


def test_listing_by_environment(engine: Engine) -> None:
    save_prompt_set(engine, _set("cart", environment="CartPole"))
    save_prompt_set(engine, _set("car", environment="MountainCar"))
    save_prompt_set(engine, _set("any"))
    names = [p.name for p in list_prompt_sets(engine, environment="CartPole-v1")]
    assert names == ["cart", "any"]  # tagged for it first, untagged next, others left out
    assert [p.name for p in list_prompt_sets(engine, environment="demo-mountaincar")] == [
        "car",
        "any",
    ]


def test_two_first_saves_of_one_name_at_once(engine: Engine) -> None:
    outcomes: list[str] = []

    def save() -> None:
        try:
            save_prompt_set(engine, _set("race"))
            outcomes.append("saved")
        except PromptSetExistsError:
            outcomes.append("exists")

    threads = [threading.Thread(target=save) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["exists", "saved"]
