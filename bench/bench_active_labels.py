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

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _visible_scene import (  # noqa: E402
    ORDERS,
    add_scene_arguments,
    embed_scenes,
    print_report,
    split_frames,
)

from vlmrm_core.reward.active_labels import (  # noqa: E402
    held_out_curve,
    labels_to_reach,
    simulate_active_order,
)
from vlmrm_core.reward.adaptation import single_threaded_blas  # noqa: E402

TOLERANCE = 0.05


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_scene_arguments(parser, splits=6)
    args = parser.parse_args()

    scenes = embed_scenes(args)
    data, images, texts, prior = scenes.data, scenes.images, scenes.texts, scenes.prior

    n_pool = len(data.labels) - args.test_episodes * args.steps
    sizes = [s for s in (4, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192) if s < n_pool] + [n_pool]
    needed: dict[str, list[int]] = {name: [] for name in ORDERS}
    curves: dict[str, list[list[float]]] = {name: [] for name in ORDERS}
    started = time.perf_counter()
    with single_threaded_blas():
        for split in range(args.splits):
            rng = np.random.default_rng(split)
            test, pool = split_frames(rng, data.episodes, args.episodes, args.test_episodes)

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
    print_report(
        needed,
        curves,
        sizes,
        needed_title=f"labels to reach held-out EPIC within {TOLERANCE} of the all-labels value:",
        curve_title="mean held-out EPIC by labels used:",
        unit="labels",
    )


if __name__ == "__main__":
    main()
