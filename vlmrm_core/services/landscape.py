"""Reward landscapes for the Prompt Lab: embed a dataset once, then re-score it on every change.

The expensive part (image embeddings) goes through the persistent embedding cache; everything
after it works on the N×D matrix: rewards for a spec, the curves of several α values (the
paper's Fig. 2), the x axis of the landscape (sweep parameter, rollout step or reward rank),
the top and bottom frames, and how much two rewards agree.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from vlmrm_core.clip.embedding import PromptError, embed_frames, prompt_token_count
from vlmrm_core.clip.models import ClipModel
from vlmrm_core.errors import InvalidInputError
from vlmrm_core.frames import ProgressCallback
from vlmrm_core.metrics.correlation import pearson, spearman
from vlmrm_core.reward import math as rewards
from vlmrm_core.reward.model import RewardScores, score_embeddings
from vlmrm_core.reward.prompts import prompt_embeddings
from vlmrm_core.reward.spec import RewardSpec
from vlmrm_core.settings import Settings
from vlmrm_core.store import Engine, FrameInfo, dataset_frames, load_pixels
from vlmrm_core.store.embedding_cache import EmbeddingCache, encoder_key

AXES = ("parameter", "step", "rank")
"""Landscape x axes: the swept state variable, the step within an episode, the reward rank."""


@dataclass
class DatasetEmbeddings:
    """A dataset's frames (one per membership, in position order) and their image embeddings."""

    dataset: str
    encoder_key: str
    frames: list[FrameInfo]
    embeddings: np.ndarray
    """N×D float32, row i belongs to ``frames[i]``."""

    def __len__(self) -> int:
        return len(self.frames)


def parse_prompts(text: str | None) -> list[str]:
    """Prompts from a text area: one per line, blank lines and surrounding spaces dropped.

    Args:
        text: the raw text (None counts as empty).

    Returns:
        The non-empty lines, stripped, in order (duplicates kept: they weigh the mean).
    """
    if not text:
        return []
    return [line.strip() for line in text.splitlines() if line.strip()]


def embed_hashes(
    engine: Engine,
    clip: ClipModel,
    hashes: Sequence[str],
    *,
    aspect: str = "squash",
    progress: ProgressCallback | None = None,
    settings: Settings | None = None,
    batch_size: int = 32,
    resize: str = "antialias",
) -> np.ndarray:
    """Embeddings of stored frames, read from the cache; frames not cached yet are embedded once.

    Args:
        engine: the project database (holds the embedding cache).
        clip: the model.
        hashes: pixel hashes of stored frames (repeats allowed).
        aspect: preprocessing aspect policy (part of the cache key).
        progress: ``progress(done, total, message)``.
        settings: where frame files live (default: the current settings).
        batch_size: frames per forward pass.
        resize: resampling policy (part of the cache key).

    Returns:
        len(hashes)×D float32, L2-normalised, in the order given.
    """
    cache = EmbeddingCache.for_model(engine, clip, aspect, resize)
    # Loaders, not pixels: images of frames already in the cache are never read.
    items = ((h, functools.partial(load_pixels, h, settings)) for h in hashes)
    return embed_frames(
        clip,
        items,
        cache=cache,
        aspect=aspect,
        resize=resize,
        batch_size=batch_size,
        total=len(hashes),
        progress=progress,
    )


def embed_dataset(
    engine: Engine,
    clip: ClipModel,
    dataset: str,
    *,
    aspect: str = "squash",
    progress: ProgressCallback | None = None,
    settings: Settings | None = None,
    batch_size: int = 32,
    resize: str = "antialias",
) -> DatasetEmbeddings:
    """Every frame of a dataset with its embedding (computed once per model, ever).

    Args:
        engine: the project database.
        clip: the model.
        dataset: dataset name.
        aspect: preprocessing aspect policy.
        progress: ``progress(done, total, message)`` while embedding.
        settings: where frame files live.
        batch_size: frames per forward pass.
        resize: resampling policy.

    Returns:
        The frames in position order and an N×D matrix of their embeddings.
    """
    frames = dataset_frames(engine, dataset)
    matrix = embed_hashes(
        engine,
        clip,
        [f.hash for f in frames],
        aspect=aspect,
        progress=progress,
        settings=settings,
        batch_size=batch_size,
        resize=resize,
    )
    return DatasetEmbeddings(dataset, encoder_key(clip, aspect, resize), frames, matrix)


