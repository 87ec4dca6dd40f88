"""Form text ⇄ config helpers of the Train page."""

from __future__ import annotations

import pytest

from vlmrm_core.training.config import ConfigError, paper_defaults
from vlmrm_studio.views.train.forms import (
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


def test_log_every_gives_live_curves_for_short_runs() -> None:
    from vlmrm_studio.views.train.forms import default_log_every

    assert default_log_every(2_000) == 100  # 20 points
    assert default_log_every(1_000_000) == 1_000  # capped
    assert default_log_every(5) == 1


def test_intervals_longer_than_the_run_are_flagged_with_scaled_values() -> None:
    from vlmrm_studio.views.train.forms import interval_warnings

    warnings = interval_warnings(
        2_000, learning_starts=75_000, checkpoint_every=10_000, eval_every=10_000, log_every=1_000
    )
    by_field = {w.field: w for w in warnings}
    assert set(by_field) == {"learning_starts", "checkpoint_every", "eval_every", "log_every"}
    assert all(w.suggested < 2_000 for w in warnings)
    assert "never learn" in by_field["learning_starts"].message
    assert by_field["log_every"].suggested == 100
    fine = interval_warnings(
        100_000, learning_starts=1_000, checkpoint_every=10_000, eval_every=0, log_every=1_000
    )
    assert fine == []


def test_speed_estimate_names_the_model_and_the_duration() -> None:
    from vlmrm_studio.views.train.forms import speed_estimate

    line = speed_estimate("ViT-B-32", 2_000, on_gpu=False)
    assert "0.5 steps/s" in line and "1h 06m" in line
    assert line.startswith("Rough guess")  # nothing measured: said to be a guess
    assert "ViT-bigG-14" in speed_estimate("ViT-bigG-14", 2_000, on_gpu=False)
    assert "GPU" in speed_estimate("ViT-B-32", 2_000, on_gpu=True)


def test_a_measured_speed_replaces_the_guess() -> None:
    from vlmrm_core.store.runs import MeasuredSpeed
    from vlmrm_studio.views.train.forms import speed_estimate

    measured = MeasuredSpeed(steps_per_s=4.0, n_runs=1)
    for on_gpu in (False, True):  # measured on this machine, GPU or not
        line = speed_estimate(
            "ViT-S-32-alt", 2_000, on_gpu=on_gpu, measured=measured, runs_of="CartPole-v1 / DQN"
        )
        assert line.startswith("≈4 steps/s, measured on the finished run of CartPole-v1 / DQN")
        assert "2,000 steps take about 8m 20s" in line and "guess" not in line


def test_finished_run_speed_is_the_median_of_finished_runs_alike(data_dir) -> None:
    from datetime import timedelta

    from vlmrm_core.store import create_run, init_db, update_run
    from vlmrm_core.store.runs import MeasuredSpeed, finished_run_speed
    from vlmrm_core.store.schema import utcnow

    db = init_db()

    def run(seconds: float, status: str = "finished", arch: str = "ViT-S-32-alt", **kw) -> None:
        config = {"model": {"architecture": arch}, **kw.pop("config", {})}
        row = create_run(
            db, name="r", env_id=kw.pop("env_id", "CartPole-v1"), algo=kw.pop("algo", "dqn"),
            config=config, total_steps=1000,
        )  # fmt: skip
        end = utcnow()
        start = end - timedelta(seconds=seconds)
        update_run(db, row.id, status=status, steps_done=1000, started_at=start, finished_at=end)

    alike = {"env_id": "CartPole-v1", "algo": "dqn", "architecture": "ViT-S-32-alt"}
    assert finished_run_speed(db, **alike) is None
    run(500)  # 2 steps/s
    assert finished_run_speed(db, **alike) == MeasuredSpeed(2.0, 1)
    run(250)  # 4 steps/s
    run(100)  # 10 steps/s
    # not alike: another model, environment or algorithm, a failed run, a resumed run (timed
    # from its first start, pause included)
    run(1, arch="ViT-B-32")
    run(1, env_id="Acrobot-v1")
    run(1, algo="ppo")
    run(1, status="failed")
    run(10_000, config={"_resume": True})
    assert finished_run_speed(db, **alike) == MeasuredSpeed(4.0, 3)
    assert finished_run_speed(db, **alike, newest=2) == MeasuredSpeed(7.0, 2)  # the newest two
