"""Embedding through a real local Ray cluster: same vectors as the local path, resumable."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.scale.conftest import make_dataset

TINY_MODEL = "ViT-S-32-alt"
pytestmark = pytest.mark.slow


def _cached(engine: Any, key: str, hashes: list[str]) -> dict[str, np.ndarray]:
    from vlmrm_core.store import get_embeddings

    return get_embeddings(engine, key, hashes)


def test_local_engine_skips_cached_frames(data_dir: Path, tiny_clip: Any) -> None:
    from vlmrm_core.scale.embed import EmbedModel, embed_local, iter_stored_items
    from vlmrm_core.store import init_db, put_embeddings

    engine = init_db()
    hashes = make_dataset(engine, "few", 6, seed=3)
    model = EmbedModel(TINY_MODEL, "random")
    marker = np.full((2, 512), 0.5, dtype=np.float32)
    put_embeddings(engine, model.encoder_key, hashes[:2], marker)
    report = embed_local(engine, iter_stored_items(engine, "few"), model, clip=tiny_clip)
    assert (report.new, report.cached) == (4, 2)
    got = _cached(engine, model.encoder_key, hashes)
    assert np.array_equal(got[hashes[0]], marker[0])  # cached rows are not recomputed
    assert np.isclose(np.linalg.norm(got[hashes[5]]), 1.0, atol=1e-4)


def test_a_killed_ray_embed_job_resumes_where_it_stopped_with_the_local_paths_vectors(
    data_dir: Path, ray_address: str, tiny_clip: Any
) -> None:
    """The driver of `vlmrm embed --engine ray` dies mid-run, as on a lost node: the next run
    embeds only the rest, on the default pool (two actors on the 2-CPU cluster), writing batch by
    batch; every vector equals today's local embedding path's."""
    from vlmrm_core.clip.embedding import embed_frames
    from vlmrm_core.scale.embed import EmbedModel, embed_with_ray, iter_stored_items
    from vlmrm_core.store import init_db, load_pixels

    engine = init_db()
    n = 160
    hashes = make_dataset(engine, "big", n, seed=7)
    model = EmbedModel(TINY_MODEL, "random")
    assert model.encoder_key == f"{tiny_clip.identity}|squash"
    args = ["embed", "--dataset", "big", "--model", TINY_MODEL, "--pretrained", "random"]
    # one actor in the killed run: each actor loads its own model
    args += ["--engine", "ray", "--batch-size", "8", "--actors", "1"]
    job = subprocess.Popen(
        [sys.executable, "-m", "vlmrm_core.cli.main", *args, "--address", ray_address],
        env={**os.environ, "VLMRM_DATA_DIR": str(data_dir)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 240
        while not _cached(engine, model.encoder_key, hashes) and time.monotonic() < deadline:
            assert job.poll() is None, job.stdout.read().decode()
            time.sleep(0.05)
    finally:
        os.killpg(job.pid, signal.SIGKILL)  # the driver dies mid-run, as on a lost node
        job.wait(timeout=30)
    written = len(_cached(engine, model.encoder_key, hashes))
    assert 0 < written < n, f"{written} of {n} embedded before the kill"

    seen: list[tuple[int, int]] = []
    report = embed_with_ray(
        engine,
        iter_stored_items(engine, "big"),
        model,
        batch_size=8,
        progress=lambda done, total: seen.append((done, total)),
    )
    rest = n - written
    assert report.summary == f"embedded {rest} new, {written} already cached"
    assert len(seen) == -(-rest // 8) and seen[-1] == (rest, rest)  # batch by batch
    got = _cached(engine, model.encoder_key, hashes)
    assert set(got) == set(hashes)
    # the reference: today's local embedding path, without any cache
    expected = embed_frames(tiny_clip, [(h, load_pixels(h)) for h in hashes], batch_size=32)
    cosine = np.sum(np.stack([got[h] for h in hashes]) * expected, axis=1)
    assert cosine.min() >= 0.9999

    again = embed_with_ray(engine, iter_stored_items(engine, "big"), model, batch_size=8)
    assert (again.new, again.cached) == (0, n)
