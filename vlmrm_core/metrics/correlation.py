"""Pearson correlation, the one implementation behind EPIC, the prompt search, the bootstrap, the
reward–label mismatches and the Prompt Lab's reward agreement; and Spearman's rank correlation
(Pearson on average ranks), the one behind the Prompt Lab's agreement and EPIC vs final return.

Everything works along the last axis, so one call scores a single reward (shape ``(N,)``) or a
whole matrix of rewards (shape ``(K, N)``, one reward per row) against one label vector, which
broadcasts. With u and v the centred vectors scaled to unit (weighted) norm:

    ρ = Σ w u v,    1 − ρ = Σ w (u − v)² / 2,    D_ρ = sqrt((1 − ρ) / 2)

The second identity gives the Pearson distance without cancellation near ρ = 1, and its terms
are each state's share of 1 − ρ (:func:`vlmrm_core.services.evaluation.reward_label_mismatches`).

Validation (finite values, names of the constant side in error messages) belongs to the callers
that know what the inputs are; these functions only compute. The exception is :func:`spearman`,
which takes loosely typed pairs (None for a missing value) and has one rule for "undefined".

Example::

    >>> result = pearson([1.0, 2.0, 3.0, 4.0], [2.0, 4.0, 6.0, 8.0])
    >>> float(result.rho), float(result.distance), bool(result.defined)
    (1.0, 0.0, True)
    >>> spearman([1.0, 2.0, 3.0, 4.0], [1.0, 8.0, 27.0, 64.0])  # monotone: ranks agree
    1.0
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["Pearson", "average_ranks", "pearson", "spearman", "standardize"]


def standardize(
    values: npt.ArrayLike,
    weights: npt.ArrayLike | None = None,
    *,
    constant_rtol: float = 0.0,
    overwrite: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Centre each row (last axis) on its weighted mean and scale it to unit weighted norm.

    Subtracting the midpoint of the range first is exact for values close to it (Sterbenz), so a
    small spread on a large offset (1e10 + 1e-5) keeps its precision. Rows of extreme magnitude
    are then divided by their half-range, which keeps every value within [-1, 1], so sums of
    squares neither overflow (values near 1e308) nor underflow (values near 1e-200).

    Args:
        values: ``(..., N)`` finite numbers.
        weights: optional non-negative weights broadcasting against ``values`` (e.g. ``(N,)``).
        constant_rtol: a row whose range is at most this fraction of its magnitude (at least 1)
            counts as constant; 0 means only exactly equal values (or zero weighted variance).
        overwrite: ``values`` is a float64 array the caller no longer needs: ``u`` reuses its
            memory (saves an allocation per call in the bootstrap).

    Returns:
        ``(u, constant)``: ``u`` float64 of the shape of ``values`` with Σ w u = 0 and
        Σ w u² = 1 per row (all zeros in a constant row); ``constant`` a bool array of the
        leading shape.

    Example::

        >>> u, constant = standardize([[1.0, 2.0, 3.0], [5.0, 5.0, 5.0]])
        >>> u.round(4).tolist(), constant.tolist()
        ([[-0.7071, 0.0, 0.7071], [0.0, 0.0, 0.0]], [False, True])
    """
    array = np.asarray(values, dtype=np.float64)
    low = array.min(axis=-1, keepdims=True)
    high = array.max(axis=-1, keepdims=True)
    # Halving before adding/subtracting cannot overflow, unlike (high - low).
    half = high / 2 - low / 2
    scale = np.maximum(np.maximum(np.abs(low), np.abs(high)), 1.0)
    constant = half <= 0.5 * constant_rtol * scale
    if overwrite and array is values:
        scaled = np.subtract(array, low / 2 + high / 2, out=array)
    else:
        scaled = array - (low / 2 + high / 2)
    if not np.all((half > 1e-100) & (half < 1e100)):
        # Only extreme magnitudes need the rescaling (it changes no correlation).
        scaled /= np.where(constant, 1.0, half)
    if weights is None:
        scaled -= scaled.mean(axis=-1, keepdims=True)
        norm_sq = np.einsum("...n,...n->...", scaled, scaled)[..., None]
    else:
        w = np.asarray(weights, dtype=np.float64)
        total = np.einsum("...n,...n->...", np.broadcast_to(w, scaled.shape), scaled)
        scaled -= total[..., None] / w.sum(axis=-1, keepdims=True)
        norm_sq = _weighted_sum(w, scaled, scaled)[..., None]
    # Non-equal values whose spread vanishes in floating point are as constant as the data can
    # tell.
    constant |= norm_sq <= 0.0
    scaled /= np.sqrt(np.where(constant, 1.0, norm_sq))
    if constant.any():
        scaled *= ~constant
    return scaled, constant[..., 0]


