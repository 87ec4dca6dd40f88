"""Job control for training runs: queue, launch detached workers, cancel, resume, detect crashes.

A run's life: ``start_run`` stores it as ``queued``; ``launch_queued`` claims queued runs (up to
``VLMRM_MAX_RUNS`` running at once) and starts one detached worker process per run; the worker
marks it ``finished``, ``failed`` or ``cancelled`` and then launches the next queued run itself,
so the queue drains without the app. Workers run in their own session (``start_new_session``),
so closing the browser or restarting the app does not stop them.

A worker that dies without saying so (killed, out of memory, machine reboot) is found by
:func:`mark_crashed_runs`: its process is gone, its heartbeat is older than two heartbeat
intervals, or it never reported in. It becomes ``crashed``; ``resume_run`` queues it again and
the worker continues from the last checkpoint.

Runs may train on several machines (Ray sweeps place trials on any node; every node shares the
PostgreSQL database). A pid only names a process on its own machine, so each run records its
worker's machine with its pid (``host``, see :func:`this_host`). The process check applies only
to runs on this host (or with no recorded host: rows from before hosts were recorded); a run on
another host is judged by its heartbeat alone. Nothing here ever signals a worker: cancelling
sets a flag that the worker polls (:func:`cancel_run`), wherever it runs.

:func:`reconcile_runs` (crash detection, then launching queued runs into the free slots, then
ending local-engine sweeps whose trials have all ended) is the one step that repairs the queue.
It runs where runs start and end: in ``start_run`` and
``resume_run``, in every worker when it starts and when it exits, and from every live worker's
heartbeat (so a dead worker is found while any other worker runs). The app calls it when the
Train page loads and ``vlmrm train list`` before it prints. Listing runs
(:func:`list_runs_view`) only reads.

Settings (environment):
    VLMRM_MAX_RUNS: runs training at the same time (default 1).
    VLMRM_HEARTBEAT_S: seconds between worker heartbeats (default 5).
"""

from __future__ import annotations

import atexit
import functools
import hashlib
import math
import os
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from vlmrm_core.errors import NotFoundError, RunStateError
from vlmrm_core.settings import get_settings
from vlmrm_core.store import (
    RESUMABLE,
    Engine,
    RunInfo,
    claim_next_queued,
    create_run,
    get_prompt_set,
    init_db,
    latest_metric,
    list_runs,
    mark_crashed,
    request_cancel,
    requeue_run,
    update_run,
    utcnow,
)
from vlmrm_core.store.users import require_researcher
from vlmrm_core.training.checkpoints import Checkpoint, list_checkpoints
from vlmrm_core.training.config import ConfigError, TrainConfig, validate, with_prompt_set

#: How long a claimed worker may take to send its first heartbeat (imports, CUDA init).
STARTUP_GRACE_S = 120.0
LOG_NAME = "worker.log"

# Worker processes started by this process, so their exit can be observed (and zombies reaped).
_children: dict[int, subprocess.Popen[bytes]] = {}


__all__ = [
    "LOG_NAME",
    "RESUMABLE",
    "STARTUP_GRACE_S",
    "Reconciliation",
    "RunStateError",
    "RunView",
    "cancel_run",
    "checkpoint_dir",
    "eval_videos",
    "heartbeat_interval",
    "launch_queued",
    "list_runs_view",
    "log_path",
    "log_tail",
    "mark_crashed_runs",
    "max_concurrent",
    "on_this_host",
    "pid_alive",
    "reconcile_runs",
    "resume_run",
    "run_checkpoints",
    "run_dir",
    "run_view",
    "start_run",
    "this_host",
    "worker_alive",
]


def max_concurrent() -> int:
    """Runs allowed to train at once (``VLMRM_MAX_RUNS``, default 1)."""
    try:
        return max(1, int(os.environ.get("VLMRM_MAX_RUNS", "1")))
    except ValueError:
        return 1


def heartbeat_interval() -> float:
    """Seconds between worker heartbeats (``VLMRM_HEARTBEAT_S``, default 5)."""
    try:
        return max(0.1, float(os.environ.get("VLMRM_HEARTBEAT_S", "5")))
    except ValueError:
        return 5.0


