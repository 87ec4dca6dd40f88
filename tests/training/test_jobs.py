"""Job control end to end: real worker processes training CartPole on a tiny real CLIP reward."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import TypeVar

import av
import pytest
from stable_baselines3 import DQN

from vlmrm_core.enums import Precision
from vlmrm_core.reward.spec import ModelRef, RewardSpec
from vlmrm_core.store import (
    PromptSet,
    create_run,
    dataset_frames,
    get_dataset,
    get_run,
    init_db,
    list_runs,
    run_metrics,
    save_prompt_set,
    utcnow,
)
from vlmrm_core.training import jobs
from vlmrm_core.training.config import ConfigError, TrainConfig
from vlmrm_core.training.jobs import (
    RunStateError,
    cancel_run,
    list_runs_view,
    reconcile_runs,
    resume_run,
    start_run,
)
from vlmrm_core.training.worker import Ownership, run_worker

pytestmark = pytest.mark.usefixtures("workers")

T = TypeVar("T")


def wait_for(predicate: Callable[[], T], timeout: float = 60.0, interval: float = 0.2) -> T:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)


def status_of(run_id: int) -> str:
    return get_run(init_db(), run_id).status


def wait_status(
    run_id: int, statuses: tuple[str, ...], timeout: float = 120.0, *, reconcile: bool = False
) -> str:
    """Poll a run's status (only reading, unless ``reconcile`` asks to run the app's step)."""

    def check() -> str | None:
        if reconcile:
            reconcile_runs(init_db())
        status = status_of(run_id)
        return status if status in statuses else None

    return wait_for(check, timeout)


def test_end_to_end_run_then_next_queued_run(tiny_run_config: TrainConfig) -> None:
    engine = init_db()
    first = start_run(tiny_run_config, name="first")
    second = start_run(tiny_run_config.replace(total_steps=40, eval_every=0), name="second")
    # One run at a time (VLMRM_MAX_RUNS=1): the second waits in the queue.
    assert status_of(first) == "running"
    assert status_of(second) == "queued"

    assert wait_status(first, ("finished", "failed", "crashed")) == "finished", get_run(
        engine, first
    ).error
    run = get_run(engine, first)
    assert run.steps_done == 200 and run.error is None and run.finished_at is not None
    assert run.host == jobs.this_host()  # recorded with the pid, by launcher and worker

    # Curves were logged: CLIP return and ground-truth return per episode, and evaluations.
    metrics = run_metrics(engine, first)
    curves = metrics.dropna(subset=["episode_clip_return"])
    assert len(curves) >= 2
    assert curves["episode_gt_return"].notna().all()
    assert metrics["eval/clip_return"].notna().sum() == 1

    # Checkpoints every 100 steps, with the replay buffer of the newest.
    checkpoints = jobs.run_checkpoints(run)
    assert [c.steps for c in checkpoints] == [100, 200]
    assert checkpoints[-1].replay_buffer_path is not None

    # The evaluation became a frame dataset and a video.
    dataset = get_dataset(engine, f"run-{first}-eval-200")
    assert dataset.kind == "training-eval" and dataset.n_frames > 0
    assert run.eval_dataset_id == dataset.id
    frames = dataset_frames(engine, dataset.name)
    assert {f.source for f in frames} == {"training-eval"}
    ((step, video),) = jobs.eval_videos(run)
    assert step == 200
    with av.open(str(video)) as container:
        assert sum(1 for _ in container.decode(video=0)) == dataset.n_frames

    log = jobs.log_path(run).read_text()
    assert f"run {first} finished at step 200" in log

    # The finishing worker launched the queued run by itself.
    assert wait_status(second, ("finished", "failed", "crashed")) == "finished"
    view = {v.id: v for v in list_runs_view(engine)}
    assert view[first].progress == 1.0 and view[second].steps_done == 40


@pytest.mark.serial
def test_killed_worker_is_crashed_then_resumes_from_checkpoint(
    tiny_run_config: TrainConfig,
) -> None:
    engine = init_db()
    total = 400
    run_id = start_run(tiny_run_config.replace(total_steps=total, eval_every=0))
    run = get_run(engine, run_id)
    wait_for(lambda: jobs.run_checkpoints(run), timeout=120)
    pid = get_run(engine, run_id).pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    killed_at = time.monotonic()
    wait_for(lambda: not jobs.pid_alive(pid), timeout=10, interval=0.05)

    # Listing only reads: the dead worker's run still says running.
    before = [(r.id, r.status, r.error) for r in list_runs(engine)]
    assert {v.id: v.status for v in list_runs_view(engine)}[run_id] == "running"
    assert [(r.id, r.status, r.error) for r in list_runs(engine)] == before
    # The app's page load (or `vlmrm train list`) reconciles: crashed within two heartbeats.
    assert wait_status(run_id, ("crashed",), timeout=10, reconcile=True) == "crashed"
    assert time.monotonic() - killed_at <= 2 * jobs.heartbeat_interval() + 1.0
    crashed = get_run(engine, run_id)
    assert "is gone" in crashed.error and crashed.steps_done < total
    checkpoint = jobs.run_checkpoints(run)[-1].steps
    assert 0 < checkpoint < total

    resume_run(run_id)
    assert wait_status(run_id, ("finished", "failed", "crashed")) == "finished"
    final = jobs.run_checkpoints(run)[-1]
    model = DQN.load(final.model_path)
    # num_timesteps kept counting: the resumed learn() started at the checkpoint's count.
    assert model._num_timesteps_at_start == checkpoint
    assert model.num_timesteps == total == get_run(engine, run_id).steps_done
    log = jobs.log_path(run).read_text()
    assert f"resumed from model_{checkpoint}.zip at step {checkpoint}" in log
    assert "with its replay buffer" in log


def test_cancel_stops_cleanly_with_a_checkpoint(tiny_run_config: TrainConfig) -> None:
    engine = init_db()
    run_id = start_run(tiny_run_config.replace(total_steps=5_000, eval_every=0))
    wait_for(lambda: get_run(engine, run_id).steps_done > 0, timeout=120)
    assert cancel_run(run_id) == "running"
    assert wait_status(run_id, ("cancelled", "failed", "crashed")) == "cancelled"
    run = get_run(engine, run_id)
    assert 0 < run.steps_done < 5_000
    assert not run.cancel_requested
    assert jobs.run_checkpoints(run)[-1].steps == run.steps_done
    assert "cancellation requested" in jobs.log_path(run).read_text()
    with pytest.raises(RunStateError, match="cancelled"):
        cancel_run(run_id)


def test_cancel_queued_run_and_resume_rules(tiny_run_config: TrainConfig) -> None:
    run_id = start_run(tiny_run_config, launch=False)
    assert cancel_run(run_id) == "cancelled"
    with pytest.raises(RunStateError, match="only queued or running"):
        cancel_run(run_id)
    resume_run(run_id, launch=False)
    run = get_run(init_db(), run_id)
    assert run.status == "queued" and run.config["_resume"] is True
    with pytest.raises(RunStateError, match="can be resumed"):
        resume_run(run_id, launch=False)


def test_stale_heartbeat_and_silent_start_are_crashes(data_dir: Path) -> None:
    engine = init_db()
    now = utcnow()
    config = TrainConfig(reward=RewardSpec(("x",))).to_dict()

    def running(**fields: object) -> int:
        run = create_run(
            engine, name="r", env_id="CartPole-v1", algo="dqn", config=config, total_steps=10
        )
        jobs.update_run(engine, run.id, status="running", **fields)
        return run.id

    stale = running(heartbeat_at=now - timedelta(seconds=2.5), started_at=now)
    fresh = running(heartbeat_at=now, started_at=now, pid=os.getpid())
    starting = running(started_at=now)
    silent = running(started_at=now - timedelta(seconds=jobs.STARTUP_GRACE_S + 5))
    assert sorted(jobs.mark_crashed_runs(engine)) == [stale, silent]
    assert "no heartbeat" in get_run(engine, stale).error
    assert "never reported" in get_run(engine, silent).error
    assert status_of(fresh) == status_of(starting) == "running"


def test_this_host_is_the_hostname_and_a_boot_and_pid_namespace_digest() -> None:
    import socket

    name, _, digest = jobs.this_host().partition("/")
    assert name == socket.gethostname()
    if os.path.exists("/proc/sys/kernel/random/boot_id"):
        assert len(digest) == 8 and int(digest, 16) >= 0


def test_a_ray_trial_records_its_node_before_its_worker_claims(data_dir: Path) -> None:
    from vlmrm_core.scale.grid_trials import _claimable

    engine = init_db()
    config = TrainConfig(reward=RewardSpec(("x",))).to_dict()
    run = create_run(
        engine, name="t", env_id="CartPole-v1", algo="dqn", config=config, total_steps=10
    )
    # Placed on node-a first; Tune restarts it here before that worker ever claimed the run.
    jobs.update_run(engine, run.id, status="running", host="node-a/00000000")
    _claimable(engine, run.id)
    assert (get_run(engine, run.id).pid, get_run(engine, run.id).host) == (None, jobs.this_host())
    # Its worker on node-a died after claiming: the restart here forgets that pid and host.
    jobs.update_run(engine, run.id, status="crashed", pid=4242, host="node-a/00000000")
    _claimable(engine, run.id)
    again = get_run(engine, run.id)
    assert (again.status, again.pid, again.host) == ("running", None, jobs.this_host())


def test_log_tail(tmp_path: Path) -> None:
    path = tmp_path / "worker.log"
    path.write_text("".join(f"line {i}\n" for i in range(100)))
    assert jobs.log_tail(path, lines=3) == "line 97\nline 98\nline 99"
    assert jobs.log_tail(tmp_path / "missing.log") == ""


def test_prompt_set_is_copied_into_the_run(data_dir: Path) -> None:
    engine = init_db()
    saved = save_prompt_set(
        engine,
        PromptSet(
            name="upright",
            model=ModelRef("ViT-S-32-alt", None),
            reward=RewardSpec(
                ("pole vertically upright on top of the cart",), ("pole and cart",), alpha=0.25
            ),
        ),
    )
    run_id = start_run(TrainConfig(prompt_set="upright", total_steps=10), launch=False)
    run = get_run(engine, run_id)
    assert run.prompt_set_id == saved.id
    config = TrainConfig.from_dict(run.config)
    # Editing the set later must not change this run's reward: the stored config is complete.
    # Its precision is the run's (auto by default), not the set's (see with_reward).
    assert config.model == saved.model.replace(precision=Precision.AUTO)
    assert config.reward == saved.reward
    assert config.prompt_set == "upright"
    with pytest.raises(ConfigError, match="no prompt set named 'nope'"):
        start_run(TrainConfig(prompt_set="nope"), launch=False)


def test_failure_is_recorded_with_traceback(data_dir: Path) -> None:
    engine = init_db()
    # Queued without start_run's validation, as a stale or hand-edited row could be.
    bad = TrainConfig(
        env_id="NoSuchEnv-v0", reward=RewardSpec(("x",)), model=ModelRef("ViT-S-32-alt", None)
    )
    run = create_run(
        engine, name="bad", env_id=bad.env_id, algo="dqn", config=bad.to_dict(), total_steps=10
    )
    assert run_worker(run.id) == "failed"
    failed = get_run(engine, run.id)
    assert failed.status == "failed" and failed.finished_at is not None
    assert "Traceback" in failed.error and "NoSuchEnv" in failed.error
    assert "failed" in jobs.log_path(failed).read_text()


def test_heartbeat_reclaims_a_false_crash_and_yields_to_a_new_owner(data_dir: Path) -> None:
    engine = init_db()
    run = create_run(
        engine,
        name="r",
        env_id="CartPole-v1",
        algo="dqn",
        config=TrainConfig(reward=RewardSpec(("x",))).to_dict(),
        total_steps=10,
    )
    jobs.update_run(engine, run.id, status="running", pid=os.getpid())
    ownership = Ownership(engine, run.id)
    ownership.beat(5)
    assert get_run(engine, run.id).steps_done == 5

    # Judged dead while alive (its heartbeat was held up): the next beat takes the run back.
    jobs.update_run(engine, run.id, status="crashed", error="no heartbeat for 12 s")
    ownership.beat(6)
    back = get_run(engine, run.id)
    assert (back.status, back.error, back.steps_done) == ("running", None, 6)

    # Resumed elsewhere meanwhile: this worker must stop and write nothing more.
    jobs.update_run(engine, run.id, pid=os.getpid() + 1)
    ownership.beat(7)
    assert ownership.lost.is_set()
    assert get_run(engine, run.id).steps_done == 6


def _kill_worker(run_id: int) -> int:
    """SIGKILL the worker of a running run (as the OOM killer would) and wait until it is gone."""
    pid = wait_for(lambda: get_run(init_db(), run_id).pid, timeout=60)
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not jobs.pid_alive(pid), timeout=10, interval=0.05)
    return pid


@pytest.mark.slow
@pytest.mark.serial
def test_a_live_worker_marks_a_killed_sibling_crashed_and_fills_its_slot(
    tiny_run_config: TrainConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VLMRM_MAX_RUNS", "2")
    engine = init_db()
    long = tiny_run_config.replace(total_steps=100_000, eval_every=0, checkpoint_every=100_000)
    doomed = start_run(long, name="doomed")
    survivor = start_run(long, name="survivor")
    waiting = start_run(tiny_run_config.replace(total_steps=40, eval_every=0), name="waiting")
    assert [status_of(r) for r in (doomed, survivor, waiting)] == ["running", "running", "queued"]
    # Both workers train (their heartbeat threads run).
    wait_for(lambda: get_run(engine, survivor).steps_done > 0, timeout=120)
    wait_for(lambda: get_run(engine, doomed).steps_done > 0, timeout=120)
    pid = _kill_worker(doomed)
    killed_at = time.monotonic()

    # Nobody lists or reconciles here: the survivor's heartbeat finds the dead worker...
    assert wait_status(doomed, ("crashed",), timeout=20) == "crashed"
    assert time.monotonic() - killed_at <= 4 * jobs.heartbeat_interval() + 2.0
    assert f"worker process {pid} is gone" in get_run(engine, doomed).error
    assert status_of(survivor) == "running"
    # ...and gives the freed slot to the queued run, which finishes on its own.
    assert wait_status(waiting, ("finished", "failed", "crashed"), timeout=120) == "finished"
    log = jobs.log_path(get_run(engine, survivor)).read_text()
    assert f"marked runs [{doomed}] crashed" in log

    assert cancel_run(survivor) == "running"
    assert wait_status(survivor, ("cancelled", "failed", "crashed")) == "cancelled"


@pytest.mark.slow
def test_the_next_worker_start_marks_a_killed_worker_crashed(
    tiny_run_config: TrainConfig,
) -> None:
    engine = init_db()
    doomed = start_run(tiny_run_config.replace(total_steps=100_000, eval_every=0), name="doomed")
    wait_for(lambda: get_run(engine, doomed).steps_done > 0, timeout=120)
    pid = _kill_worker(doomed)
    assert status_of(doomed) == "running"  # nobody has looked yet

    # `vlmrm train run ID` in the foreground: the worker checks the other runs when it starts.
    follower = start_run(tiny_run_config.replace(total_steps=40, eval_every=0), launch=False)
    assert run_worker(follower) == "finished"
    crashed = get_run(engine, doomed)
    assert crashed.status == "crashed"
    assert f"worker process {pid} is gone" in crashed.error
    assert f"marked runs [{doomed}] crashed" in jobs.log_path(get_run(engine, follower)).read_text()
