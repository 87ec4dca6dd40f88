"""Engines, sessions, transactions with retry, and schema migration on start.

SQLite is the default (one file under the data dir); PostgreSQL is supported so a team can share
one labelling database. The code paths are the same; the dialect differences are confined here and
to the upsert helper in ``_sql.py``.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from vlmrm_core.errors import VlmrmError
from vlmrm_core.settings import get_settings
from vlmrm_core.store._sql import json_dumps

T = TypeVar("T")

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
"""The Alembic script directory, located relative to this file so it works when installed."""

_BEGIN_MODE = "vlmrm_sqlite_begin"
"""Execution option naming the SQLite BEGIN variant (``IMMEDIATE`` for write transactions)."""

_PG_MIGRATION_LOCK = 0x766C6D726D
"""Key of the PostgreSQL advisory lock that serialises concurrent ``init_db`` calls."""

_engines: dict[tuple[int, str], Engine] = {}
_engines_lock = threading.Lock()
_migrate_lock = threading.Lock()


def normalize_url(url: str | URL) -> str:
    """Canonical form of a database URL: PostgreSQL URLs use the psycopg 3 driver.

    Args:
        url: any SQLAlchemy URL; ``postgres://`` and ``postgresql://`` are rewritten to
            ``postgresql+psycopg://``.

    Returns:
        The URL as a string, password included.
    """
    parsed = make_url(url)
    if parsed.drivername in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def is_sqlite(engine: Engine | Connection) -> bool:
    """Whether ``engine`` talks to SQLite."""
    return engine.dialect.name == "sqlite"


def _create_sqlite_engine(url: URL) -> Engine:
    database = url.database
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": 30}, json_serializer=json_dumps)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the sqlite3 module (it would only BEGIN before DML,
        # leaving DDL and reads outside transactions); we emit BEGIN ourselves in _on_begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # busy_timeout first: switching to WAL needs a lock another process may hold briefly.
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        # NORMAL is the recommended pairing with WAL: commits no longer wait for an fsync (a
        # power cut may lose the last few commits, never corrupt the file). With FULL, every
        # single label would cost a disk flush.
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # BEGIN IMMEDIATE takes the write lock up front, so a read-then-write transaction can
        # wait on busy_timeout instead of failing with SQLITE_BUSY when it upgrades its lock.
        mode = conn.get_execution_options().get(_BEGIN_MODE)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if mode == "IMMEDIATE" else "BEGIN")

    return engine


def _create_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _create_sqlite_engine(parsed)
    return create_engine(parsed, pool_pre_ping=True, json_serializer=json_dumps)


def get_engine(url: str | None = None) -> Engine:
    """The process-wide engine for a database URL (created on first use).

    Args:
        url: SQLAlchemy URL; None means ``get_settings().database_url``.

    Returns:
        One cached engine per URL per process. A forked child gets its own engine instead of
        sharing the parent's pooled connections.
    """
    key_url = normalize_url(url or get_settings().database_url)
    pid = os.getpid()
    with _engines_lock:
        for key in [k for k in _engines if k[0] != pid]:
            # Inherited across fork: forget it without closing the parent's connections.
            _engines.pop(key).dispose(close=False)
        engine = _engines.get((pid, key_url))
        if engine is None:
            engine = _create_engine(key_url)
            _engines[(pid, key_url)] = engine
        return engine


def dispose_engine(url: str | None = None) -> None:
    """Close the pooled connections of a cached engine and forget it (tests, shutdown).

    Args:
        url: as for :func:`get_engine`; None disposes every cached engine.
    """
    with _engines_lock:
        if url is None:
            keys = list(_engines)
        else:
            keys = [k for k in _engines if k[1] == normalize_url(url)]
        for key in keys:
            _engines.pop(key).dispose()


@contextmanager
def session_scope(engine: Engine, *, immediate: bool = False) -> Iterator[Session]:
    """A session in one transaction: committed on success, rolled back on error.

    Args:
        engine: from :func:`get_engine`.
        immediate: on SQLite, take the write lock when the transaction starts (use for
            transactions that read and then write). Ignored on PostgreSQL.

    Yields:
        A :class:`~sqlalchemy.orm.Session` whose objects stay readable after the commit.
    """
    with engine.connect() as conn:
        if immediate and is_sqlite(engine):
            conn.execution_options(**{_BEGIN_MODE: "IMMEDIATE"})
        session = Session(bind=conn, expire_on_commit=False)
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()


def is_transient_error(exc: BaseException) -> bool:
    """Whether retrying the whole transaction may succeed (lock contention, serialisation).

    Args:
        exc: an exception raised by a transaction.

    Returns:
        True for SQLite "database is locked"/"busy" and PostgreSQL serialisation failures and
        deadlocks.
    """
    if not isinstance(exc, DBAPIError):
        return False
    orig = exc.orig
    if getattr(orig, "sqlstate", None) in ("40001", "40P01"):
        return True
    message = str(orig).lower()
    return (
        "database is locked" in message
        or "database table is locked" in message
        or ("database is busy" in message)
    )


def transact(
    engine: Engine,
    fn: Callable[[Session], T],
    *,
    immediate: bool = True,
    attempts: int = 8,
) -> T:
    """Run ``fn`` in a short transaction, retrying it from scratch on transient lock errors.

    Args:
        engine: from :func:`get_engine`.
        fn: the transaction body; it may run more than once, so it must not have side effects
            outside the session.
        immediate: see :func:`session_scope`; write transactions should keep the default.
        attempts: how many times to try before re-raising.

    Returns:
        What ``fn`` returned in the attempt that committed.
    """
    for attempt in range(attempts):
        try:
            with session_scope(engine, immediate=immediate) as session:
                return fn(session)
        except DBAPIError as exc:
            if attempt == attempts - 1 or not is_transient_error(exc):
                raise
            # Jittered exponential back-off so competing writers don't retry in lockstep.
            time.sleep(min(0.05 * 2**attempt, 2.0) * (0.5 + random.random()))
    raise AssertionError("unreachable")


def alembic_config(connection: Connection | None = None) -> Any:
    """An Alembic ``Config`` for the packaged migrations (no alembic.ini or cwd needed).

    Args:
        connection: the connection the migrations run on (``env.py`` reads it), if any.

    Returns:
        ``alembic.config.Config`` with ``script_location`` set.
    """
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    """The newest migration revision shipped with the package."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "no migrations found"
    return head


