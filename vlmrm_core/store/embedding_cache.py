"""The persistent embedding cache: each frame is embedded once per model and aspect policy, ever.

Embeddings live in the project database (table ``embeddings``), keyed by the frame's pixel hash
and an *encoder key*: the model identity plus the aspect policy, since both change the vector.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from vlmrm_core.clip.models import ClipModel

if TYPE_CHECKING:
    from vlmrm_core.store import Engine


def encoder_key(clip: ClipModel, aspect: str, resize: str = "antialias") -> str:
    """Cache key of a model + preprocessing, e.g. ``ViT-B-32/laion2b_s34b_b79k|squash``.

    The default ``antialias`` resize keeps the key it always had; any other resize is appended
    (``...|squash|paper``), since it changes the vectors.
    """
    key = f"{clip.identity}|{aspect}"
    return key if str(resize) == "antialias" else f"{key}|{resize}"


class EmbeddingCache:
    """Embeddings of one model and aspect policy in the project database.

    Args:
        engine: the project database (``vlmrm_core.store.init_db()``).
        key: the encoder key (``encoder_key(clip, aspect)``).
    """

    def __init__(self, engine: Engine, key: str) -> None:
        self.engine = engine
        self.key = key

    @classmethod
    def for_model(
        cls, engine: Engine, clip: ClipModel, aspect: str = "squash", resize: str = "antialias"
    ) -> EmbeddingCache:
        return cls(engine, encoder_key(clip, aspect, resize))

    def get_many(self, hashes: Sequence[str]) -> dict[str, np.ndarray]:
        """Cached embeddings of the given frames (missing ones are absent from the dict)."""
        from vlmrm_core.store import get_embeddings

        return get_embeddings(self.engine, self.key, list(hashes))

    def put_many(self, hashes: Sequence[str], vectors: np.ndarray) -> None:
        """Store embeddings (existing entries are kept as they are)."""
        from vlmrm_core.store import put_embeddings

        put_embeddings(self.engine, self.key, list(hashes), np.asarray(vectors, dtype=np.float32))
