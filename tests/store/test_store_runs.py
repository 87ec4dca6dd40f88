"""Training run records and metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sqlalchemy import Engine

from vlmrm_core.store import (
    NotFoundError,
    add_run_metrics,
    create_run,
    get_run,
    list_runs,
    run_metrics,
    update_run,
)
from vlmrm_core.store.schema import utcnow


def test_run_lifecycle(engine: Engine) -> None:
    run = create_run(
        engine,
        name="cartpole",
        env_id="CartPole-v1",
        algo="ppo",
        config={"lr": 3e-4, "n_envs": 4},
        total_steps=1000,
        run_dir="runs/1",
    )
    assert (run.status, run.steps_done, run.cancel_requested, run.pid) == ("queued", 0, False, None)
    assert run.config == {"lr": 3e-4, "n_envs": 4}
    started = utcnow()
    got = update_run(engine, run.id, status="running", pid=1234, started_at=started)
    assert (got.status, got.pid, got.started_at) == ("running", 1234, started)
    update_run(engine, run.id, cancel_requested=True, steps_done=500, heartbeat_at=utcnow())
    assert get_run(engine, run.id).cancel_requested is True

    other = create_run(engine, name="b", env_id="Pendulum-v1", algo="sac", config={}, total_steps=5)
    assert [r.id for r in list_runs(engine)] == [other.id, run.id]
    assert [r.id for r in list_runs(engine, status="running")] == [run.id]
    assert [r.id for r in list_runs(engine, status=["queued", "running"])] == [other.id, run.id]

    with pytest.raises(ValueError, match="status"):
        update_run(engine, run.id, status="exploded")
    with pytest.raises(ValueError, match="unknown"):
        update_run(engine, run.id, colour="red")
    with pytest.raises(ValueError, match="algo"):
        create_run(engine, name="x", env_id="e", algo="a2c", config={}, total_steps=1)
    with pytest.raises(NotFoundError):
        get_run(engine, 999)
    with pytest.raises(NotFoundError):
        update_run(engine, 999, status="failed")


def test_metrics(engine: Engine) -> None:
    run = create_run(engine, name="m", env_id="CartPole-v1", algo="dqn", config={}, total_steps=10)
    assert list(run_metrics(engine, run.id).columns) == ["step", "wall_time"]
    added = add_run_metrics(
        engine,
        run.id,
        [
            {"step": 20, "wall_time": 2.0, "reward": np.float32(0.5), "loss": float("nan")},
            {"step": 10, "wall_time": 1.0, "reward": 0.25},
            {"step": 20, "wall_time": 2.5, "fps": 100},
        ],
    )
    assert added == 3
    table = run_metrics(engine, run.id)
    assert list(table["step"]) == [10, 20, 20]
    assert table["reward"].iloc[0] == 0.25 and table["reward"].iloc[1] == 0.5
    assert math.isnan(table["loss"].iloc[1])  # non-finite stored as null
    assert table["fps"].iloc[2] == 100
    with pytest.raises(ValueError):
        add_run_metrics(engine, run.id, [{"reward": 1.0}])
    assert add_run_metrics(engine, run.id, []) == 0
