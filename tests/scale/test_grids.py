"""Training sweeps as Ray Tune trials on the Ray cluster of tests/scale/ (CartPole, tiny CLIP)."""

from __future__ import annotations

import glob
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.training.conftest import TINY_CLIP

pytestmark = pytest.mark.slow


@pytest.fixture
def tiny_model(tmp_path: Path) -> Path:
    path = tmp_path / "vlmrm-tiny-test.json"
    path.write_text(json.dumps(TINY_CLIP))
    return path


@pytest.fixture
def fast_heartbeat(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VLMRM_HEARTBEAT_S", "1")


def sweep_args(tiny_model: Path, steps: int, *extra: str) -> list[str]:
    return [
        "train", "sweep", "--env", "CartPole-v1", "--algo", "dqn", "--steps", str(steps),
        "--model", "vlmrm-tiny-test", "--pretrained", "random",
        "--goal", "pole vertically upright on top of the cart", "--baseline", "pole and cart",
        "--n-envs", "2", "--eval-every", "0", "--checkpoint-every", "100", "--log-every", "50",
        "--learning-starts", "40", "--engine", "ray", *extra,
    ]  # fmt: skip


def test_a_ray_sweep_runs_every_trial_and_resumes_a_killed_one_from_its_checkpoint(
    data_dir: Path,
    ray_address: str,
    tiny_model: Path,
    fast_heartbeat: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Two α values: two trials, side by side on the 2-CPU cluster, each a run linked to the
    sweep. Once Tune holds a checkpoint of both, one trial's worker dies mid-training; Tune
    restarts that trial, whose worker resumes from its checkpoint. (Which points a grid of α
    values and seeds holds is tested without training in tests/scale/test_grid_cli.py.)"""
    from vlmrm_core.cli.main import main
    from vlmrm_core.store import get_run, init_db, run_metrics
    from vlmrm_core.store.sweeps import get_sweep, sweep_run_ids
    from vlmrm_core.training.jobs import log_path

    # Long enough that a trial is still training when Tune has the first checkpoints of both
    # (a trial reports every REPORT_EVERY_S; the tiny model trains a few hundred steps a second).
    steps = 2000
    argv = sweep_args(tiny_model, steps, "--alpha", "0", "--alpha", "0.5", "--seed", "3")
    argv += ["--model-config", str(tiny_model), "--address", ray_address, "--wait"]
    driver = subprocess.Popen(
        [sys.executable, "-m", "vlmrm_core.cli.main", *argv],
        env={**os.environ, "VLMRM_DATA_DIR": str(data_dir)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        engine = init_db()
        deadline = time.monotonic() + 300
        victim: Any = None
        while time.monotonic() < deadline and driver.poll() is None:
            pattern = str(data_dir / "sweeps" / "sweep-1-1" / "*" / "checkpoint_*")
            checkpointed_trials = {Path(found).parent for found in glob.glob(pattern)}
            runs = [get_run(engine, run_id) for run_id in sweep_run_ids(engine, 1)]
            live = [r for r in runs if r.status == "running" and r.pid and r.steps_done < steps]
            if len(checkpointed_trials) == 2 and live:
                victim = min(live, key=lambda r: r.steps_done)
                try:
                    os.kill(victim.pid, signal.SIGKILL)  # the trial's worker dies mid-training
                except ProcessLookupError:
                    # The row can still name a worker that has just exited (seen on a busy
                    # machine): look again for a live one, as long as a run is short of its steps.
                    victim = None
                    time.sleep(0.1)
                    continue
                break
            time.sleep(0.1)
        assert victim is not None, "no live trial worker to kill after both trials checkpointed"
        out, _ = driver.communicate(timeout=400)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
    assert driver.returncode == 0, out
    lines = out.strip().splitlines()
    sweep_id = int(lines[0])
    assert lines[-1] == f"sweep {sweep_id}: finished"

    sweep = get_sweep(engine, sweep_id)
    assert (sweep.status, sweep.engine, len(sweep.spec["points"])) == ("finished", "ray", 2)
    runs = [get_run(engine, r) for r in sweep_run_ids(engine, sweep_id)]
    assert len(runs) == 2
    grid = {(r.config["reward"]["alpha"], r.config["seed"]) for r in runs}
    assert grid == {(0.0, 3), (0.5, 3)}
    for run in runs:
        assert (run.status, run.sweep_id) == ("finished", sweep_id)
        assert run.steps_done >= steps
        metrics = run_metrics(engine, run.id)
        assert len(metrics) >= 2 and metrics["step"].max() >= 150
    assert victim.steps_done < steps
    log = log_path(get_run(engine, victim.id)).read_text()
    assert "resumed from model_" in log, log[-2000:]

    assert main(["train", "list"]) == 0
    listing = capsys.readouterr().out
    lines = [line for line in listing.splitlines() if f"sweep {sweep_id}" in line]
    assert len(lines) == 2 and all("finished" in line for line in lines)


def test_local_sweep_cancel_resume_and_wait(
    data_dir: Path,
    tiny_model: Path,
    fast_heartbeat: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from vlmrm_core.cli.main import main
    from vlmrm_core.store import get_run, init_db
    from vlmrm_core.store.sweeps import get_sweep, sweep_run_ids
    from vlmrm_core.training import jobs

    monkeypatch.setenv("VLMRM_MAX_RUNS", "1")
    before = set(jobs._children)
    try:
        argv = sweep_args(tiny_model, 100, "--seeds", "2", "--model-config", str(tiny_model))
        argv[argv.index("ray")] = "local"
        assert main(argv) == 0
        sweep_id = int(capsys.readouterr().out.strip())
        engine = init_db()
        runs = sweep_run_ids(engine, sweep_id)
        assert len(runs) == 2
        assert main(["train", "sweep", "cancel", str(sweep_id)]) == 0
        assert get_sweep(engine, sweep_id).status == "cancelled"
        # the queued trial is cancelled at once (the running one stops after a checkpoint)
        assert get_run(engine, runs[1]).status == "cancelled"

        assert main(["train", "sweep", "resume", str(sweep_id), "--wait"]) == 0
        out = capsys.readouterr().out.strip().splitlines()
        assert out[-1] == f"sweep {sweep_id}: finished"
        assert [get_run(engine, r).status for r in runs] == ["finished", "finished"]
        assert main(["train", "sweep", "resume", str(sweep_id)]) == 1
        assert "only cancelled or failed sweeps resume" in capsys.readouterr().err
    finally:
        for pid in set(jobs._children) - before:
            proc = jobs._children.pop(pid)
            if proc.poll() is None:
                os.kill(pid, signal.SIGKILL)
                proc.wait(10)
