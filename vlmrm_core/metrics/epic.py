"""EPIC distance between reward functions (Gleave et al. 2021, "Quantifying Differences in
Reward Functions").

D_EPIC(R₁, R₂) = D_ρ(C(R₁), C(R₂)) with the Pearson distance D_ρ(X, Y) = sqrt((1 − ρ(X, Y)) / 2),
which lies in [0, 1] (the paper's ½; some code omits it and ranges over [0, √2]).

Two settings are covered:

* **State-only rewards** R(s′), the case of a CLIP reward scored against human success labels
  (Rocamonde et al. 2023). Canonicalization reduces to R(s′) − E[R(S′)], and the Pearson distance
  is invariant to that shift, so EPIC is the Pearson distance of the two vectors over the labelled
  states: :func:`epic_distance`, :func:`bootstrap_ci`, :func:`evaluate_epic`.
* **Transition rewards** R(s, a, s′): :func:`canonicalize` applies the sampled canonicalization
  and :func:`epic_distance_transitions` compares two reward functions with it.

Every function returns a finite number or raises; none returns NaN.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from vlmrm_core.errors import InvalidInputError, VlmrmError
from vlmrm_core.metrics.correlation import pearson

__all__ = [
    "MIN_BOOTSTRAP_RESAMPLES",
    "ConstantRewardError",
    "EpicResult",
    "RewardFn",
    "bootstrap_ci",
    "canonicalize",
    "epic_distance",
    "epic_distance_transitions",
    "evaluate_epic",
    "pearson_distance",
]

RewardFn = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
"""A reward function vectorized over a batch: ``reward_fn(states, actions, next_states)`` with
arrays of B rows each (any trailing shape) returns a length-B vector of rewards."""

MIN_BOOTSTRAP_RESAMPLES = 2
"""The fewest bootstrap resamples that give an interval (0 resamples means no interval)."""

# Bootstrap resamples are gathered in blocks of at most this many elements per array
# (8 MiB of float64), which keeps the peak memory of a 1000-resample CI small at any n.
_BOOTSTRAP_BLOCK_ELEMENTS = 1 << 20

# Canonicalized rewards whose spread is below this fraction of the rewards' magnitude are
# rounding noise around a constant (e.g. a reward that is pure potential shaping).
_CANONICAL_CONSTANT_RTOL = 1e-9


class ConstantRewardError(VlmrmError, ValueError):
    """One side of a Pearson/EPIC comparison is constant, so the correlation is undefined.

    Attributes:
        side: Name of the constant input ("rewards", "labels", "x", "y", ...).
        value: The value every state has on that side (None when not a single value, e.g. for
            bootstrap failures).
    """

    def __init__(self, message: str, side: str, value: float | None = None) -> None:
        super().__init__(message)
        self.side = side
        self.value = value


@dataclass(frozen=True)
class _Side:
    """How to name one input in error messages."""

    name: str
    constant_phrase: str
    """Completed with " ({value})", e.g. "the labels are all the same value"."""
    hint: str


_X = _Side("x", "x is constant, every value is", "pass two inputs that both vary")
_Y = _Side("y", "y is constant, every value is", "pass two inputs that both vary")
_REWARDS = _Side(
    "rewards",
    "the rewards are all the same value",
    "the reward model scores every state alike; check the prompts and that the frames differ",
)
_LABELS = _Side(
    "labels",
    "the labels are all the same value",
    "label at least one success and one failure",
)


@dataclass(frozen=True)
class EpicResult:
    """EPIC distance of a reward to labels, with a bootstrap confidence interval.

    Attributes:
        epic_distance: Point estimate in [0, 1]; 0 means the reward orders and spaces the states
            exactly as the labels do (up to positive scale and shift).
        n: Number of states that entered the estimate (states with positive weight).
        ci_low: Lower end of the percentile bootstrap interval (None when not computed).
        ci_high: Upper end of the percentile bootstrap interval (None when not computed).
    """

    epic_distance: float
    n: int
    ci_low: float | None = None
    ci_high: float | None = None


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------


def _as_float_vector(values: npt.ArrayLike, side: _Side) -> np.ndarray:
    """Float64 1-D view of ``values`` (no copy when it already is one)."""
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"{side.name} must be a 1-D array, got shape {array.shape}")
    return array


def _non_finite_error(array: np.ndarray, side: _Side) -> InvalidInputError:
    # Only reached on the error path, so the extra passes over the data cost nothing normally.
    n_nan = int(np.isnan(array).sum())
    n_inf = int(np.isinf(array).sum())
    first = int(np.flatnonzero(~np.isfinite(array))[0])
    parts = []
    if n_nan:
        parts.append(f"{n_nan} NaN")
    if n_inf:
        parts.append(f"{n_inf} infinite")
    return InvalidInputError(
        f"{side.name}: {' and '.join(parts)} value(s) (first at index {first}); "
        "only finite numbers can be compared"
    )


def _constant_error(side: _Side, value: float, metric: str) -> ConstantRewardError:
    return ConstantRewardError(
        f"{side.constant_phrase} ({float(value)!r}): {metric} is undefined when one side is "
        f"constant; {side.hint}",
        side=side.name,
        value=float(value),
    )


def _range(array: np.ndarray, side: _Side) -> tuple[float, float]:
    """(min, max) of a vector, raising on NaN/inf; min and max propagate NaN, so this one pair
    of passes doubles as the finiteness check."""
    low = float(array.min())
    high = float(array.max())
    if not (math.isfinite(low) and math.isfinite(high)):
        raise _non_finite_error(array, side)
    return low, high


def _validate_weights(weights: npt.ArrayLike, n: int) -> np.ndarray:
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (n,):
        raise ValueError(f"weights must have shape ({n},) like the data, got {w.shape}")
    low, high = float(w.min()), float(w.max())
    if not (math.isfinite(low) and math.isfinite(high)):
        raise _non_finite_error(w, _Side("weights", "", ""))
    if low < 0:
        raise ValueError(f"weights must be non-negative, got {low!r}")
    if high == 0:
        raise ValueError("weights are all zero: no state would count")
    return w


def _prepare(
    x: npt.ArrayLike, y: npt.ArrayLike, weights: npt.ArrayLike | None, x_side: _Side, y_side: _Side
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Validated float64 vectors; zero-weight states are dropped (they cannot influence ρ and
    must not make a side look non-constant), and weights are rescaled to a maximum of 1 so
    that huge weights cannot overflow the sums."""
    xv = _as_float_vector(x, x_side)
    yv = _as_float_vector(y, y_side)
    if xv.shape != yv.shape:
        raise InvalidInputError(
            f"{x_side.name} and {y_side.name} must have the same length, "
            f"got {xv.shape[0]} and {yv.shape[0]}"
        )
    w = None
    if weights is not None:
        w = _validate_weights(weights, xv.shape[0])
        positive = w > 0
        if not positive.all():
            xv, yv, w = xv[positive], yv[positive], w[positive]
        w = w / w.max()
    if xv.shape[0] < 2:
        raise InvalidInputError(
            f"need at least 2 states (with positive weight) to compare {x_side.name} and "
            f"{y_side.name}, got {xv.shape[0]}"
        )
    return xv, yv, w


