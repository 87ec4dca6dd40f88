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
    >>> reward_model.reward(frames)  # N frames (see as_frames) → N float32 rewards  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from vlmrm_core.clip.embedding import encode_images
from vlmrm_core.clip.models import ClipModel, file_sha256, is_checkpoint_path, load_model
from vlmrm_core.enums import Aspect, Precision, Resize, RewardKind
from vlmrm_core.reward import math as rewards
from vlmrm_core.reward.base import Reward, RewardHistory, as_frames
from vlmrm_core.reward.prompts import prompt_embeddings
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
    """Rewards of N cached image embeddings under a spec (prompt vectors are cached per model).

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
    vectors = prompt_embeddings(clip, spec)  # cached: an α change re-encodes nothing
    if spec.kind is RewardKind.CONTRASTIVE:
        tau = spec.tau if spec.tau is not None else 1.0 / clip.logit_scale
        probability = rewards.contrastive_probability(x, vectors.goal, vectors.negatives, tau)
        return RewardScores(rewards.contrastive_reward(probability, spec.beta), probability)
    # Without baseline prompts α is 0 (the spec checks), where the baseline plays no part.
    return RewardScores(
        rewards.regularized_reward(x, vectors.goal, vectors.baseline_or_goal(), spec.alpha)
    )


def window_mean(rows: npt.ArrayLike) -> np.ndarray:
    """The mean of some normalised embeddings (k×D → D, float32): a windowed reward's input.

    Not re-normalised, like the goal vector g is the plain mean of its prompts' embeddings.
    """
    mean = np.mean(np.asarray(rows, dtype=np.float32), axis=0, dtype=np.float64)
    return np.asarray(mean, dtype=np.float32)


def window_means(image_embeddings: npt.ArrayLike, window: int) -> np.ndarray:
    """Row t: the mean of rows max(0, t − k + 1) … t of one episode's embeddings (T×D, in time
    order), k = ``window``; the rows themselves for k = 1.

    >>> window_means(np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]]), 2).tolist()
    [[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]]
    """
    x = np.asarray(image_embeddings, dtype=np.float32)
    if window <= 1 or len(x) == 0:
        return x
    return np.stack([window_mean(x[max(0, t - window + 1) : t + 1]) for t in range(len(x))])


def score_episode_embeddings(
    clip: ClipModel, image_embeddings: npt.ArrayLike, spec: RewardSpec
) -> RewardScores:
    """Rewards of one episode's cached embeddings (T×D, in time order), the spec's window applied.

    The same as :func:`score_embeddings` for a window of 1; for k > 1 frame t is scored on the
    mean of the embeddings of frames t − k + 1 … t (fewer at the start of the episode).
    """
    return score_embeddings(clip, window_means(image_embeddings, spec.window), spec)


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
    vectors = prompt_embeddings(clip, spec)
    goal = vectors.goal.astype(np.float64)
    if spec.kind is RewardKind.CONTRASTIVE:
        assert vectors.negatives_mean is not None  # the spec requires negatives
        return prior_direction(goal, vectors.negatives_mean.astype(np.float64), 1.0, embeddings=x)
    baseline = vectors.baseline.astype(np.float64) if vectors.baseline is not None else None
    return prior_direction(goal, baseline, spec.alpha, embeddings=x)


class RewardModel(Reward):
    """A reward function on raw frames: a loaded CLIP model bound to one reward spec.

    Calling it (or :meth:`reward`) on N frames embeds them in batches and returns N rewards,
    so a vectorised environment costs one model call per step, not one per sub-environment.
    Every kind of :class:`~vlmrm_core.reward.spec.RewardSpec` is one, the adapted kind (a
    direction fitted to labels) included.

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

    source: ClassVar[str] = "clip"

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

    @classmethod
    def from_reward_file(
        cls, data: Mapping[str, Any], path: Path, device: str | None = None
    ) -> RewardModel:
        """The ``clip`` source of reward files: the reward a file's checked JSON describes.

        A checkpoint path in the file is looked up as written, then next to the reward file.

        Raises:
            RewardFileError: invalid ``model`` or ``reward`` fields.
            ModelError: the model cannot be loaded, or its checkpoint's SHA-256 differs.
        """
        from vlmrm_core.reward.file import locate_checkpoint, reward_file_from_dict

        content = reward_file_from_dict(data, origin=f"reward file {path}")
        ref = locate_checkpoint(content.model, path)
        return cls.from_ref(ref, content.reward, device=device)

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

    @property
    def identity(self) -> str:
        """``clip/<model>/<kind>:<16 hex>``: the hex is a SHA-256 of all that sets the rewards.

        That is the weights (the open_clip tag, or the checkpoint's content hash taken when the
        model loaded: never its path, so a moved checkpoint keeps the identity), the
        architecture, aspect, resampling and precision, and the whole reward spec. E.g.
        ``clip/ViT-B-32/laion2b_s34b_b79k/regularized:3f0c…``.
        """
        canonical = json.dumps(
            {
                "weights": self.clip.identity,  # architecture + tag / checkpoint sha256 prefix
                "aspect": self.aspect.value,
                "resize": self.resize.value,
                "precision": self.clip.precision,
                "reward": self.spec.to_dict(),
            },
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=True,
        )
        digest = hashlib.sha256(canonical.encode("ascii")).hexdigest()[:16]
        return f"clip/{self.clip.identity}/{self.spec.kind.value}:{digest}"

    @property
    def description(self) -> str:
        """E.g. ``CLIP regularized reward (α=0.5): goal "…"; baseline "…" · ViT-B-32 · laion…``."""
        spec = self.spec
        goal = _quoted(spec.goal_prompts)
        if spec.kind is RewardKind.ADAPTED:
            what = f"adapted reward ({len(spec.weights)} fitted weights"
            what += f", from goal {goal})" if spec.goal_prompts else ")"
        elif spec.kind is RewardKind.CONTRASTIVE:
            tau = "1/logit scale" if spec.tau is None else f"{spec.tau:g}"
            what = (
                f"contrastive reward (β={spec.beta:g}, τ={tau}): goal {goal} against "
                f"{_quoted(spec.negatives)}"
            )
        else:
            what = f"regularized reward (α={spec.alpha:g}): goal {goal}"
            if spec.baseline_prompts:
                what += f"; baseline {_quoted(spec.baseline_prompts)}"
        if spec.window > 1:
            what += f", on the mean of the last {spec.window} frames"
        label = ModelRef(self.clip.name, self.clip.pretrained).label
        return f"CLIP {what} · {label}"

    def score_embeddings(self, image_embeddings: npt.ArrayLike) -> RewardScores:
        """Rewards of already-embedded frames (L2-normalised, N×D)."""
        return score_embeddings(self.clip, image_embeddings, self.spec)

    def embed(self, frames: Any) -> np.ndarray:
        """L2-normalised embeddings of N frames, ``chunk_size`` at a time.

        Args:
            frames: any input :func:`~vlmrm_core.reward.base.as_frames` accepts (N×H×W×3 or
                H×W×3 uint8 or floats in [0, 1], RGBA, PIL images, torch tensors, lists).

        Raises:
            FrameInputError: frames of another shape or type; the message names what was given.
        """
        pixels = as_frames(frames)
        return encode_images(
            self.clip,
            pixels,
            aspect=self.aspect,
            resize=self.resize,
            batch_size=min(self.chunk_size, max(len(pixels), 1)),
        )

    def reward(self, frames: Any) -> np.ndarray:
        """N float32 rewards of N frames (one H×W×3 frame gives one reward); see :meth:`embed`.

        Each frame is scored alone, also for a windowed spec (k > 1), whose window needs the
        frames before it in an episode: :meth:`score_episode` and the training wrappers
        (through :meth:`history`) apply it.
        """
        embeddings = self.embed(frames)
        return self.score_embeddings(embeddings).rewards.astype(np.float32, copy=False)

    def score_episode(self, frames: Any) -> np.ndarray:
        """T float32 rewards of an episode's T frames in time order, the spec's window applied
        (:func:`score_episode_embeddings`); frame by frame for a window of 1."""
        embeddings = self.embed(frames)
        scores = score_episode_embeddings(self.clip, embeddings, self.spec)
        return scores.rewards.astype(np.float32, copy=False)

    def history(self, n_envs: int) -> EmbeddingWindow | None:
        """None for a window of 1 (each frame alone: the wrappers' fast path), else a fresh
        :class:`EmbeddingWindow` of ``n_envs`` sub-environments."""
        return EmbeddingWindow(self, n_envs) if self.spec.window > 1 else None


