"""Training sweeps: a grid of training runs, driven by Ray Tune or the local run queue.

A sweep is a row of ``sweeps``; its trials are ordinary training runs whose ``sweep_id`` names
it, so every run view (status, curves, checkpoints, evaluation datasets) works for trials too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session

from vlmrm_core.store._sql import NotFoundError, affected_rows
from vlmrm_core.store.db import session_scope, transact
from vlmrm_core.store.schema import Sweep, TrainingRun, utcnow

SWEEP_STATUSES = ("running", "finished", "failed", "cancelled")
"""Allowed values of ``sweeps.status``."""
SWEEP_ENGINES = ("local", "ray")
"""Allowed values of ``sweeps.engine``."""


@dataclass(frozen=True)
class SweepInfo:
    """A stored sweep."""

    id: int
    name: str
    status: str
    engine: str
    address: str | None
    spec: dict[str, Any]
    storage_path: str
    pid: int | None
    error: str | None
    created_by: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


def _info(row: Sweep) -> SweepInfo:
    return SweepInfo(
        id=row.id,
        name=row.name,
        status=row.status,
        engine=row.engine,
        address=row.address,
        spec=dict(row.spec or {}),
        storage_path=row.storage_path,
        pid=row.pid,
        error=row.error,
        created_by=row.created_by,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
    )


def _check(fields: Mapping[str, Any]) -> None:
    if "status" in fields and fields["status"] not in SWEEP_STATUSES:
        raise ValueError(f"sweep status must be one of {SWEEP_STATUSES}, got {fields['status']!r}")
    if "engine" in fields and fields["engine"] not in SWEEP_ENGINES:
        raise ValueError(f"sweep engine must be one of {SWEEP_ENGINES}, got {fields['engine']!r}")


def create_sweep(
    engine: Engine,
    *,
    name: str,
    engine_kind: str,
    spec: Mapping[str, Any],
    address: str | None = None,
    created_by: str | None = None,
) -> SweepInfo:
    """Insert a sweep (status ``running``).

    Args:
        engine: store engine.
        name: display name.
        engine_kind: ``ray`` or ``local``.
        spec: the JSON-serialisable grid definition.
        address: Ray cluster address (None: a local cluster).
        created_by: email of the signed-in user, if any.

    Returns:
        The stored sweep.
    """
    _check({"engine": engine_kind})

    def body(session: Session) -> SweepInfo:
        row = Sweep(
            name=name,
            status="running",
            engine=engine_kind,
            address=address,
            spec=dict(spec),
            storage_path="",
            created_by=created_by,
            started_at=utcnow(),
        )
        session.add(row)
        session.flush()
        return _info(row)

    return transact(engine, body)


def get_sweep(engine: Engine, sweep_id: int) -> SweepInfo:
    """A sweep by id (``NotFoundError`` if there is none)."""
    with session_scope(engine) as session:
        row = session.get(Sweep, sweep_id)
        if row is None:
            raise NotFoundError(f"no sweep with id {sweep_id}: `vlmrm train list` shows them")
        return _info(row)


def list_sweeps(engine: Engine) -> list[SweepInfo]:
    """All sweeps, newest first."""
    with session_scope(engine) as session:
        rows = session.scalars(select(Sweep).order_by(Sweep.id.desc()))
        return [_info(r) for r in rows]


def update_sweep(engine: Engine, sweep_id: int, **fields: Any) -> SweepInfo:
    """Change columns of a sweep (status, pid, error, storage_path, finished_at, …)."""
    _check(fields)

    def body(session: Session) -> SweepInfo:
        row = session.get(Sweep, sweep_id)
        if row is None:
            raise NotFoundError(f"no sweep with id {sweep_id}")
        for key, value in fields.items():
            setattr(row, key, value)
        session.flush()
        return _info(row)

    return transact(engine, body)


def link_run(engine: Engine, run_id: int, sweep_id: int) -> None:
    """Make a training run a trial of a sweep."""

    def body(session: Session) -> None:
        session.execute(
            update(TrainingRun).where(TrainingRun.id == run_id).values(sweep_id=sweep_id)
        )

    transact(engine, body)


def sweep_run_ids(engine: Engine, sweep_id: int) -> list[int]:
    """Ids of a sweep's trial runs, oldest first."""
    with session_scope(engine) as session:
        return list(
            session.scalars(
                select(TrainingRun.id)
                .where(TrainingRun.sweep_id == sweep_id)
                .order_by(TrainingRun.id)
            )
        )


def find_trial_run(engine: Engine, sweep_id: int, trial_key: str) -> int | None:
    """The run of a sweep whose config has ``_trial_key == trial_key``, if it exists yet."""
    with session_scope(engine) as session:
        rows = session.execute(
            select(TrainingRun.id, TrainingRun.config).where(TrainingRun.sweep_id == sweep_id)
        ).all()
    for run_id, config in rows:
        if (config or {}).get("_trial_key") == trial_key:
            return int(run_id)
    return None


def run_sweep_ids(engine: Engine) -> dict[int, int]:
    """``{run_id: sweep_id}`` of every run that belongs to a sweep."""
    with session_scope(engine) as session:
        rows = session.execute(
            select(TrainingRun.id, TrainingRun.sweep_id).where(TrainingRun.sweep_id.is_not(None))
        ).all()
    return {int(r): int(s) for r, s in rows if s is not None}


def open_local_sweeps(engine: Engine) -> list[tuple[int, int, list[str]]]:
    """Local-engine sweeps still marked ``running``, with what their end depends on.

    One read for all of them (it runs on every reconciliation, so it takes no write lock).

    Returns:
        ``(sweep_id, number of grid points, statuses of its trial runs)`` per sweep.
    """
    with session_scope(engine) as session:
        sweeps = session.execute(
            select(Sweep.id, Sweep.spec).where(Sweep.engine == "local", Sweep.status == "running")
        ).all()
        if not sweeps:
            return []
        trials = session.execute(
            select(TrainingRun.sweep_id, TrainingRun.status)
            .where(TrainingRun.sweep_id.in_([s for s, _ in sweeps]))
            .order_by(TrainingRun.id)
        ).all()
    statuses: dict[int, list[str]] = {int(s): [] for s, _ in sweeps}
    for sweep_id, status in trials:
        if sweep_id is not None:  # always, given the filter; the column is nullable
            statuses[int(sweep_id)].append(str(status))
    return [(int(s), len((spec or {}).get("points", [])), statuses[int(s)]) for s, spec in sweeps]


def finish_running_sweep(engine: Engine, sweep_id: int, status: str) -> bool:
    """Set a sweep's final status, only if it is still ``running``.

    Conditional, so a cancellation (or another process settling it) in between wins.

    Returns:
        Whether this call changed it.
    """
    _check({"status": status})

    def body(session: Session) -> bool:
        result = session.execute(
            update(Sweep)
            .where(Sweep.id == sweep_id, Sweep.status == "running")
            .values(status=status, finished_at=utcnow())
        )
        return affected_rows(result) > 0

    return transact(engine, body)


def active_run_count(engine: Engine, created_by: str) -> int:
    """Queued or running runs started by one user (what ``VLMRM_MAX_RUNS_PER_USER`` caps)."""
    with session_scope(engine) as session:
        count = session.scalar(
            select(func.count())
            .select_from(TrainingRun)
            .where(
                TrainingRun.created_by == created_by,
                TrainingRun.status.in_(("queued", "running")),
            )
        )
    return int(count or 0)
