"""Training run records and metrics."""

from __future__ import annotations

import math
import os
import subprocess
from datetime import timedelta

import numpy as np
import pytest
from sqlalchemy import Engine

from vlmrm_core.errors import VlmrmError
from vlmrm_core.store import (
    BeatOutcome,
    NotFoundError,
    RunInfo,
    RunStateError,
    add_run_metrics,
    claim_next_queued,
    claim_run_for_worker,
    create_run,
    get_run,
    latest_metric,
    list_runs,
    mark_crashed,
    record_heartbeat,
    request_cancel,
    requeue_run,
    run_metrics,
    update_run,
    utcnow,
)


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


def _queued(engine: Engine, name: str = "r") -> RunInfo:
    return create_run(engine, name=name, env_id="CartPole-v1", algo="dqn", config={}, total_steps=9)


def test_claim_next_queued_respects_the_limit_and_order(engine: Engine) -> None:
    first, second, third = (_queued(engine, n) for n in ("a", "b", "c"))
    claimed = claim_next_queued(engine, limit=2)
    assert claimed is not None and claimed.id == first.id  # oldest first
    assert (claimed.status, claimed.pid, claimed.heartbeat_at) == ("running", None, None)
    assert claimed.started_at is not None
    again = claim_next_queued(engine, limit=2)
    assert again is not None and again.id == second.id
    assert claim_next_queued(engine, limit=2) is None  # two running: the limit
    assert get_run(engine, third.id).status == "queued"
    update_run(engine, first.id, status="finished")
    last = claim_next_queued(engine, limit=2)
    assert last is not None and last.id == third.id
    assert claim_next_queued(engine, limit=5) is None  # nothing queued


def test_mark_crashed_only_if_the_heartbeat_is_unchanged(engine: Engine) -> None:
    run = _queued(engine)
    seen = utcnow() - timedelta(seconds=30)
    update_run(engine, run.id, status="running", heartbeat_at=seen)
    # The worker beat after it was judged dead: it keeps its run.
    update_run(engine, run.id, heartbeat_at=utcnow())
    assert not mark_crashed(engine, run.id, seen_heartbeat=seen, reason="stale")
    assert get_run(engine, run.id).status == "running"
    fresh = get_run(engine, run.id).heartbeat_at
    assert mark_crashed(engine, run.id, seen_heartbeat=fresh, reason="gone; resume it")
    crashed = get_run(engine, run.id)
    assert (crashed.status, crashed.error) == ("crashed", "gone; resume it")
    assert crashed.finished_at is not None
    # Not running any more: nothing to mark.
    assert not mark_crashed(engine, run.id, seen_heartbeat=fresh, reason="again")
    never = _queued(engine)
    update_run(engine, never.id, status="running")
    assert mark_crashed(engine, never.id, seen_heartbeat=None, reason="never reported in")


def test_cancel_and_requeue_rules(engine: Engine) -> None:
    queued = _queued(engine)
    assert request_cancel(engine, queued.id) == "cancelled"
    with pytest.raises(RunStateError, match="only queued or running"):
        request_cancel(engine, queued.id)
    running = _queued(engine)
    update_run(engine, running.id, status="running", pid=4242)
    assert request_cancel(engine, running.id) == "running"
    assert get_run(engine, running.id).cancel_requested is True
    with pytest.raises(RunStateError, match="can be resumed"):
        requeue_run(engine, running.id)

    update_run(engine, queued.id, error="x", config={"lr": 1.0})
    again = requeue_run(engine, queued.id)
    assert (again.status, again.error, again.finished_at) == ("queued", None, None)
    assert again.config == {"lr": 1.0, "_resume": True}
    with pytest.raises(NotFoundError):
        request_cancel(engine, 999)
    with pytest.raises(NotFoundError):
        requeue_run(engine, 999)
    # User errors: one line in the CLI, st.error in the app; still ValueError for old callers.
    assert issubclass(RunStateError, VlmrmError) and issubclass(RunStateError, ValueError)


def alive(run: RunInfo) -> bool:
    return True


def dead(run: RunInfo) -> bool:
    return False


