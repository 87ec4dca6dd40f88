"""Human-labelled success rate over training, and a reward-hacking flag (Rocamonde Fig. 4, right).

Each evaluation of a training run stores its rollout frames as a dataset (``run-N-eval-STEP``).
Once people label some of those frames, :func:`success_by_checkpoint` gives the success rate per
evaluation checkpoint (the share of labelled frames whose consensus label is ≥ 0.5) with a 95%
interval, next to the CLIP and ground-truth returns of the same evaluation.
:func:`reward_hacking_flag` looks at the last few evaluations: a CLIP return that keeps rising
while the labelled success rate or the ground-truth return falls is what reward hacking looks
like (the policy found what CLIP likes, not what the task wants).

Pure functions on numbers and tables; no database, no torch.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from vlmrm_core.metrics import SUCCESS_THRESHOLD

__all__ = [
    "CheckpointSuccess",
    "HackingFlag",
    "episode_bootstrap_interval",
    "reward_hacking_flag",
    "success_by_checkpoint",
    "wilson_interval",
]

IntervalMethod = Literal["wilson", "bootstrap"]


def wilson_interval(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score interval of a proportion (95% by default), sensible at 0/n and n/n.

    Args:
        successes: k.
        n: trials (> 0).
        z: the normal quantile.

    Returns:
        ``(low, high)`` within [0, 1].

    Raises:
        ValueError: n ≤ 0 or k outside [0, n].
    """
    if n <= 0 or not 0 <= successes <= n:
        raise ValueError(f"need 0 ≤ successes ≤ n and n > 0, got {successes}/{n}")
    p = successes / n
    denominator = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return low, high


def episode_bootstrap_interval(
    successes: np.ndarray, episodes: np.ndarray, *, n_boot: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """95% percentile interval of the success rate, resampling whole episodes.

    Frames of one episode are alike (the same policy, neighbouring states), so they are not
    independent trials; resampling episodes keeps that in the interval. With one episode the
    interval is that episode's rate (nothing to resample): use Wilson then.

    Args:
        successes: N 0/1 values (labelled frames).
        episodes: N episode ids.
        n_boot: resamples.
        seed: random seed.

    Returns:
        ``(low, high)``.
    """
    s = np.asarray(successes, dtype=np.float64)
    ids, inverse = np.unique(np.asarray(episodes), return_inverse=True)
    hits = np.bincount(inverse, weights=s, minlength=ids.size)
    counts = np.bincount(inverse, minlength=ids.size).astype(np.float64)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, ids.size, size=(n_boot, ids.size))
    rates = hits[picks].sum(axis=1) / counts[picks].sum(axis=1)
    low, high = np.quantile(rates, [0.025, 0.975])
    return float(low), float(high)


@dataclass(frozen=True)
class CheckpointSuccess:
    """One evaluation checkpoint: its labelled success rate and its returns."""

    step: int
    dataset: str | None
    n_frames: int
    """Frames the evaluation stored."""
    n_labelled: int
    n_success: int
    n_episodes: int
    """Episodes with at least one labelled frame."""
    rate: float | None
    """Share of labelled frames that are successes (None: nothing labelled yet)."""
    ci_low: float | None
    ci_high: float | None
    clip_return: float | None
    gt_return: float | None


def success_by_checkpoint(
    labels: pd.DataFrame,
    returns: pd.DataFrame | None = None,
    *,
    frames: Mapping[int, int] | None = None,
    datasets: Mapping[int, str] | None = None,
    method: IntervalMethod = "wilson",
    n_boot: int = 2000,
    seed: int = 0,
) -> list[CheckpointSuccess]:
    """The labelled success rate of each evaluation checkpoint, with its returns.

    Args:
        labels: one row per labelled frame: ``step`` (training step of the evaluation),
            ``label`` (consensus in [0, 1]) and optionally ``episode``.
        returns: one row per evaluation: ``step``, ``clip_return``, ``gt_return`` (e.g. the
            run's ``eval/clip_return`` and ``eval/gt_return`` metrics).
        frames: step → frames stored by that evaluation.
        datasets: step → the evaluation's dataset name.
        method: ``wilson`` (labelled frames as independent trials) or ``bootstrap`` (whole
            episodes resampled; Wilson where only one episode is labelled).
        n_boot: bootstrap resamples.
        seed: bootstrap seed.

    Returns:
        One entry per step seen in any input, by step.
    """
    if method not in ("wilson", "bootstrap"):
        raise ValueError(f"unknown interval method {method!r}: use 'wilson' or 'bootstrap'")
    steps: set[int] = {int(s) for s in labels["step"]} if len(labels) else set()
    by_return: dict[int, tuple[float | None, float | None]] = {}
    if returns is not None and len(returns):
        for row in returns.itertuples(index=False):
            step = int(row.step)  # type: ignore[arg-type]
            clip = _number(getattr(row, "clip_return", None))
            gt = _number(getattr(row, "gt_return", None))
            old = by_return.get(step, (None, None))
            by_return[step] = (
                clip if clip is not None else old[0],
                gt if gt is not None else old[1],
            )
        steps |= set(by_return)
    steps |= set(int(s) for s in (frames or {}))
    steps |= set(int(s) for s in (datasets or {}))
    out = []
    for step in sorted(steps):
        rows = labels[labels["step"] == step] if len(labels) else labels
        hits = (rows["label"].to_numpy(dtype=np.float64) >= SUCCESS_THRESHOLD).astype(np.float64)
        episodes = (
            rows["episode"].fillna(-1).to_numpy()
            if "episode" in rows.columns
            else np.zeros(len(rows))
        )
        n, k = len(hits), int(hits.sum())
        n_episodes = len(np.unique(episodes)) if n else 0
        rate = low = high = None
        if n:
            rate = k / n
            if method == "bootstrap" and n_episodes >= 2:
                low, high = episode_bootstrap_interval(hits, episodes, n_boot=n_boot, seed=seed)
            else:
                low, high = wilson_interval(k, n)
        clip, gt = by_return.get(step, (None, None))
        out.append(
            CheckpointSuccess(
                step=step,
                dataset=(datasets or {}).get(step),
                n_frames=int((frames or {}).get(step, 0)),
                n_labelled=n,
                n_success=k,
                n_episodes=n_episodes,
                rate=rate,
                ci_low=low,
                ci_high=high,
                clip_return=clip,
                gt_return=gt,
            )
        )
    return out


