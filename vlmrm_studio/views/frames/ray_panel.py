"""The Frames page's "Embed with Ray" panel: fill a dataset's embedding cache on a Ray cluster.

Shown only when ``VLMRM_RAY_ADDRESS`` names a cluster (e.g. ``auto`` on a cluster's head node).
The work itself is :func:`vlmrm_core.scale.embed.embed_with_ray`.
"""

from __future__ import annotations

import streamlit as st

from vlmrm_core.errors import is_user_error
from vlmrm_core.scale.cluster import configured_address
from vlmrm_studio.widgets.common import progress_bar
from vlmrm_studio.widgets.text import md_escape


def embed_with_ray_panel(db: object, dataset: str) -> None:
    """An expander that embeds ``dataset`` on the configured Ray cluster (nothing if none)."""
    address = configured_address()
    if address is None:
        return
    from vlmrm_core.clip.models import discover_models

    with st.expander("Embed with Ray"):
        st.caption(
            f"Embeds the frames not yet cached on the Ray cluster at `{md_escape(address)}` "
            "(one GPU per worker where the cluster has GPUs). Frames travel inside the job, "
            "so the workers need no access to this machine's files."
        )
        choices = {c.label: c for c in discover_models()}
        if not choices:
            st.info("No local CLIP model yet: download one with `vlmrm models download`.")
            return
        label = st.selectbox("Model", list(choices), key=f"frames-ray-model-{dataset}")
        aspect = st.radio(
            "Aspect", ["squash", "center-crop"], horizontal=True, key=f"frames-ray-aspect-{dataset}"
        )
        if st.button("Embed with Ray", key=f"frames-ray-embed-{dataset}"):
            _run(db, dataset, address, choices[label], aspect)


def _run(db: object, dataset: str, address: str, choice: object, aspect: str) -> None:
    from vlmrm_core.scale.cluster import ray_session
    from vlmrm_core.scale.embed import EmbedModel, embed_with_ray, iter_stored_items

    update, clear = progress_bar("Embedding on Ray")
    model = EmbedModel(choice.name, choice.pretrained, aspect)
    try:
        with ray_session(address):
            report = embed_with_ray(
                db,
                iter_stored_items(db, dataset),
                model,
                progress=lambda done, total: update(done, total, f"{done}/{total} frames"),
            )
    except Exception as exc:
        if not is_user_error(exc):
            raise
        clear()
        st.error(str(exc))
        return
    clear()
    st.success(report.summary)
