"""Adapted rewards: a linear reward fitted to human labels on cached image embeddings.

A prompt's reward is (to first order) a direction in embedding space. With labels we can fit a
better direction, but a handful of labels must not throw the prompt away. The adapted reward
``R(x) = x·w + b`` on the L2-normalised image embedding ``x`` minimises

    Σᵢ (xᵢ·w + b − yᵢ)² + λ ‖w − s·w₀‖²,   s ≥ 0,

where ``w₀`` is the prompt's own direction (unit length, :func:`prior_direction`) and the scale
``s`` and bias ``b`` are free: with λ → ∞ the reward is the prompt's direction rescaled to the
labels, with λ → 0 it is a plain least-squares probe. λ is chosen by grouped cross-validation
inside the training labels, so few or noisy labels move the reward only as far as they justify.
The *plain probe* (``prior=None``) is the same fit pulled toward 0 instead of toward the prompt.

Evaluation is honest: :func:`cross_validate_adaptation` fits on k − 1 folds and predicts the
held-out fold, with folds made of whole *groups* (:func:`frame_groups`: an episode, a video, a
block of neighbouring sweep points; frames with the same pixels are always in one group), so no
near-copy of a test frame is ever trained on. Held-out rewards of every fold are pooled and
compared with the labels by the project's metrics (EPIC distance with a bootstrap interval,
average precision, ROC AUC).

Everything here is a pure function on numpy arrays; no torch, no database.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import numpy as np

from vlmrm_core.errors import InvalidInputError, VlmrmError
from vlmrm_core.metrics import (
    SUCCESS_THRESHOLD,
    ConstantRewardError,
    RewardMetrics,
    pearson,
    reward_metrics,
)
from vlmrm_core.metrics.pairs import PairAccuracy, clip_sums, pair_accuracy
from vlmrm_core.reward.file import Provenance
from vlmrm_core.reward.spec import RewardSpec

__all__ = [
    "adaptation_provenance",
    "adapted_spec",
    "AdaptationError",
    "AdaptationReport",
    "AdaptedFit",
    "RewardMetrics",
    "LearningCurve",
    "MembershipLike",
    "cross_validate_adaptation",
    "cross_validate_preferences",
    "fit_preference",
    "pair_folds",
    "preference_covariance",
    "preference_provenance",
    "PreferenceReport",
    "cross_validated_rewards",
    "fit_adapted",
    "frame_groups",
    "grouped_folds",
    "held_out_metrics",
    "learning_curve",
    "prior_direction",
]

"""A label at or above this counts as a success (AP, ROC AUC, fold stratification)."""

LAMBDA_STEPS = np.logspace(-3.0, 3.0, 13)
"""The λ grid, in units of the mean squared singular value of the training embeddings."""

MIN_LABELS = 4
"""Fewer training labels than this (or labels that do not vary) keep the prompt's direction."""


class AdaptationError(VlmrmError, ValueError):
    """Labels or embeddings that cannot be adapted to; the message says what to do."""


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Run many small (≤ a few thousand rows) matrix products on one BLAS thread.

    Cross-validation does hundreds of small decompositions; BLAS threads only add overhead
    there, and on a busy machine they make it many times slower.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


# --------------------------------------------------------------------------------------------
# The prior: a prompt's own direction
# --------------------------------------------------------------------------------------------


def prior_direction(
    goal: np.ndarray,
    baseline: np.ndarray | None = None,
    alpha: float = 0.0,
    embeddings: np.ndarray | None = None,
) -> np.ndarray:
    """The unit direction along which a goal-baseline reward grows (the adaptation's prior).

    The regularised reward (Rocamonde Def. 1) on unit x is, up to a constant,
    ``keep·x·g − ½(1 − keep)((x − g)·d̂)²`` with ``keep = (1 − α)²`` and ``d̂`` the unit
    goal − baseline direction. Its linear part is ``keep·g``; the quadratic part is linearised
    at the mean embedding x̄: ``(1 − keep)((g − x̄)·d̂) d̂``. So α = 0 gives the goal g itself
    and α = 1 gives ±d̂ (the sign that increases the reward on these frames), as in the paper.

    Args:
        goal: D-vector, mean of the normalised goal-prompt embeddings.
        baseline: D-vector, mean of the normalised baseline embeddings (needed for α > 0).
        alpha: the regularisation strength in [0, 1].
        embeddings: N×D image embeddings to linearise at (their mean); None linearises at the
            origin, i.e. along d̂ with the sign of g·d̂.

    Returns:
        The unit D-vector w₀ (float64).

    Raises:
        AdaptationError: α outside [0, 1], a missing baseline for α > 0, or a zero direction.
    """
    g = np.asarray(goal, dtype=np.float64).ravel()
    if not 0.0 <= float(alpha) <= 1.0:
        raise AdaptationError(f"α must be in [0, 1], got {alpha}")
    keep = (1.0 - float(alpha)) ** 2
    direction = keep * g
    if alpha > 0:
        if baseline is None:
            raise AdaptationError("α > 0 needs the baseline embedding to define the direction")
        d = g - np.asarray(baseline, dtype=np.float64).ravel()
        d_norm = float(np.linalg.norm(d))
        if d_norm == 0.0:
            raise AdaptationError("goal and baseline are the same: there is no direction")
        d /= d_norm
        x_mean = (
            np.zeros_like(g)
            if embeddings is None
            else np.asarray(embeddings, dtype=np.float64).mean(axis=0)
        )
        along = float((g - x_mean) @ d)
        direction = direction + (1.0 - keep) * (along if along != 0.0 else 1.0) * d
    norm = float(np.linalg.norm(direction))
    if not math.isfinite(norm) or norm == 0.0:
        raise AdaptationError("the prompt's direction is zero: check the prompts")
    return direction / norm


def _unit_prior(prior: np.ndarray | None, dim: int) -> np.ndarray | None:
    if prior is None:
        return None
    u = np.asarray(prior, dtype=np.float64).ravel()
    if u.shape[0] != dim:
        raise AdaptationError(
            f"the prompt direction has {u.shape[0]} dimensions but the embeddings have {dim}: "
            "use the prompt set's own model"
        )
    norm = float(np.linalg.norm(u))
    if not math.isfinite(norm) or norm == 0.0:
        raise AdaptationError("the prompt direction is zero or not finite")
    return u / norm


# --------------------------------------------------------------------------------------------
# Fitting
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AdaptedFit:
    """A fitted linear reward ``R(x) = x·weights + bias``."""

    weights: np.ndarray
    """D floats."""
    bias: float
    lam: float
    """The chosen regularisation strength (``inf``: the prompt's direction, only rescaled)."""
    scale: float
    """s, the weight of the prompt's direction (0 for the plain probe)."""
    n_labels: int
    note: str = ""

    def predict(self, embeddings: np.ndarray) -> np.ndarray:
        """Rewards of N×D embeddings (float64)."""
        return np.asarray(embeddings, dtype=np.float64) @ self.weights + self.bias


def cosine_to_prior(fit: AdaptedFit, prior: np.ndarray) -> float:
    """cos(w, w₀): 1 when the labels kept the prompt's direction, ≈ 0 when they replaced it."""
    w = fit.weights
    norm = float(np.linalg.norm(w) * np.linalg.norm(prior))
    return float(w @ np.asarray(prior, dtype=np.float64) / norm) if norm > 0 else 0.0


