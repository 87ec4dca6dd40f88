"""Saved reward definitions ("prompt sets"): model, prompts and reward parameters by name."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from vlmrm_core.store._sql import NotFoundError
from vlmrm_core.store.db import session_scope, transact
from vlmrm_core.store.schema import ASPECTS, REWARD_KINDS, PromptSet, utcnow


@dataclass
class PromptSetSpec:
    """A reward definition, mirroring the ``prompt_sets`` table. Validated on construction."""

    name: str
    goal_prompts: list[str]
    baseline_prompts: list[str] = field(default_factory=list)
    model_name: str = "ViT-B-32"
    pretrained: str = "laion2b_s34b_b79k"
    """Pretrained tag, checkpoint path, or '' for random initialisation."""
    alpha: float = 0.5
    """Goal-baseline regularisation strength in [0, 1] (0: plain cosine to the goal)."""
    reward_kind: str = "regularized"
    """'regularized' (Rocamonde et al.) or 'contrastive' (Baumli et al.)."""
    negatives: list[str] = field(default_factory=list)
    """Negative prompts of the contrastive reward."""
    tau: float | None = None
    """Softmax temperature of the contrastive reward (None: the reward's default)."""
    beta: float | None = None
    """Optional scale/threshold parameter of the reward (None: the reward's default)."""
    aspect: str = "squash"
    """How frames are fitted to the model input: 'squash' or 'center-crop'."""
    id: int | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    def __post_init__(self) -> None:
        self.name = self.name.strip()
        if not self.name:
            raise ValueError("a prompt set needs a name")
        self.goal_prompts = _clean_prompts(self.goal_prompts, "goal prompts")
        if not self.goal_prompts:
            raise ValueError("a prompt set needs at least one non-empty goal prompt")
        self.baseline_prompts = _clean_prompts(self.baseline_prompts, "baseline prompts")
        self.negatives = _clean_prompts(self.negatives, "negatives")
        if not self.model_name.strip():
            raise ValueError("model_name must not be empty")
        self.alpha = float(self.alpha)
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {self.alpha}")
        if self.reward_kind not in REWARD_KINDS:
            raise ValueError(f"reward_kind must be one of {REWARD_KINDS}, got {self.reward_kind!r}")
        if self.aspect not in ASPECTS:
            raise ValueError(f"aspect must be one of {ASPECTS}, got {self.aspect!r}")
        if self.tau is not None:
            self.tau = float(self.tau)
            if not (math.isfinite(self.tau) and self.tau > 0):
                raise ValueError(f"tau must be a positive number, got {self.tau}")
        if self.beta is not None:
            self.beta = float(self.beta)
            if not math.isfinite(self.beta):
                raise ValueError(f"beta must be a finite number, got {self.beta}")


def _clean_prompts(prompts: Any, what: str) -> list[str]:
    if isinstance(prompts, str):
        raise ValueError(f"{what} must be a list of strings, not one string")
    prompts = list(prompts)
    if any(not isinstance(p, str) for p in prompts):
        raise ValueError(f"{what} must be strings")
    return [p.strip() for p in prompts if p.strip()]


_COLUMNS = (
    "name",
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


def _spec(row: PromptSet) -> PromptSetSpec:
    return PromptSetSpec(
        **{c: getattr(row, c) for c in _COLUMNS},
        id=row.id,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def save_prompt_set(engine: Engine, spec: PromptSetSpec) -> PromptSetSpec:
    """Insert a prompt set, or update the one with the same name (keeping its created_at).

    Args:
        engine: store engine.
        spec: the definition (validated when it was constructed).

    Returns:
        The stored version, with id and timestamps.
    """
    # Re-run validation: callers may have mutated the dataclass after construction.
    spec = PromptSetSpec(**{f.name: getattr(spec, f.name) for f in fields(spec)})
    values: dict[str, Any] = {c: getattr(spec, c) for c in _COLUMNS}
    now = utcnow()

    def body(session: Session) -> PromptSetSpec:
        dialect = session.get_bind().dialect.name
        insert = sqlite.insert if dialect == "sqlite" else postgresql.insert
        update = {**values, "updated_at": now}
        # One atomic upsert: two users saving the same new name at once cannot collide.
        stmt = insert(PromptSet).values(**values, created_at=now, updated_at=now)
        stmt = stmt.on_conflict_do_update(index_elements=["name"], set_=update)
        session.execute(stmt)
        row = session.scalar(select(PromptSet).where(PromptSet.name == spec.name))
        assert row is not None
        return _spec(row)

    return transact(engine, body)


def get_prompt_set(engine: Engine, name: str) -> PromptSetSpec:
    """A saved prompt set by name.

    Args:
        engine: store engine.
        name: prompt set name.

    Returns:
        The definition.

    Raises:
        NotFoundError: no such prompt set.
    """
    with session_scope(engine) as session:
        row = session.scalar(select(PromptSet).where(PromptSet.name == name))
        if row is None:
            raise NotFoundError(f"no prompt set named {name!r}")
        return _spec(row)


def list_prompt_sets(engine: Engine) -> list[PromptSetSpec]:
    """All saved prompt sets, by name.

    Args:
        engine: store engine.

    Returns:
        The definitions.
    """
    with session_scope(engine) as session:
        return [_spec(r) for r in session.scalars(select(PromptSet).order_by(PromptSet.name))]


def delete_prompt_set(engine: Engine, name: str) -> bool:
    """Delete a prompt set (training runs that used it keep their copy in their config).

    Args:
        engine: store engine.
        name: prompt set name.

    Returns:
        True if it existed.
    """

    def body(session: Session) -> bool:
        result = session.execute(delete(PromptSet).where(PromptSet.name == name))
        return bool(result.rowcount)

    return transact(engine, body)
