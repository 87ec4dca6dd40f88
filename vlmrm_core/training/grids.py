"""Training sweeps: a grid of reward × α × seed, each point an ordinary training run.

Two engines:

- ``ray``: each grid point is a Ray Tune trial (:func:`sweep_trial`). A trial runs today's
  training worker (``python -m vlmrm_core.training.worker RUN_ID``) as a child process of the
  Tune actor, reports the run's newest metrics to Tune while it trains, and hands every new
  SB3 checkpoint to Tune (``tune.report(..., checkpoint=...)``). When a trial fails (its worker
  was killed, its node was lost) Tune restarts it from its last checkpoint
  (``FailureConfig(max_failures)``): the checkpoint is copied back into the run's folder and the
  worker resumes from it. The sweep's driver is the ``vlmrm train sweep`` process with
  ``--wait``, or a detached ``python -m vlmrm_core.training.grids drive ID`` otherwise. The
  worker records its node with its pid (``training_runs.host``), so crash detection on another
  node (the app, the CLI, other workers) judges it by its heartbeat, never by a pid lookup;
  cancelling sets the run's flag, which the worker polls wherever it runs.
- ``local``: the grid points are queued as runs on the local queue (``VLMRM_MAX_RUNS``).

Either way the sweep is a row of ``sweeps`` and each trial a ``training_runs`` row with its
``sweep_id``, so the run views (status, curves, checkpoints, evaluation datasets) all apply.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vlmrm_core.errors import InvalidInputError

MAX_TRIAL_FAILURES = 2
"""Times Tune restarts a failed trial from its checkpoint before the trial counts as failed."""
REPORT_EVERY_S = 2.0
"""Seconds between a trial's looks at its run (metrics and new checkpoints)."""
ACTIVE = ("queued", "running")
"""Run statuses of a trial that has not ended."""

_drivers: dict[int, subprocess.Popen[bytes]] = {}
"""Detached sweep drivers started by this process."""


# --------------------------------------------------------------------------- the grid


def sweep_points(
    base: Any,
    *,
    prompt_sets: Sequence[str] = (),
    reward_files: Sequence[str] = (),
    alphas: Sequence[float] = (),
    seeds: int = 1,
    engine: Any = None,
) -> list[dict[str, Any]]:
    """The grid (reward source × α × seed) as JSON points ``{key, group, label, config}``.

    Args:
        base: the :class:`~vlmrm_core.training.config.TrainConfig` every trial starts from
            (its own ``reward``, when no prompt set or reward file is given).
        prompt_sets: names of saved prompt sets; each one's model and reward are copied in.
        reward_files: reward files (``vlmrm_core.reward.file``); their model and reward too.
            Trials keep ``base.model.precision`` either way (``auto`` unless chosen; see
            :func:`~vlmrm_core.training.config.with_reward`), not the precision stored with
            the set or file.
        alphas: values of α to sweep (empty: each reward keeps its own α).
        seeds: seeds per point: ``base.seed``, ``base.seed + 1``, …
        engine: store engine (to read prompt sets).

    Returns:
        One point per trial; ``config`` is the run's ``TrainConfig.to_dict()`` (a prompt set is
        already copied in, so a swept α is not overwritten when the run is queued).
    """
    from vlmrm_core.training.config import validate, with_prompt_set, with_reward

    if seeds < 1:
        raise InvalidInputError("--seeds must be at least 1")
    sources: list[tuple[str, Any]] = []
    for name in dict.fromkeys(prompt_sets):
        from vlmrm_core.store import NotFoundError, get_prompt_set

        try:
            prompt_set = get_prompt_set(engine, name)
        except NotFoundError:
            raise InvalidInputError(
                f"no prompt set named {name!r}: save it in the Prompt lab first"
            ) from None
        sources.append((name, with_prompt_set(base, prompt_set).replace(prompt_set=None)))
    for path in dict.fromkeys(reward_files):
        from vlmrm_core.reward.file import read_reward_file

        loaded = read_reward_file(path)
        sources.append((Path(path).stem, with_reward(base, loaded.model, loaded.reward)))
    if not sources:
        if base.reward is None:
            raise InvalidInputError(
                "give --prompt-set NAME or --reward FILE (repeatable), or inline --goal prompts"
            )
        sources.append(("inline", base))
    swept: list[float | None] = [float(a) for a in alphas] or [None]
    points = []
    for group, config in sources:
        for alpha in swept:
            point_config = config
            if alpha is not None:
                point_config = config.replace(reward=config.reward.replace(alpha=alpha))
            validate(point_config)
            for i in range(seeds):
                seeded = point_config.replace(seed=base.seed + i)
                alpha_value = seeded.reward.alpha
                key = f"{group}|alpha={alpha_value:g}|seed={seeded.seed}"
                points.append(
                    {
                        "key": key,
                        "group": group,
                        "label": f"{group} α={alpha_value:g} seed {seeded.seed}",
                        "config": _plain(seeded.to_dict()),
                    }
                )
    return points