def run_dir(run: RunInfo) -> Path:
    """Folder of a run's checkpoints, log, videos (``<data dir>/runs/<id>`` by default)."""
    settings = get_settings()
    if run.run_dir:
        path = Path(run.run_dir)
        return path if path.is_absolute() else settings.data_dir / path
    return settings.runs_dir / str(run.id)


def checkpoint_dir(run: RunInfo) -> Path:
    """Folder of a run's checkpoints."""
    return run_dir(run) / "checkpoints"


def log_path(run: RunInfo) -> Path:
    """The run's log file."""
    return run_dir(run) / LOG_NAME


def _default_name(config: TrainConfig) -> str:
    goals = config.reward.goal_prompts if config.reward is not None else ()
    reward = config.prompt_set or (goals[0] if goals else "reward")
    if len(reward) > 40:
        reward = reward[:39] + "…"
    return f"{config.env_id} {config.algo.upper()} · {reward}"


def max_runs_per_user() -> int | None:
    """``VLMRM_MAX_RUNS_PER_USER`` (queued + running runs per signed-in user), or None."""
    raw = os.environ.get("VLMRM_MAX_RUNS_PER_USER", "").strip()
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"VLMRM_MAX_RUNS_PER_USER must be a whole number, got {raw!r}") from None
    return max(value, 0)


def start_run(
    config: TrainConfig,
    *,
    engine: Engine | None = None,
    name: str | None = None,
    launch: bool = True,
    created_by: str | None = None,
) -> int:
    """Queue a training run and launch workers for queued runs while slots are free.

    Args:
        config: The run's configuration (validated here, so mistakes fail before queueing). A
            prompt set is copied into the stored config (see :func:`with_prompt_set`).
        engine: Store engine (default: the settings' database, created/migrated if needed).
        name: Display name (default: env, algorithm and goal).
        launch: Start workers now; False only queues the run.
        created_by: Email of the signed-in user (None: the local user without sign-in); only
            admins and researchers may start runs. With ``VLMRM_MAX_RUNS_PER_USER`` set, their
            queued + running runs are capped (``RunStateError`` beyond it).

    Returns:
        The new run's id.

    Raises:
        ConfigError: The configuration cannot run (message says what to change).
        AccessError: ``created_by`` is signed in but unknown, or a labeller.
    """
    engine = engine or init_db()
    require_researcher(engine, created_by)
    prompt_set_id = None
    if config.prompt_set is not None:
        try:
            spec = get_prompt_set(engine, config.prompt_set)
        except NotFoundError as exc:
            raise ConfigError(f"no prompt set named {config.prompt_set!r}") from exc
        prompt_set_id = spec.id
        if config.reward is None:  # a resolved reward (e.g. `--alpha` over the set's) stays
            config = with_prompt_set(config, spec)
    validate(config)
    run = create_run(
        engine,
        name=name or _default_name(config),
        env_id=config.env_id,
        algo=config.algo,
        config=config.to_dict(),
        total_steps=config.total_steps,
        prompt_set_id=prompt_set_id,
        created_by=created_by,
        max_active_per_user=max_runs_per_user(),
    )
    # Stored relative to the data dir, so moving VLMRM_DATA_DIR keeps runs readable.
    update_run(engine, run.id, run_dir=str(Path("runs") / str(run.id)))
    if launch:
        reconcile_runs(engine)
    return run.id


def launch_queued(engine: Engine | None = None) -> list[int]:
    """Start workers for the oldest queued runs while fewer than ``max_concurrent()`` run.

    Each run is claimed with a conditional update (``queued`` → ``running``), so two processes
    launching at once (the app and a finishing worker) never start the same run twice. Runs
    whose worker died still count as running until :func:`mark_crashed_runs` marks them; use
    :func:`reconcile_runs` to do both.

    Args:
        engine: Store engine.

    Returns:
        Ids of the runs whose workers were started.
    """
    engine = engine or init_db()
    started: list[int] = []
    if not list_runs(engine, status="queued"):
        return started  # the common case, answered without taking the write lock
    while True:
        run = claim_next_queued(engine, max_concurrent())
        if run is None:
            return started
        try:
            pid = _spawn(run)
        except OSError as exc:
            update_run(
                engine,
                run.id,
                status="failed",
                error=f"could not start the worker process: {exc}",
                finished_at=utcnow(),
            )
            continue
        update_run(engine, run.id, pid=pid, host=this_host())
        started.append(run.id)


