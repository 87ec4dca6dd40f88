"""A training grid's status as its trials tell it (no Ray, no process control: the store only).

Used by :func:`vlmrm_core.training.jobs.reconcile_runs` (local sweeps have no driver of their
own, so reconciliation ends them), by :mod:`vlmrm_core.training.grids` and by the Ray driver in
:mod:`vlmrm_core.scale.grid_trials`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

ACTIVE = ("queued", "running")
"""Run statuses of a trial that has not ended."""


def sweep_outcome(engine: Any, sweep_id: int) -> str:
    """``cancelled`` if the user cancelled it, ``failed`` if a trial failed, else ``finished``
    (``running`` while a trial has not ended; see :func:`trials_outcome`)."""
    from vlmrm_core.store import get_run
    from vlmrm_core.store.sweeps import get_sweep, sweep_run_ids

    sweep = get_sweep(engine, sweep_id)
    if sweep.status == "cancelled":
        return "cancelled"
    statuses = [get_run(engine, r).status for r in sweep_run_ids(engine, sweep_id)]
    return trials_outcome(
        len(sweep.spec.get("points", [])), statuses, all_queued_first=sweep.engine == "local"
    )


def trials_outcome(n_points: int, statuses: Sequence[str], *, all_queued_first: bool) -> str:
    """A sweep's status as its trials' statuses tell it.

    Args:
        n_points: grid points (trials) of the sweep.
        statuses: the statuses of the trial runs that exist so far.
        all_queued_first: the local engine, which queues every trial's run before any ends:
            fewer runs than points means it is still queueing them, not that trials are lost
            (a Ray trial's run only appears when the trial starts).

    Returns:
        ``finished`` when every point's run finished, ``running`` while one is queued or
        running (or, see above, not yet queued), else ``failed``.
    """
    if len(statuses) == n_points and all(s == "finished" for s in statuses):
        return "finished"
    if any(s in ACTIVE for s in statuses):
        return "running"
    if all_queued_first and len(statuses) < n_points:
        return "running"
    return "failed"


def settle_local_sweeps(engine: Any) -> dict[int, str]:
    """End the local-engine sweeps whose trials have all ended (part of
    :func:`~vlmrm_core.training.jobs.reconcile_runs`).

    A local sweep has no driver process of its own: without this its row would say
    ``running`` forever unless a ``--wait`` caller stayed to settle it. Reconciliation runs
    whenever a worker exits, so the last trial's worker ends its sweep; the Train page and
    ``vlmrm train list`` reconcile too. Only reads unless a sweep changes, and each change is
    conditional on the sweep still running (a cancellation in between wins).

    Returns:
        ``{sweep_id: final status}`` of the sweeps this call ended.
    """
    from vlmrm_core.store.sweeps import finish_running_sweep, open_local_sweeps

    settled: dict[int, str] = {}
    for sweep_id, n_points, statuses in open_local_sweeps(engine):
        status = trials_outcome(n_points, statuses, all_queued_first=True)
        if status != "running" and finish_running_sweep(engine, sweep_id, status):
            settled[sweep_id] = status
    return settled
