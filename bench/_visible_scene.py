"""What the "most informative first" benchmarks share: the rendered scenes, their embeddings,
the held-out episode splits and the report.

Used by ``bench/bench_active_labels.py`` (labels) and ``bench/bench_pair_order.py``
(comparisons): both compare random order with "most informative first" on the same frames.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests._visible_object import VisibleObjectFrames, embedded_visible_object  # noqa: E402
from vlmrm_core.reward.adaptation import prior_direction  # noqa: E402

ORDERS = ("random", "informative")
"""The two orders each benchmark compares."""


def add_scene_arguments(parser: argparse.ArgumentParser, *, splits: int) -> None:
    """The options both benchmarks take: the scenes, the splits and the CLIP model."""
    parser.add_argument("--episodes", type=int, default=30)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--splits", type=int, default=splits)
    parser.add_argument("--test-episodes", type=int, default=8)
    parser.add_argument("--model", default="ViT-S-32-alt")
    parser.add_argument("--device", default="cpu")


@dataclass(frozen=True)
class EmbeddedScenes:
    """The rendered scenes and their float64 embeddings."""

    data: VisibleObjectFrames
    images: np.ndarray
    texts: np.ndarray
    prior: np.ndarray
    """The unit direction of the first prompt (the adapted reward is pulled toward it)."""


def embed_scenes(args: argparse.Namespace) -> EmbeddedScenes:
    """Render the scenes, embed frames and prompts with a random-init model, and say so."""
    from vlmrm_core.clip.models import load_model

    started = time.perf_counter()
    clip = load_model(args.model, None, device=args.device)
    data, images, texts = embedded_visible_object(clip, episodes=args.episodes, steps=args.steps)
    print(
        f"{len(data.labels)} frames in {args.episodes} episodes "
        f"({int(data.labels.sum())} successes), {args.model} random init, embedded in "
        f"{time.perf_counter() - started:.1f} s"
    )
    return EmbeddedScenes(data, images, texts, prior_direction(texts[0]))


def split_frames(
    rng: np.random.Generator, episodes: np.ndarray, n_episodes: int, test_episodes: int
) -> tuple[np.ndarray, np.ndarray]:
    """``(test frames, pool frames)``: whole episodes, drawn by ``rng``, are held out."""
    test_eps = rng.permutation(n_episodes)[:test_episodes]
    return np.flatnonzero(np.isin(episodes, test_eps)), np.flatnonzero(~np.isin(episodes, test_eps))


def print_report(
    needed: dict[str, list[int]],
    curves: dict[str, list[list[float]]],
    sizes: list[int],
    *,
    needed_title: str,
    curve_title: str,
    unit: str,
) -> None:
    """What each order needs (mean, median, per split) and the mean learning curves."""
    print(needed_title)
    for name, values in needed.items():
        print(
            f"  {name:12s} mean {np.mean(values):6.1f}  median {np.median(values):5.1f}  {values}"
        )
    print(curve_title)
    print(f"  {unit:12s} " + " ".join(f"{s:6d}" for s in sizes))
    for name, curve in curves.items():
        mean = np.nanmean(np.array(curve), axis=0)
        print(f"  {name:12s} " + " ".join(f"{v:6.3f}" for v in mean))