def _spawn(run: RunInfo) -> int:
    folder = run_dir(run)
    folder.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    # The worker must import this very package even if it is not installed (run from a checkout).
    package_root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    # Pin the data location the launcher resolved, whatever the worker's working directory.
    settings = get_settings()
    env["VLMRM_DATA_DIR"] = str(settings.data_dir)
    env["VLMRM_DATABASE_URL"] = settings.database_url
    with open(folder / LOG_NAME, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "vlmrm_core.training.worker", str(run.id)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
            env=env,
            cwd=str(folder),
        )
    atexit.unregister(_let_children_go)  # registered once, however many workers start
    atexit.register(_let_children_go)
    _children[proc.pid] = proc
    return proc.pid


def _let_children_go() -> None:
    """At exit: workers still running outlive this process on purpose (they are detached, in
    their own session), so their Popen objects must not warn "subprocess … is still running"."""
    for proc in _children.values():
        if proc.poll() is None:
            proc.returncode = 0


@functools.cache
def this_host() -> str:
    """This machine's identity, recorded with every worker's pid (``training_runs.host``).

    ``<hostname>/<8 hex digits>``. The hostname makes it readable (crash reasons and
    ``vlmrm train list`` name it); the digits hash the kernel's boot id and this process's pid
    namespace, because a pid names the same process only within one boot and one pid namespace:
    after a reboot pids start again, and two containers sharing a hostname (or one kernel) each
    have their own pids. Every process of one machine, or of one container, gets the same
    identity. Where ``/proc`` tells neither (not Linux), it is the hostname alone.
    """
    name = socket.gethostname()[:200] or "localhost"  # fits the column with the digits
    try:
        boot_id = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        boot_id = ""
    try:
        pid_namespace = os.readlink("/proc/self/ns/pid")  # e.g. 'pid:[4026531836]'
    except OSError:
        pid_namespace = ""
    if not (boot_id or pid_namespace):
        return name
    digest = hashlib.sha256(f"{boot_id}|{pid_namespace}".encode()).hexdigest()[:8]
    return f"{name}/{digest}"


def on_this_host(run: RunInfo) -> bool:
    """Whether ``run.pid`` can be looked up here: the run's worker is on this machine, or the run
    records no machine (rows from before hosts were recorded: the pid is taken as this
    machine's, as it was then)."""
    return run.host is None or run.host == this_host()


