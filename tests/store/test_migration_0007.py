"""Revision 0007: runs record the machine of their worker (``training_runs.host``)."""

from __future__ import annotations

import os

from sqlalchemy import inspect, text

from vlmrm_core.store import downgrade, get_engine, get_run, upgrade


def _run_columns(engine: object) -> set[str]:
    return {c["name"] for c in inspect(engine).get_columns("training_runs")}


def test_host_column_up_and_down(db_url: str, settings: object) -> None:
    engine = get_engine(db_url)
    upgrade(engine, "0006")
    assert "host" not in _run_columns(engine)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO training_runs (name, status, env_id, algo, config, total_steps, "
                "steps_done, pid, cancel_requested, run_dir, created_at) VALUES ('r', "
                "'running', 'CartPole-v1', 'dqn', '{}', 10, 3, :pid, false, '', :now)"
            ),
            {"pid": os.getpid(), "now": "2026-12-01 00:00:00+00:00"},
        )

    upgrade(engine, "0007")
    run = get_run(engine, 1)
    # An old row: no host, so its pid is still taken as this machine's (today's behaviour).
    assert (run.status, run.pid, run.host, run.steps_done) == ("running", os.getpid(), None, 3)
    with engine.begin() as conn:
        conn.execute(text("UPDATE training_runs SET host = 'node-b/0123abcd'"))
    assert get_run(engine, 1).host == "node-b/0123abcd"

    downgrade(engine, "0006")
    assert "host" not in _run_columns(engine)
    with engine.connect() as conn:
        kept = conn.execute(text("SELECT name, pid, steps_done FROM training_runs")).one()
    assert tuple(kept) == ("r", os.getpid(), 3)
    upgrade(engine)  # and forward again to head
    assert get_run(engine, 1).host is None
