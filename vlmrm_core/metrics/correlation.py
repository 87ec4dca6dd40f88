"""Pearson correlation, the one implementation behind EPIC, the prompt sweep, the bootstrap, the
reward–label mismatches and the Prompt Lab's reward agreement.

Everything works along the last axis, so one call scores a single reward (shape ``(N,)``) or a
whole matrix of rewards (shape ``(K, N)``, one reward per row) against one label vector, which
broadcasts. With u and v the centred vectors scaled to unit (weighted) norm:

    ρ = Σ w u v,    1 − ρ = Σ w (u − v)² / 2,    D_ρ = sqrt((1 − ρ) / 2)

The second identity gives the Pearson distance without cancellation near ρ = 1, and its terms
are each state's share of 1 − ρ (:func:`vlmrm_core.services.evaluation.reward_label_mismatches`).

Validation (finite values, names of the constant side in error messages) belongs to the callers
that know what the inputs are; these functions only compute.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["Pearson", "pearson", "standardize"]


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


def _weighted_sum(weights: np.ndarray | None, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Σ w·a·b along the last axis in one pass without temporaries (no weights: Σ a·b)."""
    if weights is None:
        return np.einsum("...n,...n->...", a, b)
    return np.einsum("...n,...n,...n->...", weights, a, b)