def _pearson_distance(
    x: np.ndarray,
    y: np.ndarray,
    weights: np.ndarray | None,
    x_side: _Side,
    y_side: _Side,
    metric: str,
) -> float:
    """sqrt((1 − ρ) / 2) of validated vectors, always within [0, 1]."""
    # Labels are checked first: constant labels are the common user mistake worth naming.
    _range(y, y_side)
    _range(x, x_side)
    result = pearson(x, y, weights)
    if result.y_constant:
        raise _constant_error(y_side, float(y[0]), metric)
    if result.x_constant:
        raise _constant_error(x_side, float(x[0]), metric)
    return float(result.distance)


# --------------------------------------------------------------------------------------------
# State-only rewards
# --------------------------------------------------------------------------------------------


def pearson_distance(
    x: npt.ArrayLike, y: npt.ArrayLike, weights: npt.ArrayLike | None = None
) -> float:
    """Pearson distance D_ρ(x, y) = sqrt((1 − ρ) / 2) of two vectors.

    Args:
        x: 1-D array of n ≥ 2 finite numbers.
        y: 1-D array of the same length.
        weights: Optional non-negative weights per element; an integer weight k counts the
            element k times. Elements with weight 0 are ignored.

    Returns:
        The distance in [0, 1]: 0 for perfectly correlated inputs, ≈ 1/√2 for uncorrelated
        ones, 1 for perfectly anti-correlated ones.

    Raises:
        ConstantRewardError: One side is constant (zero weighted variance), so ρ is undefined.
        ValueError: Shapes differ or are not 1-D, values are not finite, weights are negative,
            or fewer than 2 elements have positive weight.

    Example::

        >>> pearson_distance([1.0, 2.0, 3.0, 4.0], [2.0, 4.0, 6.0, 8.0])  # ρ = 1
        0.0
        >>> pearson_distance([1.0, 2.0, 3.0, 4.0], [4.0, 3.0, 2.0, 1.0])  # ρ = −1
        1.0
    """
    xv, yv, w = _prepare(x, y, weights, _X, _Y)
    return _pearson_distance(xv, yv, w, _X, _Y, "the Pearson distance")


