"""A reward that is not CLIP: the mean brightness of a frame (for tests of the ``Reward`` API)."""

from __future__ import annotations

from typing import Any

import numpy as np

from vlmrm_core.reward.base import Reward, as_frames


class BrightnessReward(Reward):
    """Mean pixel value in [0, 1], times ``scale``; records the batch size of every call."""

    source = "brightness"

    def __init__(self, scale: float = 1.0) -> None:
        self.scale = scale
        self.calls: list[int] = []

    @property
    def identity(self) -> str:
        return f"brightness/scale={self.scale:g}"

    @property
    def description(self) -> str:
        return f"mean pixel brightness × {self.scale:g}"

    def reward(self, frames: Any) -> np.ndarray:
        pixels = as_frames(frames)
        self.calls.append(len(pixels))
        return (pixels.mean(axis=(1, 2, 3)) / 255.0 * self.scale).astype(np.float32)


def brightness_from_file(data: Any, path: Any, device: str | None) -> BrightnessReward:
    """The ``brightness`` source of reward files: ``{"scale": 2.0}``."""
    return BrightnessReward(float(data["scale"]))
