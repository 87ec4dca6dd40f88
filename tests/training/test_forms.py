"""Form text ⇄ config helpers of the Train page."""

from __future__ import annotations

import pytest

from vlmrm_core.training.config import ConfigError, paper_defaults
from vlmrm_core.training.forms import (
    format_duration,
    hyperparameter_texts,
    parse_hyperparameters,
    prompt_lines,
)


def test_hyperparameters_round_trip() -> None:
    config = paper_defaults("MountainCarContinuous-v0", "sac")
    texts = hyperparameter_texts(config)
    assert texts["net_arch"] == "64,64" and texts["batch_size"] == ""
    assert config.replace(**parse_hyperparameters(texts)) == config


def test_parse_values_and_errors() -> None:
    values = parse_hyperparameters(
        {"ent_coef": "auto_0.1", "train_freq": "100", "learning_rate": "6e-4", "gamma": " "}
    )
    assert values == {
        "ent_coef": "auto_0.1",
        "train_freq": 100,
        "learning_rate": 6e-4,
        "gamma": None,
    }
    with pytest.raises(ConfigError, match="batch_size"):
        parse_hyperparameters({"batch_size": "many"})


def test_prompt_lines_and_durations() -> None:
    assert prompt_lines(" a \n\n b\n") == ["a", "b"]
    assert [format_duration(s) for s in (None, 5, 185, 3725)] == ["–", "5s", "3m 05s", "1h 02m"]
