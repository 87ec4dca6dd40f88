"""Benchmark: how many comparisons "most informative first" saves over random pairs.

Run: ``.venv/bin/python bench/bench_pair_order.py [--episodes 30] [--splits 4]`` (the reported
splits 0…3); the order was designed on ``--first-split 100 --splits 12`` and not tuned on 0…3.

The frames of ``bench/bench_active_labels.py`` (rendered scenes; success is a visible red disc;
embeddings from a random-init open_clip ViT-S-32-alt, whose prompts cannot see the disc). A
comparison's known answer: the success frame is closer to the goal; two frames of the same kind
are ``equal``. For each split, whole episodes are held out and their decided pairs are the test
set; candidate pairs are drawn among the other episodes' frames. Random order and "most
informative first" (:func:`simulate_pair_order`: before a fit, the prompt sets' disagreement
about the pair, each prompt's gap in its own unit; then what the answer would tell the refitted
Bradley–Terry reward, the mutual information under its Laplace posterior; pairs spread over
frames; 16 pairs per round) each ask the candidates one prefix at a time; after each prefix the
Bradley–Terry reward (pulled toward the first prompt) is fitted and its held-out pair accuracy
on the test pairs is measured (:func:`pair_held_out_curve`: test frames are never compared in
training). Reported: comparisons needed to come within 0.02 of the best held-out accuracy either
order reaches, per split and on average, and the mean learning curves. The measure is coarse
(the sizes asked) and noisy (λ is cross-validated at each size): read it over many splits.
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
    pair_held_out_curve,
    random_pairs,
    simulate_pair_order,
)
from vlmrm_core.reward.adaptation import single_threaded_blas  # noqa: E402

TOLERANCE = 0.02


def _outcomes(labels: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """The known answers: the success frame wins; two frames of the same kind are equal."""
    a, b = labels[pairs[:, 0]], labels[pairs[:, 1]]
    return np.where(a == b, 0.5, (a > b).astype(np.float64))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_scene_arguments(parser, splits=4)
    parser.add_argument("--candidates", type=int, default=600, help="candidate pairs per split")
    parser.add_argument("--budget", type=int, default=192, help="comparisons asked at most")
    parser.add_argument(
        "--first-split",
        type=int,
        default=0,
        help="seed of the first split (the reported splits are 0…3; the order was designed on "
        "splits 100…111)",
    )
    args = parser.parse_args()

    scenes = embed_scenes(args)
    data, images, prior = scenes.data, scenes.images, scenes.prior
    reward_sets = [images @ t for t in scenes.texts]
    sizes = [s for s in (8, 16, 32, 48, 64, 96, 128, 192, 256) if s < args.budget] + [args.budget]
    needed: dict[str, list[int]] = {name: [] for name in ORDERS}
    curves: dict[str, list[list[float]]] = {name: [] for name in ORDERS}
    started = time.perf_counter()
    with single_threaded_blas():
        for split in range(args.first_split, args.first_split + args.splits):
            rng = np.random.default_rng(split)
            test_frames, pool = split_frames(rng, data.episodes, args.episodes, args.test_episodes)
            candidates = pool[random_pairs(len(pool), args.candidates, seed=split)]
            answers = _outcomes(data.labels, candidates)
            test = test_frames[random_pairs(len(test_frames), 2000, seed=100 + split)]
            test_answers = _outcomes(data.labels, test)
            decided = test_answers != 0.5
            test, test_answers = test[decided], test_answers[decided]

            orders = {
                "random": rng.permutation(len(candidates))[: args.budget],
                "informative": simulate_pair_order(
                    images,
                    candidates,
                    answers,
                    reward_sets,
                    groups=data.episodes,
                    prior=prior,
                    batch_size=16,
                    budget=args.budget,
                    seed=split,
                ),
            }
            results = {
                name: [
                    np.nan if v is None else v
                    for v in pair_held_out_curve(
                        images,
                        candidates,
                        answers,
                        data.episodes,
                        prior,
                        order,
                        sizes,
                        test,
                        test_answers,
                        seed=split,
                    )  # fmt: skip
                ]
                for name, order in orders.items()
            }
            best = max(np.nanmax(v) for v in results.values())
            line = [f"split {split}: best held-out pair accuracy {best:.3f}"]
            for name, values in results.items():
                reached = [s for s, v in zip(sizes, values, strict=True) if v >= best - TOLERANCE]
                needed[name].append(reached[0] if reached else sizes[-1])
                curves[name].append(values)
                line.append(f"{name} needs {needed[name][-1]}")
            print(", ".join(line), flush=True)
    print(f"(curves and orders: {time.perf_counter() - started:.1f} s)")
    print_report(
        needed,
        curves,
        sizes,
        needed_title=f"comparisons to come within {TOLERANCE} of the best held-out pair accuracy:",
        curve_title="mean held-out pair accuracy by comparisons asked:",
        unit="pairs",
    )


if __name__ == "__main__":
    main()
