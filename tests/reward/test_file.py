"""Reward files: save, load in a fresh process, same rewards; clear errors for bad files.

Version-1 files in ``data/`` were written by the version-1 writer, with the rewards its loader gave
(``data/make_v1_fixtures.py`` says how); today's reader must give the same rewards.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.reward._brightness import BrightnessReward, brightness_from_file
from vlmrm_core.clip.models import ModelError
from vlmrm_core.reward.base import Reward
from vlmrm_core.reward.file import (
    REWARD_SOURCES,
    Provenance,
    RewardFileError,
    RewardFileSource,
    load_reward,
    read_reward_file,
    save_reward,
)
from vlmrm_core.reward.model import RewardModel
from vlmrm_core.reward.spec import RewardSpec

DATA = Path(__file__).parent / "data"
V1_FILES = ("v1_regularized.json", "v1_contrastive.json", "v1_adapted.json", "v1_random_init.json")

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
    assert data["format"] == "vlmrm-reward" and data["version"] == 2 and data["source"] == "clip"
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
    assert loaded.identity == rm.identity  # the identity names the weights, not their path


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
        ('{"format": "vlmrm-reward", "version": true}', "no valid format version"),
        (
            '{"format": "vlmrm-reward", "version": 1, "model": {"architecture": "ViT-B-32"},'
            ' "reward": {"goal_prompts": []}}',
            "no goal prompt",
        ),
        (
            '{"format": "vlmrm-reward", "version": 2, "source": "clip", "model": {},'
            ' "reward": {"goal_prompts": ["a"], "alpha": "high"}}',
            "α must be a number",
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


def test_a_missing_or_bad_file_fails_before_torch_is_imported(tmp_path):
    misspelled = tmp_path / "misspelled.json"
    misspelled.write_text(json.dumps({**v2(model=...), "modle": {}}))
    code = (
        "import sys, vlmrm_core\n"
        "for path in sys.argv[1:]:\n"
        "    try:\n"
        "        vlmrm_core.load_reward(path)\n"
        "    except vlmrm_core.reward.file.RewardFileError as exc:\n"
        "        print(type(exc).__name__, 'torch' in sys.modules, exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "nope.json"), str(misspelled)],
        check=True,
        capture_output=True,
        text=True,
    )
    lines = out.stdout.splitlines()
    assert len(lines) == 2, out.stdout + out.stderr
    assert lines[0].startswith("RewardFileError False ") and "not found" in lines[0]
    assert lines[1].startswith("RewardFileError False ") and 'unknown key "modle"' in lines[1]


# ----------------------------------------------------------------------- format version 1


@pytest.fixture
def v1_folder(tiny_checkpoint, tmp_path):
    """The version-1 files, with the tiny checkpoint next to them (they name it relatively)."""
    for name in V1_FILES:
        shutil.copy(DATA / name, tmp_path / name)
    (tmp_path / tiny_checkpoint.name).symlink_to(tiny_checkpoint)
    return tmp_path


@pytest.mark.parametrize("name", V1_FILES)
def test_version_1_files_load_with_the_rewards_the_version_1_loader_gave(v1_folder, name):
    expected = json.loads((DATA / "v1_rewards.json").read_text())
    assert json.loads((v1_folder / name).read_text())["version"] == 1
    reward = load_reward(v1_folder / name, device="cpu")
    assert isinstance(reward, RewardModel) and reward.source == "clip"
    pixels = np.load(DATA / "frames.npy")
    np.testing.assert_allclose(reward(pixels), expected[name], rtol=0, atol=1e-6)
    if reward.spec.kind == "contrastive":  # binary: the probabilities show any drift
        probability = reward.score_embeddings(reward.embed(pixels)).probability
        np.testing.assert_allclose(probability, expected[f"{name} probability"], atol=1e-6)


def test_a_version_1_file_reads_as_clip_content_and_writes_as_version_2(v1_folder):
    content = read_reward_file(v1_folder / "v1_regularized.json")
    assert content.version == 1
    assert content.reward.alpha == 0.5 and content.provenance is not None
    assert content.provenance.epic_ci == (0.2, 0.4)
    data = content.to_dict()
    assert (data["version"], data["source"]) == (2, "clip")
    rewritten = v1_folder / "v2.json"
    rewritten.write_text(json.dumps(data))
    assert read_reward_file(rewritten) == dataclasses.replace(content, version=2)


def test_an_adapted_reward_is_a_reward_model_with_its_own_identity(v1_folder):
    adapted = load_reward(v1_folder / "v1_adapted.json", device="cpu")
    assert isinstance(adapted, RewardModel) and adapted.spec.kind == "adapted"
    assert adapted.identity.startswith("clip/ViT-S-32-alt/sha256:129988356f4d4854/adapted:")
    assert adapted.description.startswith("CLIP adapted reward (")
    assert 'from goal "pole vertically upright on top of the cart"' in adapted.description
    assert adapted.description.endswith("· ViT-S-32-alt · ViT-S-32-alt-test.safetensors")
    # The same weights fitted from the same prompts, with another bias: another reward.
    shifted = RewardModel(adapted.clip, adapted.spec.replace(bias=0.5), aspect=adapted.aspect)
    assert shifted.identity != adapted.identity
    assert RewardModel(adapted.clip, adapted.spec, aspect=adapted.aspect).identity == (
        adapted.identity
    )


# ---------------------------------------------------------------- strict keys and sources


def v2(**changes):
    data = {
        "format": "vlmrm-reward",
        "version": 2,
        "source": "clip",
        "model": {"architecture": "ViT-S-32-alt", "pretrained": None},
        "reward": {"goal_prompts": ["a goal"]},
        "provenance": None,
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not ...}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {**v2(model=...), "modle": {}},
            r'unknown key "modle" \(did you mean "model"\?\): the keys of a clip reward file '
            r"are format, version, source, model, reward, provenance, created_at, vlmrm_version",
        ),
        ({**v2(reward=...), "rewrd": {}}, r'unknown key "rewrd" \(did you mean "reward"\?\)'),
        (v2(reward=...), r'has no "reward" key: a clip reward file needs format, version, source'),
        (v2(source=...), r'no "source" key: a version-2 reward file names its reward source'),
        (
            v2(source="vlm-judge"),
            r"reward source 'vlm-judge', which this vlmrm does not know: known sources are clip",
        ),
        (
            {**v2(source=...), "version": 1, "source": "clip"},
            r'unknown key "source": the keys of a clip reward file of version 1 are format, '
            "version, model",
        ),
    ],
    ids=["misspelled-model", "misspelled-reward", "missing", "no-source", "unknown-source", "v1"],
)
def test_unknown_or_missing_keys_and_sources_are_refused_in_one_line(tmp_path, data, message):
    path = tmp_path / "r.json"
    path.write_text(json.dumps(data))
    for read in (read_reward_file, load_reward):
        with pytest.raises(RewardFileError, match=message) as info:
            read(path)
        assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_a_new_source_is_a_kind_of_file_not_a_new_format(tmp_path, monkeypatch):
    monkeypatch.setitem(
        REWARD_SOURCES,
        "brightness",
        RewardFileSource("brightness", ("scale",), brightness_from_file),
    )
    path = tmp_path / "bright.json"
    path.write_text(
        json.dumps({"format": "vlmrm-reward", "version": 2, "source": "brightness", "scale": 2})
    )
    reward = load_reward(path)
    assert isinstance(reward, BrightnessReward) and isinstance(reward, Reward)
    white = np.full((1, 4, 4, 3), 255, np.uint8)
    assert reward(white).tolist() == [2.0]
    with pytest.raises(RewardFileError, match="'brightness' reward, not a CLIP one"):
        read_reward_file(path)  # what needs prompts and a CLIP model says so
    path.write_text(
        json.dumps({"format": "vlmrm-reward", "version": 2, "source": "brightness", "model": {}})
    )
    with pytest.raises(RewardFileError, match='unknown key "model".*are format, version, source, '):
        load_reward(path)
