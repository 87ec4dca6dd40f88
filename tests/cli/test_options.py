"""The model and reward options mean the same on every command; old spellings say the new one."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from vlmrm_core.cli.main import build_parser, main
from vlmrm_core.reward.spec import ModelRef, RewardSpec
from vlmrm_core.store import PromptSet, get_run, init_db, save_prompt_set

GOAL = "pole vertically upright on top of the cart"
TRAIN = ["--env", "CartPole-v1", "--algo", "dqn", "--steps", "1000"]
COMMANDS = {
    # command words, and the arguments it needs besides the reward (nothing runs far)
    "score": (["score"], ["--dataset", "none"]),
    "reward export": (["reward", "export"], ["--out", "never.json"]),
    "adapt": (["adapt"], ["--dataset", "none", "--out", "never.json"]),
    "train start": (["train", "start"], [*TRAIN, "--no-launch"]),
    "train sweep": (["train", "sweep"], TRAIN),
}
REWARD_OPTIONS = ("--goal", "--baseline", "--negative", "--kind", "--beta", "--tau")
MODEL_OPTIONS = ("--model", "--pretrained", "--aspect", "--resize", "--precision")


def command_parser(words: list[str]) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = build_parser()
    for word in words:
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = sub.choices[word]
    return parser


def option(parser: argparse.ArgumentParser, name: str) -> argparse.Action:
    return next(a for a in parser._actions if name in a.option_strings)


@pytest.mark.parametrize("name", [*REWARD_OPTIONS, *MODEL_OPTIONS, "--prompt-set", "--reward"])
def test_an_option_means_the_same_on_every_command(name: str) -> None:
    commands = {**COMMANDS, "embed": (["embed"], [])}
    if name not in MODEL_OPTIONS:
        commands.pop("embed")  # embed takes a model (or --reward FILE for one), no reward
    seen = {}
    for label, (words, _) in commands.items():
        action = option(command_parser(words), name)
        help_text = str(action.help).replace(" (repeatable: one grid point each)", "")
        seen[label] = (help_text, action.default or None, action.choices, action.type)
    assert len(set(seen.values())) == 1, seen


@pytest.mark.usefixtures("data_dir")
@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize(
    ("old", "new"),
    [
        (["--reward-kind", "contrastive"], "--kind contrastive"),
        (["--reward-tau", "0.1"], "--tau 0.1"),
        (["--reward-beta", "0.6"], "--beta 0.6"),
        (["--reward", "regularized"], "--kind regularized"),
        (["--reward", "contrastive"], "--kind contrastive"),
    ],
)
def test_every_old_spelling_fails_with_one_line_naming_the_new(
    capsys: pytest.CaptureFixture[str], command: str, old: list[str], new: str
) -> None:
    words, needed = COMMANDS[command]
    assert main([*words, *needed, "--goal", GOAL, *old]) == 1
    out, err = capsys.readouterr()
    assert out == "" and len(err.strip().splitlines()) == 1, err
    assert err.startswith("vlmrm: error: ") and new in err


def test_embed_refuses_a_kind_as_reward_file(data_dir: Path, capsys) -> None:
    assert main(["embed", "--dataset", "none", "--reward", "contrastive"]) == 1
    assert "--kind contrastive" in capsys.readouterr().err


@pytest.fixture
def upright(data_dir: Path) -> PromptSet:
    model = ModelRef("ViT-S-32-alt", None)
    return save_prompt_set(
        init_db(), PromptSet("upright", model, RewardSpec((GOAL,), ("pole and cart",), alpha=0.0))
    )


@pytest.mark.parametrize("command", ["reward export", "train start", "train sweep"])
def test_alpha_overrides_a_prompt_set_on_every_command(
    upright: PromptSet, tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    """Issue 21 item 3: `train start --prompt-set X --alpha A` used to ignore α."""
    from vlmrm_core.store.sweeps import sweep_run_ids

    words, needed = COMMANDS[command]
    out_file = tmp_path / "r.json"
    needed = ["--out", str(out_file)] if command == "reward export" else needed
    argv = [*words, *needed, "--prompt-set", "upright", "--alpha", "0.5"]
    if command == "train sweep":
        from tests.studio.test_train_page import busy_slot

        busy_slot()  # the trials stay queued
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "alpha 0.5 instead of prompt set 'upright''s 0" in err
    if command == "reward export":
        alphas = [json.loads(out_file.read_text())["reward"]["alpha"]]
    elif command == "train start":
        alphas = [get_run(init_db(), int(out)).config["reward"]["alpha"]]
    else:
        db = init_db()
        runs = sweep_run_ids(db, int(out.split()[-1]))
        alphas = [get_run(db, r).config["reward"]["alpha"] for r in runs]
    assert alphas and set(alphas) == {0.5}


def test_train_start_queues_a_run_with_a_reward_file(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reward = tmp_path / "r.json"
    export = ["reward", "export", "--model", "ViT-S-32-alt", "--pretrained", "random"]
    assert main([*export, "--goal", GOAL, "--kind", "contrastive", "--negative", "pole fallen",
                 "--beta", "0.7", "--out", str(reward)]) == 0  # fmt: skip
    capsys.readouterr()
    argv = ["train", "start", "--reward", str(reward), *TRAIN, "--no-launch"]
    assert main(argv) == 0
    out, err = capsys.readouterr()
    config = get_run(init_db(), int(out)).config
    saved = json.loads(reward.read_text())
    assert config["reward"] == saved["reward"]
    assert config["reward"]["kind"] == "contrastive" and config["reward"]["beta"] == 0.7
    model = config["model"]
    assert (model["architecture"], model["pretrained"]) == ("ViT-S-32-alt", None)
    assert model["precision"] == "auto"  # training precision is a runtime choice


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--alpha", "0.5"], "--alpha applies to regularized rewards"),
        (["--baseline", "x"], "already defines the prompts: drop --baseline"),
        (["--goal", "x"], "--reward and --goal both name the reward"),
        (["--model", "ViT-B-32"], "--model ViT-B-32 conflicts with reward file"),
        (["--prompt-set", "upright"], "--prompt-set and --reward both name the reward"),
    ],
)
def test_options_that_do_not_apply_to_a_reward_file_are_refused(
    upright: PromptSet, tmp_path: Path, capsys, extra: list[str], message: str
) -> None:
    reward = tmp_path / "r.json"
    export = ["reward", "export", "--model", "ViT-S-32-alt", "--pretrained", "random"]
    assert main([*export, "--goal", GOAL, "--kind", "contrastive", "--negative", "pole fallen",
                 "--out", str(reward)]) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["train", "start", "--reward", str(reward), *TRAIN, "--no-launch", *extra]) == 1
    out, err = capsys.readouterr()
    assert out == "" and len(err.strip().splitlines()) == 1 and message in err, err


def test_tau_is_the_reward_temperature_and_target_tau_the_polyak_coefficient(
    data_dir: Path, capsys
) -> None:
    argv = ["train", "start", *TRAIN, "--goal", GOAL, "--no-launch"]
    assert main([*argv, "--tau", "0.01"]) == 1
    err = capsys.readouterr().err
    assert "--tau applies to contrastive rewards" in err and "--target-tau" in err
    assert main([*argv, "--target-tau", "0.01"]) == 0
    config = get_run(init_db(), int(capsys.readouterr().out)).config
    assert config["tau"] == 0.01 and config["reward"]["tau"] is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--model", "ViT-S-23", "--pretrained", "random"],
            "unknown model architecture 'ViT-S-23'",
        ),
        (
            ["--model", "ViT-B-32", "--pretrained", "CHECKPOINT"],
            "does not fit architecture ViT-B-32",
        ),
    ],
)
def test_export_refuses_a_model_that_can_never_load(
    data_dir: Path, tiny_checkpoint: Path, tmp_path: Path, capsys, args: list[str], message: str
) -> None:
    """Issue 21 item 5."""
    out = tmp_path / "r.json"
    args = [str(tiny_checkpoint) if a == "CHECKPOINT" else a for a in args]
    assert main(["reward", "export", *args, "--goal", GOAL, "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and len(err) < 400, err
    assert "\\n" not in err and not out.exists()
    if "CHECKPOINT" in str(args) or "safetensors" in str(args):
        assert "tensor(s) differ in shape" in err and "--model ViT-S-32-alt" in err


def test_reward_list_separates_columns_with_tabs(upright: PromptSet, capsys) -> None:
    assert main(["reward", "list"]) == 0
    line = capsys.readouterr().out.strip()
    assert "\\t" not in line and line.split("\t")[:3] == [
        "upright", "ViT-S-32-alt · random weights", "regularized",
    ]  # fmt: skip


def test_adapt_json_writes_infinite_lambdas_as_null() -> None:
    from vlmrm_core.cli.adapt import json_numbers

    data = {"lambda": "inf", "fold_lambdas": [1.0, "inf"], "prior_scale": float("inf")}
    line = json.dumps(json_numbers(data), allow_nan=False)
    assert json.loads(line) == {"lambda": None, "fold_lambdas": [1.0, None], "prior_scale": None}


def test_embed_takes_the_model_of_a_reward_file_and_starts_no_cluster_for_nothing(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import numpy as np
    from PIL import Image

    image = tmp_path / "a.png"
    Image.fromarray(np.zeros((20, 30, 3), dtype=np.uint8)).save(image)
    reward = tmp_path / "r.json"
    export = ["reward", "export", "--model", "ViT-S-32-alt", "--pretrained", "random"]
    assert main([*export, "--resize", "paper", "--goal", GOAL, "--out", str(reward)]) == 0
    assert main(["embed", str(image), "--reward", str(reward)]) == 0
    assert capsys.readouterr().out.strip().endswith("embedded 1 new, 0 already cached")
    # Everything is cached now: an unreachable cluster is never contacted.
    argv = ["embed", str(image), "--reward", str(reward), "--engine", "ray"]
    assert main([*argv, "--address", "127.0.0.1:1"]) == 0
    assert capsys.readouterr().out.strip().endswith("embedded 0 new, 1 already cached")
