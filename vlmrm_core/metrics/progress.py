"""How well a reward tracks progress through episodes: value-order correlation (VOC).

VOC (as reported by GVL, TOPReward and Robometer) is, per episode, Spearman's rank correlation
between the reward and the time step, averaged over episodes: +1 when the reward rises
monotonically through every episode, 0 when it ignores time, −1 when it falls. Progress is only
expected to rise in episodes that succeed, so VOC is taken over the episodes labelled successful
(:func:`successful_episodes`), or over all of them when the dataset holds demonstrations.
The interval is a percentile bootstrap over episodes (an episode is the unit that was sampled;
its frames are not independent).

ReWiND makes failure data by playing successful episodes backwards; :func:`reversed_steps` gives
the time steps of such a copy and :func:`voc_gap` compares a reward's VOC on forward and on
reversed episodes (a reward that only looks at single frames gets exactly the negated VOC on a
reversed copy; rewards that look at several frames need not).

Pure functions on arrays: one entry per frame, with its episode id and time step. The rank
correlation is :func:`vlmrm_core.metrics.correlation.spearman`, the project's one Spearman.

Example::

    >>> rewards = [0.1, 0.2, 0.4, 0.3,   0.5, 0.6, 0.9]
    >>> episodes = [0, 0, 0, 0,          1, 1, 1]
    >>> steps = [0, 1, 2, 3,             0, 1, 2]
    >>> result = value_order_correlation(rewards, episodes, steps, n_boot=200)
    >>> {episode: round(rho, 6) for episode, rho in result.per_episode.items()}
    {0: 0.8, 1: 1.0}
    >>> round(result.voc, 3), result.n_episodes
    (0.9, 2)
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from vlmrm_core.errors import InvalidInputError
from vlmrm_core.metrics.classification import SUCCESS_THRESHOLD
from vlmrm_core.metrics.correlation import spearman

__all__ = [
    "VocGap",
    "VocResult",
    "episode_groups",
    "reversed_steps",
    "successful_episodes",
    "value_order_correlation",
    "voc_gap",
]


@dataclass(frozen=True)
class VocResult:
    """Value-order correlation over episodes. None marks a value that is undefined (the note
    says why); no field is NaN.

    Attributes:
        voc: Mean over episodes of Spearman's ρ(reward, time step), in [−1, 1].
        ci_low: Lower end of the bootstrap interval over episodes (None with < 2 episodes).
        ci_high: Upper end.
        n_episodes: Episodes whose ρ went into the mean.
        per_episode: ρ by episode id, for those episodes.
        skipped: Selected episodes left out: fewer than 2 frames, or a constant reward
            (ρ is 0/0 there).
        note: Why a value is None or episodes were skipped; empty otherwise.
    """

    voc: float | None
    ci_low: float | None
    ci_high: float | None
    n_episodes: int
    per_episode: dict[int, float] = field(default_factory=dict)
    skipped: tuple[int, ...] = ()
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: episode ids become string keys."""
        out = asdict(self)
        out["per_episode"] = {str(k): v for k, v in self.per_episode.items()}
        out["skipped"] = list(self.skipped)
        return out


@dataclass(frozen=True)
class VocGap:
    """VOC on forward episodes minus VOC on their time-reversed copies.

    Attributes:
        forward: VOC of the forward episodes.
        reversed: VOC of the reversed copies.
        gap: The mean over the episodes defined in both directions of forward ρ − reversed ρ
            (2 for a reward that rises through every episode and falls through every
            reversal); None when no episode is defined in both.
        ci_low: Bootstrap interval of the gap, resampling the paired episodes.
        ci_high: Upper end.
        n_pairs: Episodes defined in both directions.
    """

    forward: VocResult
    reversed: VocResult
    gap: float | None
    ci_low: float | None
    ci_high: float | None
    n_pairs: int

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["forward"], out["reversed"] = self.forward.to_dict(), self.reversed.to_dict()
        return out


