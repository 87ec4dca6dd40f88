"""``vlmrm train …`` through the real ``vlmrm`` entry point."""

from __future__ import annotations

from pathlib import Path

import pytest

from vlmrm_core.cli.main import main


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.usefixtures("workers")
def test_start_list_run_resume(capsys: pytest.CaptureFixture[str], tiny_clip_config: Path) -> None:
    code, out, _ = run_cli(
        capsys,
        "train",
        "start",
        "--env",
        "CartPole-v1",
        "--algo",
        "dqn",
        "--steps",
        "40",
        "--model",
        "vlmrm-tiny-test",
        "--model-config",
        str(tiny_clip_config),
        "--pretrained",
        "random",
        "--goal",
        "pole upright",
        "--baseline",
        "pole and cart",
        "--alpha",
        "0.5",
        "--n-envs",
        "2",
        "--eval-every",
        "0",
        "--checkpoint-every",
        "20",
        "--learning-starts",
        "10",
        "--buffer-size",
        "100",
        "--net-arch",
        "16,16",
        "--no-launch",
    )
    assert code == 0
    run_id = int(out.strip())  # only the id on stdout, for scripts

    code, out, _ = run_cli(capsys, "train", "list")
    assert code == 0
    header, row = out.splitlines()
    assert header.split()[:3] == ["ID", "STATUS", "STEPS/TOTAL"]
    assert row.split()[:3] == [str(run_id), "queued", "0/40"]

    code, out, _ = run_cli(capsys, "train", "run", str(run_id))
    assert (code, out.strip()) == (0, f"run {run_id}: finished")
    code, out, _ = run_cli(capsys, "train", "list")
    assert out.splitlines()[1].split()[:3] == [str(run_id), "finished", "40/40"]

    code, _, err = run_cli(capsys, "train", "resume", str(run_id))
    assert code == 1
    assert err.strip() == (
        f"vlmrm: error: run {run_id} is finished; only cancelled, crashed, failed runs can be resumed"
    )
    code, _, err = run_cli(capsys, "train", "run", str(run_id))
    assert code == 1 and "nothing to run" in err and len(err.strip().splitlines()) == 1


@pytest.mark.usefixtures("data_dir")
def test_list_ends_with_the_host_of_each_run(capsys: pytest.CaptureFixture[str]) -> None:
    from vlmrm_core.store import create_run, init_db, update_run

    engine = init_db()
    elsewhere = create_run(
        engine, name="far", env_id="CartPole-v1", algo="dqn", config={}, total_steps=9
    )
    update_run(engine, elsewhere.id, status="finished", host="node-b/0123abcd\x1b[2J")
    create_run(engine, name="near", env_id="CartPole-v1", algo="dqn", config={}, total_steps=9)
    code, out, _ = run_cli(capsys, "train", "list")
    _, queued, finished = out.splitlines()  # a header, then newest first
    assert code == 0 and "  on " not in queued
    assert finished.endswith("  far  on node-b/0123abcd\\x1b[2J")  # escaped, not obeyed


@pytest.mark.usefixtures("data_dir")
def test_list_shows_user_strings_escaped(capsys: pytest.CaptureFixture[str]) -> None:
    from vlmrm_core.store import create_run, init_db

    create_run(
        init_db(),
        name="\x1b[31mred\x1b[0m\nrun",
        env_id="CartPole-v1\x1b[2J",
        algo="dqn",
        config={},
        total_steps=9,
    )
    code, out, _ = run_cli(capsys, "train", "list")
    assert code == 0 and "\x1b" not in out and out.count("\n") == 2  # header + one line
    assert out.rstrip("\n").endswith("CartPole-v1\\x1b[2J dqn  \\x1b[31mred\\x1b[0m\\nrun")


@pytest.mark.usefixtures("data_dir")
@pytest.mark.parametrize(
    ("precision_args", "expected"), [((), "auto"), (("--precision", "bf16"), "bf16")]
)
def test_a_run_from_an_fp32_prompt_set_takes_the_chosen_precision(
    capsys: pytest.CaptureFixture[str], precision_args: tuple[str, ...], expected: str
) -> None:
    """Training precision is a runtime choice: auto unless --precision is given, whatever the
    prompt set was saved with (the set itself is left as it is)."""
    from vlmrm_core.enums import Precision
    from vlmrm_core.reward.spec import ModelRef, RewardSpec
    from vlmrm_core.store import PromptSet, get_prompt_set, get_run, init_db, save_prompt_set

    engine = init_db()
    saved = ModelRef("ViT-S-32-alt", None, precision=Precision.FP32)
    save_prompt_set(engine, PromptSet("upright", saved, RewardSpec(("pole upright",))))
    argv = ["train", "start", "--env", "CartPole-v1", "--algo", "dqn", "--steps", "10"]
    code, out, err = run_cli(
        capsys, *argv, "--prompt-set", "upright", *precision_args, "--no-launch"
    )
    assert code == 0, err
    model = get_run(engine, int(out)).config["model"]
    assert (model["architecture"], model["precision"]) == ("ViT-S-32-alt", expected)
    assert get_prompt_set(engine, "upright").model.precision is Precision.FP32


