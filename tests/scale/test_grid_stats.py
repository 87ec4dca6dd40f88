"""Sweep summaries: seeds averaged per arm on the union of steps, arms ranked by final return."""

from __future__ import annotations

import pandas as pd
import pytest

from vlmrm_core.training.grid_stats import GT_RETURN, TrialInfo, grouped_curves, ranking


def frame(points: list[tuple[int, float | None]]) -> pd.DataFrame:
    return pd.DataFrame({"step": [s for s, _ in points], GT_RETURN: [v for _, v in points]})


TRIALS = [
    TrialInfo(1, "A", 0.0, 0),
    TrialInfo(2, "A", 0.0, 1),
    TrialInfo(3, "B", 0.5, 0),
]
METRICS = {
    1: frame([(100, 10.0), (200, 20.0)]),
    2: frame([(150, 30.0), (200, None), (250, 40.0)]),
    3: frame([(100, 5.0)]),
}


def test_grouped_curves_carry_forward_and_average_seeds() -> None:
    curves = grouped_curves(TRIALS, METRICS, GT_RETURN)
    a = curves[curves["arm"] == "A α=0"].set_index("step")
    assert list(a.index) == [100, 150, 200, 250]
    assert a.loc[100, "mean"] == 10.0 and a.loc[100, "n"] == 1  # seed 1 had not logged yet
    assert a.loc[150, "mean"] == pytest.approx(20.0)  # (10 carried forward + 30) / 2
    assert a.loc[250, "mean"] == pytest.approx(30.0) and a.loc[250, "std"] == pytest.approx(10.0)
    b = curves[curves["arm"] == "B α=0.5"]
    assert list(b["mean"]) == [5.0] and list(b["std"]) == [0.0]
    assert grouped_curves(TRIALS, {}, GT_RETURN).empty


def test_ranking_by_final_ground_truth_return() -> None:
    table = ranking(TRIALS, METRICS)
    assert list(table["arm"]) == ["A α=0", "B α=0.5"]
    assert table.loc[0, "final_mean"] == pytest.approx(30.0)  # finals 20 and 40
    assert list(table["seeds"]) == [2, 1]


# --------------------------------------------------------------------------- EPIC vs return


def test_ranking_with_epic_keeps_the_order_and_correlates() -> None:
    from vlmrm_core.training.grid_stats import epic_return_correlation, ranking_with_epic

    trials = [TrialInfo(i, g, 0.0, 0) for i, g in enumerate("ABCD", start=1)]
    metrics = {
        i: frame([(100, float(v))]) for i, v in zip(range(1, 5), (40, 30, 20, 10), strict=True)
    }
    table = ranking_with_epic(ranking(trials, metrics), {"A α=0": 0.2, "B α=0": 0.3, "C α=0": 0.5})
    assert list(table["arm"]) == ["A α=0", "B α=0", "C α=0", "D α=0"]
    assert list(table["epic"]) == [0.2, 0.3, 0.5, None]
    assert epic_return_correlation(table) == pytest.approx(-1.0)  # lower EPIC, higher return
    assert epic_return_correlation(table.iloc[:2]) is None


def test_arm_rewards_read_the_trials_configs() -> None:
    from types import SimpleNamespace

    from vlmrm_core.reward.spec import ModelRef, RewardSpec
    from vlmrm_core.training.grid_stats import arm_rewards, trial_infos

    spec = RewardSpec(("a pole upright",), ("a pole",), alpha=0.5)
    good = {"_group": "set", "seed": 0, "model": ModelRef("ViT-S-32-alt").to_dict()}
    runs = [
        SimpleNamespace(id=1, config={**good, "reward": spec.to_dict()}),
        SimpleNamespace(id=2, config={**good, "seed": 1, "reward": spec.to_dict()}),
        SimpleNamespace(id=3, config={"_group": "old", "reward": {"alpha": 0.5}}),  # incomplete
    ]
    rewards = arm_rewards(trial_infos(runs), runs)
    assert list(rewards) == ["set α=0.5"]
    assert rewards["set α=0.5"].reward == spec
    assert rewards["set α=0.5"].model.architecture == "ViT-S-32-alt"


def test_matching_datasets_put_the_env_family_first() -> None:
    from vlmrm_core.training.grid_stats import matching_datasets

    names = ["mc-labels", "demo-cartpole", "CartPole_v1 eval", "other"]
    assert matching_datasets("CartPole-v1", names) == [
        "demo-cartpole",
        "CartPole_v1 eval",
        "mc-labels",
        "other",
    ]
    assert matching_datasets("Humanoid-v5", names) == names
