"""Training on an adapted reward: a saved adapted prompt set (a direction fitted to labels) is a
reward like any other for a real worker process, and its evaluation frames carry that reward."""

from __future__ import annotations

import numpy as np
import pytest

from vlmrm_core.reward.model import RewardModel
from vlmrm_core.reward.spec import ModelRef, RewardSpec
from vlmrm_core.store import (
    PromptSet,
    dataset_frames,
    get_run,
    init_db,
    load_pixels,
    run_metrics,
    save_prompt_set,
)
from vlmrm_core.training.config import TrainConfig
from vlmrm_core.training.jobs import start_run

pytestmark = [pytest.mark.usefixtures("workers"), pytest.mark.slow]


def test_worker_trains_on_an_adapted_prompt_set(tiny_run_config: TrainConfig) -> None:
    from tests.training.test_jobs import wait_status
    from vlmrm_core.training.config import register_model_config

    engine = init_db()
    weights = tuple(float(v) for v in np.random.default_rng(7).normal(size=32))  # embed_dim 32
    spec = RewardSpec(("pole upright",), kind="adapted", weights=weights, bias=0.25)
    model = ModelRef("vlmrm-tiny-test", None)
    save_prompt_set(engine, PromptSet("tiny adapted", model, spec, environment="CartPole"))
    config = tiny_run_config.replace(prompt_set="tiny adapted", reward=None)
    run_id = start_run(config, name="adapted")
    status = wait_status(run_id, ("finished", "failed", "crashed"))
    run = get_run(engine, run_id)
    assert status == "finished", run.error
    assert run.config["reward"]["kind"] == "adapted"
    assert run_metrics(engine, run_id)["eval/clip_return"].notna().sum() == 1

    # The evaluation frames were scored by the adapted reward: x·w + b of their embeddings.
    frames = [f for f in dataset_frames(engine, f"run-{run_id}-eval-200")][:6]
    register_model_config(str(config.model_config))
    reward_model = RewardModel.from_ref(model, spec, device="cpu")
    expected = reward_model.reward(np.stack([load_pixels(f.hash) for f in frames]))
    stored = np.array([f.extra["clip_reward"] for f in frames])
    assert stored == pytest.approx(expected, abs=1e-4)
