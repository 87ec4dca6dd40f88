"""Summaries of a sweep's trials: curves grouped by reward (mean ± spread over seeds), ranking.

Pure functions on the store's metric tables (``run_metrics`` DataFrames), for the Train page's
sweep view and scripts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

CLIP_RETURN = "episode_clip_return"
"""Metric column of the CLIP reward's episode return."""
GT_RETURN = "episode_gt_return"
"""Metric column of the environment's ground-truth episode return."""


@dataclass(frozen=True)
class TrialInfo:
    """One trial: its run id and its grid coordinates."""

    run_id: int
    group: str
    """Reward source: a prompt set's name, a reward file's stem, or ``inline``."""
    alpha: float
    seed: int

    @property
    def arm(self) -> str:
        """The grid point without the seed: what seeds are averaged over."""
        return f"{self.group} α={self.alpha:g}"


def grouped_curves(
    trials: list[TrialInfo], metrics: Mapping[int, pd.DataFrame], column: str
) -> pd.DataFrame:
    """Mean and spread over seeds of one metric, per arm (group × α) and step.

    Each trial's metric is carried forward to the union of all logged steps (episodes end at
    different steps), then averaged across the arm's seeds.

    Args:
        trials: the sweep's trials.
        metrics: ``{run_id: run_metrics(...)}`` with a ``step`` column.
        column: e.g. :data:`GT_RETURN`.

    Returns:
        Columns ``arm, step, mean, std, n`` (std 0 for a single seed); empty if never logged.
    """
    rows = []
    for arm in dict.fromkeys(t.arm for t in trials):
        series = []
        for trial in (t for t in trials if t.arm == arm):
            frame = metrics.get(trial.run_id)
            if frame is None or column not in frame or frame[column].notna().sum() == 0:
                continue
            values = frame[["step", column]].dropna().groupby("step")[column].last()
            series.append(values)
        if not series:
            continue
        steps = sorted(set().union(*(s.index for s in series)))
        table = pd.concat([s.reindex(steps).ffill() for s in series], axis=1)
        for step, values in zip(steps, table.to_numpy(), strict=True):
            present = values[~np.isnan(values)]
            if len(present):
                rows.append(
                    {
                        "arm": arm,
                        "step": int(step),
                        "mean": float(present.mean()),
                        "std": float(present.std()) if len(present) > 1 else 0.0,
                        "n": int(len(present)),
                    }
                )
    return pd.DataFrame(rows, columns=["arm", "step", "mean", "std", "n"])


def ranking(
    trials: list[TrialInfo], metrics: Mapping[int, pd.DataFrame], column: str = GT_RETURN
) -> pd.DataFrame:
    """Arms ranked by the final value of a metric, averaged over seeds (best first).

    Returns:
        Columns ``arm, group, alpha, final_mean, final_std, seeds``.
    """
    rows = []
    for arm in dict.fromkeys(t.arm for t in trials):
        members = [t for t in trials if t.arm == arm]
        finals = []
        for trial in members:
            frame = metrics.get(trial.run_id)
            if frame is not None and column in frame and frame[column].notna().any():
                finals.append(float(frame.sort_values("step")[column].dropna().iloc[-1]))
        if finals:
            rows.append(
                {
                    "arm": arm,
                    "group": members[0].group,
                    "alpha": members[0].alpha,
                    "final_mean": float(np.mean(finals)),
                    "final_std": float(np.std(finals)),
                    "seeds": len(finals),
                }
            )
    table = pd.DataFrame(
        rows, columns=["arm", "group", "alpha", "final_mean", "final_std", "seeds"]
    )
    return table.sort_values("final_mean", ascending=False, ignore_index=True)


def trial_infos(runs: list[object]) -> list[TrialInfo]:
    """Trials from a sweep's ``RunInfo`` rows (their configs carry group, α and seed)."""
    infos = []
    for run in runs:
        config = run.config  # type: ignore[attr-defined]
        reward = config.get("reward") or {}
        infos.append(
            TrialInfo(
                run_id=int(run.id),  # type: ignore[attr-defined]
                group=str(config.get("_group", "inline")),
                alpha=float(reward.get("alpha", 0.0)),
                seed=int(config.get("seed", 0)),
            )
        )
    return infos
