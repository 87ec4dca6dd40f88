"""Tiny random-init judges on disk, built once per test session (a few hundred kB each)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.judge._tiny_judges import write_idefics3, write_qwen2_5_vl

ARCHITECTURES = ("idefics3", "qwen2_5_vl")


@pytest.fixture(scope="session")
def judge_folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``architecture -> folder`` of tiny judges written with ``save_pretrained``: Idefics3
    (SmolVLM's architecture, a word-level tokenizer with an unknown token) and Qwen2.5-VL (a
    byte-level BPE tokenizer)."""
    root = tmp_path_factory.mktemp("judges")
    return {
        "idefics3": write_idefics3(root / "idefics3"),
        "qwen2_5_vl": write_qwen2_5_vl(root / "qwen2_5_vl"),
    }


@pytest.fixture(scope="session")
def loaded_judges(judge_folders: dict[str, Path]):
    """The tiny judges loaded on CPU through ``load_judge`` (shared: read-only use)."""
    from vlmrm_core.judge import load_judge

    return {arch: load_judge(folder, device="cpu") for arch, folder in judge_folders.items()}


@pytest.fixture(params=ARCHITECTURES)
def arch(request: pytest.FixtureRequest) -> str:
    """Each test with this fixture runs once per architecture."""
    return str(request.param)
