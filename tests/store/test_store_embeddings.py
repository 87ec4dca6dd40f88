"""The embedding cache."""

from __future__ import annotations

import hashlib
import time

import numpy as np
import pytest
from sqlalchemy import Engine, func, select

from vlmrm_core.store import delete_embeddings, get_embeddings, put_embeddings, session_scope
from vlmrm_core.store.schema import Embedding

KEY = "ViT-B-32/laion2b_s34b_b79k|squash"


def _hashes(n: int, salt: str = "") -> list[str]:
    return [hashlib.sha256(f"{salt}{i}".encode()).hexdigest() for i in range(n)]


def _count(engine: Engine) -> int:
    with session_scope(engine) as s:
        return s.scalar(select(func.count()).select_from(Embedding)) or 0


def test_roundtrip_and_idempotent_put(engine: Engine) -> None:
    rng = np.random.default_rng(0)
    hashes = _hashes(10)
    vectors = rng.standard_normal((10, 512)).astype(np.float32)
    put_embeddings(engine, KEY, hashes, vectors)
    got = get_embeddings(engine, KEY, hashes + ["missing"])
    assert set(got) == set(hashes)
    for h, v in zip(hashes, vectors, strict=True):
        assert got[h].dtype == np.float32
        np.testing.assert_array_equal(got[h], v)
    got[hashes[0]][0] = 42.0  # returned arrays are the caller's own

    # Putting again (even with other values) changes nothing and adds no rows.
    put_embeddings(engine, KEY, hashes[:5] + _hashes(2, "new"), np.zeros((7, 512), np.float32))
    assert _count(engine) == 12
    np.testing.assert_array_equal(get_embeddings(engine, KEY, hashes[:1])[hashes[0]], vectors[0])
    # Keys are per encoder.
    assert get_embeddings(engine, "other|squash", hashes) == {}
    assert get_embeddings(engine, KEY, []) == {}

    assert delete_embeddings(engine, "nope") == 0
    assert delete_embeddings(engine, KEY) == 12
    assert _count(engine) == 0


def test_put_validates_shapes(engine: Engine) -> None:
    with pytest.raises(ValueError):
        put_embeddings(engine, KEY, _hashes(3), np.zeros((2, 4), np.float32))
    put_embeddings(engine, KEY, [], np.zeros((0, 4), np.float32))
    # A list of 1-D vectors is accepted too, and float64 is stored as float32.
    put_embeddings(engine, KEY, _hashes(2), [np.ones(4), np.full(4, 0.5)])
    got = get_embeddings(engine, KEY, _hashes(2))
    np.testing.assert_array_equal(got[_hashes(2)[1]], np.full(4, 0.5, np.float32))


def test_100k_lookup(engine: Engine) -> None:
    """Sanity check that a 100k-frame dataset's cache works in one call (not a timed assert)."""
    n = 100_000
    hashes = _hashes(n)
    vectors = np.random.default_rng(1).standard_normal((n, 8)).astype(np.float32)
    start = time.perf_counter()
    put_embeddings(engine, KEY, hashes, vectors)
    put_seconds = time.perf_counter() - start
    start = time.perf_counter()
    got = get_embeddings(engine, KEY, hashes)
    get_seconds = time.perf_counter() - start
    assert len(got) == n
    np.testing.assert_array_equal(got[hashes[-1]], vectors[-1])
    print(f"{engine.dialect.name}: put 100k {put_seconds:.2f}s, get 100k {get_seconds:.2f}s")
