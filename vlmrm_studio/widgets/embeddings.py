"""Widgets and per-session caches shared by the Prompt Lab and Evaluate pages. Display only.

Embedding matrices are kept in ``st.session_state`` (not ``st.cache_data``, which would copy a
possibly large N×D array on every rerun); a few of them per session, least recently used out.
"""

from __future__ import annotations

import hashlib
import io
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from typing import Any, TypeVar

import numpy as np
import streamlit as st

from vlmrm_core.clip.models import ClipModel
from vlmrm_core.errors import VlmrmError
from vlmrm_core.services.landscape import DatasetEmbeddings, embed_dataset, embed_hashes
from vlmrm_core.store import Engine, count_frames, stored_image_bytes
from vlmrm_core.store.embedding_cache import encoder_key
from vlmrm_studio.widgets.common import progress_bar
from vlmrm_studio.widgets.frames import unreadable_frame_text
from vlmrm_studio.widgets.text import md_escape

T = TypeVar("T")

MAX_MATRICES = 4
"""Embedding matrices kept per session (each is N×D float32)."""

MAX_MEMO = 64
"""Small results (evaluations) kept per session."""

MAX_THUMBNAILS = 200
"""Thumbnails kept per session (a few kB each)."""

THUMBNAIL_PX = 170
"""Width of a frame thumbnail: five fit side by side in a 1400-pixel-wide window with the sidebar."""


def _lru(name: str) -> OrderedDict[Hashable, Any]:
    store = st.session_state.get(name)
    if not isinstance(store, OrderedDict):
        store = OrderedDict()
        st.session_state[name] = store
    return store


def memo(name: str, key: Hashable, compute: Callable[[], T], limit: int = MAX_MEMO) -> T:
    """``compute()`` once per key in this session (least recently used entries dropped).

    Args:
        name: which per-session store.
        key: what the result depends on.
        compute: makes the result.
        limit: entries kept.

    Returns:
        The stored or fresh result.
    """
    store = _lru(name)
    if key in store:
        store.move_to_end(key)
        return store[key]
    value = compute()
    store[key] = value
    while len(store) > limit:
        store.popitem(last=False)
    return value


def dataset_embeddings(
    db: Engine, clip: ClipModel, dataset: str, aspect: str = "squash"
) -> DatasetEmbeddings:
    """A dataset's frames and embeddings: from this session's memory, else from the persistent
    cache, else computed once with a progress bar.

    Keyed by (dataset, encoder key, number of frames), so frames added to the dataset are picked
    up on the next rerun.
    """
    key = (dataset, encoder_key(clip, aspect), count_frames(db, dataset))

    def compute() -> DatasetEmbeddings:
        update, clear = progress_bar(f"Embedding {dataset} with {clip.identity}")
        try:
            return embed_dataset(db, clip, dataset, aspect=aspect, progress=update)
        finally:
            clear()

    return memo("_lab_dataset_embeddings", key, compute, limit=MAX_MATRICES)


def frame_embeddings(
    db: Engine, clip: ClipModel, hashes: Sequence[str], aspect: str = "squash"
) -> np.ndarray:
    """Embeddings of the given stored frames (e.g. the labelled ones), cached per session."""
    digest = hashlib.sha256("\n".join(hashes).encode()).hexdigest()
    key = (digest, encoder_key(clip, aspect))

    def compute() -> np.ndarray:
        update, clear = progress_bar(f"Embedding {len(hashes)} frames with {clip.identity}")
        try:
            return embed_hashes(db, clip, list(hashes), aspect=aspect, progress=update)
        finally:
            clear()

    return memo("_lab_frame_embeddings", key, compute, limit=MAX_MATRICES)


def frame_grid(hashes: Sequence[str], captions: Sequence[str], width: int = THUMBNAIL_PX) -> None:
    """Thumbnails side by side (wrapping), each with its caption (plain text: escaped here).

    One element for the whole grid (the browser applies one message, not a block, its columns
    and an image each), and each thumbnail is made once per session: Prompt Lab redraws its
    top-k and bottom-k on every α change.
    """
    images: list[bytes] = []
    shown: list[str] = []
    for frame_hash, caption in zip(hashes, captions, strict=True):
        try:
            images.append(
                memo(
                    "_thumbnails",
                    (frame_hash, width),
                    lambda h=frame_hash: _thumbnail(h, width),
                    MAX_THUMBNAILS,
                )
            )
            shown.append(md_escape(caption))  # captions render Markdown
        except (OSError, VlmrmError) as exc:  # a stored video missing or altered, too
            st.caption(md_escape(f"{caption}: {unreadable_frame_text(frame_hash, exc)}"))
    if images:
        st.image(images, caption=shown, width=width)


def _thumbnail(frame_hash: str, width: int) -> bytes:
    """A stored frame as PNG bytes at most ``2 × width`` pixels wide (sharp on HiDPI screens)."""
    from PIL import Image

    # Stored bytes, not a path: a video-backed frame has no file of its own.
    with Image.open(io.BytesIO(stored_image_bytes(frame_hash))) as image:
        if image.width > 2 * width:
            image = image.resize(
                (2 * width, max(1, round(image.height * 2 * width / image.width))),
                Image.Resampling.BILINEAR,
            )
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, format="PNG")
    return buffer.getvalue()


def selected_frames(event: Any, figure: Any) -> list[int]:
    """Frame indices of the points selected in a Plotly chart: each point's ``customdata`` (the
    frame index, or a list starting with it).

    Args:
        event: what ``st.plotly_chart(..., on_select="rerun")`` returned.
        figure: the figure that was drawn (to look up points the event carries no data for).

    Returns:
        Distinct frame indices in selection order.
    """
    try:
        points = event["selection"]["points"]
    except (KeyError, TypeError):
        return []
    frames: list[int] = []
    for point in points or []:
        data = point.get("customdata")
        if data is None:
            try:
                trace = figure.data[int(point["curve_number"])]
                data = trace.customdata[int(point.get("point_index", point.get("point_number")))]
            except (KeyError, IndexError, TypeError, ValueError):
                continue
        if isinstance(data, list | tuple | np.ndarray):
            data = data[0] if len(data) else None
        try:
            frame = int(data)  # type: ignore[arg-type]
        except (TypeError, ValueError, OverflowError):
            continue  # a gap between two lines of the chart (None or NaN)
        if frame not in frames:
            frames.append(frame)
    return frames