@pytest.mark.usefixtures("data_dir")
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--algo", "sac", "--env", "CartPole-v1"], "SAC needs a continuous"),
        (["--algo", "dqn", "--env", "CartPole-v1", "--prompt-set", "nope"], "both name the reward"),
        (["--algo", "dqn", "--env", "CartPole-v1", "--negative", "n"], "add --kind contrastive"),
        (["--algo", "dqn", "--env", "CartPole-v1", "--model", "RN50"], "needs --pretrained"),
        (["--algo", "dqn", "--env", "CartPole-v1", "--net-arch", "a,b"], "--net-arch"),
    ],
)
def test_start_errors_are_one_line(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, out, err = run_cli(capsys, "train", "start", "--steps", "10", "--goal", "g", *argv)
    assert code == 1 and out == ""
    assert len(err.strip().splitlines()) == 1 and message in err


@pytest.mark.usefixtures("data_dir")
def test_unknown_run_ids(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("cancel", "resume", "run"):
        code, _, err = run_cli(capsys, "train", command, "99")
        assert code == 1 and err.strip() == "vlmrm: error: no training run with id 99"


def test_paper_defaults_flag() -> None:
    import argparse

    from vlmrm_core.cli.train import add_train_commands, config_from_args

    parser = argparse.ArgumentParser()
    add_train_commands(parser.add_subparsers())
    args = parser.parse_args(
        [
            "train",
            "start",
            "--env",
            "CartPole-v1",
            "--algo",
            "dqn",
            "--steps",
            "5",
            "--paper-defaults",
            "--lr",
            "0.01",
        ]
    )
    config = config_from_args(args)
    assert config.learning_starts == 75_000 and config.learning_rate == 0.01
    assert config.reward is not None
    assert config.reward.goal_prompts == ("pole vertically upright on top of the cart",)


@pytest.mark.usefixtures("data_dir")
def test_ppo_rollout_is_fitted_to_short_runs(capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 21 item 4: `--algo ppo --steps 512 --n-envs 4` trained 2048 × 4 = 8,192 steps."""
    from vlmrm_core.store import get_run, init_db

    argv = ["train", "start", "--env", "CartPole-v1", "--algo", "ppo", "--steps", "512"]
    argv += ["--n-envs", "4", "--goal", "pole upright", "--no-launch"]
    code, out, err = run_cli(capsys, *argv)
    assert code == 0, err
    config = get_run(init_db(), int(out)).config
    assert config["n_steps"] * config["n_envs"] <= 512 and config["n_steps"] == 128
    assert (128 * 4) % config["batch_size"] == 0
    assert "PPO: n_steps 128" in err and "8192" in err
    code, out, err = run_cli(capsys, *argv, "--n-steps", "2048")
    assert code == 1 and out == "" and len(err.strip().splitlines()) == 1
    assert "n_steps ≤ 128 (--n-steps)" in err


@pytest.mark.parametrize(("steps", "n_envs", "batch"), [(512, 4, None), (100, 3, 64), (50, 1, 20)])
def test_fitted_ppo_rollouts_fit_the_run_and_split_into_whole_batches(
    steps: int, n_envs: int, batch: int | None
) -> None:
    from vlmrm_core.training.config import TrainConfig, fit_ppo_rollout

    config = TrainConfig(algo="ppo", total_steps=steps, n_envs=n_envs, batch_size=batch)
    fitted, note = fit_ppo_rollout(config)
    rollout = fitted.n_steps * fitted.n_envs
    assert note and rollout <= steps and rollout % fitted.batch_size == 0


def test_train_start_leaves_no_still_running_warning(
    data_dir: Path, tiny_clip_config: Path, tmp_path: Path
) -> None:
    """A launched worker outlives `vlmrm train start` on purpose: no ResourceWarning at exit."""
    import contextlib
    import os
    import signal
    import subprocess
    import sys

    from vlmrm_core.store import get_run, init_db

    argv = ["train", "start", "--env", "CartPole-v1", "--algo", "dqn", "--steps", "40"]
    argv += ["--model", "vlmrm-tiny-test", "--model-config", str(tiny_clip_config)]
    argv += ["--pretrained", "random", "--goal", "pole upright", "--eval-every", "0"]
    done = subprocess.run(
        [sys.executable, "-W", "always::ResourceWarning", "-m", "vlmrm_core.cli.main", *argv],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "VLMRM_MAX_RUNS": "1"},
    )
    assert done.returncode == 0, done.stderr
    run = get_run(init_db(), int(done.stdout))
    if run.pid:
        with contextlib.suppress(ProcessLookupError):
            os.kill(run.pid, signal.SIGKILL)
    assert "still running" not in done.stderr and "ResourceWarning" not in done.stderr
