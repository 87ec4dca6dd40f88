"""TrainConfig: paper defaults, validation messages, JSON round trip, per-algorithm kwargs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vlmrm_core.enums import Aspect, Precision, Resize
from vlmrm_core.reward.spec import ModelRef, RewardSpec
from vlmrm_core.store import PromptSet
from vlmrm_core.training.config import (
    ConfigError,
    TrainConfig,
    paper_defaults,
    validate,
    with_prompt_set,
    with_reward,
)


def test_paper_defaults_cartpole_dqn() -> None:
    cfg = paper_defaults("CartPole-v1", "dqn")
    assert (cfg.episode_length, cfg.learning_starts, cfg.learning_rate, cfg.net_arch) == (
        200,
        75_000,
        2.3e-3,
        [256, 256],
    )
    assert cfg.reward == RewardSpec(
        ("pole vertically upright on top of the cart",), ("pole and cart",), alpha=0.0
    )


def test_paper_defaults_mountaincar_sac() -> None:
    cfg = paper_defaults("MountainCarContinuous-v0", "sac")
    assert (cfg.tau, cfg.gamma, cfg.learning_rate, cfg.ent_coef, cfg.net_arch) == (
        0.01,
        0.9999,
        1e-4,
        0.1,
        [64, 64],
    )
    assert cfg.reward is not None and "yellow flag" in cfg.reward.goal_prompts[0]


def test_paper_defaults_humanoid_sac() -> None:
    cfg = paper_defaults("Humanoid-v5", "sac")
    assert cfg.episode_length == 100
    assert (cfg.gamma, cfg.learning_rate, cfg.batch_size, cfg.tau) == (0.95, 6e-4, 512, 0.005)
    assert (cfg.learning_starts, cfg.train_freq, cfg.gradient_steps) == (50_000, 100, 100)
    assert cfg.env_kwargs == {"terminate_when_unhealthy": False}
    assert cfg.reward is not None and cfg.reward.alpha == 0.0
    # The paper's weights, in the run's precision (auto: bf16/fp16 on a GPU, fp32 on a CPU).
    assert cfg.model == ModelRef("ViT-bigG-14", "laion2b_s39b_b160k", precision=Precision.AUTO)


def test_paper_defaults_other_algorithm_keeps_sb3_defaults() -> None:
    cfg = paper_defaults("CartPole-v1", "ppo")
    assert cfg.learning_rate is None and cfg.reward is not None  # prompts yes, DQN values no


def test_json_round_trip() -> None:
    cfg = paper_defaults("MountainCarContinuous-v0", "sac").replace(total_steps=123)
    data = json.loads(json.dumps(cfg.to_dict()))
    assert TrainConfig.from_dict({**data, "_resume": True}) == cfg


def test_unknown_field_is_an_error() -> None:
    with pytest.raises(ConfigError, match="learning_rat"):
        TrainConfig.from_dict({"learning_rat": 1.0})


def test_algo_kwargs_only_applicable() -> None:
    cfg = TrainConfig(algo="ppo", learning_rate=1e-3, buffer_size=10, net_arch=[8, 8])
    kwargs, ignored = cfg.algo_kwargs()
    assert kwargs == {"learning_rate": 1e-3, "policy_kwargs": {"net_arch": [8, 8]}}
    assert ignored == ["buffer_size"]


def _ok(**changes: object) -> TrainConfig:
    return TrainConfig(
        reward=RewardSpec(("a pole",)), model=ModelRef("ViT-S-32-alt", None)
    ).replace(**changes)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"algo": "dqn", "env_id": "Pendulum-v1"}, "DQN needs a Discrete action space"),
        ({"algo": "sac", "env_id": "CartPole-v1"}, "SAC needs a continuous"),
        ({"algo": "sac", "env_id": "MountainCar-v0"}, "use MountainCarContinuous-v0"),
        ({"algo": "a2c"}, "algo must be one of"),
        ({"env_id": "NoSuchEnv-v9"}, "unknown gymnasium environment"),
        ({"env_id": "os:Env"}, "module:Env ids|of the form module:Env"),
        ({"reward": None}, "give a reward"),
        ({"total_steps": 0}, "total_steps must be at least 1"),
        ({"model": ModelRef("ViT-Nope", None)}, "unknown open_clip architecture"),
        ({"model": ModelRef("ViT-B-32", "nope")}, "not a pretrained tag"),
        ({"net_arch": []}, "net_arch"),
    ],
)
def test_validation_messages(changes: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        validate(_ok(**changes))


def test_valid_configs_pass() -> None:
    validate(_ok())
    car = RewardSpec(("a car at the flag",), ("car",), alpha=0.5)
    validate(_ok(algo="sac", env_id="MountainCarContinuous-v0", reward=car))
    validate(_ok(prompt_set="anything", reward=None), check_env=False)


def test_model_config_must_match_model_name(tmp_path: Path) -> None:
    path = tmp_path / "tiny.json"
    path.write_text("{}")
    with pytest.raises(ConfigError, match="model must be 'tiny'"):
        validate(_ok(model_config=str(path)), check_env=False)
    validate(_ok(model_config=str(path), model=ModelRef("tiny", None)), check_env=False)


# A prompt set saved in fp32 (as Prompt Lab sets on a CPU are), with non-default fitting.
SAVED_MODEL = ModelRef(
    "ViT-S-32-alt", None, aspect=Aspect.CENTER_CROP, precision=Precision.FP32, resize=Resize.PAPER
)
SAVED_REWARD = RewardSpec(("pole upright",), ("pole",), alpha=0.5)


def test_a_prompt_set_brings_its_model_but_the_run_keeps_its_precision() -> None:
    prompt_set = PromptSet("upright", SAVED_MODEL, SAVED_REWARD)
    config = with_prompt_set(TrainConfig(), prompt_set)
    assert config.model == SAVED_MODEL.replace(precision=Precision.AUTO)  # the default: auto
    assert (config.prompt_set, config.reward) == ("upright", SAVED_REWARD)
    chosen = TrainConfig(model=ModelRef(precision=Precision.BF16))  # `--precision bf16`
    assert with_prompt_set(chosen, prompt_set).model.precision is Precision.BF16
    assert prompt_set.model.precision is Precision.FP32  # the saved set is left as it is


def test_a_reward_file_brings_its_model_but_the_run_keeps_its_precision() -> None:
    config = with_reward(TrainConfig(), SAVED_MODEL, SAVED_REWARD)
    assert config.model == SAVED_MODEL.replace(precision=Precision.AUTO)
    assert config.reward == SAVED_REWARD and config.prompt_set is None
    chosen = TrainConfig(model=ModelRef(precision=Precision.FP16))
    assert with_reward(chosen, SAVED_MODEL, SAVED_REWARD).model.precision is Precision.FP16