def _frame_arrays(
    rewards: npt.ArrayLike | None, episodes: npt.ArrayLike, steps: npt.ArrayLike
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    ep = np.asarray(episodes)
    st = np.asarray(steps)
    if ep.ndim != 1 or st.shape != ep.shape:
        raise InvalidInputError(
            f"episodes and steps must be two 1-D arrays of one length, got shapes {ep.shape} "
            f"and {st.shape}."
        )
    r = None
    if rewards is not None:
        r = np.asarray(rewards, dtype=np.float64)
        if r.shape != ep.shape:
            raise InvalidInputError(
                f"{r.shape[0] if r.ndim else 1} rewards for {ep.shape[0]} frames; give one "
                "reward per frame."
            )
    return r, ep.astype(np.int64), st.astype(np.float64)


def episode_groups(episodes: npt.ArrayLike) -> dict[int, np.ndarray]:
    """The frame indices of each episode, by episode id (ascending), frames in input order.

    Example::

        >>> {k: v.tolist() for k, v in episode_groups([3, 1, 3, 1, 1]).items()}
        {1: [1, 3, 4], 3: [0, 2]}
    """
    ep = np.asarray(episodes, dtype=np.int64)
    order = np.argsort(ep, kind="stable")
    ids, starts = np.unique(ep[order], return_index=True)
    bounds = [*starts[1:], len(order)] if len(order) else []  # no frames: no episodes
    return {int(i): order[s:e] for i, s, e in zip(ids, starts, bounds, strict=True)}


def successful_episodes(
    episodes: npt.ArrayLike,
    steps: npt.ArrayLike,
    labels: npt.ArrayLike,
    threshold: float = SUCCESS_THRESHOLD,
) -> set[int]:
    """The episodes whose last labelled frame is labelled a success.

    The last labelled frame decides because success is where an episode ends up: a frame
    labelled "not yet" early on says nothing against it, and an episode that reached the goal
    and then lost it did not succeed.

    Args:
        episodes: Episode id per frame.
        steps: Time step per frame.
        labels: Label per frame in [0, 1]; NaN for an unlabelled frame.
        threshold: A label at least this is a success (graded labels).

    Returns:
        The ids of the successful episodes (episodes without any label are not among them).

    Example::

        >>> nan = float("nan")
        >>> sorted(successful_episodes([0, 0, 0, 1, 1], [0, 1, 2, 0, 1], [0, nan, 1, 1, 0]))
        [0]
    """
    _, ep, st = _frame_arrays(None, episodes, steps)
    lab = np.asarray(labels, dtype=np.float64)
    if lab.shape != ep.shape:
        raise InvalidInputError(f"{lab.size} labels for {ep.size} frames; give one per frame.")
    found: set[int] = set()
    for episode, members in episode_groups(ep).items():
        labelled = members[~np.isnan(lab[members])]
        if labelled.size:
            last = labelled[np.argmax(st[labelled])]
            if lab[last] >= threshold:
                found.add(episode)
    return found


def _bootstrap_mean(
    values: np.ndarray, n_boot: int, level: float, seed: int | None
) -> tuple[float | None, float | None]:
    if values.size < 2:
        return None, None
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, values.size, size=(n_boot, values.size))
    means = values[draws].mean(axis=1)
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return float(low), float(high)


def _check_boot(n_boot: int, level: float) -> None:
    if n_boot < 2:
        raise InvalidInputError(f"n_boot must be at least 2, got {n_boot}.")
    if not 0.0 < level < 1.0:
        raise InvalidInputError(f"level must be in (0, 1), got {level}.")


