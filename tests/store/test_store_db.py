"""Engine set-up, migrations and the schema they produce."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, text

from vlmrm_core.frames import FrameRecord
from vlmrm_core.store import (
    current_revision,
    dataset_frames,
    downgrade,
    get_dataset,
    get_engine,
    head_revision,
    ingest_frames,
    init_db,
    list_datasets,
    upgrade,
)
from vlmrm_core.store.db import normalize_url
from vlmrm_core.store.schema import Base

MakeFrame = Callable[..., FrameRecord]


def test_sqlite_pragmas(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new' / 'nested' / 'x.db'}"
    engine = init_db(url)
    assert (tmp_path / "new" / "nested" / "x.db").exists()  # parent folders created
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
    engine.dispose()


def test_engine_cached_per_url(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    assert get_engine(url) is get_engine(url)
    assert get_engine(url) is not get_engine(f"sqlite:///{tmp_path / 'b.db'}")


def test_default_url_from_settings(data_dir: Path) -> None:
    engine = init_db()
    assert (data_dir / "vlmrm.db").exists()
    assert current_revision(engine) == head_revision()


def test_postgres_url_rewritten() -> None:
    assert normalize_url("postgresql://u:pw@h:5/db") == "postgresql+psycopg://u:pw@h:5/db"
    assert normalize_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalize_url("postgresql+psycopg://u@h/db") == "postgresql+psycopg://u@h/db"


def test_init_db_creates_all_tables_at_head(engine: Engine) -> None:
    assert current_revision(engine) == head_revision() == "0011"
    names = set(inspect(engine).get_table_names())
    assert set(Base.metadata.tables) <= names


def test_models_match_migrations(engine: Engine) -> None:
    # The ORM models must describe exactly what the migrations create (server-default text is
    # rendered differently by each backend, so it is not compared).
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_init_db_twice_is_a_noop(engine: Engine, db_url: str) -> None:
    init_db(db_url)
    assert current_revision(engine) == head_revision()


def test_upgrade_keeps_rows(db_url: str) -> None:
    """Create at revision 0001, write rows, upgrade to head, read them back."""
    engine = get_engine(db_url)
    upgrade(engine, "0001")
    assert current_revision(engine) == "0001"
    assert "training_runs" not in inspect(engine).get_table_names()
    now = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO datasets (id, name, description, kind, created_at, meta) "
                "VALUES (1, 'old', 'from 0001', 'rollout', :now, '{\"a\": 1}')"
            ),
            {"now": now},
        )
        conn.execute(
            text(
                "INSERT INTO frames (hash, path, width, height, created_at) "
                "VALUES (:h, 'ab/x.png', 4, 3, :now)"
            ),
            {"h": "ab" + "0" * 62, "now": now},
        )
        conn.execute(
            text(
                "INSERT INTO dataset_frames (dataset_id, position, frame_hash, source, name, step)"
                " VALUES (1, 0, :h, 'rollout', 'f0', 7)"
            ),
            {"h": "ab" + "0" * 62},
        )
    init_db(db_url)
    assert current_revision(engine) == head_revision()
    [summary] = list_datasets(engine)
    assert summary.name == "old" and summary.description == "from 0001"
    assert summary.kind == "rollout" and summary.meta == {"a": 1}
    assert summary.created_at == now
    assert summary.labels_required == 1 and summary.graded is False  # added in 0002
    assert get_dataset(engine, "old").n_frames == 1
    [frame] = dataset_frames(engine, "old")
    assert (frame.name, frame.step, frame.width, frame.height, frame.extra) == ("f0", 7, 4, 3, None)


def _init_in_child(url: str, queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    try:
        engine = init_db(url)
        queue.put(current_revision(engine))
    except Exception as exc:  # pragma: no cover - reported to the parent
        queue.put(repr(exc))


def test_concurrent_init_db_sqlite(tmp_path: Path) -> None:
    """The app and a worker starting together both migrate without tripping over each other."""
    url = f"sqlite:///{tmp_path / 'race.db'}"
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_init_in_child, args=(url, queue)) for _ in range(4)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    assert results == [head_revision()] * 4
    assert all(p.exitcode == 0 for p in procs)


@pytest.mark.parametrize("value", ["2024-05-01T12:00:00+02:00"])
def test_timestamps_come_back_utc(engine: Engine, value: str) -> None:
    from vlmrm_core.store import create_run, get_run, update_run

    run = create_run(engine, name="r", env_id="CartPole-v1", algo="ppo", config={}, total_steps=1)
    assert run.created_at.tzinfo is not None and run.created_at.utcoffset().total_seconds() == 0
    update_run(engine, run.id, heartbeat_at=datetime.fromisoformat(value))
    got = get_run(engine, run.id).heartbeat_at
    assert got == datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
    assert got.tzinfo is not None and got.utcoffset().total_seconds() == 0


def test_downgrade_rebuild_keeps_child_rows(engine: Engine, make_frame: MakeFrame) -> None:
    """Table rebuilds (SQLite batch mode) run with foreign keys off: no cascade deletes."""
    ingest_frames(engine, "d", [make_frame(1), make_frame(2)])
    downgrade(engine, "0001")  # rebuilds datasets and dataset_frames on SQLite
    assert current_revision(engine) == "0001"
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT COUNT(*) FROM dataset_frames").scalar() == 2
    upgrade(engine, "head")
    assert get_dataset(engine, "d").n_frames == 2
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1  # restored
    downgrade(engine, "base")
    assert current_revision(engine) is None
    assert not (set(inspect(engine).get_table_names()) & set(Base.metadata.tables))