def long_prompt_warnings(clip: ClipModel, prompts: Iterable[str]) -> list[str]:
    """One message per prompt the model will truncate (checked on every call, not only the first
    time a prompt is encoded, so the warning stays visible while the prompt is in use).

    Args:
        clip: the model (its tokenizer and context length).
        prompts: prompts to check.

    Returns:
        Messages like ``PromptTooLongWarning``'s, in order; empty when all fit.
    """
    messages = []
    for prompt in dict.fromkeys(p.strip() for p in prompts if p and p.strip()):
        n_tokens = _token_count(clip, prompt)
        if n_tokens > clip.context_length:
            messages.append(
                f"prompt {prompt[:40]!r}… has {n_tokens} tokens, more than the model's context "
                f"of {clip.context_length}; it was truncated"
            )
    return messages


_TOKEN_COUNTS: dict[tuple[str, str], int] = {}
"""Token counts by (architecture, prompt): tokenizing costs milliseconds per prompt, too much to
repeat on every re-score. The tokenizer is determined by the architecture name."""
_TOKEN_COUNTS_MAX = 10_000


def _token_count(clip: ClipModel, prompt: str) -> int:
    key = (clip.name, prompt)
    count = _TOKEN_COUNTS.get(key)
    if count is None:
        if len(_TOKEN_COUNTS) >= _TOKEN_COUNTS_MAX:
            _TOKEN_COUNTS.clear()
        count = _TOKEN_COUNTS[key] = prompt_token_count(clip, prompt)
    return count


def spec_prompts(spec: RewardSpec) -> list[str]:
    """All prompts a spec uses (goal, baseline, negatives)."""
    return [*spec.goal_prompts, *spec.baseline_prompts, *spec.negatives]


def score(
    clip: ClipModel, embeddings: np.ndarray, spec: RewardSpec
) -> tuple[RewardScores, list[str]]:
    """Rewards of cached embeddings, with the truncation warnings of the spec's prompts.

    Args:
        clip: the model the embeddings came from.
        embeddings: N×D normalised image embeddings.
        spec: prompts and reward parameters.

    Returns:
        ``(scores, warnings)``.
    """
    return score_embeddings(clip, embeddings, spec), long_prompt_warnings(clip, spec_prompts(spec))


def reward_values(scores: RewardScores) -> np.ndarray:
    """What to plot and rank frames by: the contrastive probability p(goal | frame) when there
    is one (the binary reward 1[p > β] hides the ordering), else the rewards.

    Returns:
        N float64 values.
    """
    values = scores.probability if scores.probability is not None else scores.rewards
    return np.asarray(values, dtype=np.float64)


def alpha_curves(
    clip: ClipModel, embeddings: np.ndarray, spec: RewardSpec, alphas: Iterable[float]
) -> dict[float, np.ndarray]:
    """The regularized reward of the spec's prompts at several α (Rocamonde et al., Fig. 2).

    Equal to ``rewards.regularized_reward`` at each α, but the N×D matrix is read once for all
    of them: R(x) only needs x·g and x·d̂ (see ``rewards.regularized_reward``), and those two
    dot products don't depend on α.

    Args:
        clip: the model.
        embeddings: N×D normalised image embeddings.
        spec: a regularized spec (its own α is ignored).
        alphas: α values in [0, 1].

    Returns:
        ``{α: N rewards}`` in the order given (duplicates dropped), in the embeddings' dtype.

    Raises:
        ValueError: a contrastive spec, an α outside [0, 1], or α > 0 with goal and baseline
            embeddings equal.
        PromptError: α > 0 without baseline prompts.
    """
    if spec.kind != "regularized":
        raise InvalidInputError("α curves belong to the regularized reward; pick that reward kind")
    alphas = list(dict.fromkeys(float(a) for a in alphas))
    if any(not 0.0 <= a <= 1.0 for a in alphas):
        raise InvalidInputError(f"α must be in [0, 1], got {alphas}")
    if any(a > 0 for a in alphas) and not spec.baseline_prompts:
        raise PromptError("α > 0 needs at least one baseline prompt (or keep only α = 0)")
    vectors = prompt_embeddings(clip, spec)  # the same cached vectors score_embeddings uses
    # Without baseline prompts every α is 0 here, where the baseline plays no part.
    return rewards.regularized_reward_curves(
        embeddings, vectors.goal, vectors.baseline_or_goal(), alphas
    )


def available_axes(frames: Sequence[FrameInfo]) -> list[str]:
    """The x axes that make sense for these frames, best first.

    ``parameter`` needs a swept value on every frame, ``step`` a step on every frame; ``rank``
    always works.
    """
    axes = []
    if frames and all(f.param_value is not None for f in frames):
        axes.append("parameter")
    if frames and all(f.step is not None for f in frames):
        axes.append("step")
    axes.append("rank")
    return axes


def frame_label(frame: FrameInfo) -> str:
    """A short display name: the frame's name, or the start of its hash."""
    return frame.name or frame.hash[:12]


