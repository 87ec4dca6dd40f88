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


def test_ray_embeddings_match_local_path(data_dir: Path, ray_cluster: Any, tiny_clip: Any) -> None:
    from vlmrm_core.clip.embedding import embed_frames
    from vlmrm_core.scale.embed import EmbedModel, embed_with_ray, iter_stored_items
    from vlmrm_core.store import init_db, load_pixels

    engine = init_db()
    hashes = make_dataset(engine, "grid", 40)
    model = EmbedModel(TINY_MODEL, None)
    assert model.encoder_key == f"{tiny_clip.identity}|squash"
    # the reference: today's local embedding path, without any cache
    expected = embed_frames(tiny_clip, [(h, load_pixels(h)) for h in hashes], batch_size=16)

    seen: list[tuple[int, int]] = []
    report = embed_with_ray(
        engine,
        iter_stored_items(engine, "grid"),
        model,
        batch_size=8,
        progress=lambda done, total: seen.append((done, total)),
    )
    assert (report.new, report.cached) == (40, 0)
    assert report.summary == "embedded 40 new, 0 already cached"
    assert len(seen) == 5 and seen[-1] == (40, 40)  # written batch by batch, not at the end
    got = _cached(engine, model.encoder_key, hashes)
    assert set(got) == set(hashes)
    cosine = np.sum(np.stack([got[h] for h in hashes]) * expected, axis=1)
    assert cosine.min() >= 0.9999

    again = embed_with_ray(engine, iter_stored_items(engine, "grid"), model, batch_size=8)
    assert (again.new, again.cached) == (0, 40)


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


def test_killed_ray_embed_job_resumes_where_it_stopped(
    data_dir: Path, ray_address: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from vlmrm_core.cli.main import main
    from vlmrm_core.scale.embed import EmbedModel
    from vlmrm_core.store import init_db

    engine = init_db()
    n = 160
    hashes = make_dataset(engine, "big", n, seed=7)
    key = EmbedModel(TINY_MODEL, None).encoder_key
    args = ["embed", "--dataset", "big", "--model", TINY_MODEL, "--pretrained", "random"]
    # one actor per run: what is tested is the resume, and each actor loads its own model
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
        while not _cached(engine, key, hashes) and time.monotonic() < deadline:
            assert job.poll() is None, job.stdout.read().decode()
            time.sleep(0.05)
    finally:
        os.killpg(job.pid, signal.SIGKILL)  # the driver dies mid-run, as on a lost node
        job.wait(timeout=30)
    written = len(_cached(engine, key, hashes))
    assert 0 < written < n, f"{written} of {n} embedded before the kill"

    assert main([*args, "--address", ray_address]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last == f"embedded {n - written} new, {written} already cached"
    assert len(_cached(engine, key, hashes)) == n
