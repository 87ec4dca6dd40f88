"""Benchmark: how many labels "most informative first" saves over random order.

Run: ``.venv/bin/python bench/bench_active_labels.py [--episodes 30] [--splits 6]``.

Frames are rendered scenes (episodes) where success is a visible red disc; embeddings come from
a random-init open_clip ViT-S-32-alt (its prompts can't see the disc, a direction fitted on its
embeddings can). For each split, whole episodes are held out as the test set; the rest is the
labelling pool. Random order and "most informative first" (:func:`simulate_active_order`:
prompt-set disagreement + boundary of the refitted adapted reward + k-center coverage, 8 labels
per round) each label the pool one prefix at a time; after each prefix the adapted reward is
fitted and its held-out EPIC distance measured. Reported: labels needed to come within 0.05 of
the all-labels held-out EPIC, per split and on average, and the mean learning curves.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests._visible_object import PROMPTS, render_visible_object  # noqa: E402
from vlmrm_core.reward.active_labels import (  # noqa: E402
    held_out_curve,
    labels_to_reach,
    simulate_active_order,
)
from vlmrm_core.reward.adaptation import (  # noqa: E402
    prior_direction,
    single_threaded_blas,
)

TOLERANCE = 0.05


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=30)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--splits", type=int, default=6)
    parser.add_argument("--test-episodes", type=int, default=8)
    parser.add_argument("--model", default="ViT-S-32-alt")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    from vlmrm_core.clip.embedding import encode_images, encode_texts
    from vlmrm_core.clip.models import load_model

    started = time.perf_counter()
    clip = load_model(args.model, None, device=args.device)
    data = render_visible_object(episodes=args.episodes, steps=args.steps, seed=0)
    images = encode_images(clip, data.frames, batch_size=64).astype(np.float64)
    texts = encode_texts(clip, list(PROMPTS)).astype(np.float64)
    print(
        f"{len(data.labels)} frames in {args.episodes} episodes "
        f"({int(data.labels.sum())} successes), {args.model} random init, embedded in "
        f"{time.perf_counter() - started:.1f} s"
    )
    prior = prior_direction(texts[0])

    n_pool = len(data.labels) - args.test_episodes * args.steps
    sizes = [s for s in (4, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192) if s < n_pool] + [n_pool]
    needed: dict[str, list[int]] = {"random": [], "informative": []}
    curves: dict[str, list[list[float]]] = {"random": [], "informative": []}
    started = time.perf_counter()
    with single_threaded_blas():
        for split in range(args.splits):
            rng = np.random.default_rng(split)
            test_eps = rng.permutation(args.episodes)[: args.test_episodes]
            test = np.flatnonzero(np.isin(data.episodes, test_eps))
            pool = np.flatnonzero(~np.isin(data.episodes, test_eps))

            def curve(order: np.ndarray, pool=pool, test=test, split=split) -> list[float]:
                epics = held_out_curve(
                    images, data.labels, data.episodes, prior, pool[order], sizes, test, seed=split
                )
                return [np.nan if epic is None else epic for epic in epics]

            orders = {
                "random": rng.permutation(len(pool)),
                "informative": simulate_active_order(
                    images[pool],
                    data.labels[pool],
                    [images[pool] @ t for t in texts],
                    groups=data.episodes[pool],
                    prior=prior,
                    batch_size=8,
                    seed=split,
                ),
            }
            results = {name: curve(order) for name, order in orders.items()}
            target = results["random"][-1] + TOLERANCE
            line = [f"split {split}: all-labels EPIC {results['random'][-1]:.3f}"]
            for name, values in results.items():
                n = labels_to_reach(sizes, [None if np.isnan(v) else v for v in values], target)
                needed[name].append(n if n is not None else sizes[-1])
                curves[name].append(values)
                line.append(f"{name} needs {needed[name][-1]}")
            print(", ".join(line))
    print(f"(curves and orders: {time.perf_counter() - started:.1f} s)")
    print(f"labels to reach held-out EPIC within {TOLERANCE} of the all-labels value:")
    for name, values in needed.items():
        print(
            f"  {name:12s} mean {np.mean(values):6.1f}  median {np.median(values):5.1f}  {values}"
        )
    print("mean held-out EPIC by labels used:")
    print("  labels       " + " ".join(f"{s:6d}" for s in sizes))
    for name, values in curves.items():
        mean = np.nanmean(np.array(values), axis=0)
        print(f"  {name:12s} " + " ".join(f"{v:6.3f}" for v in mean))


if __name__ == "__main__":
    main()
