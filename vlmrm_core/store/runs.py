"""Training runs and their logged metrics: the record access of the job-control layer.

Every query on ``training_runs`` and ``run_metrics`` lives here; :mod:`vlmrm_core.training.jobs`
and the worker decide *what* to do and call these typed functions. State changes that race
(two launchers claiming one queued run, a crash mark against a worker's heartbeat) are single
conditional updates, so they are safe across processes.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import pandas as pd
from sqlalchemy import Engine, func, insert, select, update
from sqlalchemy.orm import Session

from vlmrm_core.errors import InvalidInputError, NotFoundError, RunStateError
from vlmrm_core.store._sql import affected_rows
from vlmrm_core.store.db import session_scope, transact
from vlmrm_core.store.schema import RUN_ALGOS, RUN_STATUSES, RunMetric, TrainingRun, utcnow

RESUMABLE = ("cancelled", "crashed", "failed")
"""Statuses a run can be resumed from (queued again, continuing from its last checkpoint)."""

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
    created_by: str | None = None
    """Email of the signed-in user who started the run; None without sign-in."""
    sweep_id: int | None = None
    """The sweep this run is a trial of (``vlmrm_core.store.sweeps``); None for a lone run."""
    host: str | None = None
    """Machine the worker ``pid`` runs on (``vlmrm_core.training.jobs.this_host``); a pid means
    nothing on any other machine. None in rows written before hosts were recorded."""


def _info(row: TrainingRun) -> RunInfo:
    return RunInfo(**{c.key: getattr(row, c.key) for c in TrainingRun.__table__.columns})


def _run_row(session: Session, run_id: int, *, for_update: bool = False) -> TrainingRun:
    """The run's row (locked for the transaction with ``for_update``); NotFoundError if none."""
    row = session.get(TrainingRun, run_id, with_for_update=for_update)
    if row is None:
        raise NotFoundError(f"no training run with id {run_id}")
    return row


