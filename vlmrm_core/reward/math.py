"""CLIP reward functions: pure, vectorised over N frames, on L2-normalised embeddings.

Goal-baseline regularisation (Rocamonde et al. 2023, Def. 1)::

    g = mean of normalised goal-prompt embeddings, b = mean of normalised baseline embeddings
    d = g - b,  P = α d dᵀ / ‖d‖² + (1 - α) I
    R(x) = 1 - ½ ‖(x - g) P‖²

α = 0 gives R = 1 - ½‖x - g‖², which equals cos(x, g) when ‖g‖ = 1. α = 1 keeps only the
component of x along d.

Contrastive reward (Baumli et al. 2023)::

    p(goal | x) = softmax over {goal} ∪ negatives of cos(x, ·) / τ,   reward = 1[p > β]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from vlmrm_core.errors import InvalidInputError


def normalize(vectors: np.ndarray) -> np.ndarray:
    """L2-normalise along the last axis.

    Example::

        >>> normalize(np.array([[3.0, 4.0], [0.0, -2.0]])).tolist()
        [[0.6, 0.8], [0.0, -1.0]]
    """
    vectors = np.asarray(vectors)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    if np.any(norms == 0):
        raise InvalidInputError("cannot normalise a zero vector")
    return vectors / norms


def mean_embedding(prompt_embeddings: np.ndarray) -> np.ndarray:
    """Mean of the normalised prompt embeddings (P×D → D); the mean is not re-normalised.

    Example::

        >>> mean_embedding(np.array([[2.0, 0.0], [0.0, 5.0]])).tolist()  # rows normalised first
        [0.5, 0.5]
    """
    prompt_embeddings = np.atleast_2d(prompt_embeddings)
    if len(prompt_embeddings) == 0:
        raise InvalidInputError("at least one prompt embedding is needed")
    return normalize(prompt_embeddings).mean(axis=0)


def projection_matrix(goal: np.ndarray, baseline: np.ndarray, alpha: float) -> np.ndarray:
    """P = α d dᵀ/‖d‖² + (1 − α) I with d = goal − baseline (D×D; for inspection and tests).

    Example::

        >>> goal, baseline = np.array([1.0, 0.0]), np.array([0.0, 1.0])
        >>> projection_matrix(goal, baseline, alpha=0.5).round(6).tolist()
        [[0.75, -0.25], [-0.25, 0.75]]
        >>> projection_matrix(goal, baseline, alpha=0.0).tolist()
        [[1.0, 0.0], [0.0, 1.0]]
    """
    _check_alpha(alpha)
    direction = _unit_direction(goal, baseline, alpha)
    dim = len(goal)
    return alpha * np.outer(direction, direction) + (1.0 - alpha) * np.eye(dim)


def cosine_reward(image_embeddings: np.ndarray, goal: np.ndarray) -> np.ndarray:
    """cos(x, g) for each row x (N×D, normalised) and a goal vector g.

    Example::

        >>> frames = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
        >>> cosine_reward(frames, np.array([2.0, 0.0])).tolist()  # the goal is normalised inside
        [1.0, 0.0, 0.6]
    """
    goal = np.asarray(goal, dtype=image_embeddings.dtype)
    return image_embeddings @ (goal / np.linalg.norm(goal))


def regularized_reward(
    image_embeddings: np.ndarray, goal: np.ndarray, baseline: np.ndarray, alpha: float
) -> np.ndarray:
    """Goal-baseline regularised reward R(x) = 1 − ½‖(x − g)P‖² for N normalised embeddings.

    Args:
        image_embeddings: N×D, each row L2-normalised (as Def. 1 assumes).
        goal: g, the mean of the normalised goal-prompt embeddings.
        baseline: b, the mean of the normalised baseline-prompt embeddings.
        alpha: regularisation strength in [0, 1].

    Returns:
        N rewards (dtype of the embeddings).

    Raises:
        ValueError: α outside [0, 1], or α > 0 with goal equal to baseline (no direction).

    Example::

        >>> frames = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
        >>> goal, baseline = np.array([1.0, 0.0]), np.array([0.0, 1.0])
        >>> regularized_reward(frames, goal, baseline, alpha=0.0).round(3).tolist()  # = cos(x, g)
        [1.0, 0.0, 0.6]
        >>> regularized_reward(frames, goal, baseline, alpha=1.0).round(3).tolist()  # along g − b
        [1.0, 0.0, 0.64]
    """
    return regularized_reward_curves(image_embeddings, goal, baseline, [alpha])[float(alpha)]


def regularized_reward_curves(
    image_embeddings: np.ndarray, goal: np.ndarray, baseline: np.ndarray, alphas: Sequence[float]
) -> dict[float, np.ndarray]:
    """The regularised reward at several α from one pass over the embeddings (Fig. 2 overlays).

    Args:
        image_embeddings: N×D, each row L2-normalised.
        goal: g (mean of normalised goal-prompt embeddings).
        baseline: b (mean of normalised baseline-prompt embeddings).
        alphas: α values in [0, 1].

    Returns:
        ``{α: N rewards}`` in the order given (duplicates dropped), in the embeddings' dtype.

    Example::

        >>> frames = np.array([[1.0, 0.0], [0.6, 0.8]])
        >>> goal, baseline = np.array([1.0, 0.0]), np.array([0.0, 1.0])
        >>> curves = regularized_reward_curves(frames, goal, baseline, [0, 1, 0])  # repeats dropped
        >>> {alpha: rewards.round(3).tolist() for alpha, rewards in curves.items()}
        {0.0: [1.0, 0.6], 1.0: [1.0, 0.64]}
    """
    alphas = list(dict.fromkeys(float(a) for a in alphas))
    for a in alphas:
        _check_alpha(a)
    x = np.asarray(image_embeddings)
    dtype = x.dtype if x.dtype in (np.float32, np.float64) else np.float64
    x = x.astype(dtype, copy=False)
    g = np.asarray(goal, dtype=dtype)
    # P is symmetric with eigenvalue 1 along d and (1 − α) orthogonal to it, so with v = x − g:
    # ‖vP‖² = (1 − (1 − α)²)(v·d̂)² + (1 − α)²‖v‖². Two dot products per frame instead of a D×D
    # product: this keeps re-scoring 100k cached frames within milliseconds.
    along_sq: np.ndarray | float
    if any(a > 0 for a in alphas):
        d_hat = _unit_direction(g, np.asarray(baseline, dtype=dtype), max(alphas)).astype(dtype)
        x_dot_g, x_dot_d = dot_columns(x, [g, d_hat])
        along_sq = (x_dot_d - float(g @ d_hat)) ** 2
    else:
        (x_dot_g,) = dot_columns(x, [g])
        along_sq = 0.0
    # ‖x‖ = 1 for normalised embeddings, so ‖v‖² = 1 − 2x·g + ‖g‖²
    v_sq = 1.0 - 2.0 * x_dot_g + float(g @ g)
    curves = {}
    for a in alphas:
        keep = (1.0 - a) ** 2
        curves[a] = (1.0 - 0.5 * ((1.0 - keep) * along_sq + keep * v_sq)).astype(dtype, copy=False)
    return curves


def regularized_reward_grid(
    image_embeddings: npt.ArrayLike,
    goals: npt.ArrayLike,
    baselines: npt.ArrayLike,
    alphas: Sequence[float],
) -> np.ndarray:
    """The regularised reward of every goal × baseline × α, from two matrix products.

    Entry ``[k, i, j]`` is ``regularized_reward(image_embeddings, goals[i], baselines[j],
    alphas[k])`` (to rounding): R only needs x·g and x·b, so the whole grid comes from X·Gᵀ and
    X·Bᵀ (see :func:`regularized_reward_grid_from_dots`).

    Args:
        image_embeddings: N×D, each row L2-normalised.
        goals: G×D goal vectors g (each the mean of normalised goal-prompt embeddings).
        baselines: B×D baseline vectors b. With α = 0 the baseline plays no part: any row will
            do (e.g. the goal itself).
        alphas: A values in [0, 1] (kept as given, repeats included).

    Returns:
        A×G×B×N float64 rewards; NaN for α > 0 where goal i equals baseline j (no direction to
        project on, where :func:`regularized_reward` raises).

    Raises:
        ValueError: an α outside [0, 1], or mismatched shapes.

    Example::

        >>> frames = np.array([[1.0, 0.0], [0.6, 0.8]])
        >>> goals = np.array([[1.0, 0.0], [0.0, 1.0]])
        >>> grid = regularized_reward_grid(frames, goals, [[0.0, 1.0]], alphas=[0.0, 1.0])
        >>> grid.shape  # α × goal × baseline × frame
        (2, 2, 1, 2)
        >>> grid[1, 0, 0].round(3).tolist()  # = regularized_reward(frames, goals[0], baseline, 1.0)
        [1.0, 0.64]
        >>> grid[1, 1, 0].tolist()  # goal 1 is the baseline: no direction at α > 0
        [nan, nan]
    """
    x = np.asarray(image_embeddings)
    dtype = x.dtype if x.dtype in (np.float32, np.float64) else np.float64
    x = x.astype(dtype, copy=False)
    g = np.atleast_2d(np.asarray(goals, dtype=np.float64))
    b = np.atleast_2d(np.asarray(baselines, dtype=np.float64))
    # One pass over the N×D matrix in its own precision; everything after works on dot products.
    x_dot_goals = (g.astype(dtype) @ x.T).astype(np.float64)
    x_dot_baselines = (b.astype(dtype) @ x.T).astype(np.float64)
    return regularized_reward_grid_from_dots(x_dot_goals, x_dot_baselines, g, b, alphas)


def regularized_reward_grid_from_dots(
    x_dot_goals: npt.ArrayLike,
    x_dot_baselines: npt.ArrayLike,
    goals: npt.ArrayLike,
    baselines: npt.ArrayLike,
    alphas: Sequence[float],
) -> np.ndarray:
    """:func:`regularized_reward_grid` from precomputed dot products x·g and x·b.

    For callers that score a large grid in blocks (the prompt sweep) and read the N×D matrix
    once for all prompts. With v = x − g, d̂ = (g − b)/‖g − b‖ and ‖x‖ = 1 (Def. 1's closed form,
    as in :func:`regularized_reward_curves`)::

        ‖vP‖² = (1 − (1 − α)²)(v·d̂)² + (1 − α)²‖v‖²,   v·d̂ = (x·g − x·b)/‖g − b‖ − g·d̂,
        ‖v‖² = 1 − 2 x·g + ‖g‖²,                        R = 1 − ½‖vP‖²

    Args:
        x_dot_goals: G×N products of each goal vector with each image embedding.
        x_dot_baselines: B×N products of each baseline vector with each image embedding.
        goals: G×D goal vectors.
        baselines: B×D baseline vectors.
        alphas: A values in [0, 1].

    Returns:
        A×G×B×N float64 rewards (NaN as in :func:`regularized_reward_grid`).

    Example::

        >>> frames = np.array([[1.0, 0.0], [0.6, 0.8]])
        >>> goals, baselines = np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]])
        >>> grid = regularized_reward_grid_from_dots(
        ...     goals @ frames.T, baselines @ frames.T, goals, baselines, alphas=[1.0]
        ... )
        >>> grid.round(3).tolist()
        [[[[1.0, 0.64]]]]
    """
    alphas = [float(a) for a in alphas]
    for a in alphas:
        _check_alpha(a)
    xg = np.atleast_2d(np.asarray(x_dot_goals, dtype=np.float64))
    xb = np.atleast_2d(np.asarray(x_dot_baselines, dtype=np.float64))
    g = np.atleast_2d(np.asarray(goals, dtype=np.float64))
    b = np.atleast_2d(np.asarray(baselines, dtype=np.float64))
    if (
        xg.shape != (g.shape[0], xb.shape[1])
        or xb.shape[0] != b.shape[0]
        or g.shape[1:] != b.shape[1:]
    ):
        raise InvalidInputError(
            f"dot products {xg.shape} and {xb.shape} don't match {g.shape[0]} goals and "
            f"{b.shape[0]} baselines of dimension {g.shape[1]}"
        )
    n_goals, n_baselines, n = g.shape[0], b.shape[0], xg.shape[1]
    v_sq = 1.0 - 2.0 * xg + np.einsum("gd,gd->g", g, g)[:, None]  # G×N
    grid = np.empty((len(alphas), n_goals, n_baselines, n), dtype=np.float64)
    for k, a in enumerate(alphas):
        if a == 0:
            grid[k] = 1.0 - 0.5 * v_sq[:, None, :]
    positive = [k for k, a in enumerate(alphas) if a > 0]
    if not positive:
        return grid
    # ‖g − b‖ and g·(g − b) from the difference itself (no cancellation; exactly 0 when the
    # goal and baseline are the same vector), one goal at a time to bound memory at B×D.
    d_norm = np.empty((n_goals, n_baselines))
    g_dot_d = np.empty((n_goals, n_baselines))
    for i in range(n_goals):
        difference = g[i] - b
        d_norm[i] = np.sqrt(np.einsum("bd,bd->b", difference, difference))
        g_dot_d[i] = difference @ g[i]
    defined = d_norm >= 1e-12  # the threshold of _unit_direction
    safe_norm = np.where(defined, d_norm, 1.0)
    along = (xg[:, None, :] - xb[None, :, :]) / safe_norm[:, :, None] - (g_dot_d / safe_norm)[
        :, :, None
    ]
    along *= along
    for k in positive:
        keep = (1.0 - alphas[k]) ** 2
        grid[k] = 1.0 - 0.5 * ((1.0 - keep) * along + keep * v_sq[:, None, :])
        grid[k][~defined] = np.nan
    return grid


DOT_BLOCK_ROWS = 2048
"""Rows per block in ``dot_columns``: 2048 × 512 float32 is 4 MiB, which stays in cache."""


def dot_columns(x: np.ndarray, vectors: Sequence[np.ndarray]) -> list[np.ndarray]:
    """x·v for every row of x and each vector v, reading x from memory once.

    BLAS handles an N×D by D×k product with small k poorly (about twice the time of one
    matrix-vector product); k matrix-vector products per cache-sized block of rows read x once.

    Example::

        >>> x = np.array([[1.0, 2.0], [3.0, 4.0]])
        >>> first, total = dot_columns(x, [np.array([1.0, 0.0]), np.array([1.0, 1.0])])
        >>> first.tolist(), total.tolist()
        ([1.0, 3.0], [3.0, 7.0])
    """
    n = x.shape[0]
    outputs = [np.empty(n, dtype=x.dtype) for _ in vectors]
    for start in range(0, n, DOT_BLOCK_ROWS):
        block = x[start : start + DOT_BLOCK_ROWS]
        for vector, out in zip(vectors, outputs, strict=True):
            np.matmul(block, vector, out=out[start : start + DOT_BLOCK_ROWS])
    return outputs


def contrastive_probability(
    image_embeddings: np.ndarray, goal: np.ndarray, negatives: np.ndarray, tau: float
) -> np.ndarray:
    """Baumli et al.'s p(goal | x): softmax of cos/τ over the goal and the negative prompts.

    Args:
        image_embeddings: N×D normalised image embeddings.
        goal: the goal text embedding (normalised inside).
        negatives: K×D negative prompt embeddings (K ≥ 1; normalised inside).
        tau: temperature > 0 (a natural default is the model's 1/logit_scale).

    Returns:
        N probabilities in (0, 1).

    Example::

        >>> frames = np.array([[1.0, 0.0], [0.0, 1.0]])
        >>> goal, negatives = np.array([1.0, 0.0]), np.array([[0.0, 1.0]])
        >>> p = contrastive_probability(frames, goal, negatives, tau=0.1)
        >>> p.round(5).tolist()  # softmax of (1, 0)/τ and (0, 1)/τ
        [0.99995, 5e-05]
    """
    if not tau > 0:
        raise InvalidInputError(f"temperature τ must be positive, got {tau}")
    negatives = np.atleast_2d(negatives)
    if negatives.size == 0:
        raise InvalidInputError("the contrastive reward needs at least one negative prompt")
    x = np.asarray(image_embeddings)
    texts = normalize(np.vstack([np.asarray(goal)[None, :], negatives])).astype(x.dtype)
    logits = np.stack(dot_columns(x, list(texts)), axis=1) / tau
    logits -= logits.max(axis=1, keepdims=True)  # numerically stable softmax
    weights = np.exp(logits)
    return weights[:, 0] / weights.sum(axis=1)


def contrastive_reward(probability: np.ndarray, beta: float) -> np.ndarray:
    """Binary reward 1[p > β].

    Example::

        >>> contrastive_reward(np.array([0.2, 0.5, 0.9]), beta=0.5).tolist()
        [0.0, 0.0, 1.0]
    """
    if not 0.0 <= beta <= 1.0:
        raise InvalidInputError(f"threshold β must be in [0, 1], got {beta}")
    return (np.asarray(probability) > beta).astype(np.float32)


def _check_alpha(alpha: float) -> None:
    if not 0.0 <= alpha <= 1.0:
        raise InvalidInputError(f"α must be in [0, 1], got {alpha}")


def _unit_direction(goal: np.ndarray, baseline: np.ndarray, alpha: float) -> np.ndarray:
    direction = np.asarray(goal, dtype=np.float64) - np.asarray(baseline, dtype=np.float64)
    norm = np.linalg.norm(direction)
    if norm < 1e-12:
        if alpha == 0:
            return np.zeros_like(direction)
        raise InvalidInputError(
            "goal and baseline prompts have the same embedding, so the regularisation direction "
            "is undefined: change the baseline prompts or set α = 0"
        )
    return direction / norm


def linear_reward(image_embeddings: np.ndarray, weights: np.ndarray, bias: float) -> np.ndarray:
    """R(x) = x·w + b for each normalised embedding x (the reward adapted to human labels).

    Example::

        >>> frames = np.array([[1.0, 0.0], [0.6, 0.8]])
        >>> linear_reward(frames, np.array([1.0, -1.0]), bias=0.5).round(3).tolist()
        [1.5, 0.3]
    """
    x = np.asarray(image_embeddings)
    (scores,) = dot_columns(x, [np.asarray(weights, dtype=x.dtype)])
    return scores + np.asarray(bias, dtype=x.dtype)