def _plain(value: Any) -> Any:
    """JSON round trip: enums become strings, tuples lists (what the store holds anyway)."""
    import json

    return json.loads(json.dumps(value))


# --------------------------------------------------------------------------- starting


def launch_sweep(
    base: Any,
    *,
    engine_kind: str = "local",
    prompt_sets: Sequence[str] = (),
    reward_files: Sequence[str] = (),
    alphas: Sequence[float] = (),
    seeds: int = 1,
    name: str | None = None,
    address: str | None = None,
    gpus_per_trial: float = 0.0,
    cpus_per_trial: float = 1.0,
    max_concurrent: int | None = None,
    created_by: str | None = None,
    engine: Any = None,
    detach: bool = True,
) -> int:
    """Build a sweep's grid from a base config and start it: what ``vlmrm train sweep`` and the
    Train page's sweep form both call.

    Args:
        base: the :class:`~vlmrm_core.training.config.TrainConfig` every trial starts from.
        engine_kind: ``local`` (today's queue, ``VLMRM_MAX_RUNS``) or ``ray`` (Tune trials).
        prompt_sets, reward_files, alphas, seeds: the grid (see :func:`sweep_points`).
        name: display name (default: env, algorithm and number of trials).
        address: Ray cluster to join (``ray`` only; None: a local cluster).
        gpus_per_trial, cpus_per_trial: Ray resources of each trial.
        max_concurrent: Ray trials at once (None: as many as resources allow).
        created_by: the signed-in user; with ``VLMRM_MAX_RUNS_PER_USER`` set, the sweep is
            refused when its trials would take them past the quota, and its trials count
            against it like runs started one by one.
        engine: store engine.
        detach: Ray only (see :func:`start_sweep`).

    Returns:
        The sweep id.

    Raises:
        InvalidInputError: a bad grid or engine choice.
        RunStateError: the per-user quota would be exceeded.
    """
    from vlmrm_core.store import init_db

    if engine_kind not in ("local", "ray"):
        raise InvalidInputError(f"engine must be local or ray, not {engine_kind!r}")
    if engine_kind == "local" and address:
        raise InvalidInputError("a Ray address needs the ray engine (--engine ray)")
    if max_concurrent is not None and max_concurrent < 1:
        raise InvalidInputError("max concurrent trials must be at least 1 (or unset)")
    engine = engine or init_db()
    points = sweep_points(
        base,
        prompt_sets=prompt_sets,
        reward_files=reward_files,
        alphas=alphas,
        seeds=seeds,
        engine=engine,
    )
    _check_quota(engine, created_by, len(points))
    spec = {
        "points": points,
        "gpus_per_trial": float(gpus_per_trial),
        "cpus_per_trial": float(cpus_per_trial),
        "max_concurrent": max_concurrent,
        "created_by": created_by,
    }
    default_name = f"{base.env_id} {base.algo.upper()} sweep ({len(points)} trials)"
    return start_sweep(
        spec,
        engine_kind=engine_kind,
        name=name or default_name,
        address=address,
        engine=engine,
        detach=detach,
    )


def _check_quota(engine: Any, created_by: str | None, n_trials: int) -> None:
    """Refuse a sweep whose trials would take ``created_by`` past ``VLMRM_MAX_RUNS_PER_USER``."""
    from vlmrm_core.errors import RunStateError
    from vlmrm_core.store.sweeps import active_run_count
    from vlmrm_core.training.jobs import max_runs_per_user

    limit = max_runs_per_user()
    if created_by is None or limit is None:
        return
    active = active_run_count(engine, created_by)
    if active + n_trials > limit:
        raise RunStateError(
            f"this sweep has {n_trials} trial(s) and {created_by} already has {active} queued or "
            f"running run(s); one person may have {limit} (VLMRM_MAX_RUNS_PER_USER): use fewer "
            "prompt sets, α values or seeds, or wait for runs to finish."
        )


