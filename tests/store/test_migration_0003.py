"""Revision 0003: prompt sets and run configs move to one model reference and one reward spec."""

from __future__ import annotations

import json

from sqlalchemy import Engine, text

from vlmrm_core.reward.spec import ModelRef, RewardSpec
from vlmrm_core.store import downgrade, get_engine, get_prompt_set, get_run, upgrade
from vlmrm_core.training.config import TrainConfig

OLD_CONFIG = {
    "env_id": "CartPole-v1",
    "algo": "dqn",
    "total_steps": 1000,
    "prompt_set": "old",
    "model": "ViT-S-32-alt",
    "pretrained": None,
    "goal": ["pole vertically upright on top of the cart"],
    "baseline": ["pole and cart"],
    "alpha": 0.25,
    "kind": "regularized",
    "negatives": [],
    "reward_tau": None,
    "reward_beta": None,
    "aspect": "center-crop",
    "reward_precision": "bf16",
    "reward_device": None,
    "model_config": None,
}


def _old_database(engine: Engine) -> None:
    upgrade(engine, "0002")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO prompt_sets (name, model_name, pretrained, goal_prompts, "
                "baseline_prompts, alpha, reward_kind, negatives, tau, beta, aspect, created_at, "
                "updated_at) VALUES (:name, 'ViT-B-32', '', :goal, :baseline, 0.5, "
                "'contrastive', :negatives, 0.07, NULL, 'squash', :now, :now)"
            ),
            {
                "name": "old",
                "goal": json.dumps(["open door"]),
                "baseline": json.dumps([]),
                "negatives": json.dumps(["closed door"]),
                "now": "2025-01-01 00:00:00+00:00",
            },
        )
        conn.execute(
            text(
                "INSERT INTO training_runs (name, status, env_id, algo, config, total_steps, "
                "created_at) VALUES ('r', 'finished', 'CartPole-v1', 'dqn', :config, 1000, :now)"
            ),
            {"config": json.dumps(OLD_CONFIG), "now": "2025-01-01 00:00:00+00:00"},
        )


def test_old_rows_are_converted_and_back(db_url: str, settings: object) -> None:
    engine = get_engine(db_url)  # empty: migrated step by step below
    _old_database(engine)
    upgrade(engine)  # to head, so that the ORM's later columns exist too

    saved = get_prompt_set(engine, "old")
    assert saved.model == ModelRef("ViT-B-32", None)
    assert saved.reward == RewardSpec(
        ("open door",), kind="contrastive", negatives=("closed door",), tau=0.07, alpha=0.5
    )
    config = TrainConfig.from_dict(get_run(engine, 1).config)
    assert config.model == ModelRef("ViT-S-32-alt", None, aspect="center-crop", precision="bf16")
    assert config.reward == RewardSpec(
        ("pole vertically upright on top of the cart",), ("pole and cart",), alpha=0.25
    )

    downgrade(engine, "0002")
    with engine.connect() as conn:
        row = conn.execute(text("SELECT model_name, alpha, reward_kind FROM prompt_sets")).one()
        stored = conn.execute(text("SELECT config FROM training_runs")).scalar_one()
    assert tuple(row) == ("ViT-B-32", 0.5, "contrastive")
    back = json.loads(stored) if isinstance(stored, str) else stored
    assert back["goal"] == OLD_CONFIG["goal"] and back["aspect"] == "center-crop"
    upgrade(engine)  # and forward again to head
    assert get_prompt_set(engine, "old").reward.negatives == ("closed door",)
