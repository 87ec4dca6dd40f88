"""The one interface of every reward source: :class:`Reward` (frames → rewards, with an identity).

A reward source (CLIP prompts, a rewarded fitted to labels, later a VLM judge or a preference
model) is one subclass. Everything that uses rewards (the environment wrappers, training,
``vlmrm score``, Evaluate, Prompt Lab, the prompt search, adaptation) takes a ``Reward`` and
needs nothing else to know about where its numbers come from.

A ``Reward`` is called on N frames and returns N float32 rewards::

    >>> import numpy as np
    >>> class Brightness(Reward):
    ...     source = "example"
    ...     @property
    ...     def identity(self) -> str:
    ...         return "example/brightness"
    ...     @property
    ...     def description(self) -> str:
    ...         return "mean pixel value"
    ...     def reward(self, frames):
    ...         return as_frames(frames).mean(axis=(1, 2, 3)).astype(np.float32) / 255
    >>> frames = np.zeros((2, 4, 4, 3), np.uint8); frames[1] = 255
    >>> Brightness()(frames)
    array([0., 1.], dtype=float32)
    >>> Brightness().score_episode(frames)  # T frames -> T rewards (frame by frame by default)
    array([0., 1.], dtype=float32)

Frames may come as an N×H×W×3 (or one H×W×3) array of uint8, or of floats in [0, 1]; an alpha
channel is dropped; PIL images, torch tensors and lists of frames are accepted too
(:func:`as_frames`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from vlmrm_core.errors import VlmrmError

FRAMES_HELP = (
    "give N×H×W×3 uint8 frames (or floats in [0, 1]), e.g. from an env made with "
    "render_mode='rgb_array'"
)


class FrameInputError(VlmrmError, ValueError):
    """Frames a reward cannot score; the message names the shape given and the one expected."""


def as_frames(frames: Any) -> np.ndarray:
    """N×H×W×3 uint8 frames from any of the accepted inputs.

    Accepted: an array (numpy, torch, or anything ``np.asarray`` takes) of shape N×H×W×C or
    H×W×C with C = 3 (RGB) or 4 (RGBA: alpha is dropped), of uint8 or of floats in [0, 1]
    (scaled by 255 and rounded); a PIL image; a list or tuple of frames of one size.

    >>> as_frames(np.ones((2, 2, 4), np.float32)).shape  # one RGBA float frame
    (1, 2, 2, 3)
    >>> int(as_frames(np.full((1, 1, 1, 3), 0.5))[0, 0, 0, 0])
    128
    >>> as_frames(np.zeros((5, 5), np.uint8))
    Traceback (most recent call last):
    ...
    vlmrm_core.reward.base.FrameInputError: frames of shape (5, 5) (uint8): give N×H×W×3 uint8 frames (or floats in [0, 1]), e.g. from an env made with render_mode='rgb_array'

    Raises:
        FrameInputError: another shape, a dtype that is neither uint8 nor float, or float
            values outside [0, 1]; the message names what was given.
    """
    if isinstance(frames, list | tuple):
        if not frames:
            return np.zeros((0, 1, 1, 3), np.uint8)
        try:
            frames = np.stack([_as_array(frame) for frame in frames])
        except ValueError as exc:
            raise FrameInputError(f"frames of different sizes ({exc}): {FRAMES_HELP}") from None
    array = _as_array(frames)
    # Named as given (before a single frame gets its batch axis), so the user recognises it.
    shape = f"frames of shape {tuple(array.shape)} ({array.dtype})"
    if array.ndim == 3:
        array = array[None]
    if array.ndim != 4 or array.shape[-1] not in (3, 4):
        raise FrameInputError(f"{shape}: {FRAMES_HELP}")
    array = array[..., :3]
    if array.dtype == np.uint8:
        return np.ascontiguousarray(array)
    if np.issubdtype(array.dtype, np.floating):
        if np.isnan(array).any():
            raise FrameInputError(f"{shape} contain NaN: {FRAMES_HELP}")
        if array.size and not (array.min() >= 0.0 and array.max() <= 1.0):
            raise FrameInputError(
                f"{shape} with values in [{array.min():g}, {array.max():g}]: float "
                "frames must lie in [0, 1] (or give uint8 in 0..255)"
            )
        return np.rint(array * 255.0).astype(np.uint8)
    raise FrameInputError(f"{shape}: {FRAMES_HELP}")


def _as_array(frame: Any) -> np.ndarray:
    if hasattr(frame, "detach") and hasattr(frame, "cpu"):  # a torch tensor
        frame = frame.detach().cpu().numpy()
    elif hasattr(frame, "convert") and hasattr(frame, "mode"):  # a PIL image
        frame = frame.convert("RGBA" if "A" in frame.mode else "RGB")
    return np.asarray(frame)


class RewardHistory(ABC):
    """What a reward that looks back in time keeps of each sub-environment's current episode.

    Made by :meth:`Reward.history` for the environment wrappers: they pass each step's frames,
    in step order, and say which frame ends its episode, so the next frame of that
    sub-environment starts a fresh history.
    """

    @abstractmethod
    def score(
        self, frames: Any, envs: Sequence[int], ends: Sequence[bool] | None = None
    ) -> np.ndarray:
        """Rewards of frames in time order: ``frames[j]`` is the next frame of sub-env ``envs[j]``.

        Args:
            frames: N frames (see :func:`as_frames`), possibly several steps' worth, oldest first.
            envs: The sub-environment of each frame.
            ends: Per frame, whether it is the last of its episode (its sub-env's history is
                cleared after it); None: no episode ends.

        Returns:
            N float32 rewards.
        """

    @abstractmethod
    def reset(self, envs: Sequence[int] | None = None) -> None:
        """Forget the episodes of ``envs`` (all sub-environments when None): they restart."""


class Reward(ABC):
    """A reward on frames: N×H×W×3 frames → N float32 rewards, with a stable identity.

    Subclasses set :attr:`source` and implement :attr:`identity`, :attr:`description` and
    :meth:`reward`. Sources that look at time (several frames at once) override
    :meth:`score_episode`, and :meth:`history` so that the environment wrappers apply them over
    time during training; by default an episode is scored frame by frame.
    """

    source: ClassVar[str] = ""
    """The kind of reward source (``clip``, ...): the ``source`` key of its reward file."""

    @property
    @abstractmethod
    def identity(self) -> str:
        """A stable key of everything that changes the rewards (what caches, runs and files key on)."""

    @property
    @abstractmethod
    def description(self) -> str:
        """One human-readable line: what is rewarded, by which model."""

    @abstractmethod
    def reward(self, frames: Any) -> np.ndarray:
        """N float32 rewards of N frames (see :func:`as_frames` for the accepted inputs)."""

    def __call__(self, frames: Any) -> np.ndarray:
        return self.reward(frames)

    def score_episode(self, frames: Any) -> np.ndarray:
        """T float32 rewards of an episode's T frames, in time order (default: frame by frame)."""
        return self.reward(frames)

    def history(self, n_envs: int) -> RewardHistory | None:
        """A fresh per-sub-env memory for scoring ``n_envs`` environments over time, or None.

        None (the default) means each frame is scored alone: the wrappers then call
        :meth:`reward` on a step's frames (their fast path). A reward whose :meth:`score_episode`
        looks back in an episode returns a :class:`RewardHistory` that gives, frame by frame,
        what :meth:`score_episode` gives on the whole episode.
        """
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.description})"
