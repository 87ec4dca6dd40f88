"""A tiny random-init judge where the app finds it: a folder in the models dir it scans."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.judge._tiny_judges import write_idefics3

JUDGE_FOLDER = "tiny-smolvlm"
"""The judge folder's name in the models dir (the picker shows it with its model type)."""
JUDGE_LABEL = f"{JUDGE_FOLDER} (idefics3)"
"""How the Prompt Lab's judge picker lists it."""
QUESTION = "Is the pole upright? Answer yes or no."


@pytest.fixture(scope="session")
def tiny_judge_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Idefics3 (SmolVLM's architecture) judge written once per session."""
    return write_idefics3(tmp_path_factory.mktemp("studio-judges") / JUDGE_FOLDER)


@pytest.fixture
def judge_in_models_dir(data_dir: Path, tiny_judge_source: Path) -> Path:
    """The tiny judge copied into this test's models dir (``<data dir>/models``)."""
    target = data_dir / "models" / JUDGE_FOLDER
    shutil.copytree(tiny_judge_source, target)
    return target
