"""Training on rewards that look at more than one frame: a windowed reward file, and progress
shaping as a run option, through ``vlmrm train start`` and a real worker."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from vlmrm_core.cli.main import main
from vlmrm_core.reward.model import RewardModel
from vlmrm_core.reward.shaping import ProgressShaping
from vlmrm_core.reward.spec import ModelRef, RewardSpec
from vlmrm_core.training.config import ConfigError, TrainConfig
from vlmrm_core.training.envs import discount_factor, make_run_vec_env, training_reward


def windowed_reward_file(tmp_path: Path, tiny_clip_config: Path, window: int = 3) -> Path:
    from vlmrm_core.reward.file import save_reward
    from vlmrm_core.training.config import register_model_config

    register_model_config(str(tiny_clip_config))
    spec = RewardSpec(("pole upright",), ("pole and cart",), alpha=0.5, window=window)
    model = RewardModel.from_ref(ModelRef("vlmrm-tiny-test", None), spec, device="cpu")
    path = tmp_path / "windowed.json"
    save_reward(path, model)
    assert json.loads(path.read_text())["source"] == "clip"
    return path


def test_progress_shaping_is_a_config_field_with_the_algorithms_gamma() -> None:
    config = TrainConfig(algo="dqn", progress_shaping=True)
    assert TrainConfig.from_dict(config.to_dict()).progress_shaping is True
    assert TrainConfig.from_dict({"env_id": "CartPole-v1"}).progress_shaping is False
    assert discount_factor(config) == 0.99  # stable-baselines3's DQN default
    assert discount_factor(config.replace(gamma=0.9)) == 0.9


def test_training_reward_wraps_the_reward_only_with_progress_shaping(
    tiny_run_config: TrainConfig,
) -> None:
    from tests.reward._brightness import BrightnessReward

    reward = BrightnessReward()
    assert training_reward(tiny_run_config, reward) is reward
    shaped = training_reward(tiny_run_config.replace(progress_shaping=True, gamma=0.8), reward)
    assert isinstance(shaped, ProgressShaping) and shaped.base is reward and shaped.gamma == 0.8
    with pytest.raises(ConfigError, match="progress shaping needs a Reward"):
        training_reward(tiny_run_config.replace(progress_shaping=True), lambda f: f[:, 0, 0, 0])
    venv = make_run_vec_env(tiny_run_config.replace(progress_shaping=True, n_envs=1), reward)
    try:
        venv.reset()
        first = float(venv.step(np.zeros(1, dtype=np.int64))[1][0])
        potential = float(reward(venv.get_images()[0])[0])
        assert first == pytest.approx(0.99 * potential, abs=1e-6)  # γ·R(s_1) − 0
    finally:
        venv.close()


@pytest.mark.usefixtures("workers")
@pytest.mark.slow
def test_a_windowed_reward_file_trains_through_train_start(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, tiny_clip_config: Path
) -> None:
    from vlmrm_core.store import get_run, init_db, run_metrics
    from vlmrm_core.training.jobs import log_path

    path = windowed_reward_file(tmp_path, tiny_clip_config)
    argv = ["train", "start", "--env", "CartPole-v1", "--algo", "dqn", "--steps", "40"]
    argv += ["--reward", str(path), "--model-config", str(tiny_clip_config)]
    argv += ["--progress-shaping", "--gamma", "0.95", "--n-envs", "2", "--eval-every", "0"]
    argv += ["--checkpoint-every", "20", "--learning-starts", "10", "--buffer-size", "100"]
    argv += ["--net-arch", "16", "--log-every", "10", "--no-launch"]
    assert main(argv) == 0
    run_id = int(capsys.readouterr().out.strip())
    engine = init_db()
    config = TrainConfig.from_dict(get_run(engine, run_id).config)
    assert config.reward is not None and config.reward.window == 3
    assert config.progress_shaping is True and config.gamma == 0.95

    assert main(["train", "run", str(run_id)]) == 0
    assert capsys.readouterr().out.strip() == f"run {run_id}: finished"
    metrics = run_metrics(engine, run_id)
    assert metrics["clip_reward_mean"].notna().any()
    # The worker says what it trains on: the shaped windowed reward.
    log = log_path(get_run(engine, run_id)).read_text()
    assert "training on: progress shaping" in log and "mean of the last 3 frames" in log
