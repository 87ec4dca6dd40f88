"""Small SQL helpers shared by the store modules (dialect-specific upserts, chunking, errors)."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, TypeVar

import numpy as np
from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

T = TypeVar("T")

IN_CHUNK = 900
"""Values per ``IN (...)`` query: below SQLite's historical 999-parameter limit, and large
enough that 100k lookups take ~110 round trips."""


class NotFoundError(KeyError):
    """A named dataset, prompt set, run or frame does not exist."""

    def __str__(self) -> str:
        # KeyError's default str() wraps the message in quotes.
        return str(self.args[0]) if self.args else "not found"


def chunks(items: Sequence[T], size: int = IN_CHUNK) -> Iterator[Sequence[T]]:
    """Consecutive slices of ``items`` of at most ``size`` elements."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def insert_ignore(
    session: Session, table: Table, rows: Sequence[Mapping[str, Any]], keys: Sequence[str]
) -> None:
    """Insert rows, silently skipping those whose ``keys`` already exist (SQLite and PostgreSQL).

    Args:
        session: an open session (the insert joins its transaction).
        table: the target table.
        rows: column-name → value mappings.
        keys: the columns of the primary key or unique constraint that decides "already exists".
    """
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        stmt = sqlite.insert(table).on_conflict_do_nothing(index_elements=list(keys))
    elif dialect == "postgresql":
        stmt = postgresql.insert(table).on_conflict_do_nothing(index_elements=list(keys))
    else:  # pragma: no cover - only SQLite and PostgreSQL are supported
        raise NotImplementedError(f"unsupported database dialect {dialect!r}")
    session.execute(stmt, list(rows))


def _plain(value: Any) -> Any:
    # numpy scalars/arrays -> Python; NaN/inf -> None (PostgreSQL's json type rejects NaN, and
    # Python's json module would write invalid JSON for it).
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, np.generic):
        return _plain(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def json_dumps(value: Any) -> str:
    """JSON serializer for the engines: accepts numpy values, stores NaN/inf as null."""
    return json.dumps(_plain(value), allow_nan=False)