def test_claim_run_for_worker(engine: Engine) -> None:
    me = os.getpid()
    run = _queued(engine)
    claimed = claim_run_for_worker(engine, run.id, me, alive, host="node-a")
    assert (claimed.status, claimed.pid, claimed.host) == ("running", me, "node-a")
    assert claimed.heartbeat_at is not None and claimed.started_at is not None
    # Another live worker holds it.
    with pytest.raises(RunStateError, match=f"already running in process {me}$"):
        claim_run_for_worker(engine, run.id, me + 1, alive, host="node-a")
    # Its holder is dead: taken over.
    taken = claim_run_for_worker(engine, run.id, me + 1, dead, host="node-a")
    assert taken.pid == me + 1 and taken.started_at == claimed.started_at
    update_run(engine, run.id, status="crashed")
    with pytest.raises(RunStateError, match="resume it first"):
        claim_run_for_worker(engine, run.id, me, dead, host="node-a")
    update_run(engine, run.id, status="finished")
    with pytest.raises(RunStateError, match="nothing to run"):
        claim_run_for_worker(engine, run.id, me, dead, host="node-a")
    with pytest.raises(NotFoundError):
        claim_run_for_worker(engine, 999, me, dead, host="node-a")


def test_claim_tells_the_same_pid_on_another_host_apart(engine: Engine) -> None:
    run = _queued(engine)
    claim_run_for_worker(engine, run.id, 77, alive, host="node-a")
    judged: list[RunInfo] = []

    def holder_alive(holder: RunInfo) -> bool:
        judged.append(holder)
        return True

    # Pid 77 on node-b is another process: node-a's worker is asked about, and holds the run.
    with pytest.raises(RunStateError, match="already running in process 77 on node-a"):
        claim_run_for_worker(engine, run.id, 77, holder_alive, host="node-b")
    assert [(j.pid, j.host) for j in judged] == [(77, "node-a")]
    # The launcher's claim (same pid, same host) is this worker's own: nobody is asked.
    assert claim_run_for_worker(engine, run.id, 77, dead, host="node-a").host == "node-a"
    # A row without a host (before hosts were recorded) and this pid: this worker's, as before.
    update_run(engine, run.id, host=None)
    assert claim_run_for_worker(engine, run.id, 77, dead, host="node-b").host == "node-b"


def test_record_heartbeat(engine: Engine) -> None:
    run = _queued(engine)
    update_run(engine, run.id, status="running", pid=10)
    assert record_heartbeat(engine, run.id, 10, 5) is BeatOutcome.OK
    beat = get_run(engine, run.id)
    assert beat.steps_done == 5 and beat.heartbeat_at is not None
    update_run(engine, run.id, status="crashed", error="no heartbeat", finished_at=utcnow())
    assert record_heartbeat(engine, run.id, 10, 6) is BeatOutcome.RECLAIMED
    back = get_run(engine, run.id)
    assert (back.status, back.error, back.finished_at, back.steps_done) == (
        "running",
        None,
        None,
        6,
    )
    assert record_heartbeat(engine, run.id, 11, 7) is BeatOutcome.LOST  # not its pid
    update_run(engine, run.id, status="finished")
    assert record_heartbeat(engine, run.id, 10, 8) is BeatOutcome.LOST  # ended
    assert record_heartbeat(engine, 999, 10, 1) is BeatOutcome.LOST
    assert get_run(engine, run.id).steps_done == 6


def test_heartbeat_matches_pid_and_host(engine: Engine) -> None:
    run = _queued(engine)
    update_run(engine, run.id, status="running", pid=10, host="node-a")
    assert record_heartbeat(engine, run.id, 10, 5, host="node-a") is BeatOutcome.OK
    # Pid 10 on node-b is another worker (pids repeat across machines and containers).
    assert record_heartbeat(engine, run.id, 10, 6, host="node-b") is BeatOutcome.LOST
    assert get_run(engine, run.id).steps_done == 5
    update_run(engine, run.id, host=None)  # a row from before hosts were recorded
    assert record_heartbeat(engine, run.id, 10, 7, host="node-b") is BeatOutcome.OK


def test_requeue_and_claim_forget_the_host(engine: Engine) -> None:
    run = _queued(engine)
    update_run(engine, run.id, status="crashed", pid=10, host="node-a")
    assert (requeue_run(engine, run.id).pid, get_run(engine, run.id).host) == (None, None)
    update_run(engine, run.id, host="node-a")  # as if left over
    claimed = claim_next_queued(engine, limit=1)
    assert claimed is not None and (claimed.pid, claimed.host) == (None, None)


