"""A local-engine sweep's status follows its trials, with nobody waiting on it (SQLite store)."""

from __future__ import annotations

import time

import pytest

from vlmrm_core.errors import InvalidInputError
from vlmrm_core.store import create_run, get_run, init_db, update_run, utcnow
from vlmrm_core.store.sweeps import create_sweep, get_sweep, link_run, sweep_run_ids, update_sweep
from vlmrm_core.training.config import TrainConfig
from vlmrm_core.training.grids import launch_sweep
from vlmrm_core.training.jobs import reconcile_runs

pytestmark = pytest.mark.usefixtures("workers")


def _sweep_with_trials(n_points: int, statuses: list[str]) -> int:
    """A local sweep of ``n_points`` points whose first trials have ``statuses`` (no workers)."""
    engine = init_db()
    points = [{"key": f"p{i}"} for i in range(n_points)]
    sweep = create_sweep(engine, name="s", engine_kind="local", spec={"points": points})
    for i, status in enumerate(statuses):
        run = create_run(
            engine, name=f"t{i}", env_id="CartPole-v1", algo="dqn", config={}, total_steps=10
        )
        link_run(engine, run.id, sweep.id)
        # "running" with a heartbeat just now: a live worker on another host, as far as
        # crash detection can tell, so reconciliation leaves the trial alone.
        live = {"host": "elsewhere/0", "heartbeat_at": utcnow()} if status == "running" else {}
        update_run(engine, run.id, status=status, started_at=utcnow(), **live)
    return sweep.id


@pytest.mark.parametrize(
    ("n_points", "trials", "expected"),
    [
        (2, ["finished", "finished"], "finished"),
        (2, ["finished", "failed"], "failed"),
        (2, ["finished", "crashed"], "failed"),
        (2, ["finished", "running"], "running"),
        (2, ["finished", "queued"], "running"),
        # the sweep is still queueing its trials: one missing run is not a lost trial
        (2, ["finished"], "running"),
    ],
)
def test_reconciliation_ends_a_local_sweep_when_its_trials_end(
    n_points: int, trials: list[str], expected: str
) -> None:
    engine = init_db()
    sweep_id = _sweep_with_trials(n_points, trials)
    done = reconcile_runs(engine, launch=False)
    sweep = get_sweep(engine, sweep_id)
    assert sweep.status == expected
    if expected == "running":
        assert sweep.finished_at is None and done.settled_sweeps == {}
    else:
        assert sweep.finished_at is not None and done.settled_sweeps == {sweep_id: expected}
    # settled once: the next reconciliation changes nothing
    assert reconcile_runs(engine, launch=False).settled_sweeps == {}


def test_a_cancelled_sweep_stays_cancelled() -> None:
    engine = init_db()
    sweep_id = _sweep_with_trials(2, ["finished", "finished"])
    update_sweep(engine, sweep_id, status="cancelled")
    reconcile_runs(engine, launch=False)
    assert get_sweep(engine, sweep_id).status == "cancelled"


def test_a_local_sweep_finishes_with_its_last_trial_without_a_waiter(
    tiny_run_config: TrainConfig,
) -> None:
    """Real workers train both trials; nobody calls wait_for_sweep or reconciles: the last
    worker's exit ends the sweep."""
    engine = init_db()
    base = tiny_run_config.replace(total_steps=40, eval_every=0, checkpoint_every=40)
    sweep_id = launch_sweep(base, engine_kind="local", seeds=2, engine=engine)
    runs = sweep_run_ids(engine, sweep_id)
    assert len(runs) == 2
    deadline = time.monotonic() + 240
    while get_sweep(engine, sweep_id).status == "running":
        assert time.monotonic() < deadline, [get_run(engine, r).status for r in runs]
        time.sleep(0.5)
    sweep = get_sweep(engine, sweep_id)
    assert [get_run(engine, r).status for r in runs] == ["finished", "finished"]
    assert sweep.status == "finished" and sweep.finished_at is not None


def test_a_local_sweep_launched_with_launch_false_only_queues_its_trials(
    tiny_run_config: TrainConfig,
) -> None:
    """As ``start_run(launch=False)``: the trials wait in the queue, no worker starts."""
    engine = init_db()
    sweep_id = launch_sweep(tiny_run_config, engine_kind="local", seeds=2, launch=False)
    runs = [get_run(engine, r) for r in sweep_run_ids(engine, sweep_id)]
    assert [(r.status, r.pid) for r in runs] == [("queued", None), ("queued", None)]
    assert get_sweep(engine, sweep_id).status == "running"
    with pytest.raises(InvalidInputError, match="only queues a local sweep"):
        launch_sweep(tiny_run_config, engine_kind="ray", launch=False)
