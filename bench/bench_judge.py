"""Benchmark of a VLM judge: a full pass versus a question edit over cached vision features.

Run: ``.venv/bin/python bench/bench_judge.py`` (CPU, fp32) or
``.venv/bin/python bench/bench_judge.py --device cuda --precision bf16``.

A random-init judge with SmolVLM-256M's shapes (Idefics3: SigLIP-B/16 at 512², one tile of 64
image tokens per frame, a 30-layer 576-wide language model) is built from a config, written with
``save_pretrained`` and loaded the way users load judges. Its tokenizer is the small one of the
test judges (a few hundred entries instead of 49k), which makes the vocabulary head a little
cheaper than the real model's. Both figures come from one run, on the same frames:

- *full pass*: a cold feature cache, so every frame goes through the vision tower, the connector
  and the language model;
- *question edit*: the same frames under another question, with their vision features cached,
  so only the language model runs (what Prompt Lab and the prompt search do).

Goal on CPU: a question edit at least 3× faster than a full pass.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.judge._tiny_judges import SMOLVLM_256M, write_idefics3  # noqa: E402
from vlmrm_core.judge import FeatureCache, JudgeReward, load_judge  # noqa: E402

QUESTION = "Is the pole balanced upright on the cart ? Answer yes or no ."
EDITED = "Is the pole upright ? Answer yes or no ."
GOAL_RATIO = 3.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=8, help="frames scored per measurement")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="auto", help="fp32, bf16, fp16 or auto")
    parser.add_argument("--repeats", type=int, default=1, help="measurements of each (best kept)")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (args.frames, 400, 600, 3), dtype=np.uint8)  # CartPole's size
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        folder = write_idefics3(Path(tmp) / "smolvlm-256m-random", SMOLVLM_256M, tokenizer="bpe")
        judge = load_judge(folder, device=args.device, precision=args.precision)
        built = time.perf_counter() - start
    n_params = sum(p.numel() for p in judge.model.parameters())
    print(
        f"judge: Idefics3 with SmolVLM-256M's shapes, {n_params / 1e6:.0f}M parameters, random "
        f"weights, {judge.precision} on {judge.device} ({torch.get_num_threads()} CPU threads); "
        f"built and loaded in {built:.0f} s"
    )
    warm = JudgeReward(judge, QUESTION, batch_size=args.batch_size)
    warm(frames[:1])  # first-call overheads (allocations, kernels) stay out of both figures

    # Wall time, and CPU time of this process (all threads): on a shared machine the wall time
    # swings with other load, while CPU seconds per frame stay comparable between the two.
    full_s, edit_s, full_cpu, edit_cpu = [], [], [], []
    for _ in range(args.repeats):
        cold = JudgeReward(judge, QUESTION, batch_size=args.batch_size, cache=FeatureCache())
        start, cpu = time.perf_counter(), time.process_time()
        full = cold(frames)
        _sync(judge.device)
        full_s.append(time.perf_counter() - start)
        full_cpu.append(time.process_time() - cpu)
        edited = cold.with_question(EDITED)
        start, cpu = time.perf_counter(), time.process_time()
        again = edited(frames)
        _sync(judge.device)
        edit_s.append(time.perf_counter() - start)
        edit_cpu.append(time.process_time() - cpu)
        assert np.isfinite(full).all() and np.isfinite(again).all()

    n = args.frames
    full_fps, edit_fps = n / min(full_s), n / min(edit_s)
    print(f"{'':<34}{'frames/s':>10}{'s/frame':>10}{'CPU s/frame':>13}")
    for label, fps, cpu_s in (
        ("full pass (vision + LM)", full_fps, min(full_cpu)),
        ("question edit (cached features)", edit_fps, min(edit_cpu)),
    ):
        print(f"{label:<34}{fps:>10.2f}{1 / fps:>10.3f}{cpu_s / n:>13.3f}")
    ratio, cpu_ratio = edit_fps / full_fps, min(full_cpu) / min(edit_cpu)
    verdict = "meets" if ratio >= GOAL_RATIO else "misses"
    print(
        f"question edit / full pass: {ratio:.1f}× in wall time ({verdict} the ≥ "
        f"{GOAL_RATIO:.0f}× goal), {cpu_ratio:.1f}× in CPU time"
    )


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


if __name__ == "__main__":
    main()