def start_sweep(
    spec: dict[str, Any],
    *,
    engine_kind: str,
    name: str,
    address: str | None = None,
    engine: Any = None,
    detach: bool = True,
) -> int:
    """Store a sweep and start it.

    Args:
        spec: ``{"points": [...], "gpus_per_trial": f, "cpus_per_trial": f,
            "max_concurrent": n}`` (see :func:`sweep_points`).
        engine_kind: ``ray`` or ``local``.
        name: display name.
        address: Ray cluster to join (None: a local cluster started by the driver).
        engine: store engine.
        detach: Ray only: drive the sweep from a detached process (False: the caller then
            calls :func:`drive_ray_sweep` itself).

    Returns:
        The sweep id.
    """
    from vlmrm_core.store import init_db
    from vlmrm_core.store.sweeps import create_sweep, update_sweep

    engine = engine or init_db()
    sweep = create_sweep(engine, name=name, engine_kind=engine_kind, spec=spec, address=address)
    if engine_kind == "local":
        _queue_local(engine, sweep.id, spec["points"], spec.get("created_by"))
    else:
        update_sweep(engine, sweep.id, storage_path=str(_storage_root(spec)))
        if detach:
            _spawn_driver(engine, sweep.id)
    return sweep.id


def _queue_local(
    engine: Any, sweep_id: int, points: Sequence[dict[str, Any]], created_by: str | None = None
) -> None:
    from vlmrm_core.store import get_run, update_run
    from vlmrm_core.store.sweeps import link_run
    from vlmrm_core.training.config import TrainConfig
    from vlmrm_core.training.jobs import reconcile_runs, start_run

    for point in points:
        config = TrainConfig.from_dict(point["config"])
        run_id = start_run(
            config, engine=engine, name=_run_name(point), launch=False, created_by=created_by
        )
        link_run(engine, run_id, sweep_id)
        run = get_run(engine, run_id)
        update_run(
            engine,
            run_id,
            config={**run.config, "_trial_key": point["key"], "_group": point["group"]},
        )
    reconcile_runs(engine)


def _run_name(point: dict[str, Any]) -> str:
    config = point["config"]
    return f"{config['env_id']} {config['algo'].upper()} · {point['label']}"


def _storage_root(spec: dict[str, Any]) -> str:
    from vlmrm_core.settings import get_settings

    return spec.get("storage_path") or str(get_settings().data_dir / "sweeps")


def _spawn_driver(engine: Any, sweep_id: int) -> int:
    from vlmrm_core.settings import get_settings
    from vlmrm_core.store.sweeps import update_sweep

    folder = get_settings().data_dir / "sweeps"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"sweep-{sweep_id}-driver.log", "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "vlmrm_core.training.grids", "drive", str(sweep_id)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    if not _drivers:
        atexit.register(_let_drivers_go)
    _drivers[proc.pid] = proc  # detached on purpose: it outlives this process
    update_sweep(engine, sweep_id, pid=proc.pid)
    return proc.pid


def _let_drivers_go() -> None:
    """At exit: drivers still running are detached on purpose (no "still running" warning)."""
    for proc in _drivers.values():
        if proc.poll() is None:
            proc.returncode = 0


# --------------------------------------------------------------------------- the Ray driver


