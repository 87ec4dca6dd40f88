"""A CLIP reward model: prompts + reward kind, scoring embeddings or raw frames.

``RewardSpec`` says what to reward (prompts, α, kind, τ, β) independently of the model;
``score_embeddings`` applies it to cached image embeddings (the fast path for re-scoring);
``RewardModel`` binds a spec to a loaded model for use on raw frames (e.g. during RL training).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from vlmrm_core import rewards
from vlmrm_core.embedding import PromptError, encode_images, encode_texts
from vlmrm_core.models import ClipModel, load_model

REWARD_KINDS = ("regularized", "contrastive")


@dataclass(frozen=True)
class RewardSpec:
    """What to reward, independent of the model."""

    goal_prompts: tuple[str, ...]
    """Describe the goal state; several are averaged after normalising each."""
    baseline_prompts: tuple[str, ...] = ()
    """Describe the environment in general (needed when α > 0)."""
    alpha: float = 0.0
    """Goal-baseline regularisation strength in [0, 1] (regularized kind)."""
    kind: str = "regularized"
    """``regularized`` (Rocamonde Def. 1) or ``contrastive`` (Baumli)."""
    negatives: tuple[str, ...] = ()
    """Other task descriptions competing with the goal (contrastive kind)."""
    tau: float | None = None
    """Softmax temperature; None means the model's 1 / logit_scale."""
    beta: float = 0.5
    """Probability threshold of the binary contrastive reward 1[p > β]."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "goal_prompts", _clean(self.goal_prompts, "goal"))
        object.__setattr__(self, "baseline_prompts", _clean(self.baseline_prompts, "baseline"))
        object.__setattr__(self, "negatives", _clean(self.negatives, "negative"))
        if not self.goal_prompts:
            raise PromptError("no goal prompt: describe the goal state in at least one prompt")
        if self.kind not in REWARD_KINDS:
            raise ValueError(f"unknown reward kind {self.kind!r}: use {' or '.join(REWARD_KINDS)}")
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"α must be in [0, 1], got {self.alpha}")
        if self.kind == "regularized" and self.alpha > 0 and not self.baseline_prompts:
            raise PromptError("α > 0 needs at least one baseline prompt (or set α = 0)")
        if self.kind == "contrastive" and not self.negatives:
            raise PromptError("the contrastive reward needs at least one negative prompt")
        if self.tau is not None and not self.tau > 0:
            raise ValueError(f"τ must be positive, got {self.tau}")
        if not 0.0 <= self.beta <= 1.0:
            raise ValueError(f"β must be in [0, 1], got {self.beta}")

    @classmethod
    def from_prompt_set(cls, prompt_set: Any) -> RewardSpec:
        """Build from any object with the prompt-set fields (e.g. the store's PromptSetSpec)."""
        beta = getattr(prompt_set, "beta", None)
        return cls(
            goal_prompts=tuple(prompt_set.goal_prompts),
            baseline_prompts=tuple(getattr(prompt_set, "baseline_prompts", ()) or ()),
            alpha=float(getattr(prompt_set, "alpha", 0.0) or 0.0),
            kind=getattr(prompt_set, "reward_kind", "regularized") or "regularized",
            negatives=tuple(getattr(prompt_set, "negatives", ()) or ()),
            tau=getattr(prompt_set, "tau", None),
            beta=0.5 if beta is None else float(beta),
        )


@dataclass
class RewardScores:
    """Rewards for N frames; ``probability`` is set for the contrastive kind."""

    rewards: np.ndarray
    probability: np.ndarray | None = None


def score_embeddings(
    clip: ClipModel, image_embeddings: np.ndarray, spec: RewardSpec
) -> RewardScores:
    """Rewards of N cached image embeddings under a spec (text embeddings are cached per prompt).

    Args:
        clip: the model the embeddings came from (for text embeddings and the default τ).
        image_embeddings: N×D L2-normalised float32.
        spec: prompts and reward parameters.

    Returns:
        ``RewardScores`` with N rewards (and probabilities for the contrastive kind).
    """
    goal = rewards.mean_embedding(encode_texts(clip, spec.goal_prompts))
    if spec.kind == "contrastive":
        tau = spec.tau if spec.tau is not None else 1.0 / clip.logit_scale
        negatives = encode_texts(clip, spec.negatives)
        probability = rewards.contrastive_probability(image_embeddings, goal, negatives, tau)
        return RewardScores(rewards.contrastive_reward(probability, spec.beta), probability)
    if spec.baseline_prompts:
        baseline = rewards.mean_embedding(encode_texts(clip, spec.baseline_prompts))
    else:
        baseline = goal  # only reachable with α = 0, where the baseline plays no part
    return RewardScores(rewards.regularized_reward(image_embeddings, goal, baseline, spec.alpha))


class RewardModel:
    """A reward function on raw frames: one batched model call for all N frames."""

    def __init__(
        self,
        clip: ClipModel,
        goal_prompts: Sequence[str],
        baseline_prompts: Sequence[str] = (),
        alpha: float = 0.0,
        kind: str = "regularized",
        negatives: Sequence[str] = (),
        tau: float | None = None,
        beta: float | None = None,
        aspect: str = "squash",
    ) -> None:
        self.clip = clip
        self.spec = RewardSpec(
            goal_prompts=tuple(goal_prompts),
            baseline_prompts=tuple(baseline_prompts),
            alpha=alpha,
            kind=kind,
            negatives=tuple(negatives),
            tau=tau,
            beta=0.5 if beta is None else beta,
        )
        self.aspect = aspect
        score_embeddings(clip, np.zeros((0, _dim(clip)), np.float32), self.spec)  # warm text cache

    @classmethod
    def from_prompt_set(
        cls, prompt_set: Any, *, device: str | None = None, precision: str = "fp32"
    ) -> RewardModel:
        """Load the prompt set's model and bind its prompts.

        Args:
            prompt_set: object with ``model_name``, ``pretrained``, prompt fields and ``aspect``.
            device: ``cuda`` / ``cpu`` (default: cuda when available).
            precision: ``fp32`` or ``bf16``.
        """
        clip = load_model(
            prompt_set.model_name, prompt_set.pretrained or None, device=device, precision=precision
        )
        spec = RewardSpec.from_prompt_set(prompt_set)
        return cls(
            clip,
            spec.goal_prompts,
            spec.baseline_prompts,
            spec.alpha,
            spec.kind,
            spec.negatives,
            spec.tau,
            spec.beta,
            aspect=getattr(prompt_set, "aspect", "squash") or "squash",
        )

    def score_embeddings(self, image_embeddings: np.ndarray) -> RewardScores:
        """Rewards of already-embedded frames."""
        return score_embeddings(self.clip, image_embeddings, self.spec)

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        """Rewards of N×H×W×3 uint8 frames, embedded in one batch."""
        frames = np.asarray(frames)
        embeddings = encode_images(
            self.clip, frames, aspect=self.aspect, batch_size=len(frames) or 1
        )
        return self.score_embeddings(embeddings).rewards.astype(np.float32)


def _clean(prompts: Sequence[str], what: str) -> tuple[str, ...]:
    if isinstance(prompts, str):
        prompts = [prompts]
    out = []
    for i, prompt in enumerate(prompts):
        if not isinstance(prompt, str) or not prompt.strip():
            raise PromptError(f"{what} prompt {i + 1} is empty: remove it or write some text")
        out.append(prompt.strip())
    return tuple(out)


def _dim(clip: ClipModel) -> int:
    from vlmrm_core.embedding import embedding_dim

    return embedding_dim(clip)
