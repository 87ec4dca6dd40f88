"""Training runs and their logged metrics: plain record access for the job-control layer."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import Engine, insert, select
from sqlalchemy.orm import Session

from vlmrm_core.store._sql import NotFoundError
from vlmrm_core.store.db import session_scope, transact
from vlmrm_core.store.schema import RUN_ALGOS, RUN_STATUSES, RunMetric, TrainingRun

_UPDATABLE = frozenset(
    c.key for c in TrainingRun.__table__.columns if c.key not in ("id", "created_at")
)


@dataclass(frozen=True)
class RunInfo:
    """A snapshot of one ``training_runs`` row."""

    id: int
    name: str
    status: str
    env_id: str
    algo: str
    config: dict[str, Any]
    prompt_set_id: int | None
    total_steps: int
    steps_done: int
    pid: int | None
    heartbeat_at: datetime | None
    cancel_requested: bool
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None
    run_dir: str
    eval_dataset_id: int | None


def _info(row: TrainingRun) -> RunInfo:
    return RunInfo(**{c.key: getattr(row, c.key) for c in TrainingRun.__table__.columns})


def _check(fields: Mapping[str, Any]) -> None:
    if "status" in fields and fields["status"] not in RUN_STATUSES:
        raise ValueError(f"status must be one of {RUN_STATUSES}, got {fields['status']!r}")
    if "algo" in fields and fields["algo"] not in RUN_ALGOS:
        raise ValueError(f"algo must be one of {RUN_ALGOS}, got {fields['algo']!r}")


def create_run(
    engine: Engine,
    *,
    name: str,
    env_id: str,
    algo: str,
    config: Mapping[str, Any],
    total_steps: int,
    prompt_set_id: int | None = None,
    run_dir: str = "",
    eval_dataset_id: int | None = None,
    status: str = "queued",
) -> RunInfo:
    """Insert a training run.

    Args:
        engine: store engine.
        name: display name.
        env_id: Gymnasium environment id.
        algo: 'sac', 'dqn' or 'ppo'.
        config: the full JSON-serialisable run configuration.
        total_steps: planned environment steps.
        prompt_set_id: the prompt set the reward came from, if saved.
        run_dir: folder of checkpoints, logs and videos.
        eval_dataset_id: dataset of evaluation frames, if any.
        status: initial status.

    Returns:
        The stored run.
    """
    fields = {"algo": algo, "status": status}
    _check(fields)

    def body(session: Session) -> RunInfo:
        row = TrainingRun(
            name=name,
            env_id=env_id,
            algo=algo,
            status=status,
            config=dict(config),
            total_steps=int(total_steps),
            prompt_set_id=prompt_set_id,
            run_dir=run_dir,
            eval_dataset_id=eval_dataset_id,
            steps_done=0,
            cancel_requested=False,
        )
        session.add(row)
        session.flush()
        return _info(row)

    return transact(engine, body)


def get_run(engine: Engine, run_id: int) -> RunInfo:
    """One run by id.

    Args:
        engine: store engine.
        run_id: run id.

    Returns:
        The run.

    Raises:
        NotFoundError: no such run.
    """
    with session_scope(engine) as session:
        row = session.get(TrainingRun, run_id)
        if row is None:
            raise NotFoundError(f"no training run with id {run_id}")
        return _info(row)


def list_runs(engine: Engine, status: str | Iterable[str] | None = None) -> list[RunInfo]:
    """Runs, newest first.

    Args:
        engine: store engine.
        status: only runs with this status (or any of these statuses).

    Returns:
        The runs.
    """
    query = select(TrainingRun).order_by(TrainingRun.id.desc())
    if status is not None:
        statuses = [status] if isinstance(status, str) else list(status)
        query = query.where(TrainingRun.status.in_(statuses))
    with session_scope(engine) as session:
        return [_info(r) for r in session.scalars(query)]


def update_run(engine: Engine, run_id: int, **fields: Any) -> RunInfo:
    """Set columns of a run (status, steps_done, pid, heartbeat_at, error...).

    Args:
        engine: store engine.
        run_id: run id.
        **fields: column names and new values; unknown names raise ValueError.

    Returns:
        The updated run.
    """
    unknown = set(fields) - _UPDATABLE
    if unknown:
        raise ValueError(f"unknown or read-only run fields: {sorted(unknown)}")
    _check(fields)

    def body(session: Session) -> RunInfo:
        row = session.get(TrainingRun, run_id, with_for_update=True)
        if row is None:
            raise NotFoundError(f"no training run with id {run_id}")
        for key, value in fields.items():
            setattr(row, key, value)
        session.flush()
        return _info(row)

    return transact(engine, body)


def add_run_metrics(engine: Engine, run_id: int, rows: Iterable[Mapping[str, Any]]) -> int:
    """Append metric rows to a run.

    Args:
        engine: store engine.
        run_id: run id.
        rows: mappings with ``step`` (required), ``wall_time`` (optional, default now) and any
            scalar metrics; non-finite values are stored as null.

    Returns:
        Rows added.
    """
    now = time.time()
    values = []
    for row in rows:
        data = {k: v for k, v in row.items() if k not in ("step", "wall_time")}
        if "step" not in row:
            raise ValueError("every metrics row needs a 'step'")
        values.append(
            {
                "run_id": run_id,
                "step": int(row["step"]),
                "wall_time": float(row.get("wall_time", now)),
                "data": data,
            }
        )
    if not values:
        return 0

    def body(session: Session) -> int:
        session.execute(insert(RunMetric), values)
        return len(values)

    return transact(engine, body)


def run_metrics(engine: Engine, run_id: int) -> pd.DataFrame:
    """All metrics of a run as one table.

    Args:
        engine: store engine.
        run_id: run id.

    Returns:
        DataFrame with columns step, wall_time and one column per metric name (NaN where a row
        did not log it), ordered by step then insertion.
    """
    with session_scope(engine) as session:
        rows = session.execute(
            select(RunMetric.step, RunMetric.wall_time, RunMetric.data)
            .where(RunMetric.run_id == run_id)
            .order_by(RunMetric.step, RunMetric.id)
        ).all()
    records = [{"step": s, "wall_time": w, **(d or {})} for s, w, d in rows]
    frame = pd.DataFrame.from_records(records)
    if frame.empty:
        return pd.DataFrame(columns=["step", "wall_time"])
    return frame.reset_index(drop=True)
