"""The embedding cache: float32 vectors keyed by ``(frame_hash, encoder_key)``.

``encoder_key`` is ``ClipModel.identity + "|" + aspect`` (see docs/ARCHITECTURE.md). There is no
foreign key to ``frames``, so files scored from the CLI can be cached without being stored.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from sqlalchemy import Engine, delete
from sqlalchemy.orm import Session

from vlmrm_core.store._sql import affected_rows, chunks
from vlmrm_core.store.db import transact
from vlmrm_core.store.schema import Embedding, utcnow

PUT_BATCH = 5000
"""Rows per INSERT batch (each batch is its own short write transaction)."""

GET_CHUNK_SQLITE = 900
"""Hashes per ``IN (...)`` lookup on SQLite (below its historical 999-parameter limit)."""
GET_CHUNK_POSTGRES = 20_000
"""Hashes per ``= ANY(array)`` lookup on PostgreSQL (one array parameter per query)."""

# The cache is the one hot path (100k-frame datasets): lookups and inserts go straight to the
# DBAPI cursor, skipping SQLAlchemy's per-row parameter processing, which dominated the time.
_TABLE = Embedding.__tablename__


def _placeholder(engine: Engine) -> str:
    return "?" if engine.dialect.paramstyle == "qmark" else "%s"


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
    postgres = engine.dialect.name == "postgresql"
    rows: list[Any] = []
    # One read transaction for all chunks, so the result is a consistent snapshot.
    with engine.connect() as conn:
        for part in chunks(wanted, GET_CHUNK_POSTGRES if postgres else GET_CHUNK_SQLITE):
            if postgres:
                sql = (
                    f"SELECT frame_hash, dim, vector FROM {_TABLE} "
                    "WHERE encoder_key = %s AND frame_hash = ANY(%s)"
                )
                params: tuple[Any, ...] = (encoder_key, list(part))
            else:
                marks = ",".join("?" * len(part))
                sql = (
                    f"SELECT frame_hash, dim, vector FROM {_TABLE} "
                    f"WHERE encoder_key = ? AND frame_hash IN ({marks})"
                )
                params = (encoder_key, *part)
            rows.extend(conn.exec_driver_sql(sql, params).all())
    # Decode all vectors with one numpy call per dimensionality instead of one per row.
    by_dim: dict[int, list[Any]] = {}
    for row in rows:
        by_dim.setdefault(int(row[1]), []).append(row)
    for dim, group in by_dim.items():
        blob = b"".join(bytes(r[2]) for r in group)
        if len(blob) != 4 * dim * len(group):
            raise ValueError(f"corrupt embeddings for encoder {encoder_key!r}: wrong byte length")
        matrix = np.frombuffer(blob, dtype="<f4").reshape(len(group), dim).astype(np.float32)
        for r, vector in zip(group, matrix, strict=True):
            found[r[0]] = vector
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
    dim = int(array.shape[1])
    # Bind the timestamp once through its column type (UTC normalisation, SQLite text format).
    created_type = Embedding.__table__.c.created_at.type.dialect_impl(engine.dialect)
    process = created_type.bind_processor(engine.dialect)
    created = process(utcnow()) if process else utcnow()
    mark = _placeholder(engine)
    columns = "frame_hash, encoder_key, dim, vector, created_at"
    values = ", ".join([mark] * 5)
    if engine.dialect.name == "sqlite":
        sql = f"INSERT OR IGNORE INTO {_TABLE} ({columns}) VALUES ({values})"
    else:
        sql = f"INSERT INTO {_TABLE} ({columns}) VALUES ({values}) ON CONFLICT DO NOTHING"
    for start in range(0, len(hashes), PUT_BATCH):
        # Sorted by key: B-tree inserts in order are markedly faster than random ones.
        rows = sorted(
            (h, encoder_key, dim, array[start + i].tobytes(), created)
            for i, h in enumerate(hashes[start : start + PUT_BATCH])
        )

        def body(session: Session, rows: list[tuple[Any, ...]] = rows) -> None:
            session.connection().exec_driver_sql(sql, rows)

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
        return affected_rows(session.execute(stmt))

    return transact(engine, body)
