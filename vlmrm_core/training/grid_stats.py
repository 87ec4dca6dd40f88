"""Summaries of a sweep's trials: curves grouped by reward (mean ± spread over seeds), ranking.

Pure functions on the store's metric tables (``run_metrics`` DataFrames), for the Train page's
sweep view and scripts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from vlmrm_core.metrics.correlation import spearman
from vlmrm_core.reward.spec import ModelRef, RewardSpec

CLIP_RETURN = "episode_clip_return"
"""Metric column of the CLIP reward's episode return."""
GT_RETURN = "episode_gt_return"
"""Metric column of the environment's ground-truth episode return."""
MIN_ARMS_FOR_CORRELATION = 3
"""Arms with both an EPIC distance and a final return needed to rank-correlate them."""


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
        for step, row in zip(steps, table.to_numpy(dtype=float), strict=True):
            present = row[~np.isnan(row)]
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


# --------------------------------------------------------------------------- EPIC vs return


@dataclass(frozen=True)
class ArmReward:
    """The reward an arm's trials trained on: its model and its reward definition."""

    arm: str
    model: ModelRef
    reward: RewardSpec


def arm_rewards(trials: list[TrialInfo], runs: list[object]) -> dict[str, ArmReward]:
    """The reward of each arm, read from its first trial's run config.

    Args:
        trials: :func:`trial_infos` of ``runs`` (same order).
        runs: the sweep's ``RunInfo`` rows.

    Returns:
        ``{arm: ArmReward}``; arms whose config holds no complete model and reward are left out.
    """
    from vlmrm_core.reward.spec import SpecError

    found: dict[str, ArmReward] = {}
    for trial, run in zip(trials, runs, strict=True):
        if trial.arm in found:
            continue
        config = run.config  # type: ignore[attr-defined]
        model, reward = config.get("model"), config.get("reward")
        if not isinstance(model, dict) or not isinstance(reward, dict):
            continue
        try:
            found[trial.arm] = ArmReward(
                trial.arm, ModelRef.from_dict(model), RewardSpec.from_dict(reward)
            )
        except (SpecError, TypeError):
            continue
    return found


def ranking_with_epic(table: pd.DataFrame, epics: Mapping[str, float | None]) -> pd.DataFrame:
    """The :func:`ranking` table with each arm's EPIC distance to the labels (None if unknown).

    Returns:
        ``table``'s columns plus ``epic``, in ``table``'s order (best final return first).
    """
    ranked = table.copy()
    ranked["epic"] = pd.Series([epics.get(arm) for arm in ranked["arm"]], dtype=object)
    return ranked


def epic_return_correlation(table: pd.DataFrame) -> float | None:
    """Spearman correlation between EPIC distance and final return over a
    :func:`ranking_with_epic` table's arms.

    None with fewer than :data:`MIN_ARMS_FOR_CORRELATION` arms having both (two points always
    correlate ±1), or where Spearman is undefined (all arms tie on one side).
    Negative means the rewards closer to the labels (lower EPIC) trained better agents.
    """
    epic, final = list(table["epic"]), list(table["final_mean"])
    both = sum(
        e is not None and f is not None and np.isfinite(e) and np.isfinite(f)
        for e, f in zip(epic, final, strict=True)
    )
    if both < MIN_ARMS_FOR_CORRELATION:
        return None
    return spearman(epic, final)


def matching_datasets(env_id: str, names: Sequence[str]) -> list[str]:
    """Dataset names ordered for an environment: those naming its family first.

    ``CartPole-v1`` matches ``cartpole-v1-labels`` and ``demo-cartpole`` (the family is the id
    without its ``-vN`` version, compared case-insensitively, ignoring ``-`` and ``_``).
    """

    def squash(text: str) -> str:
        return re.sub(r"[-_\s]", "", text.lower())

    family = squash(re.sub(r"-v\d+$", "", env_id.strip()))
    matching = [n for n in names if family and family in squash(n)]
    return matching + [n for n in names if n not in matching]
