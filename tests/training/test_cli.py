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
    fields = out.split()
    assert fields[:3] == [str(run_id), "queued", "0/40"]

    code, out, _ = run_cli(capsys, "train", "run", str(run_id))
    assert (code, out.strip()) == (0, f"run {run_id}: finished")
    code, out, _ = run_cli(capsys, "train", "list")
    assert out.split()[:3] == [str(run_id), "finished", "40/40"]

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
    queued, finished = out.splitlines()  # newest first
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
    assert code == 0 and "\x1b" not in out and out.count("\n") == 1  # one line, no raw escapes
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
        (["--algo", "dqn", "--env", "CartPole-v1", "--prompt-set", "nope"], "no prompt set"),
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