class EmbeddingWindow(RewardHistory):
    """The last k frame embeddings of each sub-environment's episode, for a windowed CLIP reward.

    :meth:`score` embeds all the frames it is given in one batch, then walks them in order: each
    frame's embedding joins its sub-env's window and the frame is scored on the window's mean
    (:func:`window_mean`), so a rollout scored step by step gets exactly
    :meth:`RewardModel.score_episode` of each of its episodes.

    Args:
        reward_model: The reward; its ``spec.window`` is k.
        n_envs: Number of sub-environments.
    """

    def __init__(self, reward_model: RewardModel, n_envs: int) -> None:
        self.reward_model = reward_model
        self.window = reward_model.spec.window
        self._past: list[deque[np.ndarray]] = [deque(maxlen=self.window) for _ in range(n_envs)]

    def score(
        self, frames: Any, envs: Sequence[int], ends: Sequence[bool] | None = None
    ) -> np.ndarray:
        embeddings = self.reward_model.embed(frames)
        if len(envs) != len(embeddings):
            raise ValueError(f"{len(envs)} sub-env indices for {len(embeddings)} frames")
        means = np.empty_like(embeddings, dtype=np.float32)
        for j, env in enumerate(envs):
            past = self._past[int(env)]
            past.append(embeddings[j])
            means[j] = window_mean(past)
            if ends is not None and ends[j]:
                past.clear()
        return self.reward_model.score_embeddings(means).rewards.astype(np.float32, copy=False)

    def reset(self, envs: Sequence[int] | None = None) -> None:
        for env in range(len(self._past)) if envs is None else envs:
            self._past[int(env)].clear()


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


def _quoted(prompts: tuple[str, ...], most: int = 3) -> str:
    """Prompts as ``"a"; "b"`` on one line (the first ``most``, then how many more)."""
    shown = ['"' + " ".join(prompt.split()) + '"' for prompt in prompts[:most]]
    if len(prompts) > most:
        shown.append(f"{len(prompts) - most} more")
    return "; ".join(shown) or "(none)"


def _embedding_dim(clip: ClipModel) -> int:
    from vlmrm_core.clip.embedding import embedding_dim

    return embedding_dim(clip)