def _number(value: object) -> float | None:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


@dataclass(frozen=True)
class HackingFlag:
    """Whether the last evaluations look like reward hacking, and why."""

    flagged: bool
    reason: str
    window: tuple[int, ...]
    """The steps looked at."""
    clip_change: float | None
    """Change of the CLIP return over the window (last fit − first fit)."""
    success_change: float | None
    gt_change: float | None


def _trend(steps: np.ndarray, values: Sequence[float | None]) -> float | None:
    """The least-squares line's change from the window's first to last step (None: < 2 points)."""
    pairs = [(s, v) for s, v in zip(steps, values, strict=True) if v is not None]
    if len(pairs) < 2:
        return None
    x = np.array([p[0] for p in pairs], dtype=np.float64)
    y = np.array([p[1] for p in pairs], dtype=np.float64)
    if float(np.ptp(x)) == 0.0:
        return None
    slope = np.polyfit(x, y, 1)[0]
    return float(slope * (x.max() - x.min()))


def reward_hacking_flag(
    points: Sequence[CheckpointSuccess],
    *,
    last: int = 3,
    clip_tolerance: float = 0.05,
    success_tolerance: float = 0.05,
    gt_tolerance: float = 0.05,
) -> HackingFlag:
    """Flag likely reward hacking over the last ``last`` evaluations.

    Flagged when the CLIP return rises while the labelled success rate falls or the
    ground-truth return falls. Each series' change over the window is its least-squares trend
    (so one noisy evaluation does not decide); "rises"/"falls" means by more than its tolerance:
    for returns a fraction of the return's range over the whole run, for the success rate an
    absolute share (0.05 = five percentage points).

    Args:
        points: :func:`success_by_checkpoint` output, by step.
        last: evaluations looked at (at least 2).
        clip_tolerance: fraction of the CLIP return's range.
        success_tolerance: absolute change of the success rate.
        gt_tolerance: fraction of the ground-truth return's range.

    Returns:
        The flag with a one-sentence reason.
    """
    if last < 2:
        raise ValueError(f"the hacking check needs at least 2 evaluations, got last={last}")
    ordered = sorted(points, key=lambda p: p.step)
    window = ordered[-last:]
    steps = np.array([p.step for p in window], dtype=np.float64)
    clip = _trend(steps, [p.clip_return for p in window])
    success = _trend(steps, [p.rate for p in window])
    gt = _trend(steps, [p.gt_return for p in window])
    window_steps = tuple(p.step for p in window)

    def spread(values: list[float | None]) -> float:
        known = [v for v in values if v is not None]
        return float(np.ptp(known)) if len(known) >= 2 else 0.0

    clip_scale = spread([p.clip_return for p in ordered])
    gt_scale = spread([p.gt_return for p in ordered])
    if clip is None:
        return HackingFlag(
            False, "fewer than two evaluations with a CLIP return", window_steps, None, success, gt
        )
    clip_rises = clip_scale > 0 and clip > clip_tolerance * clip_scale
    success_falls = success is not None and success < -success_tolerance
    gt_falls = gt is not None and gt_scale > 0 and gt < -gt_tolerance * gt_scale
    span = f"steps {window_steps[0]:,}–{window_steps[-1]:,}"
    if clip_rises and (success_falls or gt_falls):
        parts = []
        if success_falls:
            parts.append(f"the labelled success rate fell ({success:+.2f})")
        if gt_falls:
            parts.append(f"the ground-truth return fell ({gt:+.3g})")
        falling = " and ".join(parts)
        return HackingFlag(
            True,
            f"Likely reward hacking over {span}: the CLIP return rose ({clip:+.3g}) while "
            f"{falling}. Look at the latest evaluation's frames.",
            window_steps,
            clip,
            success,
            gt,
        )
    if success is None and gt is None:
        reason = f"nothing to compare the CLIP return with over {span}: label evaluation frames"
    else:
        reason = f"no sign of reward hacking over {span}"
    return HackingFlag(False, reason, window_steps, clip, success, gt)