def current_revision(engine: Engine) -> str | None:
    """The migration revision a database is at.

    Args:
        engine: from :func:`get_engine`.

    Returns:
        The revision id (e.g. ``"0002"``), or None for an empty database.
    """
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


@contextmanager
def migration_connection(engine: Engine) -> Iterator[Connection]:
    """A connection inside one write transaction, set up for running migrations.

    On SQLite the transaction starts with ``BEGIN IMMEDIATE`` (a second process waits, then finds
    nothing left to do) and foreign keys are off for its duration: a table rebuild (Alembic batch
    mode) drops the old table, and with foreign keys on that would cascade-delete the rows that
    refer to it. The foreign keys are checked before the commit. On PostgreSQL an advisory lock
    plays the role of the write lock.

    Args:
        engine: from :func:`get_engine`.

    Yields:
        The connection; the transaction commits when the block exits normally.
    """
    sqlite = is_sqlite(engine)
    with _migrate_lock, engine.connect() as conn:
        raw = conn.connection.driver_connection
        assert raw is not None  # a checked-out connection always has its driver connection
        if sqlite:
            # Must run outside a transaction (it is a no-op inside one); autocommit here.
            raw.execute("PRAGMA foreign_keys=OFF")
            conn.execution_options(**{_BEGIN_MODE: "IMMEDIATE"})
        try:
            with conn.begin():
                if not sqlite:
                    conn.execute(
                        text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK}
                    )
                yield conn
                if sqlite:
                    problems = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                    if problems:
                        raise RuntimeError(f"migration broke foreign keys: {problems[:5]}")
        finally:
            if sqlite:
                raw.execute("PRAGMA foreign_keys=ON")


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate a database up to ``revision`` in one transaction, serialised across processes.

    Args:
        engine: from :func:`get_engine`.
        revision: target revision id, or ``"head"``.
    """
    from alembic import command

    with migration_connection(engine) as conn:
        command.upgrade(alembic_config(conn), revision)


class MigrationRefusedError(VlmrmError, RuntimeError):
    """A migration that would lose or misread stored data refuses to run (raised by the Alembic
    revisions); the message says what to do first."""


def downgrade(engine: Engine, revision: str) -> None:
    """Migrate a database down to ``revision`` (``"base"`` drops everything), like :func:`upgrade`.

    Args:
        engine: from :func:`get_engine`.
        revision: target revision id, or ``"base"``.

    Raises:
        MigrationRefusedError: a revision would lose or misread stored data (0010: frames stored
            by reference to a video).
    """
    from alembic import command

    with migration_connection(engine) as conn:
        command.downgrade(alembic_config(conn), revision)


def init_db(url: str | None = None) -> Engine:
    """Create or upgrade the database to the newest schema and return its engine.

    Safe to call from several processes at once (the app and a training worker both start):
    migrations are serialised and a database already at head is left alone.

    Args:
        url: SQLAlchemy URL; None means ``get_settings().database_url``.

    Returns:
        The cached engine for ``url``.
    """
    engine = get_engine(url)
    if current_revision(engine) != head_revision():
        upgrade(engine, "head")
    return engine