def _check(fields: Mapping[str, Any]) -> None:
    if "status" in fields and fields["status"] not in RUN_STATUSES:
        raise InvalidInputError(f"status must be one of {RUN_STATUSES}, got {fields['status']!r}")
    if "algo" in fields and fields["algo"] not in RUN_ALGOS:
        raise InvalidInputError(f"algo must be one of {RUN_ALGOS}, got {fields['algo']!r}")


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
    created_by: str | None = None,
    max_active_per_user: int | None = None,
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
        created_by: email of the signed-in user starting it (None without sign-in).
        max_active_per_user: refuse the run when ``created_by`` already has this many queued or
            running runs (checked in the same transaction as the insert).

    Returns:
        The stored run.

    Raises:
        RunStateError: The per-user quota is reached.
    """
    fields = {"algo": algo, "status": status}
    _check(fields)

    def body(session: Session) -> RunInfo:
        if created_by is not None and max_active_per_user is not None:
            active = session.scalar(
                select(func.count())
                .select_from(TrainingRun)
                .where(
                    TrainingRun.created_by == created_by,
                    TrainingRun.status.in_(("queued", "running")),
                )
            )
            if int(active or 0) >= max_active_per_user:
                raise RunStateError(
                    f"{created_by} already has {active} queued or running run(s), the most one "
                    f"person may have (VLMRM_MAX_RUNS_PER_USER={max_active_per_user}); wait for "
                    "one to finish or cancel one."
                )
        row = TrainingRun(
            created_by=created_by,
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
        return _info(_run_row(session, run_id))


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
        row = _run_row(session, run_id, for_update=True)
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


def latest_metric(engine: Engine, run_id: int, name: str, *, window: int = 10) -> float | None:
    """The newest finite value of one metric among a run's last ``window`` metric rows.

    Only the newest rows are read: a long run has thousands, and the runs table polls often.

    Args:
        engine: store engine.
        run_id: run id.
        name: metric name (a key of the logged rows, e.g. ``steps_per_s``).
        window: how many of the newest rows to look at.

    Returns:
        The value, or None when none of those rows logged it.
    """
    with session_scope(engine) as session:
        rows = session.scalars(
            select(RunMetric.data)
            .where(RunMetric.run_id == run_id)
            .order_by(RunMetric.step.desc(), RunMetric.id.desc())
            .limit(window)
        ).all()
    for data in rows:
        value = (data or {}).get(name)
        if isinstance(value, int | float) and math.isfinite(value):
            return float(value)
    return None


@dataclass(frozen=True)
class MeasuredSpeed:
    """How fast finished runs of one environment, algorithm and reward model trained."""

    steps_per_s: float
    """The median over the runs of steps done / (finished − started), worker start-up included."""
    n_runs: int
    """How many finished runs it was measured on."""


def finished_run_speed(
    engine: Engine, *, env_id: str, algo: str, architecture: str, newest: int = 5
) -> MeasuredSpeed | None:
    """The measured speed of the newest finished runs like a planned one, to estimate its length.

    Resumed runs are left out: their start time is the first attempt's, so the pause counts.

    Args:
        engine: store engine.
        env_id: Gymnasium environment id.
        algo: 'sac', 'dqn' or 'ppo'.
        architecture: open_clip architecture of the reward model (the run config's ``model``).
        newest: how many of the newest matching runs to take the median of.

    Returns:
        The median speed and the number of runs, or None when no such run finished.
    """
    query = (
        select(TrainingRun.steps_done, TrainingRun.started_at, TrainingRun.finished_at,
               TrainingRun.config)
        .where(
            TrainingRun.status == "finished",
            TrainingRun.env_id == env_id,
            TrainingRun.algo == algo,
            TrainingRun.steps_done > 0,
            TrainingRun.started_at.is_not(None),
            TrainingRun.finished_at.is_not(None),
        )
        .order_by(TrainingRun.id.desc())
    )  # fmt: skip
    speeds: list[float] = []
    with session_scope(engine) as session:
        # The architecture sits in the config's JSON: filtered here, portably across databases.
        for steps, started, finished, config in session.execute(query):
            config = config or {}
            if config.get("_resume") or (config.get("model") or {}).get("architecture") != (
                architecture
            ):
                continue
            seconds = (finished - started).total_seconds()
            if seconds > 0:
                speeds.append(steps / seconds)
            if len(speeds) >= newest:
                break
    if not speeds:
        return None
    return MeasuredSpeed(steps_per_s=statistics.median(speeds), n_runs=len(speeds))


def claim_next_queued(engine: Engine, limit: int) -> RunInfo | None:
    """Claim the oldest queued run (``queued`` → ``running``) if fewer than ``limit`` run.

    The claim is a conditional update in one transaction, so two processes claiming at once
    (the app and a finishing worker) never get the same run. The claimed run has no pid and no
    heartbeat yet: the worker that is started for it sets both.

    Args:
        engine: store engine.
        limit: runs allowed to be running at once.

    Returns:
        The claimed run, or None when the limit is reached or nothing is queued.
    """

    def body(session: Session) -> int | None:
        running = session.scalar(
            select(func.count()).select_from(TrainingRun).where(TrainingRun.status == "running")
        )
        if (running or 0) >= limit:
            return None
        run_id = session.scalar(
            select(TrainingRun.id)
            .where(TrainingRun.status == "queued")
            .order_by(TrainingRun.id)
            .limit(1)
        )
        if run_id is None:
            return None
        claimed = affected_rows(
            session.execute(
                update(TrainingRun)
                .where(TrainingRun.id == run_id, TrainingRun.status == "queued")
                .values(
                    status="running",
                    pid=None,
                    host=None,
                    # No heartbeat until the worker sends its first: the startup grace applies.
                    heartbeat_at=None,
                    started_at=utcnow(),
                    finished_at=None,
                    error=None,
                )
            )
        )
        return run_id if claimed == 1 else None

    run_id = transact(engine, body)
    return None if run_id is None else get_run(engine, run_id)


def mark_crashed(
    engine: Engine,
    run_id: int,
    *,
    seen_heartbeat: datetime | None,
    reason: str,
    at: datetime | None = None,
) -> bool:
    """Mark a running run ``crashed``, unless it changed since it was judged dead.

    Args:
        engine: store engine.
        run_id: run id.
        seen_heartbeat: the ``heartbeat_at`` the run had when it was judged dead; a worker that
            beat meanwhile (or finished) keeps its run.
        reason: stored in ``error``; says what happened and what to do.
        at: the time of the judgement (default now), stored as ``finished_at``.

    Returns:
        True when the run was marked.
    """
    at = at or utcnow()

    def body(session: Session) -> int:
        return affected_rows(
            session.execute(
                update(TrainingRun)
                .where(
                    TrainingRun.id == run_id,
                    TrainingRun.status == "running",
                    TrainingRun.heartbeat_at.is_(None)
                    if seen_heartbeat is None
                    else TrainingRun.heartbeat_at == seen_heartbeat,
                )
                .values(status="crashed", error=reason, finished_at=at)
            )
        )

    return transact(engine, body) == 1


def request_cancel(engine: Engine, run_id: int) -> str:
    """Cancel a queued run now, or ask a running run's worker to stop.

    Args:
        engine: store engine.
        run_id: run id.

    Returns:
        The run's status afterwards: ``'cancelled'`` or ``'running'`` (with
        ``cancel_requested`` set; the worker stops after a checkpoint).

    Raises:
        NotFoundError: no such run.
        RunStateError: the run already ended.
    """

    def body(session: Session) -> str:
        row = _run_row(session, run_id, for_update=True)
        if row.status == "queued":
            row.status = "cancelled"
            row.finished_at = utcnow()
        elif row.status == "running":
            row.cancel_requested = True
        else:
            raise RunStateError(
                f"run {run_id} is {row.status}; only queued or running runs can be cancelled"
            )
        return str(row.status)

    return transact(engine, body)


def requeue_run(engine: Engine, run_id: int) -> RunInfo:
    """Queue a cancelled, crashed or failed run again, flagged to resume from its checkpoint.

    Args:
        engine: store engine.
        run_id: run id.

    Returns:
        The queued run (``config["_resume"]`` is True).

    Raises:
        NotFoundError: no such run.
        RunStateError: the run is queued, running or finished.
    """

    def body(session: Session) -> RunInfo:
        row = _run_row(session, run_id, for_update=True)
        if row.status not in RESUMABLE:
            raise RunStateError(
                f"run {run_id} is {row.status}; only {', '.join(RESUMABLE)} runs can be resumed"
            )
        row.status = "queued"
        row.cancel_requested = False
        row.error = None
        row.finished_at = None
        row.pid = None
        row.host = None
        row.heartbeat_at = None
        # The resume flag: the worker continues from the newest checkpoint.
        row.config = {**row.config, "_resume": True}
        session.flush()
        return _info(row)

    return transact(engine, body)


def claim_run_for_worker(
    engine: Engine,
    run_id: int,
    pid: int,
    worker_alive: Callable[[RunInfo], bool],
    *,
    host: str | None,
) -> RunInfo:
    """Mark a run as running in worker process ``pid`` on machine ``host``.

    A queued run is taken; a running run is taken when it was claimed for this worker by a
    launcher (no pid yet, or this pid on this host) or its recorded worker is dead.

    Args:
        engine: store engine.
        run_id: run id.
        pid: the worker's process id.
        worker_alive: whether the worker a run records (its pid and host) is alive, judged from
            this machine (:func:`vlmrm_core.training.jobs.worker_alive`); called inside the
            claim's transaction, on the locked row.
        host: the worker's machine (``jobs.this_host()``); None records no host, and the pid is
            then taken as the checking machine's, as before hosts were recorded.

    Returns:
        The run, now ``running`` with this pid and host and a fresh heartbeat.

    Raises:
        NotFoundError: no such run.
        RunStateError: the run ended, or another live worker runs it.
    """

    def body(session: Session) -> RunInfo:
        row = _run_row(session, run_id, for_update=True)
        if row.status == "running":
            # The same pid on another machine is another process.
            ours = row.pid is None or (row.pid == pid and row.host in (None, host))
            if not ours and worker_alive(_info(row)):
                where = f" on {row.host}" if row.host not in (None, host) else ""
                raise RunStateError(f"run {run_id} is already running in process {row.pid}{where}")
        elif row.status != "queued":
            hint = (
                f" (resume it first: `vlmrm train resume {run_id}`)"
                if row.status in RESUMABLE
                else ""
            )
            raise RunStateError(f"run {run_id} is {row.status}; nothing to run{hint}")
        now = utcnow()
        row.status = "running"
        row.pid = pid
        row.host = host
        row.heartbeat_at = now
        row.started_at = row.started_at or now
        row.finished_at = None
        session.flush()
        return _info(row)

    return transact(engine, body)


class BeatOutcome(StrEnum):
    """What a worker's heartbeat found (see :func:`record_heartbeat`)."""

    OK = "ok"
    """The run is this worker's; liveness and progress recorded."""
    RECLAIMED = "reclaimed"
    """The run had been marked crashed while this worker was alive; it is running again."""
    LOST = "lost"
    """The run belongs to another worker now, or ended; nothing was written."""


def record_heartbeat(
    engine: Engine, run_id: int, pid: int, steps: int, *, host: str | None = None
) -> BeatOutcome:
    """Record a worker's liveness and progress, if the run is still that worker's.

    Args:
        engine: store engine.
        run_id: run id.
        pid: the worker's process id.
        steps: environment steps done so far.
        host: the worker's machine; a row naming the same pid on another host is another
            worker's (pids repeat across machines, and across containers). A row without a host
            matches any, as before hosts were recorded.

    Returns:
        What happened (see :class:`BeatOutcome`).
    """

    def body(session: Session) -> BeatOutcome:
        row = session.get(TrainingRun, run_id, with_for_update=True)
        if row is None or row.pid != pid or row.status not in ("running", "crashed"):
            return BeatOutcome.LOST
        if host is not None and row.host is not None and row.host != host:
            return BeatOutcome.LOST
        outcome = BeatOutcome.RECLAIMED if row.status == "crashed" else BeatOutcome.OK
        if outcome is BeatOutcome.RECLAIMED:
            row.status = "running"
            row.error = None
            row.finished_at = None
        row.heartbeat_at = utcnow()
        row.steps_done = int(steps)
        return outcome

    return transact(engine, body)
