"""Benchmark of re-scoring cached embeddings after a prompt or α change (the Prompt Lab's loop).

Run: ``.venv/bin/python bench/bench_rescore.py``. 100k random unit vectors (D = 512, float32)
stand in for a dataset's cached image embeddings; the prompts' text embeddings are already in the
model's text cache, so no text encoding is timed. Target: < 30 ms per re-score.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import numpy as np
import torch

from vlmrm_core.clip.models import ClipModel
from vlmrm_core.reward import math as rewards
from vlmrm_core.reward.model import score_embeddings
from vlmrm_core.reward.spec import RewardSpec
from vlmrm_core.services import landscape

N_FRAMES = 100_000
DIM = 512
TARGET_S = 0.030
REPEATS = 15
GOALS = ("pole vertically upright on top of the cart", "a balanced pole")
BASELINES = ("pole and cart",)
NEGATIVES = ("a fallen pole", "an empty track")


def best_time(function: Callable[[], object], repeats: int = REPEATS) -> tuple[float, float]:
    """(fastest, median) of ``repeats`` wall-clock runs in seconds."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times), float(np.median(times))


def cached_text_model(rng: np.random.Generator) -> ClipModel:
    """A ClipModel whose text cache already holds every prompt used here (no network, no
    weights: the model itself is never called)."""
    from vlmrm_core.clip.models import open_clip  # loaded after the torchvision workaround

    prompts = (*GOALS, *BASELINES, *NEGATIVES)
    vectors = rng.standard_normal((len(prompts), DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return ClipModel(
        name="bench",
        pretrained=None,
        identity="bench/cached-text",
        model=torch.nn.Identity(),
        tokenizer=open_clip.get_tokenizer("ViT-B-32"),
        device=torch.device("cpu"),
        precision="fp32",
        image_size=(224, 224),
        mean=(0.0, 0.0, 0.0),
        std=(1.0, 1.0, 1.0),
        logit_scale=100.0,
        context_length=77,
        untrained=True,
        text_cache=dict(zip(prompts, vectors, strict=True)),
        lock=threading.Lock(),
    )


def report(label: str, seconds: tuple[float, float], target: float | None = TARGET_S) -> None:
    best, median = seconds
    verdict = ""
    if target is not None:
        verdict = f"  [target < {target * 1e3:.0f} ms: {'OK' if best < target else 'TOO SLOW'}]"
    print(f"{label}: {best * 1e3:6.1f} ms best of {REPEATS} (median {median * 1e3:.1f}){verdict}")


def main() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N_FRAMES, DIM)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    clip = cached_text_model(rng)
    goal = rewards.mean_embedding(np.stack([clip.text_cache[p] for p in GOALS]))
    baseline = rewards.mean_embedding(np.stack([clip.text_cache[p] for p in BASELINES]))
    print(
        f"{N_FRAMES:,} cached embeddings, D = {DIM}, float32; torch threads {torch.get_num_threads()}"
    )

    report(
        "rewards.regularized_reward, α = 0.5",
        best_time(lambda: rewards.regularized_reward(x, goal, baseline, 0.5)),
    )
    report(
        "rewards.regularized_reward, α = 0",
        best_time(lambda: rewards.regularized_reward(x, goal, baseline, 0.0)),
    )
    spec = RewardSpec(GOALS, BASELINES, alpha=0.5)
    report(
        "score_embeddings (regularized, text cached)",
        best_time(lambda: score_embeddings(clip, x, spec)),
    )
    report(
        "landscape.score (+ truncation check of the prompts)",
        best_time(lambda: landscape.score(clip, x, spec)),
    )
    contrastive = RewardSpec(GOALS, kind="contrastive", negatives=NEGATIVES)
    report(
        "score_embeddings (contrastive, 2 negatives)",
        best_time(lambda: score_embeddings(clip, x, contrastive)),
    )
    report(
        "landscape.alpha_curves, α = 0.5 only (same reward, x·g and x·d̂ in cache-sized blocks)",
        best_time(lambda: landscape.alpha_curves(clip, x, spec, [0.5])),
    )
    report(
        "landscape.alpha_curves, 5 α values (Fig. 2 overlay)",
        best_time(lambda: landscape.alpha_curves(clip, x, spec, [0, 0.25, 0.5, 0.75, 1])),
        target=None,
    )
    values = score_embeddings(clip, x, spec).rewards
    report(
        "landscape.top_k + bottom_k, k = 5",
        best_time(lambda: (landscape.top_k(values, 5), landscape.bottom_k(values, 5))),
        target=None,
    )


if __name__ == "__main__":
    main()
