"""Fixtures for training tests: a tiny real open_clip model and clean-up of worker processes."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from vlmrm_core.reward.spec import ModelRef, RewardSpec
from vlmrm_core.training import jobs
from vlmrm_core.training.config import TrainConfig

TINY_CLIP = {
    # A real CLIP (ViT image tower + transformer text tower), just very small: one layer each,
    # 32×32 input. Random weights: rewards are meaningless but flow through the real code path.
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 64, "patch_size": 16},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 1},
}


@pytest.fixture(scope="session")
def tiny_clip_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Path of an open_clip config JSON registering architecture ``vlmrm-tiny-test``."""
    path = tmp_path_factory.mktemp("models") / "vlmrm-tiny-test.json"
    path.write_text(json.dumps(TINY_CLIP))
    return path


@pytest.fixture
def tiny_run_config(tiny_clip_config: Path) -> TrainConfig:
    """A CartPole DQN run with the tiny CLIP reward that finishes in seconds."""
    return TrainConfig(
        env_id="CartPole-v1",
        algo="dqn",
        total_steps=200,
        n_envs=4,
        model=ModelRef("vlmrm-tiny-test", None),
        model_config=str(tiny_clip_config),
        reward=RewardSpec(
            ("pole vertically upright on top of the cart",), ("pole and cart",), alpha=0.5
        ),
        checkpoint_every=100,
        eval_every=200,
        eval_episodes=1,
        eval_steps=20,
        log_every=50,
        learning_starts=40,
        buffer_size=2_000,
        batch_size=32,
        # One env step per update: num_timesteps then lands exactly on multiples of n_envs.
        train_freq=1,
    )


@pytest.fixture
def workers(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Short heartbeats for crash detection; kill any worker this test started and left over."""
    monkeypatch.setenv("VLMRM_HEARTBEAT_S", "1")
    monkeypatch.setenv("VLMRM_MAX_RUNS", "1")
    before = set(jobs._children)
    yield
    for pid in set(jobs._children) - before:
        proc = jobs._children.pop(pid)
        if proc.poll() is None:
            os.kill(pid, signal.SIGKILL)
            proc.wait(10)
