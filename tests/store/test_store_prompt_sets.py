"""Prompt sets: validation and storage."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from vlmrm_core.store import (
    NotFoundError,
    PromptSetSpec,
    create_run,
    delete_prompt_set,
    get_prompt_set,
    get_run,
    list_prompt_sets,
    save_prompt_set,
)


def _spec(**overrides: object) -> PromptSetSpec:
    fields: dict[str, object] = {
        "name": "kneeling",
        "goal_prompts": ["a humanoid robot kneeling"],
        "baseline_prompts": ["a humanoid robot"],
        "model_name": "ViT-B-32",
        "pretrained": "laion2b_s34b_b79k",
        "alpha": 0.5,
    }
    fields.update(overrides)
    return PromptSetSpec(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"goal_prompts": []}, "goal prompt"),
        ({"goal_prompts": ["  ", ""]}, "goal prompt"),
        ({"goal_prompts": "a robot"}, "list"),
        ({"alpha": 1.5}, "alpha"),
        ({"alpha": -0.1}, "alpha"),
        ({"reward_kind": "cosine-ish"}, "reward_kind"),
        ({"aspect": "stretch"}, "aspect"),
        ({"tau": 0.0}, "tau"),
        ({"name": " "}, "name"),
        ({"model_name": ""}, "model_name"),
    ],
)
def test_validation(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _spec(**overrides)


def test_defaults_and_cleaning() -> None:
    spec = PromptSetSpec(name=" x ", goal_prompts=[" goal ", ""], alpha=1)
    assert spec.name == "x" and spec.goal_prompts == ["goal"] and spec.alpha == 1.0
    assert spec.reward_kind == "regularized" and spec.aspect == "squash"
    assert spec.baseline_prompts == [] and spec.negatives == [] and spec.tau is None


def test_save_get_update_list_delete(engine: Engine) -> None:
    saved = save_prompt_set(engine, _spec())
    assert saved.id is not None and saved.created_at is not None
    assert saved.created_at.tzinfo is not None
    got = get_prompt_set(engine, "kneeling")
    assert got.goal_prompts == ["a humanoid robot kneeling"] and got.alpha == 0.5
    assert got.pretrained == "laion2b_s34b_b79k"

    updated = save_prompt_set(
        engine,
        _spec(
            alpha=1.0,
            reward_kind="contrastive",
            negatives=["a robot standing", "a robot lying down"],
            tau=0.07,
            beta=2.0,
            aspect="center-crop",
            pretrained="",
        ),
    )
    assert updated.id == saved.id and updated.created_at == saved.created_at
    assert updated.updated_at is not None and updated.updated_at >= saved.updated_at  # type: ignore[operator]
    got = get_prompt_set(engine, "kneeling")
    assert (got.alpha, got.reward_kind, got.tau, got.beta, got.aspect) == (
        1.0,
        "contrastive",
        0.07,
        2.0,
        "center-crop",
    )
    assert got.negatives == ["a robot standing", "a robot lying down"] and got.pretrained == ""

    save_prompt_set(engine, _spec(name="another"))
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


def test_mutated_spec_is_revalidated_on_save(engine: Engine) -> None:
    spec = _spec()
    spec.alpha = 7.0
    with pytest.raises(ValueError, match="alpha"):
        save_prompt_set(engine, spec)