def drive_ray_sweep(sweep_id: int, *, engine: Any = None) -> str:
    """Run a Ray sweep's trials to the end in this process (the Tune driver).

    Finished trials of a resumed sweep end at once; the others resume from their runs'
    checkpoints.

    Returns:
        The sweep's final status: ``finished``, ``failed`` or ``cancelled``.
    """
    from vlmrm_core.scale.cluster import import_ray, ray_session
    from vlmrm_core.store import init_db, utcnow
    from vlmrm_core.store.sweeps import get_sweep, update_sweep

    engine = engine or init_db()
    sweep = get_sweep(engine, sweep_id)
    spec = sweep.spec
    update_sweep(engine, sweep_id, pid=os.getpid(), error=None)
    attempt = int(spec.get("_attempt", 0)) + 1
    update_sweep(engine, sweep_id, spec={**spec, "_attempt": attempt})
    try:
        with ray_session(sweep.address):
            import_ray()
            from ray import tune

            trainable = tune.with_resources(
                sweep_trial,
                {
                    "cpu": float(spec.get("cpus_per_trial", 1.0)),
                    "gpu": float(spec.get("gpus_per_trial", 0.0)),
                },
            )
            tuner = tune.Tuner(
                trainable,
                param_space={
                    "sweep_id": sweep_id,
                    "env": _store_env(),
                    "created_by": spec.get("created_by"),
                    "point": tune.grid_search(spec["points"]),
                },
                tune_config=tune.TuneConfig(
                    max_concurrent_trials=spec.get("max_concurrent") or None, reuse_actors=False
                ),
                run_config=tune.RunConfig(
                    name=f"sweep-{sweep_id}-{attempt}",
                    storage_path=sweep.storage_path or _storage_root(spec),
                    failure_config=tune.FailureConfig(max_failures=MAX_TRIAL_FAILURES),
                    checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
                    verbose=0,
                ),
            )
            tuner.fit()
    except Exception as exc:  # noqa: BLE001  (the sweep's row must say what happened)
        update_sweep(engine, sweep_id, status="failed", error=str(exc), pid=None)
        raise
    status = sweep_outcome(engine, sweep_id)
    update_sweep(engine, sweep_id, status=status, finished_at=utcnow(), pid=None)
    return status


def _store_env() -> dict[str, str]:
    """The driver's ``VLMRM_*`` settings (database, data folder, heartbeat), for the trials.

    On a multi-node cluster ``VLMRM_DATABASE_URL`` must name a server every node reaches
    (PostgreSQL) and ``VLMRM_DATA_DIR`` a shared folder (run checkpoints, logs, videos).
    """
    from vlmrm_core.settings import get_settings

    env = {
        k: v for k, v in os.environ.items() if k.startswith("VLMRM_") and k != "VLMRM_RAY_ADDRESS"
    }
    env["VLMRM_DATA_DIR"] = str(get_settings().data_dir)
    return env


def sweep_outcome(engine: Any, sweep_id: int) -> str:
    """``cancelled`` if the user cancelled it, ``failed`` if a trial failed, else ``finished``."""
    from vlmrm_core.store import get_run
    from vlmrm_core.store.sweeps import get_sweep, sweep_run_ids

    if get_sweep(engine, sweep_id).status == "cancelled":
        return "cancelled"
    n_points = len(get_sweep(engine, sweep_id).spec.get("points", []))
    statuses = [get_run(engine, r).status for r in sweep_run_ids(engine, sweep_id)]
    if len(statuses) == n_points and all(s == "finished" for s in statuses):
        return "finished"
    if any(s in ACTIVE for s in statuses):
        return "running"
    return "failed"


def sweep_trial(trial_config: dict[str, Any]) -> None:
    """One Tune trial: train the grid point's run with today's worker, checkpointed via Tune."""
    from vlmrm_core.headless import use_headless_rendering

    use_headless_rendering()  # a Ray worker is an entry point
    os.environ.update(trial_config.get("env", {}))  # the driver's database and data folder
    from ray import tune

    from vlmrm_core.store import get_run, init_db
    from vlmrm_core.store.sweeps import get_sweep
    from vlmrm_core.training.jobs import checkpoint_dir, run_dir

    engine = init_db()
    sweep_id = int(trial_config["sweep_id"])
    point = trial_config["point"]
    if get_sweep(engine, sweep_id).status == "cancelled":
        return
    run_id = _trial_run(engine, sweep_id, point, trial_config.get("created_by"))
    run = get_run(engine, run_id)
    if run.status == "finished":
        tune.report(_metrics(engine, run))
        return
    if run.status == "cancelled" and run.cancel_requested:
        return
    ckpt_dir = checkpoint_dir(run)
    restored = tune.get_checkpoint()
    if restored is not None:
        with restored.as_directory() as folder:
            _copy_missing(Path(folder), ckpt_dir)
    _claimable(engine, run_id)
    worker = _start_worker(run_id, run_dir(run))
    reported: set[str] = set()
    last_steps = -1
    while True:
        exited = worker.poll() is not None
        run = get_run(engine, run_id)
        new = _new_checkpoint(ckpt_dir, reported)
        if new is not None or run.steps_done != last_steps or exited:
            last_steps = run.steps_done
            _report(tune, _metrics(engine, run), new)
        if exited:
            break
        time.sleep(REPORT_EVERY_S)
    run = get_run(engine, run_id)
    if run.status in ("finished", "cancelled"):
        return
    raise RuntimeError(
        f"training run {run_id} ended {run.status} (worker exit status {worker.returncode}); "
        "Tune restarts the trial from its last checkpoint"
    )