def epic_distance(
    rewards: npt.ArrayLike, labels: npt.ArrayLike, weights: npt.ArrayLike | None = None
) -> float:
    """EPIC distance between a state-only reward and labels (or a second reward) over states.

    For rewards that depend only on the state, canonicalization subtracts the mean reward, and
    the Pearson distance ignores that shift, so EPIC is the Pearson distance of the vectors.
    With binary labels ρ is the point-biserial correlation.

    Args:
        rewards: 1-D array of n ≥ 2 finite rewards, one per state.
        labels: 1-D array of n labels for the same states: binary success (0/1), graded
            (e.g. 0, 0.5, 1) or another reward.
        weights: Optional non-negative weight per state (e.g. how often it was visited); an
            integer weight k counts the state k times.

    Returns:
        The EPIC distance in [0, 1]; lower is better.

    Raises:
        ConstantRewardError: The labels (or the rewards) are all the same value.
        ValueError: Mismatched shapes, non-finite values, bad weights, or fewer than 2 states.

    Example::

        >>> round(epic_distance([0.1, 0.2, 0.7, 0.9], [0, 0, 1, 1]), 4)  # successes score higher
        0.119
        >>> epic_distance([0.1, 0.2, 0.7, 0.9], [0.5, 0.5, 0.5, 0.5])
        Traceback (most recent call last):
        ...
        vlmrm_core.metrics.epic.ConstantRewardError: ...
    """
    xv, yv, w = _prepare(rewards, labels, weights, _REWARDS, _LABELS)
    return _pearson_distance(xv, yv, w, _REWARDS, _LABELS, "EPIC distance")


