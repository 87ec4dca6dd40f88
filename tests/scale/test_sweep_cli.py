"""``vlmrm train sweep`` with the local engine: the options it shares with ``train start``
reach every trial's config (no worker starts: a busy run holds the only slot)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.app.test_train_page import busy_slot


def test_sweep_takes_the_run_options_of_train_start(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from vlmrm_core.cli import main
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


def test_start_and_sweep_share_one_definition_of_the_run_options() -> None:
    import argparse

    from vlmrm_core.training.cli import add_train_commands

    parser = argparse.ArgumentParser()
    train = add_train_commands(parser.add_subparsers())
    commands = train._subparsers._group_actions[0].choices  # type: ignore[union-attr]

    def options(name: str) -> set[str]:
        return {o for a in commands[name]._actions for o in a.option_strings}

    own = {"--prompt-set", "--alpha", "--reward", "--reward-kind", "--no-launch", "--seeds"}
    start, sweep = options("start") - own, options("sweep") - own
    assert start <= sweep  # every run option of `train start` is a sweep option too
    assert {"--engine", "--address", "--max-concurrent", "--wait"} <= sweep - start