def _trial_run(
    engine: Any, sweep_id: int, point: dict[str, Any], created_by: str | None = None
) -> int:
    """The trial's run: created at the trial's first start, found again on restarts."""
    from vlmrm_core.store import create_run, update_run, utcnow
    from vlmrm_core.store.sweeps import find_trial_run, link_run

    run_id = find_trial_run(engine, sweep_id, point["key"])
    if run_id is not None:
        return run_id
    config = point["config"]
    run = create_run(
        engine,
        name=_run_name(point),
        env_id=config["env_id"],
        algo=config["algo"],
        config={**config, "_trial_key": point["key"], "_group": point["group"]},
        total_steps=int(config["total_steps"]),
        # "running" with no pid: the worker started below claims it; the local queue never
        # picks it up (it only launches queued runs), and the startup grace applies meanwhile.
        status="running",
        created_by=created_by,  # counts against the quota (checked when the sweep started)
    )
    link_run(engine, run.id, sweep_id)
    # started_at starts the startup grace: no supervisor marks it crashed before its first beat
    update_run(engine, run.id, run_dir=str(Path("runs") / str(run.id)), started_at=utcnow())
    return run.id


def _claimable(engine: Any, run_id: int) -> None:
    """Let a new worker claim the run (after a failure: its old worker is gone).

    Records this node as the run's host: the trial's worker runs here, and Tune may restart a
    failed trial on another node. Until the worker claims the run (pid and host together),
    crash detection anywhere applies the startup grace, naming this node.
    """
    from vlmrm_core.store import get_run, update_run, utcnow
    from vlmrm_core.training.jobs import this_host

    host = this_host()
    run = get_run(engine, run_id)
    if run.status == "running" and run.pid is None:
        if run.host != host:
            update_run(engine, run_id, host=host)
        return
    update_run(
        engine,
        run_id,
        status="running",
        pid=None,
        host=host,
        heartbeat_at=None,
        error=None,
        started_at=utcnow(),
        finished_at=None,
        cancel_requested=False,
        config={**run.config, "_resume": True},
    )


def _start_worker(run_id: int, folder: Path) -> subprocess.Popen[bytes]:
    """The training worker as a child that dies with the trial (its Ray actor)."""

    def die_with_parent() -> None:  # pragma: no cover - runs in the child
        try:
            import ctypes

            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL
        except OSError:
            pass

    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "trial-worker.out", "ab") as out:  # what the worker prints before logging
        return subprocess.Popen(
            [sys.executable, "-m", "vlmrm_core.training.worker", str(run_id)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent,
        )


def _metrics(engine: Any, run: Any) -> dict[str, Any]:
    from vlmrm_core.store import run_metrics

    metrics: dict[str, Any] = {"steps_done": int(run.steps_done), "run_id": int(run.id)}
    frame = run_metrics(engine, run.id)
    if len(frame):
        last = frame.iloc[-1]
        for column, value in last.items():
            if isinstance(value, int | float) and value == value:  # numbers, not NaN
                metrics[str(column)] = float(value)
    return metrics


def _new_checkpoint(ckpt_dir: Path, reported: set[str]) -> Any:
    from vlmrm_core.training.checkpoints import list_checkpoints

    checkpoints = list_checkpoints(ckpt_dir) if ckpt_dir.exists() else []
    if not checkpoints or checkpoints[-1].model_path.name in reported:
        return None
    reported.add(checkpoints[-1].model_path.name)
    return checkpoints[-1]


def _report(tune: Any, metrics: dict[str, Any], checkpoint: Any) -> None:
    if checkpoint is None:
        tune.report(metrics)
        return
    with tempfile.TemporaryDirectory(prefix="vlmrm-ckpt-") as folder:
        for path in (checkpoint.model_path, checkpoint.replay_buffer_path):
            if path is not None and path.exists():
                shutil.copy2(path, Path(folder) / path.name)
        tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))


