"""A synthetic labelled dataset whose success is a visible object, for adaptation tests.

Episodes are scenes (a background colour and grey clutter, jittered from frame to frame); a
frame is a success when a red disc is in it. A random-init CLIP cannot read "a red disc"
zero-shot, but its image embeddings still carry colour and shape, so a linear probe can.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw


@dataclass(frozen=True)
class VisibleObjectFrames:
    frames: np.ndarray
    """N×H×W×3 uint8."""
    labels: np.ndarray
    """N 0/1: the red disc is visible."""
    episodes: np.ndarray
    """N episode numbers (frames of one episode share the scene)."""


def render_visible_object(
    episodes: int = 16, steps: int = 10, size: int = 64, success_rate: float = 0.35, seed: int = 0
) -> VisibleObjectFrames:
    """Render ``episodes × steps`` PNG-like frames (uint8 RGB) with Pillow."""
    rng = np.random.default_rng(seed)
    frames, labels, episode_ids = [], [], []
    for episode in range(episodes):
        background = tuple(int(c) for c in rng.integers(40, 200, size=3))
        clutter = [
            (rng.integers(0, size, size=2), int(rng.integers(6, 18)), int(rng.integers(60, 200)))
            for _ in range(4)
        ]
        for _ in range(steps):
            image = Image.new("RGB", (size, size), background)
            draw = ImageDraw.Draw(image)
            for (cx, cy), half, grey in clutter:
                jx, jy = rng.integers(-2, 3, size=2)
                draw.rectangle(
                    [cx + jx - half, cy + jy - half, cx + jx + half, cy + jy + half],
                    fill=(grey, grey, grey),
                )
            success = bool(rng.random() < success_rate)
            if success:
                x, y = rng.integers(size // 5, size - size // 5, size=2)
                r = size // 4
                draw.ellipse([x - r, y - r, x + r, y + r], fill=(220, 20, 20))
            pixels = np.asarray(image, dtype=np.uint8).copy()
            pixels = np.clip(pixels + rng.integers(-6, 7, size=pixels.shape), 0, 255).astype(
                np.uint8
            )
            frames.append(pixels)
            labels.append(1.0 if success else 0.0)
            episode_ids.append(episode)
    return VisibleObjectFrames(np.stack(frames), np.array(labels), np.array(episode_ids))


_EMBEDDED: dict[tuple[int, int, int], tuple[VisibleObjectFrames, np.ndarray, np.ndarray]] = {}


def embedded_visible_object(
    clip: object, episodes: int = 20, steps: int = 10, seed: int = 0
) -> tuple[VisibleObjectFrames, np.ndarray, np.ndarray]:
    """The rendered frames, their image embeddings and three prompts' text embeddings under
    ``clip`` (computed once per process: embedding is the slow part)."""
    from vlmrm_core.clip.embedding import encode_images, encode_texts

    key = (episodes, steps, seed)
    if key not in _EMBEDDED:
        data = render_visible_object(episodes=episodes, steps=steps, seed=seed)
        images = encode_images(clip, data.frames, batch_size=64).astype(np.float64)
        texts = encode_texts(clip, list(PROMPTS)).astype(np.float64)
        _EMBEDDED[key] = (data, images, texts)
    return _EMBEDDED[key]


PROMPTS = ("a red ball", "a red disc on a table", "a photo of a scene")
"""Goal prompts whose (random-init) text embeddings give the zero-shot rewards."""
