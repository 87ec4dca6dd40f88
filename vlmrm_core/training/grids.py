"""Training sweeps: a grid of reward × α × seed, each point an ordinary training run.

Two engines:

- ``ray``: each grid point is a Ray Tune trial (:func:`vlmrm_core.scale.grid_trials.sweep_trial`). A trial runs today's
  training worker (``python -m vlmrm_core.training.worker RUN_ID``) as a child process of the
  Tune actor, reports the run's newest metrics to Tune while it trains, and hands every new
  SB3 checkpoint to Tune (``tune.report(..., checkpoint=...)``). When a trial fails (its worker
  was killed, its node was lost) Tune restarts it from its last checkpoint
  (``FailureConfig(max_failures)``): the checkpoint is copied back into the run's folder and the
  worker resumes from it. The sweep's driver is the ``vlmrm train sweep`` process with
  ``--wait``, or a detached ``python -m vlmrm_core.scale.grid_trials drive ID`` otherwise. The
  worker records its node with its pid (``training_runs.host``), so crash detection on another
  node (the app, the CLI, other workers) judges it by its heartbeat, never by a pid lookup;
  cancelling sets the run's flag, which the worker polls wherever it runs.
- ``local``: the grid points are queued as runs on the local queue (``VLMRM_MAX_RUNS``).

Either way the sweep is a row of ``sweeps`` and each trial a ``training_runs`` row with its
``sweep_id``, so the run views (status, curves, checkpoints, evaluation datasets) all apply.
"""

from __future__ import annotations

import atexit
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vlmrm_core.errors import InvalidInputError
from vlmrm_core.plain_json import to_plain_json
from vlmrm_core.training.grid_status import ACTIVE

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
    rewards: Sequence[tuple[str, Any]] = (),
) -> list[dict[str, Any]]:
    """The grid (reward source × α × seed) as JSON points ``{key, group, label, config}``.

    Args:
        base: the :class:`~vlmrm_core.training.config.TrainConfig` every trial starts from
            (its own ``reward``, when no prompt set or reward file is given).
        prompt_sets: names of saved prompt sets; each one's model and reward are copied in.
        reward_files: reward files (``vlmrm_core.reward.file``) of any source: a CLIP file's
            model and reward are copied in, another source's (a VLM judge's) whole content
            (:func:`~vlmrm_core.training.config.with_reward_file`).
            Trials keep ``base.model.precision`` either way (``auto`` unless chosen; see
            :func:`~vlmrm_core.training.config.with_reward`), not the precision stored with
            the set or file.
        alphas: values of α to sweep (empty: each reward keeps its own α).
        seeds: seeds per point: ``base.seed``, ``base.seed + 1``, …
        engine: store engine (to read prompt sets).
        rewards: ``(group, config)`` pairs whose reward is already resolved (``vlmrm train
            sweep`` resolves its sources, α values included, by the CLI's one rule); they come
            first, and ``alphas`` apply to them too.

    Returns:
        One point per trial; ``config`` is the run's ``TrainConfig.to_dict()`` (a prompt set is
        already copied in, so a swept α is not overwritten when the run is queued).
    """
    from vlmrm_core.training.config import validate, with_prompt_set, with_reward_file

    if seeds < 1:
        raise InvalidInputError("--seeds must be at least 1")
    sources: list[tuple[str, Any]] = list(rewards)
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
        # Any source: a CLIP file's model and reward, or another's (a judge's) content whole.
        sources.append((Path(path).stem, with_reward_file(base, path)))
    if not sources:
        if base.reward is None:
            raise InvalidInputError(
                "give --prompt-set NAME or --reward FILE (repeatable), or inline --goal prompts"
            )
        sources.append(("inline", base))
    swept: list[float | None] = [float(a) for a in alphas] or [None]
    points = []
    for group, config in sources:
        if config.reward is None and alphas:
            raise InvalidInputError(
                f"α sweeps CLIP regularized rewards, and {group} is a "
                f"{(config.reward_data or {}).get('source', 'non-CLIP')} reward: sweep it "
                "without α values"
            )
        for alpha in swept:
            point_config = config
            if alpha is not None:
                point_config = config.replace(reward=config.reward.replace(alpha=alpha))
            validate(point_config)
            for i in range(seeds):
                seeded = point_config.replace(seed=base.seed + i)
                # α names a CLIP trial; another source's trials differ by group and seed only.
                alpha_part = "" if seeded.reward is None else f"α={seeded.reward.alpha:g} "
                key_part = "" if seeded.reward is None else f"|alpha={seeded.reward.alpha:g}"
                points.append(
                    {
                        "key": f"{group}{key_part}|seed={seeded.seed}",
                        "group": group,
                        "label": f"{group} {alpha_part}seed {seeded.seed}",
                        "config": to_plain_json(seeded.to_dict()),
                    }
                )
    return points


