"""Evaluate: how close each reward is to the human labels (EPIC, AP, ROC AUC), adapting a
reward to the labels, and the prompt search.

Labels are the consensus of the current labels per frame (mean over labelers); AP, ROC AUC and
the precision–recall curves binarise it at 0.5. The sections are modules beside this page:
``prompt_sets`` (the saved sets ranked), ``widgets.adapt`` (Adapt to labels) and
``prompt_search`` (many candidate prompts ranked at once) and ``judges`` (saved VLM judges in
the same table, VOC over episodes, and a judge's phrasings ranked).
"""

from __future__ import annotations

import streamlit as st

from vlmrm_core.clip.models import discover_models
from vlmrm_core.metrics import ConstantRewardError, check_labels
from vlmrm_core.services import evaluation
from vlmrm_core.services.prompt_sets import starting_sets
from vlmrm_core.store import list_datasets
from vlmrm_studio.auth import current_identity
from vlmrm_studio.views.evaluate.context import EvaluateContext
from vlmrm_studio.views.evaluate.judges import judge_phrasing_section
from vlmrm_studio.views.evaluate.prompt_search import prompt_search_section
from vlmrm_studio.views.evaluate.prompt_sets import prompt_sets_section
from vlmrm_studio.widgets.adapt import adapt_section, fit_to_comparisons_section
from vlmrm_studio.widgets.common import (
    engine,
    hide_training_evals,
    load_model_or_error,
    model_picker,
    progress_bar,
)
from vlmrm_studio.widgets.frames import pick_default_dataset, use_dataset
from vlmrm_studio.widgets.text import md_escape

# Random-init architectures offered for the scaling plot when no trained weights are around.
# (Comments, not docstrings: Streamlit's magic would print a bare string on the page.)
EXTRA_RANDOM_ARCHS = ("ViT-S-32-alt", "ViT-B-32", "ViT-B-16", "ViT-L-14")

st.title("📏 Evaluate")
st.caption(
    "EPIC distance between each reward and the human labels (0 = same ordering and spacing as "
    "the labels, ≈ 0.71 = unrelated; lower is better), with a bootstrap 95% interval."
)

db = engine()
labelled_sets = hide_training_evals(
    [d for d in list_datasets(db) if d.n_labelled > 0], "eval-show-evals"
)
if not labelled_sets:
    st.info(
        "No labelled frames yet. Label some frames as success or failure on **Label** "
        "(at least one of each), then come back."
    )
    st.stop()

top_left, top_right = st.columns(2)
with top_left:
    counts = {d.name: d.n_labelled for d in labelled_sets}
    pick_default_dataset("eval-dataset", list(counts))  # the dataset in use, if labelled
    dataset = st.selectbox(
        "Labelled dataset",
        list(counts),
        key="eval-dataset",
        persist_state="session",  # kept across page changes, like the prompt sets below
        format_func=lambda n: f"{n} ({counts[n]} labelled frames)",
    )
    use_dataset("eval-dataset", dataset)
with top_right:
    picked = model_picker("eval")

labelled = evaluation.labelled_frames(db, dataset)
try:
    check_labels(labelled.labels)
except (ConstantRewardError, ValueError) as exc:
    st.error(md_escape(f"Can't evaluate on {dataset}: {exc}"))
    st.stop()
st.caption(
    f"{labelled.n} labelled frames: {labelled.n_success} successes and "
    f"{labelled.n - labelled.n_success} failures (consensus label ≥ 0.5 counts as a success)."
)

if picked is None:
    st.stop()
clip = load_model_or_error(*picked, warn_untrained=False)  # the picker shows that warning
if clip is None:
    st.stop()

extra_options: dict[str, tuple[str, str]] = {
    c.label: (c.name, c.pretrained) for c in discover_models()
}
extra_options.update({f"random init · {arch}": (arch, "") for arch in EXTRA_RANDOM_ARCHS})
extra_labels = st.multiselect(
    "More models (EPIC vs model size)",
    [label for label, value in extra_options.items() if value != picked],
    key="eval-extra-models",
    help="Each prompt set is also scored with these models, for the scaling plot.",
)


ctx = EvaluateContext(db, dataset, labelled, picked, clip)
prompt_sets_section(ctx, {label: extra_options[label] for label in extra_labels})
adapt_section(
    db,
    dataset=dataset,
    labelled=labelled,
    clip=clip,
    picked=picked,
    prompt_sets=starting_sets(db, dataset),
    created_by=current_identity().email,
    progress=progress_bar,
)
fit_to_comparisons_section(  # the Bradley–Terry reward of the pairwise comparisons
    db,
    dataset=dataset,
    clip=clip,
    picked=picked,
    prompt_sets=starting_sets(db, dataset),
    created_by=current_identity().email,
)
prompt_search_section(ctx, current_identity().email)
judge_phrasing_section(ctx)  # several phrasings of a saved judge's question, ranked
