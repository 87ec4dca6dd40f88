"""Widgets and per-session caches shared by the Prompt Lab and Evaluate pages. Display only.

Embedding matrices are kept in ``st.session_state`` (not ``st.cache_data``, which would copy a
possibly large N×D array on every rerun); a few of them per session, least recently used out.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from typing import Any, TypeVar

import numpy as np
import streamlit as st

from app.text import md_escape
from app.ui import progress_bar
from vlmrm_core.embedding_cache import encoder_key
from vlmrm_core.landscape import DatasetEmbeddings, embed_dataset, embed_hashes
from vlmrm_core.models import ClipModel
from vlmrm_core.store import Engine, count_frames, load_pixels

T = TypeVar("T")

MAX_MATRICES = 4
"""Embedding matrices kept per session (each is N×D float32)."""

MAX_MEMO = 64
"""Small results (evaluations) kept per session."""


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


def frame_grid(hashes: Sequence[str], captions: Sequence[str], columns: int = 5) -> None:
    """Thumbnails in a grid, each with its caption (plain text: escaped here for Markdown)."""
    if not hashes:
        return
    cols = st.columns(columns)
    for i, (frame_hash, caption) in enumerate(zip(hashes, captions, strict=True)):
        with cols[i % columns]:
            try:
                st.image(load_pixels(frame_hash), caption=md_escape(caption), width="stretch")
            except OSError as exc:
                st.caption(md_escape(f"{caption}: image unavailable ({exc})"))


def selected_frames(event: Any, figure: Any) -> list[int]:
    """Frame indices of the points selected in a Plotly chart (``customdata[0]`` of each point).

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
        if data is None or len(data) == 0 or data[0] is None:
            continue  # a gap between two lines of the chart
        if int(data[0]) not in frames:
            frames.append(int(data[0]))
    return frames
