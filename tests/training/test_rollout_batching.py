"""``reward_batching='rollout'`` in training runs, and the ``auto`` reward precision of runs.

The wrapper and callback themselves are tested in ``tests/test_rollout_rewards.py``; here: the
config field, the CLI option, and one real run through the worker with a tiny CLIP reward.
"""

from __future__ import annotations

import argparse
import json
import pickle

import numpy as np
import pytest

from vlmrm_core.enums import Precision
from vlmrm_core.reward.spec import RewardSpec
from vlmrm_core.store import get_run, init_db, run_metrics
from vlmrm_core.training import jobs
from vlmrm_core.training.config import ConfigError, TrainConfig, validate
from vlmrm_core.training.jobs import start_run
from vlmrm_core.training.worker import run_worker

REWARD = RewardSpec(goal_prompts=("pole upright",))


@pytest.mark.parametrize("algo", ["dqn", "sac"])
def test_rollout_batching_is_valid_for_off_policy_algorithms(algo: str) -> None:
    validate(TrainConfig(algo=algo, reward=REWARD, reward_batching="rollout"), check_env=False)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"algo": "ppo", "reward_batching": "rollout"}, "only SAC and DQN"),
        ({"reward_batching": "window"}, "reward_batching must be one of step, rollout"),
    ],
)
def test_rollout_batching_validation(changes: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        validate(TrainConfig(reward=REWARD).replace(**changes), check_env=False)


def test_stored_configs_without_the_field_keep_step_batching() -> None:
    data = TrainConfig(reward=REWARD, reward_batching="rollout").to_dict()
    assert TrainConfig.from_dict(json.loads(json.dumps(data))).reward_batching == "rollout"
    del data["reward_batching"]
    assert TrainConfig.from_dict(data).reward_batching == "step"


def test_inline_rewards_default_to_auto_precision_and_stored_ones_keep_theirs() -> None:
    assert TrainConfig().model.precision is Precision.AUTO
    data = TrainConfig(reward=REWARD).to_dict()
    assert data["model"]["precision"] == "auto"
    data["model"]["precision"] = "fp32"  # a run stored before auto existed
    assert TrainConfig.from_dict(data).model.precision is Precision.FP32


def test_cli_options() -> None:
    from vlmrm_core.cli.train import add_train_commands, config_from_args

    parser = argparse.ArgumentParser()
    add_train_commands(parser.add_subparsers())
    argv = ["train", "start", "--env", "CartPole-v1", "--algo", "dqn", "--steps", "5"]
    argv += ["--goal", "pole upright", "--reward-batching", "rollout", "--precision", "bf16"]
    config = config_from_args(parser.parse_args(argv))
    assert config.reward_batching == "rollout" and config.model.precision is Precision.BF16
    config = config_from_args(parser.parse_args(argv[:-4]))
    assert config.reward_batching == "step" and config.model.precision is Precision.AUTO
    with pytest.raises(SystemExit):
        parser.parse_args([*argv[:-4], "--reward-batching", "episode"])


@pytest.mark.slow
@pytest.mark.usefixtures("workers")
def test_worker_trains_with_rollout_batching(tiny_run_config: TrainConfig) -> None:
    engine = init_db()
    config = tiny_run_config.replace(
        reward_batching="rollout",
        train_freq=5,  # windows of 20 env steps; checkpoints at the last step of a window
        total_steps=200,
        buffer_size=120,  # wraps
        eval_every=0,
    )
    run_id = start_run(config, launch=False)
    assert run_worker(run_id) == "finished", get_run(engine, run_id).error
    run = get_run(engine, run_id)
    assert run.steps_done == 200

    # Metric rows between windows, with CLIP rewards and episode returns (never NaN).
    metrics = run_metrics(engine, run_id)
    assert (metrics["step"] % 20 == 0).all()
    assert metrics["clip_reward_mean"].notna().all()
    curves = metrics.dropna(subset=["episode_clip_return"])
    assert len(curves) >= 2 and np.isfinite(curves["episode_clip_return"]).all()

    # The replay buffer saved with the checkpoints holds real rewards only.
    checkpoints = jobs.run_checkpoints(run)
    assert [c.steps for c in checkpoints] == [100, 200]
    replay_path = checkpoints[-1].replay_buffer_path
    assert replay_path is not None
    with open(replay_path, "rb") as f:
        buffer = pickle.load(f)
    assert buffer.full and not np.isnan(buffer.rewards).any()

    # The log names the precision the reward model resolved to (CPU: fp32).
    assert "(fp32 on cpu)" in jobs.log_path(run).read_text()