@dataclass(frozen=True)
class Pearson:
    """Pearson correlations of rows of rewards with labels, and their Pearson distances.

    Attributes:
        rho: ρ in [-1, 1] per row; NaN where ``defined`` is False.
        distance: D_ρ = sqrt((1 − ρ) / 2) in [0, 1] per row, computed without cancellation near
            ρ = 1; NaN where ``defined`` is False.
        defined: False where either side is constant (ρ is 0/0 there).
        x_constant: the first input is constant (per row).
        y_constant: the second input is constant (per row).
    """

    rho: np.ndarray
    distance: np.ndarray
    defined: np.ndarray
    x_constant: np.ndarray
    y_constant: np.ndarray


def pearson(
    x: npt.ArrayLike,
    y: npt.ArrayLike,
    weights: npt.ArrayLike | None = None,
    *,
    constant_rtol: float = 0.0,
    overwrite: bool = False,
) -> Pearson:
    """Pearson correlation and distance of x and y along the last axis.

    ``x`` of shape ``(K, N)`` and ``y`` of shape ``(N,)`` correlates each of K rewards with one
    label vector; ``(N,)`` with ``(N,)`` gives 0-d results; equal shapes pair rows up (the
    bootstrap's resamples).

    Args:
        x: ``(..., N)`` finite numbers.
        y: ``(..., N)`` finite numbers, broadcasting against ``x``.
        weights: optional non-negative weights broadcasting against both (an integer weight k
            counts the element k times).
        constant_rtol: see :func:`standardize`.
        overwrite: x and y are float64 arrays the caller no longer needs (see
            :func:`standardize`).

    Returns:
        A :class:`Pearson` whose arrays have the broadcast leading shape.

    Example::

        >>> rewards = [[0.1, 0.2, 0.3, 0.4], [0.4, 0.3, 0.2, 0.1], [0.5, 0.5, 0.5, 0.5]]
        >>> result = pearson(rewards, [0.0, 0.0, 1.0, 1.0])  # three rewards, one label vector
        >>> result.rho.round(3).tolist()
        [0.894, -0.894, nan]
        >>> result.defined.tolist(), result.x_constant.tolist()
        ([True, True, False], [False, False, True])
        >>> float(pearson([1.0, 2.0, 3.0], [1.0, 2.0, 3.5]).distance.round(4))
        0.0574
    """
    u, x_constant = standardize(x, weights, constant_rtol=constant_rtol, overwrite=overwrite)
    v, y_constant = standardize(y, weights, constant_rtol=constant_rtol, overwrite=overwrite)
    w = None if weights is None else np.asarray(weights, dtype=np.float64)
    rho = np.clip(_weighted_sum(w, u, v), -1.0, 1.0)
    defined = ~(x_constant | y_constant)
    distance = np.array(np.sqrt((1.0 - rho) / 2.0))
    near = rho > 0.5
    if np.any(near):
        # Near ρ = 1, 1 − ρ cancels to rounding noise that the square root magnifies; ‖u − v‖/2
        # has no cancellation. Only the rows that need it pay for it.
        shape = np.broadcast_shapes(u.shape, v.shape)
        if near.ndim == 0:
            gap, w_near = u - v, w
        else:
            gap = np.broadcast_to(u, shape)[near] - np.broadcast_to(v, shape)[near]
            w_near = None if w is None else np.broadcast_to(w, shape)[near]
        distance[near] = np.minimum(1.0, np.sqrt(_weighted_sum(w_near, gap, gap)) / 2.0)
    return Pearson(
        rho=np.where(defined, rho, np.nan),
        distance=np.where(defined, distance, np.nan),
        defined=np.asarray(defined),
        x_constant=np.broadcast_to(x_constant, defined.shape),
        y_constant=np.broadcast_to(y_constant, defined.shape),
    )


