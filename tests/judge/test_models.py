"""Loading, listing and downloading judges offline; the feature cache."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from vlmrm_core.clip.models import ModelError
from vlmrm_core.judge import (
    FeatureCache,
    JudgeReward,
    download_judge,
    list_cached_judges,
    load_judge,
)
from vlmrm_core.judge.features import ImageFeatures

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty Hugging Face cache, used by every hub function."""
    from huggingface_hub import constants

    cache = tmp_path / "hf-hub"
    cache.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    return cache


def put_in_hub_cache(cache: Path, hf_id: str, folder: Path) -> Path:
    """Lay ``folder`` out as ``huggingface_hub`` caches a downloaded snapshot."""
    repo = cache / f"models--{hf_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / COMMIT
    shutil.copytree(folder, snapshot)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)
    return snapshot


def test_a_missing_hub_judge_fails_within_seconds_naming_the_download_command(
    hub_cache, monkeypatch
):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)  # the probe itself must be quick
    start = time.monotonic()
    with pytest.raises(ModelError, match=r"`vlmrm models download nobody/no-such-judge`"):
        load_judge("nobody/no-such-judge", device="cpu")
    with pytest.raises(ModelError, match=r"vlmrm models download nobody/no-such-judge"):
        download_judge("nobody/no-such-judge")
    assert time.monotonic() - start < 15


def test_a_cached_hub_judge_loads_offline_and_is_listed(hub_cache, judge_folders, data_dir):
    put_in_hub_cache(hub_cache, "tiny/idefics3-judge", judge_folders["idefics3"])
    judge = load_judge("tiny/idefics3-judge", device="cpu")
    assert judge.identity == f"tiny/idefics3-judge@{COMMIT}"
    assert (judge.hf_id, judge.revision, judge.label) == (
        "tiny/idefics3-judge",
        COMMIT,
        "tiny/idefics3-judge",
    )
    assert judge.precision == "fp32" and judge.untrained

    models_dir = data_dir / "models"
    shutil.copytree(judge_folders["qwen2_5_vl"], models_dir / "my-qwen")
    (models_dir / "not-a-judge").mkdir()
    (models_dir / "not-a-judge" / "config.json").write_text('{"model_type": "bert"}')
    listed = [(c.name, c.kind, c.model_type) for c in list_cached_judges()]
    assert listed == [
        ("tiny/idefics3-judge", "hub-cache", "idefics3"),
        (str(models_dir / "my-qwen"), "folder", "qwen2_5_vl"),
    ]
    reward = JudgeReward(judge, "Is the pole upright ? Answer yes or no .")
    data = reward.to_dict()
    assert data["model"] == {
        "hf_id": "tiny/idefics3-judge",
        "revision": COMMIT,
        "path": None,
        "sha256": None,
        "precision": "fp32",
    }
    assert JudgeReward.from_dict(data, device="cpu").identity == reward.identity


def test_folders_that_are_not_judges_are_refused(tmp_path, judge_folders):
    with pytest.raises(ModelError, match="not a judge folder"):
        load_judge(tmp_path, device="cpu")
    with pytest.raises(ModelError, match="neither an existing model folder nor a hub id"):
        load_judge("no/such/folder", device="cpu")
    broken = tmp_path / "broken"
    shutil.copytree(judge_folders["idefics3"], broken)
    (broken / "model.safetensors").unlink()
    (broken / "tokenizer.json").unlink()
    with pytest.raises(ModelError, match="cannot load the judge"):
        load_judge(broken, device="cpu")
    with pytest.raises(ModelError, match="revision applies to hub ids"):
        load_judge(judge_folders["idefics3"], revision="main", device="cpu")


def test_local_folder_identity_follows_the_content(judge_folders, tmp_path):
    first = load_judge(judge_folders["idefics3"], device="cpu")
    copy = tmp_path / "idefics3"
    shutil.copytree(judge_folders["idefics3"], copy)
    assert load_judge(copy, device="cpu").identity == first.identity
    (copy / "generation_config.json").write_text("{}")
    assert load_judge(copy, device="cpu").identity != first.identity


def features(n_tokens: int, dtype: torch.dtype = torch.float32, deep: int = 0) -> ImageFeatures:
    tokens = torch.randn(n_tokens, 8).to(dtype)
    return ImageFeatures(
        tokens, (40, 60), tuple(torch.randn(n_tokens, 8).to(dtype) for _ in range(deep))
    )


def test_the_memory_cache_drops_the_least_recently_used_frames():
    one = features(4).nbytes
    cache = FeatureCache(max_bytes=3 * one)
    for name in "abc":
        cache.put("model", name, features(4))
    assert cache.get("model", "a") is not None  # a is now the most recent
    cache.put("model", "d", features(4))
    assert [cache.get("model", n) is not None for n in "abcd"] == [True, False, True, True]
    assert cache.get("other model", "a") is None


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_features_survive_the_disk_bit_for_bit(tmp_path, dtype):
    stored = features(5, dtype, deep=2)
    FeatureCache(directory=tmp_path).put("model|bf16", "hash", stored)
    loaded = FeatureCache(directory=tmp_path).get("model|bf16", "hash")
    assert loaded is not None and loaded.frame_shape == (40, 60)
    assert loaded.tokens.dtype == dtype and torch.equal(loaded.tokens, stored.tokens)
    assert len(loaded.deepstack) == 2 and torch.equal(loaded.deepstack[1], stored.deepstack[1])
    (next(tmp_path.rglob("*.npz"))).write_bytes(b"torn")
    assert FeatureCache(directory=tmp_path).get("model|bf16", "hash") is None
    assert np.isfinite(stored.tokens.float().numpy()).all()
