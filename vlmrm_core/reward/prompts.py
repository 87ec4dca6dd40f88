"""A reward's prompts as vectors: the goal mean g, the baseline mean b and the negatives.

Every scoring path (the reward itself, its α curves, the adaptation prior) needs the same three
things from a spec's prompts, and none of them depends on α, β or τ. :func:`prompt_embeddings`
computes them once per (model, prompts) and keeps the latest :data:`PROMPT_CACHE_SIZE` in memory,
so re-scoring after an α change only re-weights vectors it already has: no prompt is encoded or
averaged again.

Example::

    >>> import numpy as np
    >>> vectors = PromptEmbeddings.from_vectors(
    ...     goal=np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]),
    ...     baseline=np.array([[0.0, 0.0, 2.0]]),  # normalised on the way in
    ... )
    >>> vectors.goal.tolist(), vectors.baseline.tolist()
    ([0.5, 0.5, 0.0], [0.0, 0.0, 1.0])
    >>> vectors.negatives.shape  # no negative prompts
    (0, 3)
    >>> clip = load_model("ViT-B-32", "laion2b_s34b_b79k")  # doctest: +SKIP
    >>> prompt_embeddings(clip, RewardSpec(("a robot kneeling",), ("a robot",))).goal.shape
    ... # doctest: +SKIP
    (512,)
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from vlmrm_core.clip import embedding
from vlmrm_core.clip.models import ClipModel
from vlmrm_core.reward import math as rewards
from vlmrm_core.reward.spec import RewardSpec

__all__ = ["PROMPT_CACHE_SIZE", "PromptEmbeddings", "clear_prompt_cache", "prompt_embeddings"]

PROMPT_CACHE_SIZE = 256
"""Prompt combinations kept per process (each holds a few D-vectors: ~2 KiB at D = 512)."""


@dataclass(frozen=True, eq=False)
class PromptEmbeddings:
    """The vectors a spec's prompts define for one model (read-only: they are shared).

    Attributes:
        goal: g, the mean of the normalised goal-prompt embeddings (D, float32, not re-normalised).
        baseline: b, the same mean of the baseline prompts; None without baseline prompts.
        negatives: K×D normalised negative-prompt embeddings (0×D without negatives).
        negatives_mean: the mean of ``negatives`` (D); None without negatives.
    """

    goal: np.ndarray
    baseline: np.ndarray | None
    negatives: np.ndarray
    negatives_mean: np.ndarray | None

    @classmethod
    def from_vectors(
        cls,
        goal: np.ndarray,
        baseline: np.ndarray | None = None,
        negatives: np.ndarray | None = None,
    ) -> PromptEmbeddings:
        """The means from per-prompt embeddings (each row is normalised first).

        Args:
            goal: P×D goal-prompt embeddings (P ≥ 1).
            baseline: B×D baseline-prompt embeddings; None or 0 rows for none.
            negatives: K×D negative-prompt embeddings; None or 0 rows for none.
        """
        goal_mean = rewards.mean_embedding(goal)
        baseline_mean = None
        if baseline is not None and np.asarray(baseline).size > 0:
            baseline_mean = _read_only(rewards.mean_embedding(baseline))
        negative_rows = np.zeros((0, goal_mean.shape[-1]), dtype=goal_mean.dtype)
        negatives_mean = None
        if negatives is not None and np.asarray(negatives).size > 0:
            negative_rows = rewards.normalize(np.atleast_2d(np.asarray(negatives)))
            negatives_mean = _read_only(negative_rows.mean(axis=0))
        return cls(
            goal=_read_only(goal_mean),
            baseline=baseline_mean,
            negatives=_read_only(negative_rows),
            negatives_mean=negatives_mean,
        )

    def baseline_or_goal(self) -> np.ndarray:
        """b, or g without baseline prompts (only valid at α = 0, where b plays no part)."""
        return self.baseline if self.baseline is not None else self.goal


_CacheKey = tuple[str, str, tuple[str, ...], tuple[str, ...], tuple[str, ...]]
_cache: OrderedDict[_CacheKey, PromptEmbeddings] = OrderedDict()
_cache_lock = threading.Lock()  # Streamlit scores from several threads


def prompt_embeddings(
    clip: ClipModel,
    goal_prompts: RewardSpec | Sequence[str],
    baseline_prompts: Sequence[str] = (),
    negatives: Sequence[str] = (),
) -> PromptEmbeddings:
    """The prompt vectors of a spec (or of prompt lists) under a model, computed once.

    Each distinct (model identity, precision, prompts) is encoded with one call of
    :func:`vlmrm_core.clip.embedding.encode_texts` per non-empty prompt list, then served from
    a least-recently-used cache of :data:`PROMPT_CACHE_SIZE` entries. α, β, τ and the kind are
    not part of the key: changing them never re-encodes text.

    Args:
        clip: the model (its ``identity`` and ``precision`` key the cache).
        goal_prompts: a :class:`RewardSpec` (its goal, baseline and negative prompts), or the
            goal prompts.
        baseline_prompts: baseline prompts (ignored when a spec is given).
        negatives: negative prompts (ignored when a spec is given).

    Raises:
        PromptError: no goal prompt, or an empty prompt.
    """
    if isinstance(goal_prompts, RewardSpec):
        spec = goal_prompts
        goals, baselines, negs = spec.goal_prompts, spec.baseline_prompts, spec.negatives
    else:
        goals, baselines, negs = (tuple(goal_prompts), tuple(baseline_prompts), tuple(negatives))
    key: _CacheKey = (clip.identity, str(clip.precision), goals, baselines, negs)
    with _cache_lock:
        found = _cache.get(key)
        if found is not None:
            _cache.move_to_end(key)
            return found
    vectors = PromptEmbeddings.from_vectors(
        embedding.encode_texts(clip, goals),
        embedding.encode_texts(clip, baselines) if baselines else None,
        embedding.encode_texts(clip, negs) if negs else None,
    )
    with _cache_lock:
        _cache[key] = vectors
        _cache.move_to_end(key)
        while len(_cache) > PROMPT_CACHE_SIZE:
            _cache.popitem(last=False)
    return vectors


def clear_prompt_cache() -> None:
    """Forget every cached prompt combination (tests; freeing memory after a model change)."""
    with _cache_lock:
        _cache.clear()


def _read_only(array: np.ndarray) -> np.ndarray:
    array = np.array(array)  # an own copy, so no caller's array is frozen
    array.flags.writeable = False
    return array