def average_ranks(values: npt.ArrayLike) -> np.ndarray:
    """Ranks 1..N along the last axis, ties sharing the average of their ranks.

    The ranking behind :func:`spearman` (``scipy.stats.rankdata``'s default, without SciPy).

    Example::

        >>> average_ranks([30.0, 10.0, 20.0, 10.0]).tolist()
        [4.0, 1.5, 3.0, 1.5]
    """
    array = np.asarray(values, dtype=np.float64)
    if array.ndim == 0:
        raise ValueError("ranks need a vector, got a scalar")
    order = np.argsort(array, axis=-1, kind="stable")
    sorted_values = np.take_along_axis(array, order, axis=-1)
    n = array.shape[-1]
    # A tie run spans positions first..last (0-based) of the sorted row; each member gets the
    # mean of ranks first+1..last+1.
    starts = np.ones(sorted_values.shape, dtype=bool)
    starts[..., 1:] = sorted_values[..., 1:] != sorted_values[..., :-1]
    positions = np.broadcast_to(np.arange(n), sorted_values.shape)
    first = np.maximum.accumulate(np.where(starts, positions, 0), axis=-1)
    ends = np.ones(sorted_values.shape, dtype=bool)
    ends[..., :-1] = starts[..., 1:]
    last = np.flip(
        np.minimum.accumulate(np.flip(np.where(ends, positions, n), axis=-1), axis=-1), axis=-1
    )
    ranks = np.empty_like(array)
    np.put_along_axis(ranks, order, (first + last) / 2.0 + 1.0, axis=-1)
    return ranks


def spearman(
    x: Sequence[float | None] | npt.ArrayLike, y: Sequence[float | None] | npt.ArrayLike
) -> float | None:
    """Spearman's rank correlation of the pairs where both values are finite.

    Pearson's ρ of the average ranks (:func:`average_ranks`), as ``scipy.stats.spearmanr``.
    The one rule for "undefined": pairs with a missing (None) or non-finite side are dropped
    first; with fewer than 2 pairs left, or with either side constant over them, the result is
    None (0/0). Callers that need more pairs for the result to mean something (two points always
    give ±1) check that themselves.

    Args:
        x: N values (None, NaN or ±inf for missing).
        y: N values paired with ``x``.

    Returns:
        ρ in [-1, 1], or None where it is undefined.

    Raises:
        ValueError: x and y differ in length.

    Example::

        >>> spearman([0.1, 0.4, 0.2, 0.8], [1.0, 3.0, 2.0, 2.5])
        0.8
        >>> round(spearman([1.0, None, 3.0, float("nan")], [2.0, 5.0, 1.0, 0.0]), 12)  # 2 pairs
        -1.0
        >>> spearman([1.0, 2.0, 3.0], [7.0, 7.0, 7.0]) is None  # constant side
        True
    """
    a, b = _floats_or_nan(x), _floats_or_nan(y)
    if a.shape != b.shape:
        raise ValueError(f"spearman needs paired values, got {len(a)} and {len(b)}")
    kept = np.isfinite(a) & np.isfinite(b)
    if kept.sum() < 2:
        return None
    result = pearson(average_ranks(a[kept]), average_ranks(b[kept]))
    return float(result.rho) if bool(result.defined) else None


def _floats_or_nan(values: Sequence[float | None] | npt.ArrayLike) -> np.ndarray:
    """A float64 vector, None read as NaN (the fast path for arrays has no None to look for)."""
    try:
        return np.asarray(values, dtype=np.float64).ravel()
    except TypeError:
        items = np.asarray(values, dtype=object).ravel()
        return np.array([np.nan if v is None else v for v in items], dtype=np.float64)


def _weighted_sum(weights: np.ndarray | None, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Σ w·a·b along the last axis in one pass without temporaries (no weights: Σ a·b)."""
    if weights is None:
        return np.einsum("...n,...n->...", a, b)
    return np.einsum("...n,...n,...n->...", weights, a, b)
