"""Training grids on Ray Tune: the driver of a ``ray`` sweep and the body of each trial.

The grid itself, the local engine and sweep control live in :mod:`vlmrm_core.training.grids`;
this module is what runs on Ray. A trial runs today's training worker (``python -m
vlmrm_core.training.worker RUN_ID``) as a child process of the Tune actor, reports the run's
newest metrics to Tune while it trains, and hands every new SB3 checkpoint to Tune. When a trial
fails (its worker was killed, its node was lost) Tune restarts it from its last checkpoint. A
detached driver runs as ``python -m vlmrm_core.scale.grid_trials drive ID``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vlmrm_core.training.grid_status import sweep_outcome
from vlmrm_core.training.grids import storage_root, trial_run_name

MAX_TRIAL_FAILURES = 2
"""Times Tune restarts a failed trial from its checkpoint before the trial counts as failed."""


REPORT_EVERY_S = 2.0
"""Seconds between a trial's looks at its run (metrics and new checkpoints)."""


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
                    storage_path=sweep.storage_path or storage_root(spec),
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
        name=trial_run_name(point),
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
    """Report the metrics to Tune, with a copy of the run's newest checkpoint when there is one.

    The worker keeps only its newest checkpoints and may delete the one listed here before it is
    copied. Then the metrics go without a checkpoint (the next report carries the newer one):
    an empty checkpoint would make Tune "restore" a trial from nothing.
    """
    if checkpoint is None:
        tune.report(metrics)
        return
    with tempfile.TemporaryDirectory(prefix="vlmrm-ckpt-") as folder:
        try:
            shutil.copy2(checkpoint.model_path, Path(folder) / checkpoint.model_path.name)
        except FileNotFoundError:
            tune.report(metrics)
            return
        buffer = checkpoint.replay_buffer_path
        if buffer is not None:
            with contextlib.suppress(FileNotFoundError):  # pruned too: the model alone resumes
                shutil.copy2(buffer, Path(folder) / buffer.name)
        tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))


def _copy_missing(source: Path, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for path in source.iterdir():
        if path.is_file() and not (target / path.name).exists():
            shutil.copy2(path, target / path.name)


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
