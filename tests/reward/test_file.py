"""Reward files: save, load in a fresh process, same rewards; clear errors for bad files."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vlmrm_core.clip.models import ModelError
from vlmrm_core.reward.file import (
    Provenance,
    RewardFileError,
    load_reward,
    read_reward_file,
    save_reward,
)
from vlmrm_core.reward.model import RewardModel
from vlmrm_core.reward.spec import RewardSpec

SPEC = RewardSpec(("pole vertically upright on top of the cart",), ("pole and cart",), alpha=0.5)


def frames(n=3, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, 48, 64, 3), dtype=np.uint8)


@pytest.fixture
def checkpoint_reward(tiny_checkpoint, tmp_path):
    # A private copy: tests move, change and delete it.
    own = tmp_path / "models" / tiny_checkpoint.name
    own.parent.mkdir()
    shutil.copy(tiny_checkpoint, own)
    rm = RewardModel.from_spec(SPEC, model="ViT-S-32-alt", pretrained=str(own), device="cpu")
    path = tmp_path / "reward.json"
    provenance = Provenance(dataset="demo", n_labels=40, epic_distance=0.3, epic_ci=(0.2, 0.4))
    save_reward(path, rm, provenance)
    return rm, path


@pytest.mark.slow
def test_a_saved_reward_loads_in_a_fresh_process_with_the_same_rewards(checkpoint_reward, tmp_path):
    rm, path = checkpoint_reward
    f = frames()
    np.save(tmp_path / "frames.npy", f)
    code = (
        "import sys, numpy as np, vlmrm_core\n"
        "rm = vlmrm_core.load_reward(sys.argv[1], device='cpu')\n"
        "np.save(sys.argv[2], rm(np.load(sys.argv[3])))\n"
    )
    out = tmp_path / "out.npy"
    subprocess.run(
        [sys.executable, "-c", code, str(path), str(out), str(tmp_path / "frames.npy")],
        check=True,
        capture_output=True,
    )
    np.testing.assert_allclose(np.load(out), rm(f), atol=1e-5)


def test_the_file_records_model_spec_and_provenance(checkpoint_reward, tiny_checkpoint):
    _, path = checkpoint_reward
    data = json.loads(path.read_text())
    assert data["format"] == "vlmrm-reward" and data["version"] == 1
    assert data["model"]["architecture"] == "ViT-S-32-alt"
    assert len(data["model"]["sha256"]) == 64
    assert data["reward"]["alpha"] == 0.5 and data["reward"]["kind"] == "regularized"
    content = read_reward_file(path)
    assert content.reward == SPEC
    assert content.provenance is not None and content.provenance.epic_ci == (0.2, 0.4)


def test_a_checkpoint_travelling_next_to_the_reward_file_is_found(checkpoint_reward, tmp_path):
    rm, path = checkpoint_reward
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    shutil.copy(path, moved / "reward.json")
    shutil.move(rm.clip.pretrained, moved / Path(rm.clip.pretrained).name)
    loaded = load_reward(moved / "reward.json", device="cpu")
    np.testing.assert_allclose(loaded(frames()), rm(frames()), atol=1e-5)


def test_a_changed_checkpoint_is_refused(checkpoint_reward):
    rm, path = checkpoint_reward
    with open(rm.clip.pretrained, "ab") as fh:  # same name, other content
        fh.write(b"\0")
    with pytest.raises(ModelError, match="SHA-256"):
        load_reward(path, device="cpu")


def test_a_missing_checkpoint_names_the_fix(checkpoint_reward):
    rm, path = checkpoint_reward
    Path(rm.clip.pretrained).unlink()
    with pytest.raises(ModelError, match="copy the checkpoint next to the reward file"):
        load_reward(path, device="cpu")


def test_random_init_rewards_round_trip(tiny_clip, tmp_path):
    rm = RewardModel(tiny_clip, SPEC)
    save_reward(tmp_path / "r.json", rm)
    loaded = load_reward(tmp_path / "r.json", device="cpu")
    assert loaded.model_ref == rm.model_ref
    np.testing.assert_allclose(loaded(frames()), rm(frames()), atol=1e-6)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ('{"hello": 1}', "not a VLM-RM reward file"),
        ('{"format": "vlmrm-reward", "version": 99}', "upgrade vlmrm-studio"),
        (
            '{"format": "vlmrm-reward", "version": 1, "model": {"architecture": "ViT-B-32"},'
            ' "reward": {"goal_prompts": []}}',
            "no goal prompt",
        ),
    ],
)
def test_bad_files_say_what_is_wrong(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(RewardFileError, match=message):
        read_reward_file(path)


def test_a_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(RewardFileError, match="not found"):
        load_reward(tmp_path / "nope.json")


def test_the_file_is_written_atomically(tiny_clip, tmp_path):
    target = tmp_path / "r.json"
    target.write_text("old")
    save_reward(target, RewardModel(tiny_clip, SPEC))
    assert json.loads(target.read_text())["format"] == "vlmrm-reward"
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]  # no temp file left behind
