"""Benchmark of reading LeRobot datasets: import rate next to plain PyAV decoding, in one run.

Run: ``.venv/bin/python bench/bench_lerobot.py [--width 640 --height 480 --episodes 4
--length 150]``. A v3.0 dataset (several episodes per MP4, h264, keyframe every 4 frames,
camera-like shaded frames with a moving bar) is written to a temporary folder; then, on the
same files and the same camera:

1. **plain decoding**: PyAV decodes every frame of the camera's MP4 files to RGB arrays
   (threaded decoding, as the reader uses): the floor no reader can beat;
2. **reader**: :func:`vlmrm_core.sources.lerobot.lerobot_frames`, which also reads the
   parquet and metadata, seeks to each episode's span and matches frames to timestamps;
3. **import**: :func:`vlmrm_core.services.dataset_import.import_lerobot` into a fresh SQLite
   store, which also hashes every frame and writes it as a PNG.

Each is timed ``--repeats`` times and the fastest run is reported (the machine is shared).
Goal: the import at ≥ 0.5× the rate of plain decoding.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests._lerobot_data import CAMERAS, write_lerobot_dataset  # noqa: E402

GOAL = 0.5


def plain_decode(root: Path, camera: str) -> int:
    """Decode every frame of the camera's MP4s to RGB; return the number of frames."""
    import av

    count = 0
    for path in sorted((root / "videos" / camera).glob("**/*.mp4")):
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for frame in container.decode(stream):
                frame.to_ndarray(format="rgb24")
                count += 1
    return count


def read_all(root: Path, camera: str) -> int:
    from vlmrm_core.sources.lerobot import lerobot_frames

    return sum(1 for _ in lerobot_frames(root, camera=camera))


def import_all(root: Path, camera: str, store: Path, run: int) -> int:
    from vlmrm_core.services.dataset_import import import_lerobot
    from vlmrm_core.store import dispose_engine, init_db

    # A fresh store per run, so every run stores every frame anew.
    os.environ["VLMRM_DATA_DIR"] = str(store / f"run{run}")
    os.environ.pop("VLMRM_DATABASE_URL", None)
    engine = init_db()
    try:
        return import_lerobot(engine, root, "bench", camera=camera).added
    finally:
        dispose_engine(str(engine.url))


def fastest(function: Callable[[], int], repeats: int) -> tuple[float, int]:
    """(best seconds, frames) over ``repeats`` runs."""
    best, frames = float("inf"), 0
    for _ in range(repeats):
        start = time.perf_counter()
        frames = function()
        best = min(best, time.perf_counter() - start)
    return best, frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--episodes", type=int, default=4)
    parser.add_argument("--length", type=int, default=150, help="frames per episode")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    camera = CAMERAS[0]
    with tempfile.TemporaryDirectory(prefix="bench-lerobot-") as tmp:
        root = Path(tmp) / "dataset"
        lengths = [args.length + 7 * e for e in range(args.episodes)]
        start = time.perf_counter()
        write_lerobot_dataset(
            root,
            "v3.0",
            lengths=lengths,
            cameras=(camera,),
            size=(args.width, args.height),
            textured=True,
        )
        print(
            f"dataset: v3.0, {args.episodes} episodes, {sum(lengths)} frames of "
            f"{args.width}×{args.height}, written in {time.perf_counter() - start:.1f} s"
        )
        plain_s, plain_n = fastest(lambda: plain_decode(root, camera), args.repeats)
        read_s, read_n = fastest(lambda: read_all(root, camera), args.repeats)
        runs = iter(range(args.repeats))
        store = Path(tmp) / "store"
        import_s, import_n = fastest(
            lambda: import_all(root, camera, store, next(runs)), args.repeats
        )
        assert plain_n == read_n == import_n == sum(lengths), (plain_n, read_n, import_n)

    plain_rate = plain_n / plain_s
    rows = [
        ("plain PyAV decoding", plain_s, plain_rate),
        ("LeRobot reader", read_s, read_n / read_s),
        ("LeRobot import (store)", import_s, import_n / import_s),
    ]
    for name, seconds, rate in rows:
        print(f"{name:<24} {seconds:7.2f} s  {rate:8.1f} frames/s  {rate / plain_rate:5.2f}×")
    ratio = (import_n / import_s) / plain_rate
    verdict = "meets" if ratio >= GOAL else "misses"
    print(f"import / plain decoding = {ratio:.2f}× ({verdict} the goal of ≥ {GOAL}×)")


if __name__ == "__main__":
    main()
