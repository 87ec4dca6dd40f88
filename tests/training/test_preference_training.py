"""Training on a Bradley–Terry reward: a reward file fitted to comparisons is a reward like any
other for a real worker process."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vlmrm_core.reward.adaptation import adapted_spec, fit_preference
from vlmrm_core.reward.file import Provenance, read_reward_file, write_reward_file
from vlmrm_core.reward.spec import ModelRef
from vlmrm_core.store import get_run, init_db, run_metrics
from vlmrm_core.training.config import TrainConfig
from vlmrm_core.training.jobs import start_run

pytestmark = [pytest.mark.usefixtures("workers"), pytest.mark.slow]


def test_worker_trains_on_a_bradley_terry_reward_file(
    tiny_run_config: TrainConfig, tmp_path: Path
) -> None:
    from tests.training.test_jobs import wait_status

    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 32))  # the tiny model's embed_dim
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    pairs = np.array([(i, (i + 7) % 40) for i in range(40)])
    truth = x @ rng.normal(size=32)
    outcomes = (truth[pairs[:, 0]] > truth[pairs[:, 1]]).astype(float)
    assert tiny_run_config.reward is not None
    prior = rng.normal(size=32)
    fit = fit_preference(x, pairs, outcomes, prior, seed=0)
    model = ModelRef("vlmrm-tiny-test", None)
    path = tmp_path / "bt.json"
    write_reward_file(path, model, adapted_spec(tiny_run_config.reward, fit), Provenance())
    saved = read_reward_file(path)
    assert saved.reward.kind == "adapted"

    engine = init_db()
    config = tiny_run_config.replace(reward=saved.reward, model=saved.model)
    run_id = start_run(config, name="bradley-terry")
    status = wait_status(run_id, ("finished", "failed", "crashed"))
    run = get_run(engine, run_id)
    assert status == "finished", run.error
    assert run.config["reward"]["kind"] == "adapted"
    assert run.config["reward"]["weights"] == pytest.approx(list(saved.reward.weights))
    assert run_metrics(engine, run_id)["eval/clip_return"].notna().sum() == 1