def _copy_missing(source: Path, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for path in source.iterdir():
        if path.is_file() and not (target / path.name).exists():
            shutil.copy2(path, target / path.name)


# --------------------------------------------------------------------------- control


def cancel_sweep(sweep_id: int, *, engine: Any = None) -> list[int]:
    """Cancel a sweep: queued trials are cancelled, running ones stop after a checkpoint.

    Returns:
        Ids of the runs a cancellation was sent to.
    """
    from vlmrm_core.store import get_run, init_db, utcnow
    from vlmrm_core.store.sweeps import get_sweep, sweep_run_ids, update_sweep
    from vlmrm_core.training.jobs import cancel_run

    engine = engine or init_db()
    sweep = get_sweep(engine, sweep_id)
    if sweep.status in ("finished",):
        raise InvalidInputError(f"sweep {sweep_id} is finished; nothing to cancel")
    update_sweep(engine, sweep_id, status="cancelled", finished_at=utcnow())
    cancelled = []
    for run_id in sweep_run_ids(engine, sweep_id):
        if get_run(engine, run_id).status in ACTIVE:
            cancel_run(run_id, engine=engine)
            cancelled.append(run_id)
    return cancelled


def resume_sweep(sweep_id: int, *, engine: Any = None, detach: bool = True) -> None:
    """Run a cancelled or failed sweep's unfinished trials again, from their checkpoints."""
    from vlmrm_core.store import get_run, init_db
    from vlmrm_core.store.sweeps import get_sweep, sweep_run_ids, update_sweep
    from vlmrm_core.training.jobs import reconcile_runs, resume_run

    engine = engine or init_db()
    sweep = get_sweep(engine, sweep_id)
    if sweep.status in ("running", "finished"):
        raise InvalidInputError(
            f"sweep {sweep_id} is {sweep.status}; only cancelled or failed sweeps resume"
        )
    if sweep.engine == "local":
        _wait_for_cancellations(engine, sweep_run_ids(engine, sweep_id))
    update_sweep(engine, sweep_id, status="running", finished_at=None, error=None)
    if sweep.engine == "local":
        for run_id in sweep_run_ids(engine, sweep_id):
            if get_run(engine, run_id).status in ("cancelled", "crashed", "failed"):
                resume_run(run_id, engine=engine, launch=False)
        reconcile_runs(engine)
    elif detach:
        _spawn_driver(engine, sweep_id)


def _wait_for_cancellations(engine: Any, run_ids: Sequence[int], timeout_s: float = 120.0) -> None:
    """Wait until trials that were asked to stop have stopped (they checkpoint first)."""
    from vlmrm_core.store import get_run
    from vlmrm_core.training.jobs import reconcile_runs

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        stopping = [
            r
            for r in run_ids
            if (run := get_run(engine, r)).status == "running" and run.cancel_requested
        ]
        if not stopping:
            return
        reconcile_runs(engine, launch=False)
        time.sleep(0.5)
    raise InvalidInputError(
        f"runs {stopping} have not stopped yet after their cancellation; try again shortly"
    )


def wait_for_sweep(sweep_id: int, *, engine: Any = None, poll_s: float = 2.0) -> str:
    """Block until a sweep ends (local engine: until its runs end); return its final status."""
    from vlmrm_core.store import init_db, utcnow
    from vlmrm_core.store.sweeps import get_sweep, update_sweep
    from vlmrm_core.training.jobs import reconcile_runs

    engine = engine or init_db()
    while True:
        sweep = get_sweep(engine, sweep_id)
        if sweep.engine == "local":
            reconcile_runs(engine)
            status = sweep_outcome(engine, sweep_id)
            if status != "running":
                if sweep.status == "running":
                    update_sweep(engine, sweep_id, status=status, finished_at=utcnow())
                return status
        elif sweep.status != "running":
            return sweep.status
        time.sleep(poll_s)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m vlmrm_core.training.grids drive ID``: the detached driver of a Ray sweep."""
    import argparse

    parser = argparse.ArgumentParser(description="Drive a VLM-RM Studio Ray sweep.")
    parser.add_argument("action", choices=["drive"])
    parser.add_argument("sweep_id", type=int)
    args = parser.parse_args(argv)
    status = drive_ray_sweep(args.sweep_id)
    print(f"sweep {args.sweep_id}: {status}")
    return 0 if status in ("finished", "cancelled") else 1


if __name__ == "__main__":
    sys.exit(main())