# --------------------------------------------------------------------------- starting


def launch_sweep(
    base: Any,
    *,
    engine_kind: str = "local",
    prompt_sets: Sequence[str] = (),
    reward_files: Sequence[str] = (),
    alphas: Sequence[float] = (),
    seeds: int = 1,
    rewards: Sequence[tuple[str, Any]] = (),
    name: str | None = None,
    address: str | None = None,
    gpus_per_trial: float = 0.0,
    cpus_per_trial: float = 1.0,
    max_concurrent: int | None = None,
    created_by: str | None = None,
    engine: Any = None,
    detach: bool = True,
    launch: bool = True,
) -> int:
    """Build a sweep's grid from a base config and start it: what ``vlmrm train sweep`` and the
    Train page's sweep form both call.

    Args:
        base: the :class:`~vlmrm_core.training.config.TrainConfig` every trial starts from.
        engine_kind: ``local`` (today's queue, ``VLMRM_MAX_RUNS``) or ``ray`` (Tune trials).
        prompt_sets, reward_files, alphas, seeds, rewards: the grid (see :func:`sweep_points`).
        name: display name (default: env, algorithm and number of trials).
        address: Ray cluster to join (``ray`` only; None: a local cluster).
        gpus_per_trial, cpus_per_trial: Ray resources of each trial.
        max_concurrent: Ray trials at once (None: as many as resources allow).
        created_by: the signed-in user (None: the local user without sign-in); only admins
            and researchers may start sweeps. With ``VLMRM_MAX_RUNS_PER_USER`` set, the sweep is
            refused when its trials would take them past the quota, and its trials count
            against it like runs started one by one.
        engine: store engine.
        detach: Ray only (see :func:`start_sweep`).
        launch: local only (see :func:`start_sweep`).

    Returns:
        The sweep id.

    Raises:
        InvalidInputError: a bad grid or engine choice.
        RunStateError: the per-user quota would be exceeded.
        AccessError: ``created_by`` is signed in but unknown, or a labeller.
    """
    from vlmrm_core.store import init_db
    from vlmrm_core.store.users import require_researcher

    engine = engine or init_db()
    require_researcher(engine, created_by)
    if engine_kind not in ("local", "ray"):
        raise InvalidInputError(f"engine must be local or ray, not {engine_kind!r}")
    if engine_kind == "local" and address:
        raise InvalidInputError("a Ray address needs the ray engine (--engine ray)")
    if max_concurrent is not None and max_concurrent < 1:
        raise InvalidInputError("max concurrent trials must be at least 1 (or unset)")
    points = sweep_points(
        base,
        prompt_sets=prompt_sets,
        reward_files=reward_files,
        alphas=alphas,
        seeds=seeds,
        engine=engine,
        rewards=rewards,
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
        launch=launch,
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
    launch: bool = True,
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
            calls :func:`vlmrm_core.scale.grid_trials.drive_ray_sweep` itself).
        launch: local only: start workers for the queued trials now (up to
            ``VLMRM_MAX_RUNS``); False only queues them, as ``start_run(launch=False)`` does.

    Returns:
        The sweep id.
    """
    from vlmrm_core.store import init_db
    from vlmrm_core.store.sweeps import create_sweep, update_sweep

    if engine_kind != "local" and not launch:
        raise InvalidInputError(
            "launch=False only queues a local sweep's trials; a Ray sweep's driver starts them "
            "(detach=False drives it from this process)"
        )
    engine = engine or init_db()
    sweep = create_sweep(engine, name=name, engine_kind=engine_kind, spec=spec, address=address)
    if engine_kind == "local":
        _queue_local(engine, sweep.id, spec["points"], spec.get("created_by"), launch=launch)
    else:
        update_sweep(engine, sweep.id, storage_path=str(storage_root(spec)))
        if detach:
            _spawn_driver(engine, sweep.id)
    return sweep.id


def _queue_local(
    engine: Any,
    sweep_id: int,
    points: Sequence[dict[str, Any]],
    created_by: str | None = None,
    *,
    launch: bool = True,
) -> None:
    from vlmrm_core.store import get_run, update_run
    from vlmrm_core.store.sweeps import finish_running_sweep, link_run, update_sweep
    from vlmrm_core.training.config import TrainConfig
    from vlmrm_core.training.jobs import reconcile_runs, start_run

    try:
        for point in points:
            config = TrainConfig.from_dict(point["config"])
            run_id = start_run(
                config,
                engine=engine,
                name=trial_run_name(point),
                launch=False,
                created_by=created_by,
            )
            link_run(engine, run_id, sweep_id)
            run = get_run(engine, run_id)
            update_run(
                engine,
                run_id,
                config={**run.config, "_trial_key": point["key"], "_group": point["group"]},
            )
    except Exception as exc:
        # Until every point is queued, reconciliation leaves the sweep running: say it failed.
        if finish_running_sweep(engine, sweep_id, "failed"):
            update_sweep(engine, sweep_id, error=f"queueing its trials failed: {exc}")
        raise
    reconcile_runs(engine, launch=launch)


def trial_run_name(point: dict[str, Any]) -> str:
    """A trial run's display name: env, algorithm and the grid point's label."""
    config = point["config"]
    return f"{config['env_id']} {config['algo'].upper()} · {point['label']}"


def storage_root(spec: dict[str, Any]) -> str:
    """Where a Ray sweep keeps its Tune results (the spec's, or ``<data dir>/sweeps``)."""
    from vlmrm_core.settings import get_settings

    return spec.get("storage_path") or str(get_settings().data_dir / "sweeps")


def _spawn_driver(engine: Any, sweep_id: int) -> int:
    from vlmrm_core.settings import get_settings
    from vlmrm_core.store.sweeps import update_sweep

    folder = get_settings().data_dir / "sweeps"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"sweep-{sweep_id}-driver.log", "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "vlmrm_core.scale.grid_trials", "drive", str(sweep_id)],
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


# --------------------------------------------------------------------------- control


def cancel_sweep(sweep_id: int, *, engine: Any = None, actor: str | None = None) -> list[int]:
    """Cancel a sweep: queued trials are cancelled, running ones stop after a checkpoint.

    Args:
        sweep_id: the sweep.
        engine: store engine.
        actor: the signed-in user (None: the local user without sign-in); only admins and
            researchers may cancel sweeps.

    Returns:
        Ids of the runs a cancellation was sent to.

    Raises:
        AccessError: ``actor`` is signed in but unknown, or a labeller.
    """
    from vlmrm_core.store import get_run, init_db, utcnow
    from vlmrm_core.store.sweeps import get_sweep, sweep_run_ids, update_sweep
    from vlmrm_core.store.users import require_researcher
    from vlmrm_core.training.jobs import cancel_run

    engine = engine or init_db()
    require_researcher(engine, actor)
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


def resume_sweep(
    sweep_id: int, *, engine: Any = None, detach: bool = True, actor: str | None = None
) -> None:
    """Run a cancelled or failed sweep's unfinished trials again, from their checkpoints.

    Args:
        sweep_id: the sweep.
        engine: store engine.
        detach: Ray only (see :func:`start_sweep`).
        actor: the signed-in user (None: the local user without sign-in); only admins and
            researchers may resume sweeps.

    Raises:
        AccessError: ``actor`` is signed in but unknown, or a labeller.
    """
    from vlmrm_core.store import get_run, init_db
    from vlmrm_core.store.sweeps import get_sweep, sweep_run_ids, update_sweep
    from vlmrm_core.store.users import require_researcher
    from vlmrm_core.training.jobs import reconcile_runs, resume_run

    engine = engine or init_db()
    require_researcher(engine, actor)
    sweep = get_sweep(engine, sweep_id)
    if sweep.status in ("running", "finished"):
        raise InvalidInputError(
            f"sweep {sweep_id} is {sweep.status}; only cancelled or failed sweeps resume"
        )
    if sweep.engine == "local":
        _wait_for_cancellations(engine, sweep_run_ids(engine, sweep_id))
        # Trials first: a reconciliation in between must not find a running sweep with no
        # active trial (it would end it again).
        for run_id in sweep_run_ids(engine, sweep_id):
            if get_run(engine, run_id).status in ("cancelled", "crashed", "failed"):
                resume_run(run_id, engine=engine, launch=False)
    update_sweep(engine, sweep_id, status="running", finished_at=None, error=None)
    if sweep.engine == "local":
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
    from vlmrm_core.store import init_db
    from vlmrm_core.store.sweeps import get_sweep
    from vlmrm_core.training.jobs import reconcile_runs

    engine = engine or init_db()
    while True:
        if get_sweep(engine, sweep_id).engine == "local":
            reconcile_runs(engine)  # settles the sweep once its trials have ended
        sweep = get_sweep(engine, sweep_id)
        if sweep.status != "running":
            return sweep.status
        time.sleep(poll_s)
