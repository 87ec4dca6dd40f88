"""Benchmark of the EPIC metrics.

Run: ``.venv/bin/python bench/bench_epic.py``. Times ``epic_distance`` (validation included) on
1M states against the < 100 ms target, and the bootstrap CI at 10k states × 1000 resamples.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from vlmrm_core.metrics import bootstrap_ci, epic_distance

EPIC_TARGET_S = 0.100


def best_time(function: Callable[[], object], repeats: int) -> float:
    """Fastest of ``repeats`` wall-clock runs, in seconds (the least disturbed by other load)."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    rng = np.random.default_rng(0)

    n_states = 1_000_000
    rewards = rng.standard_normal(n_states)
    labels = (rewards + rng.standard_normal(n_states) > 1.0).astype(np.float64)
    weights = rng.random(n_states)
    epic_s = best_time(lambda: epic_distance(rewards, labels), repeats=7)
    weighted_s = best_time(lambda: epic_distance(rewards, labels, weights=weights), repeats=5)
    verdict = "OK" if epic_s < EPIC_TARGET_S else "TOO SLOW"
    print(
        f"epic_distance, {n_states:,} states (float64, validation included): "
        f"{epic_s * 1e3:.1f} ms best of 7  [target < {EPIC_TARGET_S * 1e3:.0f} ms: {verdict}]"
    )
    print(f"epic_distance, {n_states:,} states, weighted: {weighted_s * 1e3:.1f} ms best of 5")

    n_small, n_boot = 10_000, 1000
    boot_s = best_time(
        lambda: bootstrap_ci(rewards[:n_small], labels[:n_small], n_boot=n_boot), repeats=3
    )
    low, high = bootstrap_ci(rewards[:n_small], labels[:n_small], n_boot=n_boot)
    print(
        f"bootstrap_ci, {n_small:,} states × {n_boot} resamples: {boot_s * 1e3:.0f} ms best of 3 "
        f"(95% CI [{low:.4f}, {high:.4f}], point {epic_distance(rewards[:n_small], labels[:n_small]):.4f})"
    )


if __name__ == "__main__":
    main()