def test_latest_metric_reads_the_newest_finite_value(engine: Engine) -> None:
    run = _queued(engine)
    assert latest_metric(engine, run.id, "steps_per_s") is None
    add_run_metrics(
        engine,
        run.id,
        [
            {"step": 1, "steps_per_s": 10.0},
            {"step": 2, "steps_per_s": 20.0},
            {"step": 3, "steps_per_s": float("nan")},  # stored as null: skipped
            {"step": 3, "loss": 0.5},
        ],
    )
    assert latest_metric(engine, run.id, "steps_per_s") == 20.0
    assert latest_metric(engine, run.id, "loss") == 0.5
    # Only the newest `window` rows are looked at.
    assert latest_metric(engine, run.id, "steps_per_s", window=2) is None


# --------------------------------------------------------------------------- runs on many hosts
# Crash detection as `vlmrm_core.training.jobs` does it, here so that it runs on both databases.

OTHER_HOST = "node-b/0123abcd"


@pytest.fixture
def kills(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Pids that anything sends a signal to (signal 0, the existence probe, included)."""
    sent: list[int] = []
    real_kill = os.kill

    def spy(pid: int, sig: int) -> None:
        sent.append(pid)
        real_kill(pid, sig)

    monkeypatch.setattr(os, "kill", spy)
    monkeypatch.setenv("VLMRM_HEARTBEAT_S", "1")  # stale after 2 s
    return sent


def _dead_pid() -> int:
    """The pid of a process that has exited and been reaped: nothing of that pid here."""
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def _running(engine: Engine, **fields: object) -> int:
    run = _queued(engine)
    update_run(engine, run.id, status="running", started_at=utcnow(), **fields)
    return run.id


def test_a_run_on_another_host_is_judged_by_its_heartbeat(engine: Engine, kills: list[int]) -> None:
    from vlmrm_core.training import jobs

    now = utcnow()
    gone_here = _dead_pid()
    # Its pid means nothing here (no such process): a fresh heartbeat keeps it running.
    healthy = _running(engine, pid=gone_here, host=OTHER_HOST, heartbeat_at=now)
    # Its pid names a live process here (this one), unrelated: the stale heartbeat decides.
    silent = _running(
        engine, pid=os.getpid(), host=OTHER_HOST, heartbeat_at=now - timedelta(seconds=30)
    )
    never = _running(engine, host=OTHER_HOST)
    update_run(engine, never, started_at=now - timedelta(seconds=jobs.STARTUP_GRACE_S + 5))

    assert jobs.mark_crashed_runs(engine) == [never, silent]
    assert get_run(engine, healthy).status == "running"
    error = get_run(engine, silent).error
    assert error.startswith(f"no heartbeat for 30 s from worker {os.getpid()} on {OTHER_HOST} (")
    assert f"the worker on {OTHER_HOST} never reported in" in get_run(engine, never).error
    assert jobs.worker_alive(get_run(engine, healthy))
    assert not jobs.worker_alive(get_run(engine, healthy), now + timedelta(seconds=3))
    assert kills == []  # no pid of another machine is looked up here


def test_a_run_on_this_host_or_of_no_host_is_judged_by_its_pid(
    engine: Engine, kills: list[int]
) -> None:
    from vlmrm_core.training import jobs

    now = utcnow()
    local_dead, legacy_dead = _dead_pid(), _dead_pid()
    local = _running(engine, pid=local_dead, host=jobs.this_host(), heartbeat_at=now)
    # Rows from before hosts were recorded keep the old rule: the pid is this machine's.
    legacy = _running(engine, pid=legacy_dead, heartbeat_at=now)
    legacy_alive = _running(engine, pid=os.getpid(), heartbeat_at=now)

    assert jobs.mark_crashed_runs(engine) == [legacy, local]
    for run_id, pid in ((local, local_dead), (legacy, legacy_dead)):
        assert get_run(engine, run_id).error.startswith(f"worker process {pid} is gone")
    assert get_run(engine, legacy_alive).status == "running"
    assert {local_dead, legacy_dead, os.getpid()} <= set(kills)


def test_cancelling_a_run_on_another_host_sends_no_signal(engine: Engine, kills: list[int]) -> None:
    from vlmrm_core.training import jobs

    run_id = _running(engine, pid=os.getpid(), host=OTHER_HOST, heartbeat_at=utcnow())
    assert jobs.cancel_run(run_id, engine=engine) == "running"
    run = get_run(engine, run_id)
    assert (run.status, run.cancel_requested) == ("running", True)  # the worker polls the flag
    assert jobs.reconcile_runs(engine, launch=False).crashed == []
    assert kills == []
