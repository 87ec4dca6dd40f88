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
   store, which also hashes every frame and stores it by reference: one content-addressed copy
   of each MP4 plus a row per frame naming its presentation timestamp (no PNG per frame);
4. **read back**: :func:`vlmrm_core.store.iter_pixels` over the imported dataset, which decodes
   the stored videos forward and checks every frame's hash (what embedding a dataset costs
   before the model runs). Not part of the goal; reported so a slow read path shows.

Each is timed ``--repeats`` times and the fastest run is reported (the machine is shared); each
import run gets a fresh, empty store, created before its clock starts.
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
from typing import Any

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


def fresh_store(store: Path) -> Any:
    """An empty store (a new SQLite database at head) as the default one; returns its engine."""
    from vlmrm_core.store import init_db

    os.environ["VLMRM_DATA_DIR"] = str(store)
    os.environ.pop("VLMRM_DATABASE_URL", None)
    return init_db()


def import_all(engine: Any, root: Path, camera: str) -> int:
    from vlmrm_core.services.dataset_import import import_lerobot

    return int(import_lerobot(engine, root, "bench", camera=camera).added)


def read_back(engine: Any) -> int:
    from vlmrm_core.store import iter_pixels

    return sum(len(pixels) for _, pixels in iter_pixels(engine, "bench"))


def fastest(
    function: Callable[[Any], int], repeats: int, setup: Callable[[int], Any] = lambda _: None
) -> tuple[float, int]:
    """(best seconds, frames) over ``repeats`` runs; ``setup(run)`` runs untimed before each."""
    from vlmrm_core.store import dispose_engine

    best, frames = float("inf"), 0
    for run in range(repeats):
        prepared = setup(run)
        start = time.perf_counter()
        frames = function(prepared)
        best = min(best, time.perf_counter() - start)
        if prepared is not None:
            dispose_engine(str(prepared.url))
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
        plain_s, plain_n = fastest(lambda _: plain_decode(root, camera), args.repeats)
        read_s, read_n = fastest(lambda _: read_all(root, camera), args.repeats)
        store = Path(tmp) / "store"
        # A fresh store per run (created untimed), so every run stores every frame anew.
        import_s, import_n = fastest(
            lambda engine: import_all(engine, root, camera),
            args.repeats,
            setup=lambda run: fresh_store(store / f"run{run}"),
        )
        back_s, back_n = fastest(
            read_back, args.repeats, setup=lambda _: fresh_store(store / "run0")
        )
        assert plain_n == read_n == import_n == back_n == sum(lengths), (
            plain_n,
            read_n,
            import_n,
            back_n,
        )

    plain_rate = plain_n / plain_s
    rows = [
        ("plain PyAV decoding", plain_s, plain_rate),
        ("LeRobot reader", read_s, read_n / read_s),
        ("LeRobot import (store)", import_s, import_n / import_s),
        ("store read-back", back_s, back_n / back_s),
    ]
    for name, seconds, rate in rows:
        print(f"{name:<24} {seconds:7.2f} s  {rate:8.1f} frames/s  {rate / plain_rate:5.2f}×")
    ratio = (import_n / import_s) / plain_rate
    verdict = "meets" if ratio >= GOAL else "misses"
    print(f"import / plain decoding = {ratio:.2f}× ({verdict} the goal of ≥ {GOAL}×)")


if __name__ == "__main__":
    main()
