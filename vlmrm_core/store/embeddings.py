"""The embedding cache: float32 vectors keyed by ``(frame_hash, encoder_key)``.

``encoder_key`` is ``ClipModel.identity + "|" + aspect`` (see docs/ARCHITECTURE.md). There is no
foreign key to ``frames``, so files scored from the CLI can be cached without being stored.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from sqlalchemy import Engine, delete, select
from sqlalchemy.orm import Session

from vlmrm_core.store._sql import chunks, insert_ignore
from vlmrm_core.store.db import session_scope, transact
from vlmrm_core.store.schema import Embedding, utcnow

PUT_BATCH = 2000
"""Rows per INSERT batch (each batch is its own short transaction)."""


def _as_vectors(vectors: np.ndarray | Sequence[np.ndarray], n: int) -> np.ndarray:
    array = np.ascontiguousarray(np.asarray(vectors, dtype="<f4"))
    if array.ndim != 2 or array.shape[0] != n:
        raise ValueError(f"expected {n} vectors as an (n, dim) array, got shape {array.shape}")
    return array


def get_embeddings(
    engine: Engine, encoder_key: str, hashes: Iterable[str]
) -> dict[str, np.ndarray]:
    """Look up cached embeddings.

    Args:
        engine: store engine.
        encoder_key: e.g. ``"ViT-B-32/laion2b_s34b_b79k|squash"``.
        hashes: frame hashes to look up (duplicates are fine).

    Returns:
        ``{hash: float32 vector}`` for the hashes that are cached; missing ones are absent.
    """
    wanted = sorted(set(hashes))
    found: dict[str, np.ndarray] = {}
    if not wanted:
        return found
    # One short read transaction for all chunks, so the result is a consistent snapshot.
    with session_scope(engine) as session:
        for part in chunks(wanted):
            rows = session.execute(
                select(Embedding.frame_hash, Embedding.dim, Embedding.vector).where(
                    Embedding.encoder_key == encoder_key, Embedding.frame_hash.in_(part)
                )
            )
            for frame_hash, dim, blob in rows:
                vector = np.frombuffer(blob, dtype="<f4")
                if vector.shape[0] != dim:
                    raise ValueError(f"corrupt embedding for {frame_hash}: {vector.size} != {dim}")
                found[frame_hash] = vector.astype(np.float32, copy=True)
    return found


def put_embeddings(
    engine: Engine,
    encoder_key: str,
    hashes: Sequence[str],
    vectors: np.ndarray | Sequence[np.ndarray],
) -> None:
    """Cache embeddings; rows that already exist are left untouched (idempotent).

    Args:
        engine: store engine.
        encoder_key: e.g. ``"ViT-B-32/laion2b_s34b_b79k|squash"``.
        hashes: one frame hash per vector.
        vectors: ``(n, dim)`` array (or sequence of 1-D arrays), stored as float32.
    """
    hashes = list(hashes)
    array = _as_vectors(vectors, len(hashes))
    if not hashes:
        return
    now = utcnow()
    dim = int(array.shape[1])
    for start in range(0, len(hashes), PUT_BATCH):
        rows = [
            {
                "frame_hash": h,
                "encoder_key": encoder_key,
                "dim": dim,
                "vector": array[start + i].tobytes(),
                "created_at": now,
            }
            for i, h in enumerate(hashes[start : start + PUT_BATCH])
        ]

        def body(session: Session, rows: list[dict[str, object]] = rows) -> None:
            insert_ignore(session, Embedding.__table__, rows, ["frame_hash", "encoder_key"])

        transact(engine, body)


def delete_embeddings(engine: Engine, encoder_key: str | None = None) -> int:
    """Drop cached embeddings (e.g. after a model file changed).

    Args:
        engine: store engine.
        encoder_key: only this encoder's rows; None drops the whole cache.

    Returns:
        Rows deleted.
    """

    def body(session: Session) -> int:
        stmt = delete(Embedding)
        if encoder_key is not None:
            stmt = stmt.where(Embedding.encoder_key == encoder_key)
        return int(session.execute(stmt).rowcount or 0)

    return transact(engine, body)