def worker_alive(run: RunInfo, now: datetime | None = None) -> bool:
    """Whether the worker a running run records is alive, as far as this machine can tell.

    On this host (:func:`on_this_host`): its process exists (no pid yet counts as alive: a
    launcher is starting it). On another host: its heartbeat is fresh, or, before its first
    one, the startup grace has not run out; its pid is never looked up here.

    Args:
        run: The run (a snapshot of its row).
        now: The time of the judgement (default now).
    """
    if on_this_host(run):
        return run.pid is None or pid_alive(run.pid)
    return _silence(run, now or utcnow(), 2.0 * heartbeat_interval()) is None


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this machine and is not a zombie.

    Children of this process are polled (which also reaps them once they exit). Only meaningful
    for a run's pid when :func:`on_this_host` holds for the run.
    """
    child = _children.get(pid)
    if child is not None:
        if child.poll() is None:
            return True
        _children.pop(pid, None)
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    try:
        # A zombie still answers signal 0; /proc tells it apart (state 'Z').
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _reap_children() -> None:
    for pid, proc in list(_children.items()):
        if proc.poll() is not None:
            _children.pop(pid, None)


def mark_crashed_runs(engine: Engine | None = None) -> list[int]:
    """Mark running runs whose worker is gone as ``crashed``.

    A running run is crashed when its worker process no longer exists (checked only for runs on
    this host, see :func:`on_this_host`), when its last heartbeat is older than two heartbeat
    intervals, or when it never sent one within the startup grace. A run on another host is
    judged by those heartbeat rules alone, and its crash reason names the host. Each mark is
    conditional on the heartbeat seen, so a worker that beats (or finishes) in between keeps its
    run.

    Args:
        engine: Store engine.

    Returns:
        Ids of the runs newly marked crashed.
    """
    engine = engine or init_db()
    _reap_children()
    now = utcnow()
    stale_after = 2.0 * heartbeat_interval()
    crashed: list[int] = []
    for run in list_runs(engine, status="running"):
        reason = _crash_reason(run, now, stale_after)
        if reason is not None and mark_crashed(
            engine, run.id, seen_heartbeat=run.heartbeat_at, reason=reason, at=now
        ):
            crashed.append(run.id)
    return crashed


@dataclass(frozen=True)
class Reconciliation:
    """What :func:`reconcile_runs` changed."""

    crashed: list[int]
    """Runs newly marked crashed."""
    launched: list[int]
    """Queued runs whose workers were started."""
    settled_sweeps: dict[int, str] = field(default_factory=dict)
    """Local-engine sweeps that ended because their last trial ended: ``{id: status}``."""


def reconcile_runs(engine: Engine | None = None, *, launch: bool = True) -> Reconciliation:
    """Mark runs with dead workers as crashed, start queued runs in the free slots, and end the
    local-engine sweeps whose trials have all ended (:func:`~vlmrm_core.training.grid_status.
    settle_local_sweeps`: the status of such a sweep follows its trials).

    Safe to call from any number of processes at once (every change is a conditional update).

    Args:
        engine: Store engine.
        launch: Also launch queued runs (respecting ``VLMRM_MAX_RUNS``).

    Returns:
        The runs marked crashed, the runs launched and the sweeps ended.
    """
    from vlmrm_core.training.grid_status import settle_local_sweeps

    engine = engine or init_db()
    crashed = mark_crashed_runs(engine)
    launched = launch_queued(engine) if launch else []
    settled = settle_local_sweeps(engine)
    return Reconciliation(crashed=crashed, launched=launched, settled_sweeps=settled)


def _crash_reason(run: RunInfo, now: datetime, stale_after: float) -> str | None:
    """Why a running run counts as crashed, or None while its worker looks alive."""
    hint = "; resume it to continue from the last checkpoint"
    if on_this_host(run) and run.pid is not None and not pid_alive(run.pid):
        return f"worker process {run.pid} is gone (killed or crashed){hint}"
    silence = _silence(run, now, stale_after)
    return None if silence is None else silence + hint


def _silence(run: RunInfo, now: datetime, stale_after: float) -> str | None:
    """What the worker has not said (no heartbeat lately, none since launch), or None."""
    where = "" if on_this_host(run) else f" on {run.host}"
    if run.heartbeat_at is None:
        since = (now - run.started_at).total_seconds() if run.started_at else math.inf
        if since > max(STARTUP_GRACE_S, stale_after):
            return f"the worker{where} never reported in ({since:.0f} s after launch)"
        return None
    age = (now - run.heartbeat_at).total_seconds()
    if age > stale_after:
        source = ""
        if where:  # the host is the first thing to look at when the run ran elsewhere
            worker = "the worker" if run.pid is None else f"worker {run.pid}"
            source = f" from {worker}{where}"
        return f"no heartbeat for {age:.0f} s{source} (expected every {stale_after / 2:g} s)"
    return None


def cancel_run(run_id: int, *, engine: Engine | None = None, actor: str | None = None) -> str:
    """Cancel a run: a queued run is cancelled at once; a running one stops after a checkpoint.

    Cooperative only: the run is flagged (``cancel_requested``) and its worker, which polls the
    flag, saves a checkpoint and stops. No signal is ever sent, so this works the same for a
    worker on another machine (a Ray trial), whose pid means nothing here.

    Args:
        run_id: The run.
        engine: Store engine.
        actor: The signed-in user (None: the local user without sign-in); only admins and
            researchers may cancel runs.

    Returns:
        The run's status afterwards (``'cancelled'``, or ``'running'`` while the worker stops).

    Raises:
        RunStateError: The run already ended.
        NotFoundError: No such run.
        AccessError: ``actor`` is signed in but unknown, or a labeller.
    """
    engine = engine or init_db()
    require_researcher(engine, actor)
    return request_cancel(engine, run_id)


def resume_run(
    run_id: int, *, engine: Engine | None = None, launch: bool = True, actor: str | None = None
) -> None:
    """Queue a cancelled, crashed or failed run again; its worker continues from the last
    checkpoint (``num_timesteps`` keeps counting; off-policy runs get their replay buffer back).

    Args:
        run_id: The run.
        engine: Store engine.
        launch: Launch queued runs now (after marking dead workers' runs crashed).
        actor: The signed-in user (None: the local user without sign-in); only admins and
            researchers may resume runs.

    Raises:
        RunStateError: The run is queued, running or finished.
        NotFoundError: No such run.
        AccessError: ``actor`` is signed in but unknown, or a labeller.
    """
    engine = engine or init_db()
    require_researcher(engine, actor)
    requeue_run(engine, run_id)
    if launch:
        reconcile_runs(engine)


@dataclass(frozen=True)
class RunView:
    """A run as shown in tables: status and progress, with rates and times computed."""

    id: int
    name: str
    status: str
    env_id: str
    algo: str
    steps_done: int
    total_steps: int
    progress: float
    """steps_done / total_steps, in [0, 1]."""
    steps_per_s: float | None
    """Latest logged training speed (running runs only)."""
    eta_s: float | None
    """Seconds to completion at that speed (running runs only)."""
    heartbeat_age_s: float | None
    """Seconds since the worker's last heartbeat."""
    cancel_requested: bool
    created_at: datetime
    error: str | None
    host: str | None
    """Machine of the run's (latest) worker; None when none was recorded."""


def _heartbeat_speed(run: RunInfo) -> float | None:
    """Steps per second from the worker's heartbeat (steps done since it started), for runs
    that have not logged a metrics row yet."""
    if run.started_at is None or run.heartbeat_at is None or run.steps_done <= 0:
        return None
    elapsed = (run.heartbeat_at - run.started_at).total_seconds()
    return run.steps_done / elapsed if elapsed > 0 else None


def run_view(engine: Engine, run: RunInfo, now: datetime | None = None) -> RunView:
    """Display fields of one run."""
    now = now or utcnow()
    speed = latest_metric(engine, run.id, "steps_per_s") if run.status == "running" else None
    if speed is None and run.status == "running":
        speed = _heartbeat_speed(run)
    remaining = max(0, run.total_steps - run.steps_done)
    eta = remaining / speed if speed else None
    age = (now - run.heartbeat_at).total_seconds() if run.heartbeat_at else None
    total = max(1, run.total_steps)
    return RunView(
        id=run.id,
        name=run.name,
        status=run.status,
        env_id=run.env_id,
        algo=run.algo,
        steps_done=run.steps_done,
        total_steps=run.total_steps,
        progress=min(1.0, run.steps_done / total),
        steps_per_s=speed,
        eta_s=eta,
        heartbeat_age_s=age,
        cancel_requested=run.cancel_requested,
        created_at=run.created_at,
        error=run.error,
        host=run.host,
    )


def list_runs_view(engine: Engine | None = None) -> list[RunView]:
    """All runs, newest first, for display. Only reads: call :func:`reconcile_runs` first to
    find crashed workers and start queued runs.

    Args:
        engine: Store engine.

    Returns:
        One :class:`RunView` per run.
    """
    engine = engine or init_db()
    now = utcnow()
    return [run_view(engine, run, now) for run in list_runs(engine)]


def run_checkpoints(run: RunInfo) -> list[Checkpoint]:
    """A run's checkpoints, oldest first."""
    return list_checkpoints(checkpoint_dir(run))


def eval_videos(run: RunInfo) -> list[tuple[int, Path]]:
    """A run's evaluation videos as ``(training step, path)``, oldest first."""
    folder = run_dir(run) / "eval"
    found = []
    if folder.is_dir():
        for path in folder.glob("eval_*.mp4"):
            try:
                found.append((int(path.stem.removeprefix("eval_")), path))
            except ValueError:
                continue
    return sorted(found)


def log_tail(path: Path, lines: int = 40, max_bytes: int = 64_000) -> str:
    """The last ``lines`` lines of a log file ('' if it does not exist).

    Reads at most ``max_bytes`` from the end, so huge logs cost nothing.
    """
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - max_bytes))
            data = fh.read()
    except OSError:
        return ""
    text = data.decode("utf-8", errors="replace")
    return "\n".join(text.splitlines()[-lines:])
