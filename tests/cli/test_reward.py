"""`vlmrm reward export|import|show|list` and `vlmrm score --reward FILE`."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vlmrm_core.cli.main import main
from vlmrm_core.reward.spec import ModelRef, RewardSpec
from vlmrm_core.store import PromptSet, get_prompt_set, init_db, save_prompt_set

GOAL = "pole vertically upright on top of the cart"


@pytest.fixture
def checkpoint(data_dir: Path, tiny_checkpoint: Path) -> Path:
    path = data_dir / "models" / tiny_checkpoint.name
    path.parent.mkdir(exist_ok=True)
    shutil.copy(tiny_checkpoint, path)
    return path


def test_export_show_import_round_trip(data_dir, checkpoint, tmp_path, capsys):
    out = tmp_path / "upright.json"
    args = ["reward", "export", "--model", "ViT-S-32-alt", "--pretrained", str(checkpoint)]
    args += ["--goal", GOAL, "--baseline", "pole and cart", "--alpha", "0.5", "--out", str(out)]
    assert main(args) == 0
    data = json.loads(out.read_text())
    assert data["model"]["sha256"] and data["reward"]["alpha"] == 0.5

    assert main(["reward", "show", str(out)]) == 0
    shown = capsys.readouterr().out
    assert "ViT-S-32-alt" in shown and f"goal       {GOAL}" in shown and "alpha      0.5" in shown

    assert main(["reward", "import", str(out), "--name", "from file"]) == 0
    saved = get_prompt_set(init_db(), "from file")
    assert saved.reward == RewardSpec((GOAL,), ("pole and cart",), alpha=0.5)
    assert main(["reward", "import", str(out), "--name", "from file"]) == 1  # no silent overwrite
    assert "already exists" in capsys.readouterr().err


def test_export_a_saved_prompt_set(data_dir, tmp_path):
    save_prompt_set(
        init_db(),
        PromptSet("paper: cartpole", ModelRef("ViT-S-32-alt", None), RewardSpec((GOAL,))),
        builtin=True,
    )
    out = tmp_path / "paper.json"
    assert main(["reward", "export", "paper: cartpole", "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["model"]["pretrained"] is None and data["reward"]["goal_prompts"] == [GOAL]
    assert data["provenance"]["extra"]["prompt_set"] == "paper: cartpole"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "ViT-S-32-alt", "--goal", "x"], "(needs|no) --pretrained"),
        (["--model", "ViT-S-32-alt", "--pretrained", "random"], "at least one --goal"),
        (
            ["--model", "ViT-S-32-alt", "--pretrained", "random", "--goal", "x", "--alpha", "2"],
            r"\[0, 1\]",
        ),
    ],
)
def test_bad_export_options_say_what_to_change(data_dir, tmp_path, capsys, args, message):
    assert main(["reward", "export", *args, "--out", str(tmp_path / "r.json")]) == 1
    assert pytest.importorskip("re").search(message, capsys.readouterr().err)
    assert not (tmp_path / "r.json").exists()


def test_show_escapes_control_characters(tmp_path, capsys):
    path = tmp_path / "evil.json"
    path.write_text(
        json.dumps(
            {
                "format": "vlmrm-reward",
                "version": 1,
                "model": {"architecture": "ViT-S-32-alt", "pretrained": None},
                "reward": {"goal_prompts": ["\x1b[31mred\x1b[0m"]},
            }
        )
    )
    assert main(["reward", "show", str(path)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\\x1b[31mred" in out


@pytest.mark.slow
def test_score_with_a_reward_file_matches_prompts(data_dir, checkpoint, tmp_path):
    shots = tmp_path / "shots"
    shots.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)).save(shots / f"{i}.png")
    reward = tmp_path / "r.json"
    common = ["--model", "ViT-S-32-alt", "--pretrained", str(checkpoint), "--goal", GOAL]
    assert main(["reward", "export", *common, "--out", str(reward)]) == 0
    by_file, by_prompts = tmp_path / "a.csv", tmp_path / "b.csv"
    assert main(["score", str(shots), "--reward", str(reward), "--out", str(by_file)]) == 0
    assert main(["score", str(shots), *common, "--out", str(by_prompts)]) == 0

    def rewards(path: Path) -> dict[str, float]:
        with path.open() as fh:
            return {row["frame"]: float(row["reward"]) for row in csv.DictReader(fh)}

    a, b = rewards(by_file), rewards(by_prompts)
    assert a.keys() == b.keys() and len(a) == 3
    for name in a:
        assert a[name] == pytest.approx(b[name], abs=1e-6)
    # prompts and a reward file together are ambiguous
    assert main(["score", str(shots), "--reward", str(reward), "--goal", "x"]) == 1