def value_order_correlation(
    rewards: npt.ArrayLike,
    episodes: npt.ArrayLike,
    steps: npt.ArrayLike,
    *,
    include: Collection[int] | None = None,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int | None = 0,
) -> VocResult:
    """VOC: per episode Spearman's ρ of reward and time step, averaged over episodes.

    Args:
        rewards: Reward per frame (finite; a non-finite reward leaves its frame out).
        episodes: Episode id per frame.
        steps: Time step per frame (any increasing numbering within an episode).
        include: The episodes to average over (e.g. :func:`successful_episodes`); None for all
            (a dataset of demonstrations).
        n_boot: Bootstrap resamples of the episodes.
        level: Confidence level of the interval.
        seed: Seed of the bootstrap; the same seed gives the same interval.

    Returns:
        The mean, its interval, ρ per episode and the episodes left out.

    Raises:
        InvalidInputError: Arrays of different lengths or bad bootstrap parameters.

    Example::

        >>> falling = value_order_correlation([3.0, 2.0, 1.0, 5.0, 5.0], [0, 0, 0, 1, 1],
        ...                                   [0, 1, 2, 0, 1])
        >>> round(falling.voc, 6), falling.skipped, falling.ci_low is None
        (-1.0, (1,), True)
    """
    _check_boot(n_boot, level)
    r, ep, st = _frame_arrays(rewards, episodes, steps)
    assert r is not None
    groups = episode_groups(ep)
    wanted = sorted(groups) if include is None else sorted(set(include) & set(groups))
    per_episode: dict[int, float] = {}
    skipped: list[int] = []
    for episode in wanted:
        members = groups[episode]
        rho = spearman(r[members], st[members])
        if rho is None:
            skipped.append(episode)
        else:
            per_episode[episode] = rho
    notes: list[str] = []
    if include is not None and not wanted:
        notes.append("no selected episode is in the data (label successful episodes first)")
    elif not wanted:
        notes.append("no frames with an episode")
    if skipped:
        notes.append(
            f"{len(skipped)} episode(s) left out: fewer than 2 frames or a constant reward"
        )
    values = np.array(list(per_episode.values()), dtype=np.float64)
    voc = float(values.mean()) if values.size else None
    low, high = _bootstrap_mean(values, n_boot, level, seed)
    if values.size == 1:
        notes.append("one episode: no interval")
    return VocResult(
        voc=voc,
        ci_low=low,
        ci_high=high,
        n_episodes=int(values.size),
        per_episode=per_episode,
        skipped=tuple(skipped),
        note="; ".join(notes),
    )


def reversed_steps(episodes: npt.ArrayLike, steps: npt.ArrayLike) -> np.ndarray:
    """The time steps of a time-reversed copy of every episode (ReWiND): the frame at step s of
    an episode spanning steps first … last moves to step first + last − s.

    Example::

        >>> reversed_steps([0, 0, 0, 1, 1], [0, 1, 2, 4, 6]).tolist()
        [2, 1, 0, 6, 4]
    """
    _, ep, _ = _frame_arrays(None, episodes, steps)
    st = np.asarray(steps)
    out = np.empty_like(st)
    for members in episode_groups(ep).values():
        out[members] = st[members].min() + st[members].max() - st[members]
    return out


def voc_gap(
    forward: VocResult,
    reversed_: VocResult,
    *,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int | None = 0,
) -> VocGap:
    """How much higher a reward's VOC is on episodes than on their time-reversed copies.

    The gap is taken over the episodes defined in both (a reversed copy keeps its episode's
    id), and its interval resamples those episodes in pairs.

    Args:
        forward: :func:`value_order_correlation` of the forward episodes.
        reversed_: The same for the reversed copies, scored by the same reward.
        n_boot: Bootstrap resamples.
        level: Confidence level.
        seed: Bootstrap seed.

    Returns:
        The gap with its interval, next to both VOCs.

    Example::

        >>> ep, st = [0, 0, 0, 1, 1, 1], [0, 1, 2, 0, 1, 2]
        >>> rewards = [0.1, 0.5, 0.9, 0.2, 0.3, 0.8]
        >>> fwd = value_order_correlation(rewards, ep, st)
        >>> back = value_order_correlation(rewards, ep, reversed_steps(ep, st))
        >>> round(voc_gap(fwd, back).gap, 6)
        2.0
    """
    _check_boot(n_boot, level)
    pairs = sorted(set(forward.per_episode) & set(reversed_.per_episode))
    diffs = np.array(
        [forward.per_episode[e] - reversed_.per_episode[e] for e in pairs], dtype=np.float64
    )
    gap = float(diffs.mean()) if diffs.size else None
    low, high = _bootstrap_mean(diffs, n_boot, level, seed)
    return VocGap(
        forward=forward,
        reversed=reversed_,
        gap=gap,
        ci_low=low,
        ci_high=high,
        n_pairs=len(pairs),
    )
