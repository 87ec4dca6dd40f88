"""The unit every frame source produces and every consumer reads."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


def pixel_hash(pixels: np.ndarray) -> str:
    """Stable identity of a frame: SHA-256 over its shape and its uint8 RGB bytes.

    Args:
        pixels: H×W×3 uint8 array.

    Returns:
        64-character lowercase hex digest.
    """
    arr = np.ascontiguousarray(pixels, dtype=np.uint8)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"expected an H×W×3 RGB array, got shape {arr.shape}")
    digest = hashlib.sha256()
    digest.update(f"{arr.shape[0]}x{arr.shape[1]}x3:".encode())
    digest.update(arr.data)  # the same bytes as tobytes(), without a copy (arr is contiguous)
    return digest.hexdigest()


@dataclass(frozen=True)
class VideoLocation:
    """Where a decoded frame sits in a video file: lets the store keep a reference to the video
    instead of a PNG of the frame (the pixels must be what decoding the file gives there)."""

    path: Path
    """The video file the frame was decoded from."""
    pts: int
    """The frame's presentation timestamp, in the time base of the file's first video stream."""


@dataclass
class FrameRecord:
    """One frame plus where it came from. Sources yield these one at a time."""

    pixels: np.ndarray
    """H×W×3 uint8 RGB."""
    source: str
    """'upload', 'rollout', 'sweep' or 'training-eval'."""
    name: str | None = None
    """Display name: original file name, ``video.mp4#12``, or ``CartPole-v1 ep0 t5``."""
    env_id: str | None = None
    episode: int | None = None
    step: int | None = None
    state: dict[str, Any] | None = None
    """Env state / observation, JSON-serialisable."""
    param_name: str | None = None
    """Name of the swept parameter (e.g. 'pole_angle'), for sweeps."""
    param_value: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    video: VideoLocation | None = None
    """Set by sources that decode videos the store may keep instead of PNGs (LeRobot)."""

    @property
    def hash(self) -> str:
        return pixel_hash(self.pixels)


@dataclass(frozen=True)
class Rejection:
    """An input a source could not turn into a frame; sources yield these alongside frames."""

    name: str
    """What the user called it: the uploaded file name or the name inside a ZIP."""
    reason: str
    """One sentence naming the problem (and the fix where there is one)."""


ProgressCallback = Callable[[int, int | None, str], None]
"""Progress callbacks are called as ``progress(done, total_or_None, message)``."""
