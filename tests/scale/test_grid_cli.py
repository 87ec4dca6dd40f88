"""``vlmrm train sweep`` with the local engine: the options it shares with ``train start``
reach every trial's config (no worker starts: a busy run holds the only slot)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.studio.test_train_page import busy_slot


def test_sweep_takes_the_run_options_of_train_start(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from vlmrm_core.cli.main import main
    from vlmrm_core.store import get_run, init_db
    from vlmrm_core.store.sweeps import get_sweep, sweep_run_ids

    monkeypatch.setenv("VLMRM_HEARTBEAT_S", "600")
    monkeypatch.setenv("VLMRM_MAX_RUNS", "1")
    db = init_db()
    busy_slot()
    argv = [
        "train", "sweep", "--env", "CartPole-v1", "--algo", "dqn", "--steps", "300",
        "--model", "ViT-S-32-alt", "--pretrained", "random", "--goal", "pole upright",
        "--reward-kind", "contrastive", "--negative", "pole fallen", "--reward-beta", "0.6",
        "--alpha", "0", "--alpha", "0.5", "--seeds", "2", "--seed", "7",
        "--net-arch", "32,32", "--ent-coef", "0.01", "--learning-rate", "0.001",
        "--n-envs", "2", "--episode-length", "50", "--eval-every", "0",
    ]  # fmt: skip
    assert main(argv) == 0
    sweep_id = int(capsys.readouterr().out.split()[-1])
    assert get_sweep(db, sweep_id).engine == "local"
    configs = [get_run(db, r).config for r in sweep_run_ids(db, sweep_id)]
    assert sorted((c["reward"]["alpha"], c["seed"]) for c in configs) == [
        (0.0, 7), (0.0, 8), (0.5, 7), (0.5, 8),
    ]  # fmt: skip
    for config in configs:
        assert config["net_arch"] == [32, 32] and config["ent_coef"] == 0.01
        assert config["learning_rate"] == 0.001 and config["n_envs"] == 2
        assert config["episode_length"] == 50 and config["total_steps"] == 300
        assert config["reward"]["kind"] == "contrastive"
        assert config["reward"]["negatives"] == ["pole fallen"]
        assert config["reward"]["beta"] == 0.6
        assert config["model"]["architecture"] == "ViT-S-32-alt"


@pytest.mark.parametrize(
    ("precision_args", "expected"), [((), "auto"), (("--precision", "bf16"), "bf16")]
)
def test_trials_from_fp32_prompt_sets_and_reward_files_take_the_chosen_precision(
    data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    precision_args: tuple[str, ...],
    expected: str,
) -> None:
    """Every trial scores in the sweep's precision (auto unless --precision is given), not the
    fp32 its prompt set or reward file was saved with; both stay as saved."""
    from vlmrm_core.cli.main import main
    from vlmrm_core.enums import Precision
    from vlmrm_core.reward.file import read_reward_file, write_reward_file
    from vlmrm_core.reward.spec import ModelRef, RewardSpec
    from vlmrm_core.store import PromptSet, get_prompt_set, get_run, init_db, save_prompt_set
    from vlmrm_core.store.sweeps import sweep_run_ids

    monkeypatch.setenv("VLMRM_HEARTBEAT_S", "600")
    monkeypatch.setenv("VLMRM_MAX_RUNS", "1")
    db = init_db()
    busy_slot()
    saved = ModelRef("ViT-S-32-alt", None, precision=Precision.FP32)
    save_prompt_set(db, PromptSet("upright", saved, RewardSpec(("pole upright",))))
    reward_file = data_dir / "balanced.json"
    write_reward_file(reward_file, saved, RewardSpec(("pole balanced",)))
    argv = [
        "train", "sweep", "--env", "CartPole-v1", "--algo", "dqn", "--steps", "300",
        "--prompt-set", "upright", "--reward", str(reward_file), "--eval-every", "0",
        *precision_args,
    ]  # fmt: skip
    assert main(argv) == 0
    sweep_id = int(capsys.readouterr().out.split()[-1])
    models = [get_run(db, r).config["model"] for r in sweep_run_ids(db, sweep_id)]
    assert len(models) == 2
    assert {(m["architecture"], m["precision"]) for m in models} == {("ViT-S-32-alt", expected)}
    assert get_prompt_set(db, "upright").model.precision is Precision.FP32
    assert read_reward_file(reward_file).model.precision is Precision.FP32


def test_start_and_sweep_share_one_definition_of_the_run_options() -> None:
    import argparse

    from vlmrm_core.cli.train import add_train_commands

    parser = argparse.ArgumentParser()
    train = add_train_commands(parser.add_subparsers())
    commands = train._subparsers._group_actions[0].choices  # type: ignore[union-attr]

    def options(name: str) -> set[str]:
        return {o for a in commands[name]._actions for o in a.option_strings}

    own = {"--prompt-set", "--alpha", "--reward", "--reward-kind", "--no-launch", "--seeds"}
    start, sweep = options("start") - own, options("sweep") - own
    assert start <= sweep  # every run option of `train start` is a sweep option too
    assert {"--engine", "--address", "--max-concurrent", "--wait"} <= sweep - start
