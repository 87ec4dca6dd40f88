"""A CLIP reward model: a loaded model bound to one :class:`~vlmrm_core.reward.spec.RewardSpec`.

``score_embeddings`` applies a spec to cached image embeddings (the fast path: changing prompts
or α never re-encodes images); ``RewardModel`` adds the image encoder for raw frames, e.g. during
RL training.

Example::

    >>> from vlmrm_core import RewardModel, RewardSpec
    >>> spec = RewardSpec(goal_prompts=("a humanoid robot kneeling",),
    ...                   baseline_prompts=("a humanoid robot",), alpha=0.5)
    >>> reward_model = RewardModel.from_spec(spec, model="ViT-B-32",
    ...                                      pretrained="laion2b_s34b_b79k")  # doctest: +SKIP
    >>> reward_model.reward(frames)  # N×H×W×3 uint8 → N float32 rewards  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from vlmrm_core.clip.embedding import encode_images, encode_texts
from vlmrm_core.clip.models import ClipModel, file_sha256, is_checkpoint_path, load_model
from vlmrm_core.enums import Aspect, Precision, Resize, RewardKind
from vlmrm_core.reward import math as rewards
from vlmrm_core.reward.spec import ModelRef, RewardSpec, SpecError

DEFAULT_CHUNK = 64
"""Frames per forward pass in :meth:`RewardModel.reward` (bounds memory for long batches)."""


@dataclass
class RewardScores:
    """Rewards for N frames; ``probability`` is set for the contrastive kind."""

    rewards: np.ndarray
    probability: np.ndarray | None = None


def score_embeddings(
    clip: ClipModel, image_embeddings: npt.ArrayLike, spec: RewardSpec
) -> RewardScores:
    """Rewards of N cached image embeddings under a spec (text embeddings are cached per prompt).

    Args:
        clip: the model the embeddings came from (for text embeddings and the default τ).
        image_embeddings: N×D L2-normalised float32.
        spec: prompts and reward parameters.

    Returns:
        ``RewardScores`` with N rewards (and probabilities for the contrastive kind).

    Raises:
        SpecError: an adapted reward whose weights do not match the model's embedding size.
    """
    x = np.asarray(image_embeddings, dtype=np.float32)
    if spec.kind is RewardKind.ADAPTED:
        weights = np.asarray(spec.weights, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != len(weights):
            raise SpecError(
                f"this adapted reward was fitted on {len(weights)}-dimensional embeddings but "
                f"{clip.name} gives {x.shape[-1]}: use the model it was fitted with"
            )
        return RewardScores(rewards.linear_reward(x, weights, spec.bias))
    goal = rewards.mean_embedding(encode_texts(clip, spec.goal_prompts))
    if spec.kind is RewardKind.CONTRASTIVE:
        tau = spec.tau if spec.tau is not None else 1.0 / clip.logit_scale
        negatives = encode_texts(clip, spec.negatives)
        probability = rewards.contrastive_probability(x, goal, negatives, tau)
        return RewardScores(rewards.contrastive_reward(probability, spec.beta), probability)
    if spec.baseline_prompts:
        baseline = rewards.mean_embedding(encode_texts(clip, spec.baseline_prompts))
    else:
        baseline = goal  # only reachable with α = 0, where the baseline plays no part
    return RewardScores(rewards.regularized_reward(x, goal, baseline, spec.alpha))


def reward_direction(clip: ClipModel, spec: RewardSpec, embeddings: npt.ArrayLike) -> np.ndarray:
    """The direction in embedding space along which ``spec``'s reward grows, near ``embeddings``.

    The prior an adapted reward is fitted toward (:mod:`vlmrm_core.reward.adaptation`): the fitted
    weights for an adapted reward, goal − mean negative for the contrastive kind, and for the
    regularised kind the local linearisation of Def. 1 (the goal for α = 0, ±(goal − baseline)
    for α = 1).
    """
    from vlmrm_core.reward.adaptation import prior_direction

    x = np.asarray(embeddings, dtype=np.float64)
    if spec.kind is RewardKind.ADAPTED:
        return np.asarray(spec.weights, dtype=np.float64)
    goal = rewards.mean_embedding(encode_texts(clip, spec.goal_prompts)).astype(np.float64)
    if spec.kind is RewardKind.CONTRASTIVE:
        negatives = rewards.mean_embedding(encode_texts(clip, spec.negatives)).astype(np.float64)
        return prior_direction(goal, negatives, 1.0, embeddings=x)
    baseline = (
        rewards.mean_embedding(encode_texts(clip, spec.baseline_prompts)).astype(np.float64)
        if spec.baseline_prompts
        else None
    )
    return prior_direction(goal, baseline, spec.alpha, embeddings=x)


class RewardModel:
    """A reward function on raw frames: a loaded CLIP model bound to one reward spec.

    Calling it (or :meth:`reward`) on N frames embeds them in batches and returns N rewards,
    so a vectorised environment costs one model call per step, not one per sub-environment.

    Args:
        clip: a model from :func:`vlmrm_core.load_model`.
        spec: what to reward.
        aspect: how frames are fitted to the square model input.
        resize: which resampling fits them (``paper`` matches the official VLM-RM code).
        chunk_size: frames per forward pass.

    Example::

        >>> clip = load_model("ViT-B-32", "laion2b_s34b_b79k")  # doctest: +SKIP
        >>> reward_model = RewardModel(clip, RewardSpec(goal_prompts=("a car at the flag",)))
        ... # doctest: +SKIP
        >>> reward_model(frames).shape  # doctest: +SKIP
        (8,)
    """

    def __init__(
        self,
        clip: ClipModel,
        spec: RewardSpec,
        *,
        aspect: Aspect | str = Aspect.SQUASH,
        resize: Resize | str = Resize.ANTIALIAS,
        chunk_size: int = DEFAULT_CHUNK,
    ) -> None:
        if not isinstance(spec, RewardSpec):
            raise TypeError(f"spec must be a RewardSpec, got {type(spec).__name__}")
        if chunk_size < 1:
            raise SpecError(f"chunk_size must be at least 1, got {chunk_size}")
        self.clip = clip
        self.spec = spec
        self.aspect = Aspect(aspect)
        self.resize = Resize(resize)
        self.chunk_size = chunk_size
        # Embeds every prompt now (and checks adapted weights), so a bad spec fails at
        # construction rather than at the first environment step.
        self.score_embeddings(np.zeros((0, _embedding_dim(clip)), np.float32))

    @classmethod
    def from_spec(
        cls,
        spec: RewardSpec,
        *,
        model: str = "ViT-B-32",
        pretrained: str | None = None,
        aspect: Aspect | str = Aspect.SQUASH,
        resize: Resize | str = Resize.ANTIALIAS,
        device: str | None = None,
        precision: Precision | str = Precision.FP32,
    ) -> RewardModel:
        """Load the model too.

        Args:
            spec: what to reward.
            model: open_clip architecture, e.g. ``ViT-B-32``.
            pretrained: open_clip tag, local checkpoint path, or None for random weights.
            aspect: how frames are fitted to the model input.
            resize: which resampling fits them.
            device: ``cuda`` / ``cpu`` (default: cuda when available).
            precision: ``fp32``, ``bf16``, ``fp16`` or ``auto`` (chosen for the device).
        """
        ref = ModelRef(
            model,
            pretrained,
            aspect=Aspect(aspect),
            precision=Precision(precision),
            resize=Resize(resize),
        )
        return cls.from_ref(ref, spec, device=device)

    @classmethod
    def from_ref(cls, ref: ModelRef, spec: RewardSpec, *, device: str | None = None) -> RewardModel:
        """Load the model a :class:`ModelRef` names and bind ``spec`` to it.

        Raises:
            ModelError: the model cannot be loaded, or the checkpoint's SHA-256 differs from
                ``ref.sha256``.
        """
        if ref.sha256 is not None and ref.pretrained and is_checkpoint_path(ref.pretrained):
            _check_checkpoint_hash(ref.pretrained, ref.sha256)  # before the (slow) load
        clip = load_model(ref.architecture, ref.pretrained, device=device, precision=ref.precision)
        return cls(clip, spec, aspect=ref.aspect, resize=ref.resize)

    @property
    def model_ref(self) -> ModelRef:
        """The model reference that rebuilds this reward (checkpoint files with their SHA-256)."""
        pretrained = self.clip.pretrained
        is_file = pretrained is not None and is_checkpoint_path(pretrained)
        sha = file_sha256(Path(pretrained)) if pretrained is not None and is_file else None
        return ModelRef(
            self.clip.name,
            pretrained,
            aspect=self.aspect,
            precision=Precision(self.clip.precision),
            resize=self.resize,
            sha256=sha,
        )

    def score_embeddings(self, image_embeddings: npt.ArrayLike) -> RewardScores:
        """Rewards of already-embedded frames (L2-normalised, N×D)."""
        return score_embeddings(self.clip, image_embeddings, self.spec)

    def embed(self, frames: npt.ArrayLike) -> np.ndarray:
        """L2-normalised embeddings of N×H×W×3 uint8 frames, ``chunk_size`` at a time."""
        frames = np.asarray(frames)
        if frames.ndim == 3:
            frames = frames[None]
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise SpecError(
                f"frames must be an N×H×W×3 uint8 array, got shape {frames.shape} of "
                f"{frames.dtype}: render with render_mode='rgb_array'"
            )
        return encode_images(
            self.clip,
            frames,
            aspect=self.aspect,
            resize=self.resize,
            batch_size=min(self.chunk_size, max(len(frames), 1)),
        )

    def reward(self, frames: npt.ArrayLike) -> np.ndarray:
        """Rewards of N×H×W×3 uint8 frames (one frame H×W×3 gives one reward), as float32."""
        embeddings = self.embed(frames)
        return self.score_embeddings(embeddings).rewards.astype(np.float32, copy=False)

    __call__ = reward

    def __repr__(self) -> str:
        return f"RewardModel({self.model_ref.label}, kind={self.spec.kind.value})"


def _check_checkpoint_hash(path: str, expected: str) -> None:
    from vlmrm_core.clip.models import ModelError

    try:
        actual = file_sha256(Path(path).expanduser())
    except OSError:
        raise ModelError(
            f"cannot read the checkpoint {Path(path).name}: give the path of the checkpoint the "
            "reward was made with"
        ) from None
    if actual != expected:
        raise ModelError(
            f"checkpoint {path} has SHA-256 {actual[:16]}…, but the reward was made with "
            f"{expected[:16]}…: point the reward file at the original checkpoint "
            "(or re-export the reward with this one)"
        )


def _embedding_dim(clip: ClipModel) -> int:
    from vlmrm_core.clip.embedding import embedding_dim

    return embedding_dim(clip)