def _bootstrap_distances(
    x: np.ndarray,
    y: np.ndarray,
    weights: np.ndarray | None,
    n_boot: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, int]:
    """EPIC distances of ``n_boot`` resamples of the states, and how many resamples were dropped
    for being constant on one side. Resamples are processed a block at a time, each block as
    one (resamples × n) gather scored by one row-wise :func:`pearson`, so there is no Python
    loop per resample."""
    n = x.shape[0]
    block = max(1, min(n_boot, _BOOTSTRAP_BLOCK_ELEMENTS // n))
    distances: list[np.ndarray] = []
    dropped = 0
    for start in range(0, n_boot, block):
        rows = min(block, n_boot - start)
        index = rng.integers(0, n, size=(rows, n))
        result = pearson(
            x[index], y[index], None if weights is None else weights[index], overwrite=True
        )
        dropped += int(rows - result.defined.sum())
        distances.append(result.distance[result.defined])
    return np.concatenate(distances), dropped


def bootstrap_ci(
    rewards: npt.ArrayLike,
    labels: npt.ArrayLike,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int | None = 0,
    weights: npt.ArrayLike | None = None,
    max_dropped_fraction: float = 0.1,
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of :func:`epic_distance` over states.

    States are resampled with replacement (each keeping its weight, if any), the EPIC distance
    is recomputed for every resample, and the interval is read off the distribution's
    percentiles. Resamples that happen to be constant on one side (e.g. drew no successes) are
    dropped.

    Args:
        rewards: 1-D array of n ≥ 2 finite rewards.
        labels: 1-D array of n labels (binary or graded).
        n_boot: Number of resamples.
        level: Confidence level in (0, 1), e.g. 0.95 for the 2.5 %–97.5 % percentiles.
        seed: Seed of the random generator; the same seed gives the same interval.
        weights: Optional non-negative weight per state.
        max_dropped_fraction: Largest tolerated fraction of resamples that were constant on
            one side; beyond it the interval would describe only the lucky resamples.

    Returns:
        (low, high), both in [0, 1].

    Raises:
        ConstantRewardError: One side is constant, or too many resamples were.
        ValueError: Invalid inputs or parameters.

    Example::

        >>> rewards, labels = [0.1, 0.2, 0.7, 0.9, 0.3, 0.8], [0, 0, 1, 1, 0, 1]
        >>> low, high = bootstrap_ci(rewards, labels, n_boot=200, seed=0)
        >>> 0.0 <= low <= epic_distance(rewards, labels) <= high <= 1.0
        True
    """
    if n_boot < MIN_BOOTSTRAP_RESAMPLES:
        raise InvalidInputError(
            f"n_boot must be at least {MIN_BOOTSTRAP_RESAMPLES} (or 0 for no interval in "
            f"evaluate_epic), got {n_boot}"
        )
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    if not 0.0 <= max_dropped_fraction <= 1.0:
        raise ValueError(f"max_dropped_fraction must be in [0, 1], got {max_dropped_fraction}")
    xv, yv, w = _prepare(rewards, labels, weights, _REWARDS, _LABELS)
    # Validates both sides (finite, non-constant) with the same messages as epic_distance.
    _pearson_distance(xv, yv, w, _REWARDS, _LABELS, "EPIC distance")

    rng = np.random.default_rng(seed)
    distances, dropped = _bootstrap_distances(xv, yv, w, n_boot, rng)
    if dropped > max_dropped_fraction * n_boot or distances.shape[0] < 2:
        raise ConstantRewardError(
            _too_few_of_a_kind(xv, yv, dropped, n_boot, max_dropped_fraction),
            side="bootstrap",
        )
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(distances, [tail, 1.0 - tail])
    return float(low), float(high)


def _too_few_of_a_kind(
    rewards: np.ndarray, labels: np.ndarray, dropped: int, n_boot: int, max_dropped_fraction: float
) -> str:
    """Why a bootstrap drew too many constant resamples, in the user's terms: which side has
    too few states that differ from its most common value, and how many it would need.

    A resample of n states misses all k states of the rarer kind with probability
    (1 − k/n)ⁿ; the interval needs that below ``max_dropped_fraction`` (k ≥ 3 for large n at
    10 %), so that is the count asked for.
    """
    n = int(labels.shape[0])
    rarest: tuple[int, str, str] | None = None
    for values, what in ((labels, "labels"), (rewards, "rewards")):
        distinct, counts = np.unique(values, return_counts=True)
        common = float(distinct[int(np.argmax(counts))])
        rare = n - int(counts.max())
        if what == "labels" and set(distinct.tolist()) <= {0.0, 1.0}:
            kind = "failures" if common == 1.0 else "successes"
            phrase = f"only {rare} of the {n} labels are {kind}"
        else:
            phrase = f"only {rare} of the {n} {what} differ from the most common value {common:g}"
        if rarest is None or rare < rarest[0]:
            rarest = (rare, what, phrase)
    assert rarest is not None
    rare, what, phrase = rarest
    need = next((k for k in range(1, n + 1) if (1.0 - k / n) ** n <= max_dropped_fraction), n)
    fix = (
        "label more frames of the rarer kind"
        if what == "labels"
        else "the reward scores almost every frame alike; check the prompts"
    )
    return (
        f"{phrase} ({dropped} of {n_boot} bootstrap resamples had constant rewards or labels, "
        f"more than {max_dropped_fraction:.0%}); an interval needs at least "
        f"{max(need, rare + 1)} of each kind: {fix}"
    )


def evaluate_epic(
    rewards: npt.ArrayLike,
    labels: npt.ArrayLike,
    weights: npt.ArrayLike | None = None,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int | None = 0,
) -> EpicResult:
    """EPIC distance of a reward to labels with its bootstrap confidence interval.

    Args:
        rewards: 1-D array of n ≥ 2 finite rewards.
        labels: 1-D array of n labels (binary or graded).
        weights: Optional non-negative weight per state.
        n_boot: Number of bootstrap resamples; 0 skips the interval.
        level: Confidence level of the interval.
        seed: Seed of the bootstrap.

    Returns:
        An :class:`EpicResult`.

    Raises:
        ConstantRewardError: One side is constant, or too many resamples were.
        ValueError: Invalid inputs or parameters.

    Example::

        >>> result = evaluate_epic([0.1, 0.2, 0.7, 0.9, 0.3, 0.8], [0, 0, 1, 1, 0, 1], n_boot=0)
        >>> round(result.epic_distance, 4), result.n, result.ci_low
        (0.1325, 6, None)
    """
    xv, yv, w = _prepare(rewards, labels, weights, _REWARDS, _LABELS)
    distance = _pearson_distance(xv, yv, w, _REWARDS, _LABELS, "EPIC distance")
    if n_boot == 0:
        return EpicResult(epic_distance=distance, n=int(xv.shape[0]))
    low, high = bootstrap_ci(xv, yv, n_boot=n_boot, level=level, seed=seed, weights=w)
    return EpicResult(epic_distance=distance, n=int(xv.shape[0]), ci_low=low, ci_high=high)


# --------------------------------------------------------------------------------------------
# Transition rewards
# --------------------------------------------------------------------------------------------


def _evaluate(reward_fn: RewardFn, s: np.ndarray, a: np.ndarray, s_next: np.ndarray) -> np.ndarray:
    rewards = np.asarray(reward_fn(s, a, s_next), dtype=np.float64)
    if rewards.shape != (s.shape[0],):
        raise ValueError(
            f"reward function {getattr(reward_fn, '__name__', reward_fn)!r} returned shape "
            f"{rewards.shape} for a batch of {s.shape[0]} transitions; expected "
            f"({s.shape[0]},)"
        )
    if not np.isfinite(rewards).all():
        raise ValueError(
            f"reward function {getattr(reward_fn, '__name__', reward_fn)!r} returned "
            "non-finite rewards"
        )
    return rewards


def _mean_over_samples(
    reward_fn: RewardFn,
    query_states: np.ndarray,
    samples_s: np.ndarray,
    samples_a: np.ndarray,
    batch_size: int,
) -> np.ndarray:
    """g(x) = E[R(x, A, S′)] for every query state x, with A and S′ independent and uniform
    over their samples: every (action, next-state) sample pair is evaluated."""
    n_pairs = samples_a.shape[0] * samples_s.shape[0]
    pair_actions = np.repeat(samples_a, samples_s.shape[0], axis=0)
    pair_next = np.tile(samples_s, (samples_a.shape[0],) + (1,) * (samples_s.ndim - 1))
    states_per_batch = max(1, batch_size // n_pairs)
    means = np.empty(query_states.shape[0], dtype=np.float64)
    for start in range(0, query_states.shape[0], states_per_batch):
        chunk = query_states[start : start + states_per_batch]
        k = chunk.shape[0]
        rewards = _evaluate(
            reward_fn,
            np.repeat(chunk, n_pairs, axis=0),
            np.tile(pair_actions, (k,) + (1,) * (pair_actions.ndim - 1)),
            np.tile(pair_next, (k,) + (1,) * (pair_next.ndim - 1)),
        )
        means[start : start + k] = rewards.reshape(k, n_pairs).mean(axis=1)
    return means


def _check_transitions(
    states: npt.ArrayLike, actions: npt.ArrayLike, next_states: npt.ArrayLike
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    s, a, s_next = np.asarray(states), np.asarray(actions), np.asarray(next_states)
    if s.ndim == 0 or a.ndim == 0 or s_next.ndim == 0:
        raise ValueError("states, actions and next_states must be arrays with one row each")
    if s.shape[0] == 0:
        raise ValueError("no transitions given")
    if not s.shape[0] == a.shape[0] == s_next.shape[0]:
        raise ValueError(
            "states, actions and next_states must have the same number of rows, got "
            f"{s.shape[0]}, {a.shape[0]} and {s_next.shape[0]}"
        )
    if s.shape[1:] != s_next.shape[1:]:
        raise ValueError(
            f"states and next_states must have the same row shape, got {s.shape[1:]} and "
            f"{s_next.shape[1:]}"
        )
    return s, a, s_next


def _canonicalize(
    reward_fn: RewardFn,
    states: npt.ArrayLike,
    actions: npt.ArrayLike,
    next_states: npt.ArrayLike,
    gamma: float,
    samples_s: npt.ArrayLike,
    samples_a: npt.ArrayLike,
    batch_size: int,
) -> tuple[np.ndarray, float]:
    """:func:`canonicalize` plus the largest reward magnitude involved (for tolerances)."""
    s, a, s_next = _check_transitions(states, actions, next_states)
    samples_s = np.asarray(samples_s)
    samples_a = np.asarray(samples_a)
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(f"gamma must be in [0, 1], got {gamma}")
    if samples_s.ndim == 0 or samples_s.shape[0] == 0 or samples_s.shape[1:] != s.shape[1:]:
        raise ValueError(
            f"samples_s must be a non-empty array of states with row shape {s.shape[1:]}, "
            f"got shape {samples_s.shape}"
        )
    if samples_a.ndim == 0 or samples_a.shape[0] == 0 or samples_a.shape[1:] != a.shape[1:]:
        raise ValueError(
            f"samples_a must be a non-empty array of actions with row shape {a.shape[1:]}, "
            f"got shape {samples_a.shape}"
        )
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")

    n = s.shape[0]
    # One pass of g over s, s′ and the state samples covers all three expectations:
    # E[R(S, A, S′)] is the mean of g over S.
    query = np.concatenate([s, s_next, samples_s], axis=0)
    g = _mean_over_samples(reward_fn, query, samples_s, samples_a, batch_size)
    g_s, g_next, g_samples = g[:n], g[n : 2 * n], g[2 * n :]
    rewards = _evaluate(reward_fn, s, a, s_next)
    canonical = rewards + gamma * g_next - g_s - gamma * float(g_samples.mean())
    scale = max(float(np.abs(rewards).max()), float(np.abs(g).max()))
    return canonical, scale


def canonicalize(
    reward_fn: RewardFn,
    states: npt.ArrayLike,
    actions: npt.ArrayLike,
    next_states: npt.ArrayLike,
    gamma: float,
    samples_s: npt.ArrayLike,
    samples_a: npt.ArrayLike,
    batch_size: int = 1 << 16,
) -> np.ndarray:
    """Sampled EPIC canonicalization of a transition reward.

    C(R)(s, a, s′) = R(s, a, s′) + E[γR(s′, A, S′) − R(s, A, S′) − γR(S, A, S′)], with S, S′
    drawn independently and uniformly from ``samples_s`` (D_S) and A uniformly from
    ``samples_a`` (D_A). The expectations are exact averages over all sample combinations, so
    the result is exactly invariant to potential shaping γΦ(s′) − Φ(s) when both rewards are
    canonicalized with the same samples.

    Cost: (2N + m_s) · m_a · m_s reward evaluations for N transitions, m_s state samples and
    m_a action samples, in batches of about ``batch_size``.

    Args:
        reward_fn: Vectorized reward, ``reward_fn(states, actions, next_states) -> (B,)``.
        states: (N, ...) states s of the transitions to canonicalize.
        actions: (N, ...) actions a.
        next_states: (N, ...) next states s′, same row shape as ``states``.
        gamma: Discount factor in [0, 1].
        samples_s: (m_s, ...) state samples from D_S, same row shape as ``states``.
        samples_a: (m_a, ...) action samples from D_A, same row shape as ``actions``.
        batch_size: Approximate number of transitions per reward-function call.

    Returns:
        (N,) float64 canonicalized rewards.

    Raises:
        ValueError: Mismatched shapes, empty samples, gamma outside [0, 1], or a reward
            function that returns the wrong shape or non-finite values.

    Example::

        >>> states = np.array([[0.0], [1.0], [2.0]])
        >>> actions = np.zeros((3, 1))
        >>> def shaping(s, a, s_next):  # γΦ(s′) − Φ(s) with Φ(s) = s, γ = 1: canonicalises to 0
        ...     return s_next[:, 0] - s[:, 0]
        >>> canonical = canonicalize(shaping, states, actions, states + 1, 1.0, states, actions)
        >>> canonical.round(12).tolist()
        [0.0, 0.0, 0.0]
    """
    canonical, _ = _canonicalize(
        reward_fn, states, actions, next_states, gamma, samples_s, samples_a, batch_size
    )
    return canonical


def epic_distance_transitions(
    reward_fn_a: RewardFn,
    reward_fn_b: RewardFn,
    states: npt.ArrayLike,
    actions: npt.ArrayLike,
    next_states: npt.ArrayLike,
    gamma: float,
    n_samples: int = 32,
    seed: int | None = 0,
    samples_s: npt.ArrayLike | None = None,
    samples_a: npt.ArrayLike | None = None,
    weights: npt.ArrayLike | None = None,
    batch_size: int = 1 << 16,
) -> float:
    """EPIC distance between two transition reward functions.

    Both rewards are canonicalized with the same samples (:func:`canonicalize`) and compared by
    Pearson distance over the given transitions (the coverage distribution D).

    By default D_S and D_A are the empirical distributions of the given transitions:
    ``n_samples`` states are drawn from the pooled ``states`` and ``next_states`` and
    ``n_samples`` actions from ``actions``. Pass ``samples_s`` / ``samples_a`` to use other
    distributions (e.g. uniform over a grid).

    Args:
        reward_fn_a: Vectorized reward, ``reward_fn(states, actions, next_states) -> (B,)``.
        reward_fn_b: The reward to compare with.
        states: (N, ...) states of the coverage transitions, N ≥ 2.
        actions: (N, ...) actions.
        next_states: (N, ...) next states.
        gamma: Discount factor in [0, 1].
        n_samples: Number of state and of action samples drawn when not given.
        seed: Seed for drawing the samples.
        samples_s: Optional (m_s, ...) state samples from D_S.
        samples_a: Optional (m_a, ...) action samples from D_A.
        weights: Optional non-negative weight per transition in the Pearson distance.
        batch_size: Approximate number of transitions per reward-function call.

    Returns:
        The EPIC distance in [0, 1].

    Raises:
        ConstantRewardError: A canonicalized reward is constant over the transitions (e.g. a
            reward that is pure potential shaping).
        ValueError: Invalid inputs (see :func:`canonicalize`).

    Example::

        >>> rng = np.random.default_rng(0)
        >>> s, a = rng.normal(size=(50, 2)), rng.normal(size=(50, 1))
        >>> s_next = rng.normal(size=(50, 2))
        >>> def reach(s, a, s_next):
        ...     return -np.abs(s_next).sum(axis=1)
        >>> def reach_shaped(s, a, s_next):  # the same reward plus potential shaping (γ = 0.9)
        ...     return reach(s, a, s_next) + 0.9 * s_next[:, 0] - s[:, 0]
        >>> round(epic_distance_transitions(reach, reach_shaped, s, a, s_next, gamma=0.9), 6)
        0.0
    """
    s, a, s_next = _check_transitions(states, actions, next_states)
    rng = np.random.default_rng(seed)
    if (samples_s is None or samples_a is None) and n_samples < 1:
        raise ValueError(f"n_samples must be positive, got {n_samples}")
    if samples_s is None:
        pool = np.concatenate([s, s_next], axis=0)
        samples_s = pool[rng.choice(pool.shape[0], n_samples, replace=n_samples > pool.shape[0])]
    if samples_a is None:
        samples_a = a[rng.choice(a.shape[0], n_samples, replace=n_samples > a.shape[0])]

    canonical_a, scale_a = _canonicalize(
        reward_fn_a, s, a, s_next, gamma, samples_s, samples_a, batch_size
    )
    canonical_b, scale_b = _canonicalize(
        reward_fn_b, s, a, s_next, gamma, samples_s, samples_a, batch_size
    )
    hint = "it is zero reward up to potential shaping and scale on these transitions"
    side_a = _Side("reward_fn_a", "the canonicalized reward_fn_a is constant, every value is", hint)
    side_b = _Side("reward_fn_b", "the canonicalized reward_fn_b is constant, every value is", hint)
    # Pure shaping canonicalizes to a constant only up to rounding, so "constant" here means
    # a spread at the level of floating-point error of the rewards that produced it.
    for canonical, scale, side in ((canonical_b, scale_b, side_b), (canonical_a, scale_a, side_a)):
        if np.ptp(canonical) <= _CANONICAL_CONSTANT_RTOL * scale:
            raise _constant_error(side, float(canonical[0]), "EPIC distance")
    xv, yv, w = _prepare(canonical_a, canonical_b, weights, side_a, side_b)
    return _pearson_distance(xv, yv, w, side_a, side_b, "EPIC distance")