class _Solver:
    """Ridge solutions for a whole λ grid from one eigendecomposition.

    With the unpenalised columns Z (the prior's projection X·w₀ and the intercept) projected
    out, the penalised part v = w − s·w₀ is an ordinary ridge solution; then (s, b) is the
    least-squares fit of the rest. When the unconstrained s is negative the constrained optimum
    has s = 0 (the objective is a convex quadratic), which is the fit without the prior column.
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, prior: np.ndarray | None) -> None:
        self.x, self.y, self.prior = x, y, prior
        self.full = _Projected(x, y, prior)
        self._intercept_only: _Projected | None = None

    def coefficients(self, lams: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Weights (D×L), biases (L) and prior scales (L) for each λ (``inf`` allowed)."""
        w, b, s = self.full.solve(lams)
        negative = s < 0
        if negative.any():
            if self._intercept_only is None:
                self._intercept_only = _Projected(self.x, self.y, None)
            w2, b2, _ = self._intercept_only.solve(lams[negative])
            w[:, negative], b[negative], s[negative] = w2, b2, 0.0
        return w, b, s


class _Projected:
    """Ridge on X and y with the unpenalised columns projected out, via the eigenvectors of the
    smaller Gram matrix (X̃X̃ᵀ when N ≤ D, else X̃ᵀX̃)."""

    def __init__(self, x: np.ndarray, y: np.ndarray, prior: np.ndarray | None) -> None:
        n, dim = x.shape
        columns = [np.ones(n)]
        self.prior = prior
        if prior is not None:
            px = x @ prior
            # A prior whose projection doesn't vary over these frames can't be scaled.
            if float(np.ptp(px)) > 1e-12:
                columns.insert(0, px)
            else:
                self.prior = None
        z = np.stack(columns, axis=1)
        q, _ = np.linalg.qr(z)
        self.z, self.x, self.y = z, x, y
        x_res = x - q @ (q.T @ x)
        y_res = y - q @ (q.T @ y)
        self.dual = n <= dim
        gram = x_res @ x_res.T if self.dual else x_res.T @ x_res
        eigenvalues, vectors = np.linalg.eigh(gram)
        top = float(eigenvalues.max()) if eigenvalues.size else 0.0
        keep = eigenvalues > max(top, 1e-300) * 1e-10
        self.s2, self.vectors = eigenvalues[keep], vectors[:, keep]
        if self.dual:
            self.x_res_t = x_res.T
            self.projected_y = self.vectors.T @ y_res
        else:
            self.projected_y = self.vectors.T @ (x_res.T @ y_res)
        self.base = float(self.s2.mean()) if self.s2.size else 1.0

    def solve(self, lams: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        lams = np.asarray(lams, dtype=np.float64)
        finite = np.isfinite(lams)
        shrunk = np.zeros((self.s2.size, lams.size))
        if finite.any():
            shrunk[:, finite] = self.projected_y[:, None] / (self.s2[:, None] + lams[None, finite])
        # D×L: in the dual form the weights are X̃ᵀ times the sample coefficients.
        v = self.x_res_t @ (self.vectors @ shrunk) if self.dual else self.vectors @ shrunk
        rest = self.y[:, None] - self.x @ v
        coef, *_ = np.linalg.lstsq(self.z, rest, rcond=None)
        if self.prior is not None:
            s, b = coef[0], coef[1]
            w = v + self.prior[:, None] * s[None, :]
        else:
            b = coef[0]
            s = np.zeros(lams.size)
            w = v
        return w, b.copy(), s.copy()


def fit_adapted(
    embeddings: np.ndarray,
    labels: np.ndarray,
    prior: np.ndarray | None,
    *,
    groups: np.ndarray | None = None,
    inner_folds: int = 5,
    lam: float | None = None,
    seed: int = 0,
) -> AdaptedFit:
    """Fit the adapted reward (or, with ``prior=None``, the plain probe) to labels.

    Args:
        embeddings: N×D L2-normalised image embeddings.
        labels: N labels in [0, 1] (binary or graded).
        prior: the prompt's direction w₀ (any positive length), or None for the plain probe.
        groups: N group ids for the inner cross-validation that picks λ (frames of one group
            are never split); None treats every frame as its own group.
        inner_folds: folds of that inner cross-validation.
        lam: use this λ instead of cross-validating (``inf``: the prompt's direction only).
        seed: fold shuffling seed.

    Returns:
        The fit. With fewer than :data:`MIN_LABELS` labels, or labels that don't vary, the
        reward is the prompt's direction as it is (the probe: all-zero weights) and the note
        says so.

    Raises:
        AdaptationError: mismatched shapes or non-finite values.
    """
    x, y = _check_xy(embeddings, labels)
    u = _unit_prior(prior, x.shape[1])
    n = x.shape[0]
    if n < MIN_LABELS or float(np.ptp(y)) == 0.0:
        why = (
            f"only {n} label{'s' if n != 1 else ''}" if n < MIN_LABELS else "the labels don't vary"
        )
        return _unfitted(u, x.shape[1], n, why, bias=float(y.mean()) if n else 0.0)
    solver = _Solver(x, y, u)
    grid = _lambda_grid(solver.full.base, with_prior=u is not None)
    if lam is None:
        lam = _choose_lambda(x, y, u, grid, groups, inner_folds, seed)
    w, b, s = solver.coefficients(np.array([lam]))
    return AdaptedFit(w[:, 0], float(b[0]), float(lam), float(s[0]), n)


def _unfitted(u: np.ndarray | None, dim: int, n: int, why: str, *, bias: float) -> AdaptedFit:
    """The fit when there is too little to fit: the prompt's direction as it is (λ = ∞), or
    without a prompt all-zero weights with ``bias`` (the plain probe's constant reward)."""
    if u is None:
        return AdaptedFit(np.zeros(dim), bias, math.inf, 0.0, n, f"{why}: nothing to fit")
    return AdaptedFit(u.copy(), 0.0, math.inf, 1.0, n, f"{why}: kept the prompt's direction")


def _strongest_best_lambda(grid: np.ndarray, errors: np.ndarray) -> float:
    """The λ of ``grid`` with the lowest pooled held-out error (NaN: unusable); ties, within
    rounding of the best error, go to the strongest regularisation (the larger λ)."""
    errors = np.where(np.isnan(errors), np.inf, errors)
    best = errors.min()
    candidates = np.flatnonzero(errors <= best * (1 + 1e-9) + 1e-12)
    return float(grid[candidates.max()])


def _lambda_grid(base: float, *, with_prior: bool) -> np.ndarray:
    grid = base * LAMBDA_STEPS
    return np.append(grid, math.inf) if with_prior else grid


def _choose_lambda(
    x: np.ndarray,
    y: np.ndarray,
    prior: np.ndarray | None,
    grid: np.ndarray,
    groups: np.ndarray | None,
    inner_folds: int,
    seed: int,
) -> float:
    """The λ with the lowest pooled held-out squared error; ties go to the larger λ."""
    group_ids = np.arange(len(y)) if groups is None else np.asarray(groups)
    n_groups = len(np.unique(group_ids))
    k = min(inner_folds, n_groups)
    if k < 2:
        return float(grid[-1])
    squared = np.zeros(grid.size)
    for train, test in grouped_folds(y, group_ids, k, seed=seed):
        if len(train) < 2 or float(np.ptp(y[train])) == 0.0:
            pred = np.full((len(test), grid.size), float(y[train].mean()))
        else:
            w, b, s = _Solver(x[train], y[train], prior).coefficients(grid)
            pred = x[test] @ w + b[None, :]
            # λ = ∞ with the prompt's direction clamped away is a constant reward: no use.
            pred[:, ~np.isfinite(grid) & (s <= 0)] = np.nan
        squared += ((pred - y[test, None]) ** 2).sum(axis=0)
    return _strongest_best_lambda(grid, squared)


def _check_xy(embeddings: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(embeddings, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    if x.ndim != 2:
        raise AdaptationError(f"embeddings must be an N×D matrix, got shape {x.shape}")
    if y.ndim != 1 or y.shape[0] != x.shape[0]:
        raise AdaptationError(f"{x.shape[0]} embeddings for {y.size} labels")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise AdaptationError("embeddings or labels contain NaN or infinite values")
    return x, y


# --------------------------------------------------------------------------------------------
# Groups and folds
# --------------------------------------------------------------------------------------------


class MembershipLike(Protocol):
    """The provenance of one frame membership (``vlmrm_core.store.FrameInfo`` fits)."""

    @property
    def hash(self) -> str: ...
    @property
    def name(self) -> str | None: ...
    @property
    def source(self) -> str: ...
    @property
    def env_id(self) -> str | None: ...
    @property
    def episode(self) -> int | None: ...
    @property
    def param_name(self) -> str | None: ...
    @property
    def param_value(self) -> float | None: ...


def frame_groups(
    hashes: Sequence[str],
    memberships: Sequence[MembershipLike],
    *,
    sweep_block: int | None = 5,
) -> np.ndarray:
    """Group ids for labelled frames, so that near-copies never straddle train and test.

    A membership's group is its episode (same source, environment and episode number), its
    video (``clip.mp4#12`` → ``clip.mp4``), or for state sweeps a block of ``sweep_block``
    neighbouring sweep values (neighbouring sweep points look almost alike; with
    ``sweep_block=None`` a whole sweep is one group). Anything else (an uploaded image) is a
    group of its own. Groups are then joined through frames: a frame whose pixels appear in two
    episodes (the same hash) puts both episodes, whole, into one group.

    Args:
        hashes: the labelled frames' pixel hashes (distinct).
        memberships: every membership of the dataset (several may share a hash).
        sweep_block: neighbouring sweep points per group (None: one group per sweep).

    Returns:
        len(hashes) int64 group ids, numbered 0.. in order of first appearance.
    """
    index = {h: i for i, h in enumerate(hashes)}
    if len(index) != len(hashes):
        raise AdaptationError("frame_groups needs distinct hashes")
    parent = list(range(len(hashes)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    sweep_rank = _sweep_ranks(memberships)
    first_of_key: dict[tuple[Any, ...], int] = {}
    for m_index, member in enumerate(memberships):
        i = index.get(member.hash)
        if i is None:
            continue
        key = _membership_key(member, sweep_rank.get(m_index), sweep_block)
        if key is None:
            continue
        j = first_of_key.setdefault(key, i)
        ri, rj = find(i), find(j)
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)
    roots = [find(i) for i in range(len(hashes))]
    numbering: dict[int, int] = {}
    return np.array([numbering.setdefault(r, len(numbering)) for r in roots], dtype=np.int64)


def _sweep_ranks(memberships: Sequence[MembershipLike]) -> dict[int, int]:
    """Rank of each sweep membership's value within its sweep (same env and parameter)."""
    by_sweep: dict[tuple[Any, ...], list[tuple[float, int]]] = {}
    for m_index, m in enumerate(memberships):
        if m.episode is None and m.param_name is not None and m.param_value is not None:
            by_sweep.setdefault((m.source, m.env_id, m.param_name), []).append(
                (float(m.param_value), m_index)
            )
    ranks: dict[int, int] = {}
    for values in by_sweep.values():
        distinct = sorted({v for v, _ in values})
        position = {v: r for r, v in enumerate(distinct)}
        for v, m_index in values:
            ranks[m_index] = position[v]
    return ranks


def _membership_key(
    m: MembershipLike, sweep_rank: int | None, sweep_block: int | None
) -> tuple[Any, ...] | None:
    if m.episode is not None:
        return ("episode", m.source, m.env_id, int(m.episode))
    if m.param_name is not None:
        block = 0 if sweep_block is None or sweep_rank is None else sweep_rank // sweep_block
        return ("sweep", m.source, m.env_id, m.param_name, block)
    name = m.name or ""
    if "#" in name:
        return ("video", m.source, name.rsplit("#", 1)[0])
    return None


def grouped_folds(
    labels: np.ndarray, groups: np.ndarray, k: int, *, seed: int = 0
) -> list[tuple[np.ndarray, np.ndarray]]:
    """k train/test splits with whole groups on one side, successes spread over the folds.

    Args:
        labels: N labels (binarised at 0.5 to stratify).
        groups: N group ids.
        k: folds (at most the number of groups).
        seed: shuffling seed.

    Returns:
        (train indices, test indices) per fold; every frame is in exactly one test fold.

    Raises:
        AdaptationError: fewer than 2 groups, or k < 2.
    """
    from sklearn.model_selection import GroupKFold, StratifiedGroupKFold

    y = np.asarray(labels, dtype=np.float64)
    g = np.asarray(groups)
    n_groups = len(np.unique(g))
    if k < 2:
        raise AdaptationError(f"cross-validation needs at least 2 folds, got {k}")
    if n_groups < 2:
        raise AdaptationError(
            "every labelled frame is in one episode or sweep block, so no frame can be held "
            "out honestly: label frames from at least two episodes"
        )
    k = min(k, n_groups)
    binary = (y >= SUCCESS_THRESHOLD).astype(np.int64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "least populated class has fewer members than k"
        rarer = min(int(binary.sum()), int(len(binary) - binary.sum()))
        if rarer >= k:
            splitter: Any = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
            splits = splitter.split(np.zeros(len(y)), binary, g)
        else:
            splits = GroupKFold(n_splits=k).split(np.zeros(len(y)), binary, g)
        folds = [(np.sort(tr), np.sort(te)) for tr, te in splits if len(te) and len(tr)]
    return folds


# --------------------------------------------------------------------------------------------
# Cross-validated evaluation
# --------------------------------------------------------------------------------------------


def held_out_metrics(
    rewards: np.ndarray, labels: np.ndarray, *, n_boot: int = 1000, seed: int = 0
) -> RewardMetrics:
    """:func:`vlmrm_core.metrics.reward_metrics`, with labels that can't judge a reward (a
    held-out split of one class) reported as an undefined EPIC and a note, not an error."""
    try:
        return reward_metrics(rewards, labels, n_boot=n_boot, seed=seed)
    except (ConstantRewardError, InvalidInputError) as exc:
        return RewardMetrics(int(np.size(labels)), None, note=str(exc))


def _standardised(values: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``values`` shifted and scaled by the reference's mean and spread (label-free)."""
    spread = float(reference.std())
    centre = float(reference.mean())
    return (values - centre) / spread if spread > 0 else values - centre


@dataclass(frozen=True)
class HeldOutRewards:
    """Out-of-fold rewards of every labelled frame, and what each fold chose."""

    rewards: np.ndarray
    """N held-out rewards, each fold standardised by its own training frames' rewards."""
    lambdas: tuple[float, ...]
    scales: tuple[float, ...]


def cross_validated_rewards(
    embeddings: np.ndarray,
    labels: np.ndarray,
    groups: np.ndarray,
    prior: np.ndarray | None,
    folds: Sequence[tuple[np.ndarray, np.ndarray]],
    *,
    train_subset: Mapping[int, np.ndarray] | None = None,
    inner_folds: int = 5,
    seed: int = 0,
) -> HeldOutRewards:
    """Fit on each fold's training frames and predict its held-out frames.

    Each fold's model has its own scale, so its held-out rewards are standardised by the mean
    and spread of its rewards on its own training frames (no test information is used) before
    pooling; EPIC, AP and AUC of one reward are unchanged by that affine map.

    Args:
        embeddings: N×D embeddings.
        labels: N labels.
        groups: N group ids (the inner λ search keeps groups whole too).
        prior: the prompt's direction, or None for the plain probe.
        folds: (train, test) index pairs from :func:`grouped_folds`.
        train_subset: fold number → the training indices to use instead of the whole training
            side (learning curves: the first n labels in some order).
        inner_folds: folds of the inner λ search.
        seed: fold shuffling seed.

    Returns:
        The pooled held-out rewards.
    """
    x, y = _check_xy(embeddings, labels)
    out = np.zeros(len(y))
    lambdas: list[float] = []
    scales: list[float] = []
    with single_threaded_blas():
        _fit_folds(
            x, y, groups, prior, folds, train_subset, inner_folds, seed, out, lambdas, scales
        )
    return HeldOutRewards(out, tuple(lambdas), tuple(scales))


def _fit_folds(
    x: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    prior: np.ndarray | None,
    folds: Sequence[tuple[np.ndarray, np.ndarray]],
    train_subset: Mapping[int, np.ndarray] | None,
    inner_folds: int,
    seed: int,
    out: np.ndarray,
    lambdas: list[float],
    scales: list[float],
) -> None:
    for f, (train, test) in enumerate(folds):
        used = train if train_subset is None else np.asarray(train_subset[f])
        fit = fit_adapted(
            x[used],
            y[used],
            prior,
            groups=np.asarray(groups)[used],
            inner_folds=inner_folds,
            seed=seed,
        )
        out[test] = _standardised(fit.predict(x[test]), fit.predict(x[used]))
        lambdas.append(fit.lam)
        scales.append(fit.scale)


@dataclass(frozen=True)
class LearningCurve:
    """Held-out EPIC distance against the number of labels used for fitting."""

    n_labels: tuple[int, ...]
    """Training labels per fold (at most this many; small folds may have fewer)."""
    adapted: tuple[float | None, ...]
    probe: tuple[float | None, ...]
    zero_shot: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def default_curve_sizes(n_train: int, *, start: int = 8) -> list[int]:
    """Label counts for a learning curve: start, 2·start, 4·start, … and finally all."""
    sizes = []
    size = start
    while size < n_train:
        sizes.append(size)
        size *= 2
    sizes.append(n_train)
    return sizes


def learning_curve(
    embeddings: np.ndarray,
    labels: np.ndarray,
    groups: np.ndarray,
    prior: np.ndarray | None,
    *,
    folds: int | Sequence[tuple[np.ndarray, np.ndarray]] = 5,
    sizes: Sequence[int] | None = None,
    order: np.ndarray | None = None,
    zero_shot: np.ndarray | None = None,
    include_probe: bool = True,
    inner_folds: int = 5,
    seed: int = 0,
) -> LearningCurve:
    """Held-out EPIC distance of the adapted reward (and the plain probe) vs labels used.

    In each outer fold the first n training frames of ``order`` (default: a random order)
    are labelled and fitted; held-out rewards of all folds are pooled as in
    :func:`cross_validated_rewards`.

    Args:
        embeddings: N×D embeddings.
        labels: N labels.
        groups: N group ids.
        prior: the prompt's direction (None: only the probe is meaningful).
        folds: number of outer folds, or the folds themselves.
        sizes: label counts (default :func:`default_curve_sizes`).
        order: a labelling order of all N frames (e.g. most informative first).
        zero_shot: the prompt's rewards, for the flat reference line.
        include_probe: also fit the plain probe.
        inner_folds: folds of the inner λ search.
        seed: fold and order seed.

    Returns:
        The curve; points whose EPIC is undefined are None.
    """
    with single_threaded_blas():
        return _learning_curve(
            embeddings,
            labels,
            groups,
            prior,
            folds=folds,
            sizes=sizes,
            order=order,
            zero_shot=zero_shot,
            include_probe=include_probe,
            inner_folds=inner_folds,
            seed=seed,
        )


def _learning_curve(
    embeddings: np.ndarray,
    labels: np.ndarray,
    groups: np.ndarray,
    prior: np.ndarray | None,
    *,
    folds: int | Sequence[tuple[np.ndarray, np.ndarray]],
    sizes: Sequence[int] | None,
    order: np.ndarray | None,
    zero_shot: np.ndarray | None,
    include_probe: bool,
    inner_folds: int,
    seed: int,
) -> LearningCurve:
    x, y = _check_xy(embeddings, labels)
    g = np.asarray(groups)
    fold_list = grouped_folds(y, g, folds, seed=seed) if isinstance(folds, int) else list(folds)
    if order is None:
        order = np.random.default_rng(seed).permutation(len(y))
    rank = np.empty(len(y), dtype=np.int64)
    rank[np.asarray(order)] = np.arange(len(y))
    n_train = max(len(train) for train, _ in fold_list)
    sizes = list(sizes) if sizes is not None else default_curve_sizes(n_train)
    adapted, probe = [], []
    for size in sizes:
        subsets = {
            f: train[np.argsort(rank[train], kind="stable")][:size]
            for f, (train, _) in enumerate(fold_list)
        }
        adapted.append(_pooled_epic(x, y, g, prior, fold_list, subsets, inner_folds, seed))
        probe.append(
            _pooled_epic(x, y, g, None, fold_list, subsets, inner_folds, seed)
            if include_probe
            else None
        )
    reference = None
    if zero_shot is not None:
        reference = held_out_metrics(zero_shot, y, n_boot=0).epic_distance
    return LearningCurve(tuple(int(s) for s in sizes), tuple(adapted), tuple(probe), reference)


def _pooled_epic(
    x: np.ndarray,
    y: np.ndarray,
    g: np.ndarray,
    prior: np.ndarray | None,
    folds: list[tuple[np.ndarray, np.ndarray]],
    subsets: Mapping[int, np.ndarray],
    inner_folds: int,
    seed: int,
) -> float | None:
    held = cross_validated_rewards(
        x, y, g, prior, folds, train_subset=subsets, inner_folds=inner_folds, seed=seed
    )
    return held_out_metrics(held.rewards, y, n_boot=0).epic_distance


# --------------------------------------------------------------------------------------------
# The whole report
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AdaptationReport:
    """Zero-shot vs adapted vs plain probe on held-out folds, the learning curve, and the
    adapted reward fitted on all labels (the one to save)."""

    n_labels: int
    n_groups: int
    folds: int
    zero_shot: RewardMetrics
    adapted: RewardMetrics
    probe: RewardMetrics
    fit: AdaptedFit
    """The adapted reward fitted on every label (λ chosen by grouped cross-validation)."""
    fold_lambdas: tuple[float, ...]
    curve: LearningCurve | None = None
    notes: list[str] = field(default_factory=list)

    def table(self) -> list[dict[str, Any]]:
        """One row per reward: ``reward``, ``epic_distance``, ``ci_low``, ``ci_high``,
        ``average_precision``, ``roc_auc``, ``note``."""
        rows = []
        for name, m in (
            ("zero-shot", self.zero_shot),
            ("adapted", self.adapted),
            ("plain probe", self.probe),
        ):
            rows.append({"reward": name, **{k: v for k, v in m.to_dict().items() if k != "n"}})
        return rows

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values (no arrays; infinite λ as the string ``"inf"``)."""
        return {
            "n_labels": self.n_labels,
            "groups": self.n_groups,
            **_held_out_comparison(self),
            "learning_curve": self.curve.to_dict() if self.curve is not None else None,
            "notes": list(self.notes),
        }


def _json_float(value: float) -> float | str:
    return value if math.isfinite(value) else "inf"


class _HeldOutComparison(Protocol):
    """What the label and the comparison reports share: zero-shot vs adapted vs probe on
    held-out folds, and the final fit."""

    @property
    def folds(self) -> int: ...
    @property
    def zero_shot(self) -> RewardMetrics | PairAccuracy: ...
    @property
    def adapted(self) -> RewardMetrics | PairAccuracy: ...
    @property
    def probe(self) -> RewardMetrics | PairAccuracy: ...
    @property
    def fit(self) -> AdaptedFit: ...
    @property
    def fold_lambdas(self) -> tuple[float, ...]: ...


def _held_out_comparison(report: _HeldOutComparison) -> dict[str, Any]:
    """The plain JSON fields both reports write, in this order: folds, the three rewards'
    held-out metrics with their intervals, the final λ and prior scale, each fold's λ."""
    return {
        "folds": report.folds,
        "zero_shot": report.zero_shot.to_dict(),
        "adapted": report.adapted.to_dict(),
        "probe": report.probe.to_dict(),
        "lambda": _json_float(report.fit.lam),
        "prior_scale": report.fit.scale,
        "fold_lambdas": [_json_float(v) for v in report.fold_lambdas],
    }


def cross_validate_adaptation(
    embeddings: np.ndarray,
    labels: np.ndarray,
    groups: np.ndarray,
    prior: np.ndarray | None,
    zero_shot: np.ndarray,
    *,
    folds: int = 5,
    inner_folds: int = 5,
    n_boot: int = 1000,
    curve: bool = True,
    curve_sizes: Sequence[int] | None = None,
    seed: int = 0,
) -> AdaptationReport:
    """Everything the Evaluate page and ``vlmrm adapt`` show about adapting a prompt to labels.

    Args:
        embeddings: N×D embeddings of the labelled frames.
        labels: N consensus labels in [0, 1].
        groups: N group ids (:func:`frame_groups`).
        prior: the prompt's direction (:func:`prior_direction`); None adapts from nothing.
        zero_shot: the prompt's own N rewards (the reference row).
        folds: outer folds (fewer when there are fewer groups; the report says how many).
        inner_folds: folds of the λ search inside each training side.
        n_boot: bootstrap resamples for the EPIC intervals.
        curve: also compute the learning curve.
        curve_sizes: its label counts.
        seed: fold, bootstrap and order seed.

    Returns:
        The report.

    Raises:
        AdaptationError: fewer than 2 groups, labels that don't vary, bad shapes.
    """
    with single_threaded_blas():
        return _cross_validate_adaptation(
            embeddings,
            labels,
            groups,
            prior,
            zero_shot,
            folds=folds,
            inner_folds=inner_folds,
            n_boot=n_boot,
            curve=curve,
            curve_sizes=curve_sizes,
            seed=seed,
        )


def _cross_validate_adaptation(
    embeddings: np.ndarray,
    labels: np.ndarray,
    groups: np.ndarray,
    prior: np.ndarray | None,
    zero_shot: np.ndarray,
    *,
    folds: int,
    inner_folds: int,
    n_boot: int,
    curve: bool,
    curve_sizes: Sequence[int] | None,
    seed: int,
) -> AdaptationReport:
    x, y = _check_xy(embeddings, labels)
    g = np.asarray(groups)
    if g.shape != y.shape:
        raise AdaptationError(f"{g.size} group ids for {y.size} labels")
    if float(np.ptp(y)) == 0.0:
        raise AdaptationError(
            f"all {y.size} labels are the same: label at least one success and one failure"
        )
    fold_list = grouped_folds(y, g, folds, seed=seed)
    notes = []
    n_groups = len(np.unique(g))
    if len(fold_list) < folds:
        notes.append(f"{len(fold_list)} folds instead of {folds}: only {n_groups} groups")
    adapted = cross_validated_rewards(x, y, g, prior, fold_list, inner_folds=inner_folds, seed=seed)
    probe = cross_validated_rewards(x, y, g, None, fold_list, inner_folds=inner_folds, seed=seed)
    final = fit_adapted(x, y, prior, groups=g, inner_folds=inner_folds, seed=seed)
    lc = None
    if curve:
        lc = _learning_curve(
            x,
            y,
            g,
            prior,
            folds=fold_list,
            sizes=curve_sizes,
            order=None,
            zero_shot=zero_shot,
            include_probe=True,
            inner_folds=inner_folds,
            seed=seed,
        )
    return AdaptationReport(
        n_labels=len(y),
        n_groups=n_groups,
        folds=len(fold_list),
        zero_shot=held_out_metrics(zero_shot, y, n_boot=n_boot, seed=seed),
        adapted=held_out_metrics(adapted.rewards, y, n_boot=n_boot, seed=seed),
        probe=held_out_metrics(probe.rewards, y, n_boot=n_boot, seed=seed),
        fit=final,
        fold_lambdas=adapted.lambdas,
        curve=lc,
        notes=notes,
    )


# --------------------------------------------------------------------------------------------
# Picking the best of many on the same labels
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HeldOutSelection:
    """The EPIC distance of "pick the best candidate on the labels", measured honestly: in each
    fold the candidate with the lowest EPIC on the training frames is scored on the held-out
    frames. The in-sample best EPIC flatters the winner; the gap is the selection optimism."""

    held_out: RewardMetrics
    in_sample_best: float | None
    chosen: tuple[int, ...]
    """The candidate each fold chose (column index)."""
    folds: int


def held_out_best_of(
    candidates: np.ndarray,
    labels: np.ndarray,
    groups: np.ndarray,
    *,
    folds: int = 5,
    n_boot: int = 1000,
    seed: int = 0,
) -> HeldOutSelection:
    """Cross-validate the selection of the best of K candidate rewards by EPIC distance.

    Args:
        candidates: N×K rewards (one column per candidate, e.g. prompt-sweep combinations).
        labels: N labels.
        groups: N group ids (:func:`frame_groups`).
        folds: outer folds.
        n_boot: bootstrap resamples for the held-out interval.
        seed: fold and bootstrap seed.

    Returns:
        The held-out metrics of the per-fold winners (each fold's rewards standardised by its
        training frames, then pooled), and the in-sample best EPIC for comparison.
    """
    r = np.asarray(candidates, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    if r.ndim != 2 or r.shape[0] != y.shape[0]:
        raise AdaptationError(f"{r.shape[0] if r.ndim else 0} candidate rows for {y.size} labels")
    fold_list = grouped_folds(y, np.asarray(groups), folds, seed=seed)
    pooled = np.zeros(len(y))
    chosen = []
    for train, test in fold_list:
        k = int(np.nanargmin(_column_epic(r[train], y[train])))
        chosen.append(k)
        pooled[test] = _standardised(r[test, k], r[train, k])
    in_sample = _column_epic(r, y)
    best = float(np.nanmin(in_sample)) if np.isfinite(in_sample).any() else None
    return HeldOutSelection(
        held_out_metrics(pooled, y, n_boot=n_boot, seed=seed), best, tuple(chosen), len(fold_list)
    )


def _column_epic(rewards: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """EPIC distance of each column against the labels (NaN where either side is constant)."""
    result = pearson(np.ascontiguousarray(rewards.T), labels)
    return np.where(result.defined, result.distance, np.nan)


def adapted_spec(start: RewardSpec, fit: AdaptedFit) -> RewardSpec:
    """The adapted reward: the starting prompts kept as a record, the fitted direction added."""
    return start.replace(
        kind="adapted", weights=tuple(float(w) for w in fit.weights), bias=float(fit.bias)
    )


def adaptation_provenance(
    report: AdaptationReport,
    *,
    dataset: str,
    labelers: Sequence[str],
    hashes: Sequence[str],
    labels: np.ndarray,
    started_from: str,
    starting_reward: RewardSpec,
) -> Provenance:
    """A reward file's provenance: the held-out (cross-validated) metrics of the adapted reward
    and the whole table (zero-shot, adapted, probe; learning curve) under ``extra``."""
    held = report.adapted
    digest = hashlib.sha256(
        "\n".join(f"{h},{float(v):.6g}" for h, v in zip(hashes, labels, strict=True)).encode()
    ).hexdigest()
    return Provenance(
        dataset=dataset,
        labels=f"consensus of {', '.join(labelers)}" if labelers else "consensus",
        n_labels=report.n_labels,
        epic_distance=held.epic_distance,
        epic_ci=(held.ci_low, held.ci_high)
        if held.ci_low is not None and held.ci_high is not None
        else None,
        average_precision=held.average_precision,
        roc_auc=held.roc_auc,
        evaluated_at=datetime.now(UTC).isoformat(timespec="seconds"),
        extra={
            "adaptation": {
                **report.to_dict(),
                "started_from": started_from,
                "starting_reward": starting_reward.to_dict(),
                "labelers": list(labelers),
                "labels_sha256": digest,
                "held_out": "EPIC/AP/AUC of the adapted reward are on held-out folds",
            }
        },
    )


# --------------------------------------------------------------------------------------------
# Preferences: a Bradley–Terry reward fitted to pairwise comparisons
# --------------------------------------------------------------------------------------------
#
# The same linear reward R(x) = x·w on the normalised embedding, pulled toward the prompt's
# direction the same way, but fitted to comparisons instead of labels: the probability that
# frame a is preferred to frame b is σ(R(a) − R(b)) (Bradley–Terry), and the fit minimises
#
#     Σₚ −[yₚ log σ(dₚ·w) + (1 − yₚ) log σ(−dₚ·w)] + λ ‖w − s·w₀‖²,   s ≥ 0,
#
# with dₚ = x_a − x_b and yₚ the outcome (1: a preferred, 0: b, ½: "equal", half a win each).
# A bias cancels in every difference, so the fitted reward has bias 0 (only its differences mean
# anything). λ is chosen from the same grid (:data:`LAMBDA_STEPS`) by grouped inner
# cross-validation, on held-out log-loss; held-out pairs never share a frame group with the pairs
# the reward was fitted on (:func:`pair_folds`).

MIN_PAIRS = 4
"""Fewer decided comparisons than this keep the prompt's direction."""


def pair_folds(
    pairs: np.ndarray, groups: np.ndarray | None, k: int, *, seed: int = 0
) -> list[tuple[np.ndarray, np.ndarray]]:
    """k train/test splits of comparisons with no frame group on both sides.

    The frames' groups (:func:`frame_groups`) are split into k folds (:func:`grouped_folds`); a
    fold's test pairs have both frames in its held-out groups, its training pairs both frames in
    the other groups, and a pair straddling the two is used on neither side in that fold. So
    no held-out frame, nor a near-copy of it, was ever compared in training. Pairs within one
    group are always tested; pairs across groups in 1/k of the cases.

    Args:
        pairs: P×2 frame indices (first, second).
        groups: a group id per frame (indexable by the pairs' indices); None: every frame is
            its own group.
        k: folds of the frame groups (at most the number of groups that appear in pairs).
        seed: shuffling seed.

    Returns:
        (train pair indices, test pair indices) per fold; folds without a test or a training
        pair are left out.

    Raises:
        AdaptationError: fewer than 2 frame groups among the compared frames, or k < 2.
    """
    p = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    frames = np.unique(p)
    g = frames if groups is None else np.asarray(groups)[frames]
    # Shuffle group ids by the seed: GroupKFold alone assigns equal-sized groups in a fixed order.
    uniques, inverse = np.unique(g, return_inverse=True)
    shuffled = np.random.default_rng(seed).permutation(len(uniques))[inverse]
    if len(uniques) < 2:
        raise AdaptationError(
            "every compared frame is in one episode or sweep block, so no pair can be held out "
            "honestly: compare frames from at least two episodes"
        )
    frame_fold = np.full(int(p.max()) + 1 if p.size else 0, -1)
    for fold, (_train, test) in enumerate(
        grouped_folds(np.zeros(len(frames)), shuffled, k, seed=seed)
    ):
        frame_fold[frames[test]] = fold
    fa, fb = frame_fold[p[:, 0]], frame_fold[p[:, 1]]
    out = []
    for fold in np.unique(frame_fold[frames]):
        test = np.flatnonzero((fa == fold) & (fb == fold))
        train = np.flatnonzero((fa != fold) & (fb != fold))
        if len(test) and len(train):
            out.append((train, test))
    return out


def _check_pairs(
    embeddings: Any, pairs: Any, outcomes: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x = np.asarray(embeddings, dtype=np.float64)
    p = np.asarray(pairs, dtype=np.int64)
    y = np.asarray(outcomes, dtype=np.float64)
    if x.ndim != 2:
        raise AdaptationError(f"embeddings must be an N×D matrix, got shape {x.shape}")
    if p.ndim != 2 or p.shape[1] != 2:
        raise AdaptationError(f"pairs must be a P×2 array of frame indices, got shape {p.shape}")
    if y.shape != (p.shape[0],):
        raise AdaptationError(f"{y.size} outcomes for {p.shape[0]} pairs")
    if p.size and (p.min() < 0 or p.max() >= x.shape[0]):
        raise AdaptationError(f"pair indices must lie in [0, {x.shape[0]})")
    if not np.isin(y, (0.0, 0.5, 1.0)).all():
        raise AdaptationError("pair outcomes must be 1 (a preferred), 0 (b) or 0.5 (equal)")
    if not np.isfinite(x).all():
        raise AdaptationError("embeddings contain NaN or infinite values")
    return x, p, y


class _PairSolver:
    """Bradley–Terry fits of w = v + s·w₀ (penalty λ‖v‖², s ≥ 0) for a λ grid, by L-BFGS-B,
    warm-started from the strongest λ down."""

    def __init__(self, d: np.ndarray, y: np.ndarray, prior: np.ndarray | None) -> None:
        self.d, self.y = d, y
        self.prior = prior
        self.p = d @ prior if prior is not None else None
        # The penalty's natural unit: curvature of the logistic loss at 0 (¼) times the mean
        # squared singular value of the differences, as the least-squares fit's grid uses.
        rank = max(1, min(d.shape))
        self.base = max(0.25 * float((d**2).sum()) / rank, 1e-12)

    def _loss(self, z: np.ndarray) -> tuple[float, np.ndarray]:
        # −[y log σ(z) + (1 − y) log σ(−z)] = softplus(z) − y·z, and its derivative σ(z) − y.
        loss = float((np.logaddexp(0.0, z) - self.y * z).sum())
        return loss, 0.5 * (1.0 + np.tanh(0.5 * z)) - self.y

    def _fit_scale(self) -> float:
        from scipy.optimize import minimize_scalar

        assert self.p is not None
        p = self.p
        result = minimize_scalar(
            lambda s: self._loss(s * p)[0], bounds=(0.0, 1e4), method="bounded"
        )
        return float(result.x)

    def solve(self, lams: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Weights (D×L) and prior scales (L) for each λ (``inf``: only the scale is fitted)."""
        from scipy.optimize import minimize

        dim = self.d.shape[1]
        weights = np.zeros((dim, lams.size))
        scales = np.zeros(lams.size)
        with_prior = self.p is not None
        v = np.zeros(dim)
        s = self._fit_scale() if with_prior else 0.0
        for j in np.argsort(-lams, kind="stable"):
            lam = float(lams[j])
            if not math.isfinite(lam):
                if with_prior:
                    scales[j] = self._fit_scale()
                    weights[:, j] = scales[j] * self.prior
                continue

            def objective(theta: np.ndarray, lam: float = lam) -> tuple[float, np.ndarray]:
                v, s = theta[:dim], theta[dim]
                z = self.d @ v + (s * self.p if self.p is not None else 0.0)
                loss, r = self._loss(z)
                grad = np.empty(dim + 1)
                grad[:dim] = self.d.T @ r + 2.0 * lam * v
                grad[dim] = float(self.p @ r) if self.p is not None else 0.0
                return loss + lam * float(v @ v), grad

            bounds = [(None, None)] * dim + [(0.0, None) if with_prior else (0.0, 0.0)]
            result = minimize(
                objective,
                np.append(v, s),
                jac=True,
                method="L-BFGS-B",
                bounds=bounds,
                options={"maxiter": 500},
            )
            v, s = result.x[:dim], float(result.x[dim])
            weights[:, j] = v + (s * self.prior if self.prior is not None else 0.0)
            scales[j] = s
        return weights, scales


def _differences(x: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """Embedding differences (first − second) of P×2 pairs: a linear reward's score gaps."""
    return np.asarray(x[pairs[:, 0]] - x[pairs[:, 1]])


def _pair_log_loss(z: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Summed log-loss of each column of pair scores z (P×L) against outcomes y (P)."""
    return np.asarray((np.logaddexp(0.0, z) - y[:, None] * z).sum(axis=0))


def _clip_items(
    embeddings: Any, clips: Sequence[Sequence[int]] | None, groups: np.ndarray | None
) -> tuple[Any, np.ndarray | None]:
    """Comparisons of clips as comparisons of items: each clip's summed embedding (the linear
    reward of the sum is the sum of the frames' rewards) and the group of its first frame (a
    clip lies in one episode). Without ``clips`` the frames are the items."""
    if clips is None:
        return embeddings, groups
    x = clip_sums(np.asarray(embeddings, dtype=np.float64), clips)
    g = None if groups is None else np.asarray(groups)[[int(rows[0]) for rows in clips]]
    return x, g


def fit_preference(
    embeddings: np.ndarray,
    pairs: np.ndarray,
    outcomes: np.ndarray,
    prior: np.ndarray | None,
    *,
    groups: np.ndarray | None = None,
    clips: Sequence[Sequence[int]] | None = None,
    inner_folds: int = 5,
    lam: float | None = None,
    seed: int = 0,
) -> AdaptedFit:
    """Fit a Bradley–Terry reward to comparisons, pulled toward the prompt's direction.

    Comparisons of clips (``clips``) compare the sums of the frames' rewards over each clip
    (Christiano et al. 2017): with a linear reward, the reward of each clip's summed embedding
    (:func:`~vlmrm_core.metrics.pairs.clip_sums`), so the fit is the same on those sums.

    Args:
        embeddings: N×D L2-normalised embeddings of the frames.
        pairs: P×2 indices into the frames (or into ``clips``): (first, second) of each
            comparison.
        outcomes: P outcomes: 1 (first preferred), 0 (second) or ½ (equal: half a win each).
        prior: the prompt's direction w₀ (:func:`prior_direction`), or None for a plain
            Bradley–Terry probe (pulled toward 0).
        groups: a group id per frame for the inner cross-validation that picks λ
            (:func:`pair_folds`); None: every frame is its own group.
        clips: each compared clip's frame rows in ``embeddings`` (``pairs`` then index
            clips); None: ``pairs`` index frames.
        inner_folds: folds of that inner cross-validation.
        lam: use this λ instead of cross-validating (``inf``: the prompt's direction, rescaled).
        seed: fold shuffling seed.

    Returns:
        The fit (``n_labels``: the number of comparisons; ``bias`` 0, since only differences of
        the reward are determined). With fewer than :data:`MIN_PAIRS` decided comparisons the
        reward is the prompt's direction as it is (without a prior: zero) and the note says so.

    Raises:
        AdaptationError: bad shapes, indices or outcomes, or non-finite embeddings.
    """
    embeddings, groups = _clip_items(embeddings, clips, groups)
    x, p, y = _check_pairs(embeddings, pairs, outcomes)
    u = _unit_prior(prior, x.shape[1])
    n_decided = int((y != 0.5).sum())
    if n_decided < MIN_PAIRS:
        why = f"only {n_decided} decided comparison{'s' if n_decided != 1 else ''}"
        return _unfitted(u, x.shape[1], len(y), why, bias=0.0)
    with single_threaded_blas():
        solver = _PairSolver(_differences(x, p), y, u)
        grid = _lambda_grid(solver.base, with_prior=u is not None)
        if lam is None:
            lam = _choose_pair_lambda(x, p, y, u, grid, groups, inner_folds, seed)
        w, s = solver.solve(np.array([lam]))
    return AdaptedFit(w[:, 0], 0.0, float(lam), float(s[0]), len(y))


def preference_covariance(
    embeddings: np.ndarray,
    pairs: np.ndarray,
    fit: AdaptedFit,
    *,
    clips: Sequence[Sequence[int]] | None = None,
) -> np.ndarray:
    """How unsure a Bradley–Terry fit is about its weights: the Laplace approximation of their
    posterior covariance at the fit, (Dᵀ·diag(σ'(z))·D + 2λ·I)⁻¹ with D the compared pairs'
    embedding differences and z their fitted score gaps.

    The penalty λ‖w − s·w₀‖² is the prior; the prompt's scale s is treated as known (one
    number, settled by the first few answers). When the fit kept the prompt's direction
    (λ = ∞, or too few answers) that prior would claim certainty, so the strongest finite λ of
    the cross-validation grid stands in for it.

    Args:
        embeddings: N×D embeddings the fit was made on (frames, or with ``clips`` their rows).
        pairs: P×2 compared pairs (into the frames, or into ``clips``), as given to
            :func:`fit_preference`.
        fit: its result.
        clips: as for :func:`fit_preference`.

    Returns:
        D×D covariance: a candidate pair's score gap d·w has variance dᵀ·C·d.
    """
    x, _ = _clip_items(np.asarray(embeddings, dtype=np.float64), clips, None)
    d = _differences(x, np.asarray(pairs, dtype=np.int64).reshape(-1, 2))
    curvature = 0.25 / np.cosh(0.5 * (d @ fit.weights)) ** 2  # σ'(z) = σ(z)·σ(−z)
    rank = max(1, min(d.shape))
    base = max(0.25 * float((d**2).sum()) / rank, 1e-12)  # as _PairSolver's penalty unit
    lam = fit.lam if math.isfinite(fit.lam) else base * float(LAMBDA_STEPS[-1])
    precision = (d * curvature[:, None]).T @ d + 2.0 * lam * np.eye(x.shape[1])
    return np.asarray(np.linalg.inv(precision))


def _choose_pair_lambda(
    x: np.ndarray,
    p: np.ndarray,
    y: np.ndarray,
    prior: np.ndarray | None,
    grid: np.ndarray,
    groups: np.ndarray | None,
    inner_folds: int,
    seed: int,
) -> float:
    """The λ with the lowest pooled held-out log-loss; ties go to the larger λ."""
    try:
        folds = pair_folds(p, groups, inner_folds, seed=seed)
    except AdaptationError:
        folds = []
    if not folds:
        return float(grid[-1])
    losses = np.zeros(grid.size)
    for train, test in folds:
        d_test = _differences(x, p[test])
        if int((y[train] != 0.5).sum()) < 2:
            losses += len(test) * math.log(2.0)  # nothing learnt: σ(0) = ½ on every pair
            continue
        d_train = _differences(x, p[train])
        w, s = _PairSolver(d_train, y[train], prior).solve(grid)
        fold_loss = _pair_log_loss(d_test @ w, y[test])
        # λ = ∞ with the prompt's direction clamped away is a constant reward: no use.
        fold_loss[~np.isfinite(grid) & (s <= 0)] = np.inf
        losses += fold_loss
    return _strongest_best_lambda(grid, losses)


@dataclass(frozen=True)
class PreferenceReport:
    """Held-out pair accuracy of the zero-shot reward, the Bradley–Terry reward pulled toward
    the prompt and the plain Bradley–Terry probe, and the reward fitted on every comparison."""

    n_pairs: int
    n_held_out: int
    """Comparisons tested in some fold (pairs straddling train and test groups never are)."""
    folds: int
    zero_shot: PairAccuracy
    adapted: PairAccuracy
    probe: PairAccuracy
    fit: AdaptedFit
    fold_lambdas: tuple[float, ...]
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values (infinite λ as the string ``"inf"``)."""
        return {
            "n_pairs": self.n_pairs,
            "n_held_out": self.n_held_out,
            **_held_out_comparison(self),
            "notes": list(self.notes),
        }


def cross_validate_preferences(
    embeddings: np.ndarray,
    pairs: np.ndarray,
    outcomes: np.ndarray,
    groups: np.ndarray | None,
    prior: np.ndarray | None,
    zero_shot: np.ndarray,
    *,
    clips: Sequence[Sequence[int]] | None = None,
    folds: int = 5,
    inner_folds: int = 5,
    n_boot: int = 1000,
    include_probe: bool = True,
    seed: int = 0,
) -> PreferenceReport:
    """Held-out pair accuracy (with bootstrap CIs) of the zero-shot, Bradley–Terry and probe
    rewards, on the same held-out comparisons (:func:`pair_folds`), and the final fit.

    Args:
        embeddings: N×D embeddings of the compared frames.
        pairs: P×2 frame indices.
        outcomes: P outcomes (1, 0 or ½).
        groups: a group id per frame (:func:`frame_groups`), or None.
        prior: the prompt's direction, or None.
        zero_shot: the prompt's own N rewards of the frames.
        clips: each compared clip's frame rows (``pairs`` then index clips, whose rewards are
            the sums over their frames, as in :func:`fit_preference`); None: frames.
        folds: outer folds of the frame groups.
        inner_folds: folds of the λ search.
        n_boot: bootstrap resamples for the intervals.
        include_probe: also cross-validate the plain probe.
        seed: fold and bootstrap seed.

    Raises:
        AdaptationError: bad shapes, no decided comparison, or fewer than 2 frame groups.
    """
    r0 = np.asarray(zero_shot, dtype=np.float64).ravel()
    if clips is not None:
        if r0.shape != (np.shape(embeddings)[0],):
            raise AdaptationError(
                f"{r0.size} zero-shot rewards for {np.shape(embeddings)[0]} frames"
            )
        r0 = clip_sums(r0, clips)
    embeddings, groups = _clip_items(embeddings, clips, groups)
    x, p, y = _check_pairs(embeddings, pairs, outcomes)
    if r0.shape != (x.shape[0],):
        raise AdaptationError(f"{r0.size} zero-shot rewards for {x.shape[0]} frames")
    if not (y != 0.5).any():
        raise AdaptationError(
            f"all {y.size} comparisons are 'equal': compare frames where one is closer to the goal"
        )
    fold_list = pair_folds(p, groups, folds, seed=seed)
    if not fold_list:
        raise AdaptationError(
            "no comparison can be held out: compare frames within episodes, or more episodes"
        )
    notes = []
    if len(fold_list) < folds:
        notes.append(f"{len(fold_list)} folds instead of {folds}: too few frame groups")
    with single_threaded_blas():
        held = {"adapted": np.zeros(len(y)), "probe": np.zeros(len(y))}
        tested = np.zeros(len(y), bool)
        lambdas = []
        for train, test in fold_list:
            tested[test] = True
            d_test = _differences(x, p[test])
            for name, direction in (("adapted", prior), ("probe", None)):
                if name == "probe" and not include_probe:
                    continue
                fit = fit_preference(
                    x, p[train], y[train], direction, groups=groups,
                    inner_folds=inner_folds, seed=seed,
                )  # fmt: skip
                held[name][test] = d_test @ fit.weights
                if name == "adapted":
                    lambdas.append(fit.lam)
        final = fit_preference(x, p, y, prior, groups=groups, inner_folds=inner_folds, seed=seed)
    idx = np.flatnonzero(tested)
    if len(idx) < len(y):
        notes.append(
            f"{len(y) - len(idx)} comparisons straddle frame groups of different folds and are "
            "not tested"
        )
    yt = y[idx]
    zeros = np.zeros(len(idx))

    def accuracy(score_diff: np.ndarray) -> PairAccuracy:
        return pair_accuracy(score_diff, zeros, yt, n_boot=n_boot, seed=seed)

    zero_diff = r0[p[idx, 0]] - r0[p[idx, 1]]
    probe = (
        accuracy(held["probe"][idx])
        if include_probe
        else PairAccuracy(None, None, None, 0, int((yt == 0.5).sum()))
    )
    return PreferenceReport(
        n_pairs=len(y),
        n_held_out=len(idx),
        folds=len(fold_list),
        zero_shot=accuracy(zero_diff),
        adapted=accuracy(held["adapted"][idx]),
        probe=probe,
        fit=final,
        fold_lambdas=tuple(lambdas),
        notes=notes,
    )


def preference_provenance(
    report: PreferenceReport,
    *,
    dataset: str,
    labelers: Sequence[str],
    started_from: str,
    starting_reward: RewardSpec,
) -> Provenance:
    """A reward file's provenance for a Bradley–Terry reward: the held-out pair accuracies
    (zero-shot, adapted, probe) under ``extra.preferences``; no EPIC (there are no labels)."""
    return Provenance(
        dataset=dataset,
        labels=f"comparisons by {', '.join(labelers)}" if labelers else "comparisons",
        n_labels=report.n_pairs,
        evaluated_at=datetime.now(UTC).isoformat(timespec="seconds"),
        extra={
            "preferences": {
                **report.to_dict(),
                "started_from": started_from,
                "starting_reward": starting_reward.to_dict(),
                "labelers": list(labelers),
                "held_out": "pair accuracies are on held-out frame groups",
                "model": "Bradley–Terry: P(a preferred to b) = σ(R(a) − R(b)); equal = half a win",
            }
        },
    )
