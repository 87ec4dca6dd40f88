"""Benchmark of the Evaluate page's prompt search: 100 goal prompts × 10k labelled frames.

Run: ``.venv/bin/python bench/bench_prompt_sweep.py``. Uses the tiny random-init ViT-S-32-alt
(the test model) on CPU; random unit vectors stand in for the frames' cached image embeddings,
with labels that follow one direction. Text encoding and scoring are reported separately: once
images are cached, encoding the prompts dominates.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from vlmrm_core.clip.embedding import embedding_dim
from vlmrm_core.clip.models import load_model
from vlmrm_core.services.evaluation import prompt_search

MODEL = "ViT-S-32-alt"
N_FRAMES = 10_000
N_GOALS = 100
BASELINES = ["pole and cart", "a cart on a track"]
ALPHAS = [0.0, 0.25, 0.5, 0.75, 1.0]

SUBJECTS = ["pole", "stick", "rod", "beam", "mast"]
STATES = [
    "vertically upright on top of the cart",
    "standing straight up",
    "balanced above the cart",
    "pointing at the sky",
    "perfectly vertical",
    "upright and still",
    "not falling over",
    "held up by the cart",
    "at a right angle to the track",
    "in the middle of the screen, upright",
]
STYLES = ["", "a photo of a ", "a drawing of a "]


def goal_prompts(n: int) -> list[str]:
    """n distinct goal prompts from templates."""
    prompts = [
        f"{style}{subject} {state}".strip()
        for style in STYLES
        for subject in SUBJECTS
        for state in STATES
    ]
    return prompts[:n]


def main() -> None:
    t0 = time.perf_counter()
    clip = load_model(MODEL, None, device="cpu")
    load_s = time.perf_counter() - t0
    rng = np.random.default_rng(0)
    dim = embedding_dim(clip)
    x = rng.standard_normal((N_FRAMES, dim)).astype(np.float32)
    direction = rng.standard_normal(dim).astype(np.float32)
    labels = (x @ direction + rng.standard_normal(N_FRAMES) > 0.5).astype(np.float64)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    goals = goal_prompts(N_GOALS)
    print(
        f"{MODEL} random init on CPU ({torch.get_num_threads()} threads, loaded in {load_s:.1f} s); "
        f"{N_FRAMES:,} labelled frames, D = {dim}; {len(goals)} goal × {len(BASELINES)} baseline "
        f"prompts × α {ALPHAS}"
    )

    cold = prompt_search(clip, x, labels, goals, BASELINES, ALPHAS, detail_top=5, n_boot=1000)
    print(
        f"cold text cache: {len(cold.table)} combinations; text encoding {cold.text_seconds:.2f} s "
        f"({cold.n_prompts} prompts), scoring {cold.score_seconds:.3f} s, "
        f"top-5 bootstrap intervals {cold.detail_seconds:.2f} s"
    )
    warm = prompt_search(clip, x, labels, goals, BASELINES, ALPHAS, detail_top=0)
    print(
        f"warm text cache (prompts already encoded): text {warm.text_seconds:.3f} s, "
        f"scoring {warm.score_seconds:.3f} s"
    )
    best = cold.best()
    assert best is not None
    print(
        f"best: EPIC {best['epic']:.4f} (95% CI {best['ci_low']:.4f}–{best['ci_high']:.4f}), "
        f"goal {best['goal']!r}, baseline {best['baseline']!r}, α {best['alpha']:g}"
    )


if __name__ == "__main__":
    main()
