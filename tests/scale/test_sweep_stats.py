"""Sweep summaries: seeds averaged per arm on the union of steps, arms ranked by final return."""

from __future__ import annotations

import pandas as pd
import pytest

from vlmrm_core.scale.sweep_stats import GT_RETURN, TrialInfo, grouped_curves, ranking


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
