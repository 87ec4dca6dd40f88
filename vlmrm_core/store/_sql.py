"""Small SQL helpers shared by the store modules (dialect-specific upserts, chunking, errors)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, TypeVar, cast

from sqlalchemy import CursorResult, Executable, FromClause, Result, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from vlmrm_core.errors import InvalidInputError, NotFoundError
from vlmrm_core.plain_json import to_plain_json

__all__ = [
    "IN_CHUNK",
    "InvalidInputError",
    "affected_rows",
    "NotFoundError",
    "chunks",
    "insert_ignore",
    "json_dumps",
]

T = TypeVar("T")

IN_CHUNK = 900
"""Values per ``IN (...)`` query: below SQLite's historical 999-parameter limit, and large
enough that 100k lookups take ~110 round trips."""


def affected_rows(result: Result[Any]) -> int:
    """Rows matched by an UPDATE or DELETE (``session.execute`` types it as a plain Result)."""
    return int(cast("CursorResult[Any]", result).rowcount or 0)


def chunks(items: Sequence[T], size: int = IN_CHUNK) -> Iterator[Sequence[T]]:
    """Consecutive slices of ``items`` of at most ``size`` elements."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def insert_ignore(
    session: Session, table: FromClause, rows: Sequence[Mapping[str, Any]], keys: Sequence[str]
) -> None:
    """Insert rows, silently skipping those whose ``keys`` already exist (SQLite and PostgreSQL).

    Args:
        session: an open session (the insert joins its transaction).
        table: the target table (an ORM class's ``__table__``).
        rows: column-name → value mappings.
        keys: the columns of the primary key or unique constraint that decides "already exists".
    """
    if not rows:
        return
    target = cast(Table, table)
    dialect = session.get_bind().dialect.name
    stmt: Executable
    if dialect == "sqlite":
        stmt = sqlite.insert(target).on_conflict_do_nothing(index_elements=list(keys))
    elif dialect == "postgresql":
        stmt = postgresql.insert(target).on_conflict_do_nothing(index_elements=list(keys))
    else:  # pragma: no cover - only SQLite and PostgreSQL are supported
        raise NotImplementedError(f"unsupported database dialect {dialect!r}")
    session.execute(stmt, list(rows))


def json_dumps(value: Any) -> str:
    """JSON serializer for the engines: accepts numpy values, stores NaN/inf as null."""
    # NaN/inf -> null: PostgreSQL's json type rejects NaN, and Python's json module would write
    # invalid JSON for it.
    return json.dumps(to_plain_json(value, non_finite="null"), allow_nan=False)
