"""Saved rewards ("prompt sets"): a model reference and a reward spec under a name.

A prompt set holds a :class:`~vlmrm_core.reward.spec.ModelRef` and a
:class:`~vlmrm_core.reward.spec.RewardSpec`; it copies none of their fields, so the reward is defined
and validated in one place. Names starting with ``paper:`` are the built-in sets of the paper's
prompts: they can be read and copied, but not overwritten or deleted.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from vlmrm_core.errors import VlmrmError
from vlmrm_core.reward.spec import ModelRef, RewardSpec, SpecError
from vlmrm_core.store._sql import NotFoundError
from vlmrm_core.store.db import session_scope, transact
from vlmrm_core.store.schema import PromptSet as PromptSetRow
from vlmrm_core.store.schema import utcnow
from vlmrm_core.store.users import require_owner_or_admin, require_researcher

BUILTIN_PREFIX = "paper:"
"""Prefix of the built-in prompt sets (the paper's prompts, created with the demo)."""
MAX_NAME_LENGTH = 255


class PromptSetExistsError(VlmrmError, ValueError):
    """Saving under a name that is taken, without asking to overwrite it."""


class BuiltinPromptSetError(VlmrmError, ValueError):
    """Changing or deleting one of the built-in ``paper:`` prompt sets."""


@dataclass(frozen=True)
class PromptSet:
    """A named reward: which model, and what to reward."""

    name: str
    model: ModelRef
    reward: RewardSpec
    environment: str | None = None
    """The environment family or dataset the prompts were written for (e.g. ``CartPole``);
    pages offer the set first (or only) there."""
    created_by: str | None = None
    """Who saved it first; None in single-user mode."""
    id: int | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    def __post_init__(self) -> None:
        name = str(self.name or "").strip()
        if not name:
            raise SpecError("a prompt set needs a name")
        if len(name) > MAX_NAME_LENGTH:
            raise SpecError(f"a prompt set name has at most {MAX_NAME_LENGTH} characters")
        object.__setattr__(self, "name", name)
        if not isinstance(self.model, ModelRef) or not isinstance(self.reward, RewardSpec):
            raise TypeError("a PromptSet holds a ModelRef and a RewardSpec")
        environment = (self.environment or "").strip() or None
        object.__setattr__(self, "environment", environment)

    @property
    def builtin(self) -> bool:
        """True for the paper's prompt sets, which are read-only."""
        return is_builtin(self.name)

    def replace(self, **changes: Any) -> PromptSet:
        """A copy with some fields changed."""
        return replace(self, **changes)


def is_builtin(name: str) -> bool:
    """True for names of the built-in (read-only) prompt sets."""
    return name.strip().lower().startswith(BUILTIN_PREFIX)


def _from_row(row: PromptSetRow) -> PromptSet:
    return PromptSet(
        name=row.name,
        model=ModelRef.from_dict(row.model),
        reward=RewardSpec.from_dict(row.reward),
        environment=row.environment,
        created_by=row.created_by,
        id=row.id,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def save_prompt_set(
    engine: Engine, prompt_set: PromptSet, *, overwrite: bool = False, builtin: bool = False
) -> PromptSet:
    """Insert a prompt set, or replace the one with the same name when ``overwrite`` is set.

    Args:
        engine: store engine.
        prompt_set: the definition.
        overwrite: replace an existing set of that name (keeping its ``created_at`` and
            ``created_by``); without it a taken name is an error.
        builtin: allow writing a ``paper:`` set (only the demo does this).

    ``prompt_set.created_by`` is who saves it: the signed-in user, or None for the local user
    without sign-in. A signed-in user must be an admin or researcher, and may overwrite only
    their own sets (admins: any).

    Returns:
        The stored version, with id and timestamps.

    Raises:
        PromptSetExistsError: the name is taken and ``overwrite`` is False.
        BuiltinPromptSetError: the name is a built-in set's.
        AccessError: a labeller or unknown user, or someone else's set to overwrite.
    """
    saver = prompt_set.created_by
    require_researcher(engine, saver)
    if prompt_set.builtin and not builtin:
        raise BuiltinPromptSetError(
            f"{prompt_set.name!r} is a built-in prompt set and cannot be changed: save your "
            f"version under a name that does not start with {BUILTIN_PREFIX!r}"
        )
    if overwrite and saver is not None:
        owner = _owner(engine, prompt_set.name)
        if owner is not None:
            require_owner_or_admin(engine, saver, owner[0], f"Prompt set {prompt_set.name!r}")
    now = utcnow()
    values = {
        "model": prompt_set.model.to_dict(),
        "reward": prompt_set.reward.to_dict(),
        "environment": prompt_set.environment,
    }

    def body(session: Session) -> PromptSet:
        row = session.scalar(select(PromptSetRow).where(PromptSetRow.name == prompt_set.name))
        if row is None:
            row = PromptSetRow(
                name=prompt_set.name,
                created_by=prompt_set.created_by,
                created_at=now,
                updated_at=now,
                **values,
            )
            session.add(row)
        elif not overwrite:
            raise PromptSetExistsError(
                f"a prompt set named {prompt_set.name!r} already exists: choose another name, "
                "or confirm that you want to overwrite it"
            )
        else:
            for key, value in values.items():
                setattr(row, key, value)
            row.updated_at = now
        session.flush()
        return _from_row(row)

    try:
        return transact(engine, body)
    except IntegrityError:
        # Two first saves of one name at once (PostgreSQL): the unique constraint stopped the
        # second; running it again sees the first one's row and answers as for any taken name.
        return transact(engine, body)


def get_prompt_set(engine: Engine, name: str) -> PromptSet:
    """A saved prompt set by name.

    Raises:
        NotFoundError: no such prompt set.
    """
    with session_scope(engine) as session:
        row = session.scalar(select(PromptSetRow).where(PromptSetRow.name == name))
        if row is None:
            raise NotFoundError(f"no prompt set named {name!r}: see `vlmrm reward list`")
        return _from_row(row)


def list_prompt_sets(engine: Engine, *, environment: str | None = None) -> list[PromptSet]:
    """Saved prompt sets by name; with ``environment``, the ones written for it first.

    Args:
        engine: store engine.
        environment: an environment family or dataset name (e.g. ``CartPole``): sets tagged
            with it come first, then untagged sets; sets tagged for other environments are left
            out.
    """
    with session_scope(engine) as session:
        rows = session.scalars(select(PromptSetRow).order_by(PromptSetRow.name)).all()
        sets = [_from_row(r) for r in rows]
    if environment is None:
        return sets
    wanted = environment.strip().lower()
    matching = [s for s in sets if s.environment and _matches(s.environment, wanted)]
    untagged = [s for s in sets if not s.environment]
    return matching + untagged


def _matches(tag: str, wanted: str) -> bool:
    """``CartPole`` matches ``cartpole-v1`` and ``demo-cartpole``: tags name env families."""
    tag = tag.strip().lower()
    return tag == wanted or tag in wanted or wanted in tag


def _owner(engine: Engine, name: str) -> tuple[str | None] | None:
    """``(created_by,)`` of the set named ``name``, or None when there is none."""
    with session_scope(engine) as session:
        row = session.execute(
            select(PromptSetRow.created_by).where(PromptSetRow.name == name)
        ).first()
    return None if row is None else (row[0],)


def delete_prompt_set(engine: Engine, name: str, *, actor: str | None = None) -> bool:
    """Delete a prompt set (training runs that used it keep their copy in their config).

    Args:
        engine: store engine.
        name: the set.
        actor: the signed-in user (None: the local user without sign-in); only the set's
            creator or an admin may delete it (researchers: sets saved without sign-in too).

    Returns:
        True if it existed.

    Raises:
        BuiltinPromptSetError: the name is a built-in set's.
        AccessError: a labeller or unknown user, or someone else's set.
    """
    if is_builtin(name):
        raise BuiltinPromptSetError(f"{name!r} is a built-in prompt set and cannot be deleted")
    owner = _owner(engine, name)
    require_owner_or_admin(engine, actor, owner[0] if owner else None, f"Prompt set {name!r}")

    def body(session: Session) -> bool:
        result = session.execute(delete(PromptSetRow).where(PromptSetRow.name == name))
        return bool(getattr(result, "rowcount", 0))

    return transact(engine, body)
