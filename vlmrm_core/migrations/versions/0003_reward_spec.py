"""Prompt sets hold one model reference and one reward spec (JSON); environment tag; creators.

Before: a prompt set copied every reward field into its own column, and a training run's config
copied them again under other names (``kind``/``reward_kind``, ``reward_tau``/``tau``). After: a
prompt set is ``name`` + ``model`` (a ModelRef as JSON) + ``reward`` (a RewardSpec as JSON), plus
the environment it was written for and who created it; run configs hold ``model`` and
``reward`` objects the same way. Existing rows are converted in place.

The conversion is written out here, not imported: a migration must keep doing what it did when
it was written, whatever the package's classes become later.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OLD_COLUMNS = (
    "model_name",
    "pretrained",
    "goal_prompts",
    "baseline_prompts",
    "alpha",
    "reward_kind",
    "negatives",
    "tau",
    "beta",
    "aspect",
)
_RANDOM = ("", "none", "random", "random-init")
_JSON_COLUMNS = ("goal_prompts", "baseline_prompts", "negatives")


def _old_column(name: str) -> sa.ColumnClause[Any]:
    return sa.column(name, sa.JSON) if name in _JSON_COLUMNS else sa.column(name)


def _pretrained(value: Any) -> str | None:
    text = (value or "").strip() if isinstance(value, str) else value
    return None if text is None or str(text).lower() in _RANDOM else str(text)


def _load(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _reward(goal, baseline, alpha, kind, negatives, tau, beta) -> dict[str, Any]:
    return {
        "goal_prompts": list(_load(goal) or []),
        "baseline_prompts": list(_load(baseline) or []),
        "alpha": float(alpha or 0.0),
        "kind": kind or "regularized",
        "negatives": list(_load(negatives) or []),
        "tau": None if tau is None else float(tau),
        "beta": 0.5 if beta is None else float(beta),
    }


def _model(architecture, pretrained, aspect, precision="fp32") -> dict[str, Any]:
    return {
        "architecture": architecture or "ViT-B-32",
        "pretrained": _pretrained(pretrained),
        "aspect": aspect or "squash",
        "precision": precision or "fp32",
        "resize": "antialias",
        "sha256": None,
    }


def _config_forward(config: dict[str, Any]) -> dict[str, Any]:
    """A run config of revision 0002 (flat reward fields) in the new shape."""
    if "reward" in config and isinstance(config.get("model"), dict):
        return config
    config = dict(config)
    model = _model(
        config.pop("model", None),
        config.pop("pretrained", None),
        config.pop("aspect", None),
        config.pop("reward_precision", None),
    )
    goal = config.pop("goal", None) or []
    fields = (
        goal,
        config.pop("baseline", None),
        config.pop("alpha", None),
        config.pop("kind", None),
        config.pop("negatives", None),
        config.pop("reward_tau", None),
        config.pop("reward_beta", None),
    )
    config["model"] = model
    # A run queued from a prompt set before it started had no copied prompts yet.
    config["reward"] = _reward(*fields) if goal else None
    return config


def _config_backward(config: dict[str, Any]) -> dict[str, Any]:
    config = dict(config)
    model = config.pop("model", None) or {}
    reward = config.pop("reward", None) or {}
    config.update(
        model=model.get("architecture", "ViT-B-32"),
        pretrained=model.get("pretrained"),
        aspect=model.get("aspect", "squash"),
        reward_precision=model.get("precision", "fp32"),
        goal=reward.get("goal_prompts", []),
        baseline=reward.get("baseline_prompts", []),
        alpha=reward.get("alpha", 0.0),
        kind=reward.get("kind", "regularized"),
        negatives=reward.get("negatives", []),
        reward_tau=reward.get("tau"),
        reward_beta=reward.get("beta"),
    )
    return config


def upgrade() -> None:
    with op.batch_alter_table("prompt_sets") as batch:
        batch.add_column(sa.Column("model", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("reward", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("environment", sa.String(255), nullable=True))
        batch.add_column(sa.Column("created_by", sa.String(320), nullable=True))

    conn = op.get_bind()
    sets = sa.table(
        "prompt_sets",
        sa.column("id", sa.Integer),
        sa.column("model", sa.JSON),
        sa.column("reward", sa.JSON),
        *(_old_column(c) for c in _OLD_COLUMNS),
    )
    for row in conn.execute(sa.select(sets)).mappings().all():
        reward = _reward(
            row["goal_prompts"],
            row["baseline_prompts"],
            row["alpha"],
            row["reward_kind"],
            row["negatives"],
            row["tau"],
            row["beta"],
        )
        model = _model(row["model_name"], row["pretrained"], row["aspect"])
        conn.execute(
            sa.update(sets).where(sets.c.id == row["id"]).values(model=model, reward=reward)
        )

    with op.batch_alter_table("prompt_sets") as batch:
        batch.alter_column("model", existing_type=sa.JSON(), nullable=False)
        batch.alter_column("reward", existing_type=sa.JSON(), nullable=False)
        for column in _OLD_COLUMNS:
            batch.drop_column(column)

    runs = sa.table("training_runs", sa.column("id", sa.Integer), sa.column("config", sa.JSON))
    for run_id, config in conn.execute(sa.select(runs.c.id, runs.c.config)).all():
        config = _load(config) or {}
        conn.execute(
            sa.update(runs).where(runs.c.id == run_id).values(config=_config_forward(config))
        )


def downgrade() -> None:
    with op.batch_alter_table("prompt_sets") as batch:
        batch.add_column(sa.Column("model_name", sa.String(255), nullable=True))
        batch.add_column(sa.Column("pretrained", sa.Text(), nullable=True))
        for column in ("goal_prompts", "baseline_prompts", "negatives"):
            batch.add_column(sa.Column(column, sa.JSON(), nullable=True))
        batch.add_column(sa.Column("alpha", sa.Float(), nullable=True))
        batch.add_column(sa.Column("reward_kind", sa.String(32), nullable=True))
        batch.add_column(sa.Column("tau", sa.Float(), nullable=True))
        batch.add_column(sa.Column("beta", sa.Float(), nullable=True))
        batch.add_column(sa.Column("aspect", sa.String(32), nullable=True))

    conn = op.get_bind()
    sets = sa.table(
        "prompt_sets",
        sa.column("id", sa.Integer),
        sa.column("model", sa.JSON),
        sa.column("reward", sa.JSON),
        *(_old_column(c) for c in _OLD_COLUMNS),
    )
    for row in conn.execute(sa.select(sets.c.id, sets.c.model, sets.c.reward)).mappings().all():
        model, reward = _load(row["model"]) or {}, _load(row["reward"]) or {}
        conn.execute(
            sa.update(sets)
            .where(sets.c.id == row["id"])
            .values(
                model_name=model.get("architecture", "ViT-B-32"),
                pretrained=model.get("pretrained") or "",
                aspect=model.get("aspect", "squash"),
                goal_prompts=reward.get("goal_prompts", []),
                baseline_prompts=reward.get("baseline_prompts", []),
                negatives=reward.get("negatives", []),
                alpha=reward.get("alpha", 0.0),
                reward_kind=reward.get("kind", "regularized"),
                tau=reward.get("tau"),
                beta=reward.get("beta"),
            )
        )

    with op.batch_alter_table("prompt_sets") as batch:
        for column in ("model_name", "pretrained", "goal_prompts", "baseline_prompts"):
            batch.alter_column(column, nullable=False)
        for column in ("negatives", "alpha", "reward_kind", "aspect"):
            batch.alter_column(column, nullable=False)
        for column in ("model", "reward", "environment", "created_by"):
            batch.drop_column(column)

    runs = sa.table("training_runs", sa.column("id", sa.Integer), sa.column("config", sa.JSON))
    for run_id, config in conn.execute(sa.select(runs.c.id, runs.c.config)).all():
        config = _load(config) or {}
        conn.execute(
            sa.update(runs).where(runs.c.id == run_id).values(config=_config_backward(config))
        )
