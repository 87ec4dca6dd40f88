"""Alembic environment for the VLM-RM Studio store.

Normally run through :func:`vlmrm_core.store.db.upgrade`, which passes an open connection (inside
a locked transaction) in ``config.attributes["connection"]``. Run from the command line
(``alembic -c vlmrm_core/migrations/alembic.ini upgrade head``) it connects to
``sqlalchemy.url`` from the ini file, or to the settings' database URL when that is empty.
"""

from __future__ import annotations

from logging.config import fileConfig
from typing import Any

from alembic import context
from sqlalchemy import Connection

from vlmrm_core.store.schema import Base

config = context.config
if config.config_file_name and "connection" not in config.attributes:
    # Command-line use: logging as configured in alembic.ini. The app configures its own.
    fileConfig(config.config_file_name)
target_metadata = Base.metadata


def _configure(**kwargs: Any) -> None:
    # render_as_batch: ALTERs on SQLite need the copy-and-move strategy.
    context.configure(target_metadata=target_metadata, render_as_batch=True, **kwargs)


def run_offline() -> None:
    """Emit SQL to stdout instead of running it (``alembic upgrade head --sql``)."""
    from vlmrm_core.settings import get_settings
    from vlmrm_core.store.db import normalize_url

    url = config.get_main_option("sqlalchemy.url") or get_settings().database_url
    _configure(url=normalize_url(url), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def _run_with(connection: Connection) -> None:
    _configure(connection=connection, transactional_ddl=True)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    """Run the migrations on the given connection, or on a new one from the configured URL."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_with(connection)
        return
    from vlmrm_core.store.db import get_engine, migration_connection

    engine = get_engine(config.get_main_option("sqlalchemy.url") or None)
    with migration_connection(engine) as conn:
        _run_with(conn)


if context.is_offline_mode():
    run_offline()
else:
    run_online()
