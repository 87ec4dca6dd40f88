"""``precision="auto"``: bf16 on a CUDA GPU with native bf16, fp16 on other GPUs, fp32 on CPU.

GPUs are simulated by monkeypatching ``torch.cuda``; only :func:`resolve_precision` is run
against them (no model is moved to a fake device). On the CPU, loading with ``auto`` is loading
with ``fp32``, and what a loaded model records (``ClipModel.precision``, its reward's
``model_ref``, a reward file saved from it) is the resolved precision.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from vlmrm_core.clip.models import ModelError, load_model, resolve_precision
from vlmrm_core.enums import Precision
from vlmrm_core.reward.file import load_reward, read_reward_file, save_reward, write_reward_file
from vlmrm_core.reward.model import RewardModel
from vlmrm_core.reward.spec import ModelRef, RewardSpec

TINY_MODEL = "ViT-S-32-alt"  # same as conftest.TINY_MODEL
SPEC = RewardSpec(goal_prompts=("pole vertically upright",), baseline_prompts=("pole",), alpha=0.5)


def fake_gpu(monkeypatch: pytest.MonkeyPatch, *, native_bf16: bool) -> None:
    """A CUDA device; with native bf16 (Ampere and later) or emulated only (older GPUs)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)

    def is_bf16_supported(including_emulation: bool = True) -> bool:
        return native_bf16 or including_emulation  # torch emulates bf16 on any CUDA GPU

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", is_bf16_supported)


@pytest.mark.parametrize(
    ("native_bf16", "expected"), [(True, Precision.BF16), (False, Precision.FP16)]
)
def test_auto_on_cuda(monkeypatch: pytest.MonkeyPatch, native_bf16: bool, expected: str) -> None:
    fake_gpu(monkeypatch, native_bf16=native_bf16)
    assert resolve_precision("auto", "cuda") is expected
    assert resolve_precision(Precision.AUTO, torch.device("cuda:0")) is expected
    assert resolve_precision("auto") is expected  # no device: CUDA, as it is available
    assert resolve_precision("auto", "cpu") is Precision.FP32  # a CPU model on a GPU machine


def test_auto_with_a_torch_without_including_emulation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    assert resolve_precision("auto", "cuda") is Precision.FP16


def test_auto_on_cpu_is_fp32_and_explicit_precisions_are_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_precision("auto") is Precision.FP32
    assert resolve_precision("auto", "cpu") is Precision.FP32
    fake_gpu(monkeypatch, native_bf16=True)
    for value in ("fp32", "bf16", "fp16"):
        for device in ("cpu", "cuda"):
            assert resolve_precision(value, device) is Precision(value)
    with pytest.raises(ModelError, match="auto"):
        resolve_precision("fp8", "cpu")


def test_loading_with_auto_on_cpu_is_loading_in_fp32(tiny_clip, tmp_path: Path) -> None:
    clip = load_model(TINY_MODEL, None, device="cpu", precision="auto")
    assert clip.precision == "fp32" and clip.dtype == torch.float32
    assert next(clip.model.parameters()).dtype == torch.float32
    frames = np.random.default_rng(0).integers(0, 256, (3, 40, 60, 3), dtype=np.uint8)
    auto_reward, fp32_reward = RewardModel(clip, SPEC), RewardModel(tiny_clip, SPEC)
    np.testing.assert_array_equal(auto_reward(frames), fp32_reward(frames))

    # What is recorded after loading is the resolved precision.
    assert auto_reward.model_ref.precision is Precision.FP32
    saved = save_reward(tmp_path / "saved.json", auto_reward)
    assert saved.model.precision is Precision.FP32
    assert json.loads((tmp_path / "saved.json").read_text())["model"]["precision"] == "fp32"


def test_reward_files_with_auto_and_with_older_precisions(tmp_path: Path) -> None:
    for value in ("fp32", "bf16", "auto"):
        ref = ModelRef(TINY_MODEL, None, precision=value)
        write_reward_file(tmp_path / f"{value}.json", ref, SPEC)
        assert read_reward_file(tmp_path / f"{value}.json").model.precision is Precision(value)
    # A file asking for auto loads on this CPU in fp32.
    reward_model = load_reward(tmp_path / "auto.json", device="cpu")
    assert reward_model.clip.precision == "fp32"
    assert reward_model.model_ref.precision is Precision.FP32
