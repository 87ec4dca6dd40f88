"""Home: which models are available locally, and what the project holds."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from vlmrm_core.clip.models import NO_WEIGHTS_HELP, bf16_supported, default_device, discover_models
from vlmrm_core.settings import get_settings
from vlmrm_core.store import list_datasets, list_prompt_sets
from vlmrm_studio.widgets.common import engine

st.title("VLM-RM Studio")
st.markdown(
    "Rewards from sentences: score frames with CLIP against a goal prompt "
    "(Rocamonde et al. 2023, Baumli et al. 2023), check the reward against human labels with "
    "EPIC, and train agents on it."
)

db = engine()
settings = get_settings()
left, right = st.columns(2)
with left:
    st.subheader("Models available offline")
    models = discover_models()
    if models:
        st.dataframe(
            [
                {
                    "model": m.name,
                    "weights": Path(m.pretrained).name if m.kind == "checkpoint" else m.pretrained,
                    "source": m.kind,
                }
                for m in models
            ],
            hide_index=True,
        )
    else:
        st.warning(NO_WEIGHTS_HELP.format(models_dir=settings.models_dir))
    device = default_device()
    st.caption(f"Device: {device.type}" + (" · bf16 available" if bf16_supported(device) else ""))
with right:
    st.subheader("Project")
    datasets = list_datasets(db)
    st.metric("Datasets", len(datasets))
    st.metric("Prompt sets", len(list_prompt_sets(db)))
    st.caption(f"Database: `{settings.database_url}`")

st.subheader("The loop")
st.markdown(
    "1. **Frames**: upload images/videos, record gymnasium rollouts, or render state sweeps.\n"
    "2. **Prompt Lab**: write goal and baseline prompts and watch the reward landscape.\n"
    "3. **Label**: mark frames as success or failure (keyboard: `s`, `f`, `k` to skip, `u` undo).\n"
    "4. **Evaluate**: EPIC distance of each prompt set to the labels; search many prompts at once.\n"
    "5. **Train**: train an agent on the reward in the background."
)
