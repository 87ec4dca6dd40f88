"""Fixtures for the store tests: every test runs on a real SQLite file and on real PostgreSQL.

The PostgreSQL server is started once per session (see ``tests/_postgres.py``); each test gets a
fresh database on it. Without PostgreSQL binaries those tests are skipped with the reason, unless
``VLMRM_REQUIRE_POSTGRES=1`` (set it in CI) turns the skip into a failure.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import Engine

from vlmrm_core.frames import FrameRecord
from vlmrm_core.settings import Settings, get_settings
from vlmrm_core.store import dispose_engine, init_db

try:  # `python -m pytest` from the repo root puts the root on sys.path...
    from tests._postgres import PostgresServer, PostgresUnavailable, start_postgres
except ModuleNotFoundError:  # ...plain `pytest` puts tests/ there (rootdir conftest, no __init__).
    from _postgres import PostgresServer, PostgresUnavailable, start_postgres  # type: ignore


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    """A PostgreSQL server for the whole session (skips loudly when none can be started)."""
    external = os.environ.get("VLMRM_TEST_POSTGRES_URL")
    if external:
        server = PostgresServer(admin_url=external)
    else:
        try:
            server = start_postgres(tmp_path_factory.mktemp("pg"))
        except PostgresUnavailable as exc:
            message = (
                f"PostgreSQL not available: {exc}. Lifted by the Debian package postgresql "
                "(.ci/run installs it) or by VLMRM_TEST_POSTGRES_URL pointing at a server"
            )
            if os.environ.get("VLMRM_REQUIRE_POSTGRES") == "1":
                pytest.fail(message)
            pytest.skip(message)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """URL of an empty database: a SQLite file in tmp_path, or a new PostgreSQL database."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'db' / 'store.db'}"
        yield url
        dispose_engine(url)
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    name = f"vlmrm_test_{uuid.uuid4().hex[:12]}"
    url = server.create_database(name)
    try:
        yield url
    finally:
        # Close pooled connections first, or DROP DATABASE would have to kill them.
        dispose_engine(url)
        server.drop_database(name)


@pytest.fixture
def settings(data_dir: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings pointing at this test's data dir and database."""
    monkeypatch.setenv("VLMRM_DATABASE_URL", db_url)
    return get_settings()


@pytest.fixture
def engine(db_url: str, settings: Settings) -> Engine:
    """An engine on a database migrated to head."""
    return init_db(db_url)


def _make_frame(seed: int, *, size: int = 8, **provenance: object) -> FrameRecord:
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size + 2, 3), dtype=np.uint8)
    fields = {"source": "upload", "name": f"frame{seed}.png", **provenance}
    return FrameRecord(pixels=pixels, **fields)  # type: ignore[arg-type]


@pytest.fixture
def make_frame() -> Callable[..., FrameRecord]:
    """Factory of small random frames: ``make_frame(seed, size=8, **provenance)``.

    The same seed (and size) gives the same pixels, hence the same pixel hash.
    """
    return _make_frame


@pytest.fixture
def frame_files(settings: Settings) -> Callable[[], set[Path]]:
    """Returns a function listing every PNG under this test's frames folder."""

    def list_files() -> set[Path]:
        if not settings.frames_dir.exists():
            return set()
        return set(settings.frames_dir.rglob("*.png"))

    return list_files


ADMIN, RESEARCHER, ALICE, BOB = "admin@x.org", "res@x.org", "alice@x.org", "bob@x.org"
"""The signed-in team of the user and task tests."""


@pytest.fixture
def team(engine: Engine) -> Engine:
    """A database with an admin, a researcher and two labellers (ALICE, BOB)."""
    from vlmrm_core.store.users import ensure_admins, set_user_role

    ensure_admins(engine, [ADMIN])
    set_user_role(engine, RESEARCHER, "researcher", actor=ADMIN)
    set_user_role(engine, ALICE, "labeller", actor=ADMIN)
    set_user_role(engine, BOB, "labeller", actor=ADMIN)
    return engine
