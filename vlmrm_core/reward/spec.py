"""What a reward is, independent of any loaded model: ``RewardSpec`` and ``ModelRef``.

These two frozen dataclasses are the only definition of a CLIP reward in the project. Prompt
sets in the store, training configurations and reward files all hold them instead of copying
their fields, and every check of a reward's parameters lives here. The module imports neither
torch nor open_clip, so specs can be built, validated and serialised anywhere.

Example::

    >>> from vlmrm_core.reward.spec import ModelRef, RewardSpec
    >>> spec = RewardSpec(
    ...     goal_prompts=("pole vertically upright on top of the cart",),
    ...     baseline_prompts=("pole and cart",),
    ...     alpha=0.5,
    ... )
    >>> RewardSpec.from_dict(spec.to_dict()) == spec
    True
    >>> ModelRef("ViT-B-32", "laion2b_s34b_b79k").is_random_init
    False
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from vlmrm_core.enums import Aspect, Precision, Resize, RewardKind, choices
from vlmrm_core.errors import VlmrmError
from vlmrm_core.plain_json import to_plain_json


class SpecError(VlmrmError, ValueError):
    """A reward or model definition that cannot be used; the message says what to change."""


class PromptError(SpecError):
    """Prompts that cannot define a reward (empty, missing, too long)."""


RANDOM_INIT_NAMES = ("", "none", "random", "random-init")
"""Spellings of "no pretrained weights" accepted from users; stored as ``None``."""


def normalize_pretrained(pretrained: str | None) -> str | None:
    """``None`` for random weights (whatever the spelling), else the stripped tag or path."""
    if pretrained is None:
        return None
    text = str(pretrained).strip()
    return None if text.lower() in RANDOM_INIT_NAMES else text


@dataclass(frozen=True)
class ModelRef:
    """Which CLIP model, and how frames are fitted to its input.

    Together with a :class:`RewardSpec` this is everything needed to rebuild a reward.
    """

    architecture: str = "ViT-B-32"
    """open_clip architecture name, e.g. ``ViT-B-32``."""
    pretrained: str | None = "laion2b_s34b_b79k"
    """open_clip tag, local checkpoint path, or ``None`` for random (untrained) weights."""
    aspect: Aspect = Aspect.SQUASH
    """How a frame is fitted to the square model input."""
    precision: Precision = Precision.FP32
    """Precision of the model weights; ``auto`` is chosen for the device when the model loads."""
    resize: Resize = Resize.ANTIALIAS
    """Resampling used to fit frames (``paper`` reproduces the official code exactly)."""
    sha256: str | None = None
    """Full SHA-256 of the checkpoint file, when ``pretrained`` is a path (checked on load)."""

    def __post_init__(self) -> None:
        architecture = str(self.architecture or "").strip()
        if not architecture:
            raise SpecError(
                "the model architecture is empty: name an open_clip model, e.g. ViT-B-32"
            )
        object.__setattr__(self, "architecture", architecture)
        object.__setattr__(self, "pretrained", normalize_pretrained(self.pretrained))
        object.__setattr__(self, "aspect", _member(Aspect, self.aspect, "aspect"))
        object.__setattr__(self, "precision", _member(Precision, self.precision, "precision"))
        object.__setattr__(self, "resize", _member(Resize, self.resize, "resize"))
        if self.sha256 is not None:
            digest = str(self.sha256).strip().lower()
            if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
                raise SpecError(f"sha256 must be 64 hex digits, got {self.sha256!r}")
            object.__setattr__(self, "sha256", digest)

    @property
    def is_random_init(self) -> bool:
        """True for untrained weights: rewards are then meaningless."""
        return self.pretrained is None

    @property
    def label(self) -> str:
        """Short human-readable name, e.g. ``ViT-B-32 · laion2b_s34b_b79k``."""
        weights = self.pretrained or "random weights"
        if self.pretrained and ("/" in weights or "\\" in weights):
            weights = weights.replace("\\", "/").rsplit("/", 1)[-1]
        return f"{self.architecture} · {weights}"

    def replace(self, **changes: Any) -> ModelRef:
        """A copy with some fields changed (validated again)."""
        return ModelRef(**{**self.to_dict(), **changes})

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values (enums as their strings)."""
        return {f.name: to_plain_json(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelRef:
        """Inverse of :meth:`to_dict`; unknown keys are an error naming them."""
        return cls(**_known_fields(cls, data, "model reference"))


@dataclass(frozen=True)
class RewardSpec:
    """What to reward, independent of the model.

    Kinds:
        * ``regularized``: goal-baseline regularisation (Rocamonde et al. 2023, Def. 1) with
          strength ``alpha``; α = 0 is the cosine similarity to the mean goal embedding.
        * ``contrastive``: Baumli et al. 2023, reward 1[p(goal | x) > β], p a softmax of cos/τ
          over the goal and the ``negatives``.
        * ``adapted``: a linear direction fitted to human labels, R(x) = x·weights + bias on the
          normalised image embedding x. Its prompts record where the fit started.
    """

    goal_prompts: tuple[str, ...] = ()
    """Describe the goal state; several are averaged after normalising each."""
    baseline_prompts: tuple[str, ...] = ()
    """Describe the environment in general (needed when α > 0)."""
    alpha: float = 0.0
    """Goal-baseline regularisation strength in [0, 1] (regularized kind)."""
    kind: RewardKind = RewardKind.REGULARIZED
    """Which reward function (see the class docstring)."""
    negatives: tuple[str, ...] = ()
    """Other task descriptions competing with the goal (contrastive kind)."""
    tau: float | None = None
    """Softmax temperature (contrastive kind); None means the model's 1 / logit_scale."""
    beta: float = 0.5
    """Probability threshold of the binary contrastive reward 1[p > β]."""
    weights: tuple[float, ...] = ()
    """The fitted direction w, one float per embedding dimension (adapted kind)."""
    bias: float = 0.0
    """The fitted offset b (adapted kind)."""
    window: int = 1
    """Frames the reward looks at (k ≥ 1): over an episode, the reward of a frame is the reward of
    the mean of the last k normalised frame embeddings (the frame and up to k − 1 before it in its
    episode). 1 scores each frame alone."""

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "kind", _member(RewardKind, self.kind, "reward kind"))
        set_(self, "goal_prompts", _clean_prompts(self.goal_prompts, "goal"))
        set_(self, "baseline_prompts", _clean_prompts(self.baseline_prompts, "baseline"))
        set_(self, "negatives", _clean_prompts(self.negatives, "negative"))
        set_(self, "alpha", _finite(self.alpha, "α"))
        set_(self, "beta", 0.5 if self.beta is None else _finite(self.beta, "β"))
        set_(self, "bias", _finite(self.bias, "bias"))
        set_(self, "weights", tuple(_finite(w, "weight") for w in (self.weights or ())))
        set_(self, "window", _window(self.window))
        if self.tau is not None:
            set_(self, "tau", _finite(self.tau, "τ"))
            if not self.tau > 0:
                raise SpecError(
                    f"τ must be positive, got {self.tau}: use e.g. 0.01, or leave it empty"
                )
        if not 0.0 <= self.alpha <= 1.0:
            raise SpecError(f"α must be in [0, 1], got {self.alpha}")
        if not 0.0 <= self.beta <= 1.0:
            raise SpecError(f"β must be in [0, 1], got {self.beta}")
        if self.kind is RewardKind.ADAPTED:
            if not self.weights:
                raise SpecError(
                    "an adapted reward needs its fitted weights: fit one with `vlmrm adapt`"
                )
            return
        if self.weights:
            raise SpecError(f"weights belong to the adapted kind, not to {self.kind.value!r}")
        if not self.goal_prompts:
            raise PromptError("no goal prompt: describe the goal state in at least one prompt")
        if self.kind is RewardKind.REGULARIZED and self.alpha > 0 and not self.baseline_prompts:
            raise PromptError("α > 0 needs at least one baseline prompt (or set α = 0)")
        if self.kind is RewardKind.CONTRASTIVE and not self.negatives:
            raise PromptError("the contrastive reward needs at least one negative prompt")

    @property
    def prompts(self) -> tuple[str, ...]:
        """Every prompt the reward embeds (goal, baseline, negatives), without repeats."""
        return tuple(dict.fromkeys(self.goal_prompts + self.baseline_prompts + self.negatives))

    def replace(self, **changes: Any) -> RewardSpec:
        """A copy with some fields changed (validated again)."""
        return RewardSpec(**{**{f.name: getattr(self, f.name) for f in fields(self)}, **changes})

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values (tuples as lists, enums as strings); ``weights`` only when set,
        ``window`` only when above 1 (so single-frame rewards keep their files and identities)."""
        data = {f.name: to_plain_json(getattr(self, f.name)) for f in fields(self)}
        if not self.weights:
            del data["weights"], data["bias"]
        if self.window == 1:
            del data["window"]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RewardSpec:
        """Inverse of :meth:`to_dict`; unknown keys are an error naming them."""
        values = _known_fields(cls, data, "reward")
        for key in ("goal_prompts", "baseline_prompts", "negatives", "weights"):
            if key in values and values[key] is not None:
                if isinstance(values[key], str):
                    raise SpecError(f"{key} must be a list, not one string")
                values[key] = tuple(values[key])
        return cls(**values)


def _member(enum: Any, value: Any, what: str) -> Any:
    try:
        return enum(value)
    except ValueError:
        raise SpecError(
            f"unknown {what} {value!r}: use one of {', '.join(choices(enum))}"
        ) from None


def _window(value: Any) -> int:
    """The window of frames, a whole number ≥ 1 (a bool or a fraction is refused)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise SpecError(f"the window must be a whole number of frames ≥ 1, got {value!r}")
    try:
        number = float(value)
    except ValueError:
        raise SpecError(f"the window must be a whole number of frames ≥ 1, got {value!r}") from None
    if not math.isfinite(number) or number != int(number) or number < 1:
        raise SpecError(
            f"the window must be a whole number of frames ≥ 1, got {value!r} (1 scores each "
            "frame alone)"
        )
    return int(number)


def _finite(value: Any, what: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise SpecError(f"{what} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise SpecError(f"{what} must be a finite number, got {value!r}")
    return number


def _clean_prompts(prompts: Iterable[str] | str | None, what: str) -> tuple[str, ...]:
    """Strip each prompt; an empty or non-text prompt is an error naming its position."""
    if prompts is None:
        return ()
    if isinstance(prompts, str):
        prompts = [prompts]
    out = []
    for i, prompt in enumerate(prompts):
        if not isinstance(prompt, str) or not prompt.strip():
            raise PromptError(f"{what} prompt {i + 1} is empty: remove it or write some text")
        out.append(prompt.strip())
    return tuple(out)


def _known_fields(cls: Any, data: Mapping[str, Any], what: str) -> dict[str, Any]:
    if not isinstance(data, Mapping):
        raise SpecError(f"a {what} must be a JSON object, got {type(data).__name__}")
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise SpecError(
            f"unknown {what} field(s): {', '.join(unknown)}; known: {', '.join(sorted(names))}"
        )
    return dict(data)
