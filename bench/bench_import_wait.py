"""How long a labeller waits to save a label while a large import runs.

Run: ``.venv/bin/python bench/bench_import_wait.py [--frames 100000] [--db URL]``. Imports
``--frames`` tiny distinct frames into a new dataset while another thread saves labels on a
second dataset in a loop, and prints the worst and 99th-percentile time one label took (target:
worst < 1 s). Uses a SQLite file in a temporary folder unless ``--db`` names another database
(it must be empty; the frames go to the temporary folder either way).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from collections.abc import Iterator

import numpy as np

WORST_TARGET_S = 1.0


def tiny_frames(n: int, offset: int = 0) -> Iterator[object]:
    """``n`` distinct 4×4 frames (the index is written into the pixels), cheap to encode."""
    from vlmrm_core.frames import FrameRecord

    for i in range(offset, offset + n):
        pixels = np.zeros((4, 4, 3), dtype=np.uint8)
        pixels.reshape(-1)[:8] = np.frombuffer(i.to_bytes(8, "little"), dtype=np.uint8)
        yield FrameRecord(pixels=pixels, source="upload", name=f"f{i}.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=100_000, help="frames to import")
    parser.add_argument("--db", default=None, help="database URL (default: a new SQLite file)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="vlmrm-bench-") as tmp:
        os.environ["VLMRM_DATA_DIR"] = tmp
        if args.db:
            os.environ["VLMRM_DATABASE_URL"] = args.db
        else:
            os.environ.pop("VLMRM_DATABASE_URL", None)
        from vlmrm_core.store import init_db
        from vlmrm_core.store.datasets import MEMBERS_PER_COMMIT, dataset_frames
        from vlmrm_core.store.ingest import ingest_frames
        from vlmrm_core.store.labels import add_label

        engine = init_db()
        ingest_frames(engine, "labelled", tiny_frames(50, offset=10**9))
        targets = [f.hash for f in dataset_frames(engine, "labelled")]
        waits: list[float] = []
        stop = threading.Event()

        def label_loop() -> None:
            i = 0
            while not stop.is_set():
                start = time.perf_counter()
                add_label(engine, "labelled", targets[i % len(targets)], "alice", i % 2)
                waits.append(time.perf_counter() - start)
                i += 1
                time.sleep(0.002)  # a fast labeller; leaves the import its share of the GIL

        labeller = threading.Thread(target=label_loop, daemon=True)
        labeller.start()
        start = time.perf_counter()
        try:
            report = ingest_frames(engine, "big", tiny_frames(args.frames))
        finally:
            stop.set()
            labeller.join()
        import_s = time.perf_counter() - start
        engine.dispose()

    worst, p99 = max(waits), float(np.percentile(waits, 99))
    verdict = "OK" if worst < WORST_TARGET_S else "TOO SLOW"
    print(
        f"import of {report.added:,} frames ({MEMBERS_PER_COMMIT:,} memberships per commit): "
        f"{import_s:.1f} s; {len(waits):,} labels saved meanwhile"
    )
    print(
        f"label wait: worst {worst * 1e3:.0f} ms, p99 {p99 * 1e3:.1f} ms, "
        f"median {float(np.median(waits)) * 1e3:.1f} ms  "
        f"[target worst < {WORST_TARGET_S * 1e3:.0f} ms: {verdict}]"
    )


if __name__ == "__main__":
    main()