def landscape_points(
    frames: Sequence[FrameInfo], axis: str, order_by: np.ndarray | None = None
) -> tuple[pd.DataFrame, str]:
    """Where each frame sits on the landscape's x axis, in drawing order.

    Args:
        frames: the dataset's frames (dataset order).
        axis: ``parameter``, ``step`` or ``rank``.
        order_by: rewards that define the rank (required for ``rank``; rank 1 = highest).

    Returns:
        ``(points, x_title)``. ``points`` has one row per frame with columns ``frame`` (index
        into ``frames``), ``x``, ``group`` (a line: the swept parameter, or the episode),
        ``name`` and ``detail`` (hover text), sorted by group then x.

    Raises:
        ValueError: an unknown axis, an axis the frames lack, or ``rank`` without rewards.
    """
    if axis not in AXES:
        raise InvalidInputError(f"unknown x axis {axis!r}: use one of {', '.join(AXES)}")
    if axis not in available_axes(frames):
        raise InvalidInputError(f"these frames have no {axis} values; pick another x axis")
    n = len(frames)
    index = np.arange(n)
    names = [frame_label(f) for f in frames]
    if axis == "parameter":
        x = np.array([f.param_value for f in frames], dtype=np.float64)
        groups = [f.param_name or "sweep" for f in frames]
        distinct = sorted(set(groups))
        x_title = distinct[0] if len(distinct) == 1 else "swept value"
        details = [f"{g} = {v:.4g}" for g, v in zip(groups, x, strict=True)]
    elif axis == "step":
        x = np.array([f.step for f in frames], dtype=np.float64)
        several_envs = len({f.env_id for f in frames}) > 1
        groups = [
            (f"{f.env_id} " if several_envs and f.env_id else "")
            + (f"episode {f.episode}" if f.episode is not None else "episode ?")
            for f in frames
        ]
        x_title = "step"
        details = [f"{g}, step {int(s)}" for g, s in zip(groups, x, strict=True)]
    else:
        if order_by is None or len(order_by) != n:
            raise InvalidInputError("the rank axis needs one reward per frame to rank by")
        order = np.argsort(-np.asarray(order_by, dtype=np.float64), kind="stable")
        x = np.empty(n, dtype=np.float64)
        x[order] = np.arange(1, n + 1)
        groups = ["all frames"] * n
        x_title = "rank (1 = highest reward)"
        details = [f"rank {int(r)}" for r in x]
    points = pd.DataFrame(
        {"frame": index, "x": x, "group": groups, "name": names, "detail": details}
    )
    points = points.sort_values(["group", "x", "frame"], kind="stable").reset_index(drop=True)
    return points, x_title


def top_k(values: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest values, largest first (ties: earlier index first).

    Args:
        values: N rewards.
        k: how many (clipped to N; 0 gives none).

    Returns:
        Up to k indices.
    """
    return _extreme(np.asarray(values, dtype=np.float64), k, largest=True)


def bottom_k(values: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k smallest values, smallest first (ties: earlier index first)."""
    return _extreme(np.asarray(values, dtype=np.float64), k, largest=False)


def _extreme(values: np.ndarray, k: int, *, largest: bool) -> np.ndarray:
    k = max(0, min(int(k), len(values)))
    if k == 0:
        return np.zeros(0, dtype=np.int64)
    keys = -values if largest else values
    # Selection instead of a full sort (O(N)): the k-th smallest key splits the frames; ties at
    # that value are taken in index order so the result doesn't depend on the partition.
    kth = np.partition(keys, k - 1)[k - 1]
    below = np.flatnonzero(keys < kth)
    ties = np.flatnonzero(keys == kth)[: k - len(below)]
    chosen = np.concatenate([below, ties])
    return chosen[np.lexsort((chosen, keys[chosen]))]


@dataclass(frozen=True)
class Agreement:
    """How two rewards over the same frames agree (None where one of them is constant)."""

    pearson: float | None
    spearman: float | None


def reward_agreement(a: np.ndarray, b: np.ndarray) -> Agreement:
    """Pearson and Spearman correlation of two reward vectors over the same frames.

    Args:
        a: N rewards.
        b: N rewards of another reward model.

    Returns:
        The correlations over the frames where both rewards are finite; None for one that is
        undefined there (either reward constant, fewer than 2 frames: the rule of
        :func:`~vlmrm_core.metrics.correlation.spearman`).
    """
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"the rewards cover different frames ({len(x)} and {len(y)})")
    finite = np.isfinite(x) & np.isfinite(y)
    x, y = x[finite], y[finite]
    rho: float | None = None
    if len(x) >= 2:
        result = pearson(x, y)
        rho = float(result.rho) if result.defined else None
    return Agreement(rho, spearman(x, y))
