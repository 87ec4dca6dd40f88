"""VLM judges in the app: the judge picker, the loaded judges (one per process) and a judge
request bound to a loaded judge. Display and caching only: loading and scoring are
:mod:`vlmrm_core.judge` and :mod:`vlmrm_core.services.judge_scores`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import streamlit as st

from vlmrm_core.errors import VlmrmError
from vlmrm_core.settings import get_settings
from vlmrm_studio.widgets.text import md_escape

if TYPE_CHECKING:
    from vlmrm_core.judge import JudgeModel, JudgeReward
    from vlmrm_core.services.judge_scores import JudgeRequest

__all__ = [
    "FOLDER_LABEL",
    "RANDOM_JUDGE_WARNING",
    "get_judge",
    "judge_picker",
    "judge_reward",
    "load_judge_or_error",
]

FOLDER_LABEL = "a local model folder…"
RANDOM_JUDGE_WARNING = (
    "Random-weight judge: its rewards are meaningless. They only show how the interface works."
)
NO_JUDGES_HELP = (
    "No judges here: run `vlmrm models download HF_ID` (e.g. "
    "HuggingFaceTB/SmolVLM-256M-Instruct) on a machine with network access, or copy a model "
    "folder (save_pretrained layout) into {models_dir}, or give a folder's path below."
)


@st.cache_resource(max_entries=2, show_spinner="Loading the judge…")
def get_judge(name: str) -> JudgeModel:
    """A judge loaded once per process (hub id or folder; ``auto`` precision on the default
    device), shared by every session: forward passes hold its lock."""
    from vlmrm_core.judge import load_judge

    return load_judge(name)


def judge_picker(key: str) -> str | None:
    """Pick a judge: the ones usable offline (Hugging Face cache, models folder) or a folder path.

    Returns:
        What to pass to :func:`get_judge`, or None while no judge is given.
    """
    from vlmrm_core.judge import list_cached_judges

    choices = list_cached_judges()
    labels = [
        f"{c.name if c.kind == 'hub-cache' else c.name.rsplit('/', 1)[-1]} ({c.model_type})"
        for c in choices
    ] + [FOLDER_LABEL]
    picked = st.selectbox(
        "Judge (image-text-to-text model)",
        labels,
        key=f"{key}-judge",
        help="Cached Hugging Face models and the model folders in the models dir.",
    )
    if not choices:
        st.caption(
            md_escape(
                "untrained; no judge weights here: "
                + NO_JUDGES_HELP.format(models_dir=get_settings().models_dir)
            )
        )
    if picked == FOLDER_LABEL:
        folder = st.text_input(
            "Model folder", key=f"{key}-judge-folder", placeholder="/path/to/SmolVLM-256M"
        )
        return folder.strip() or None
    return choices[labels.index(picked)].name


def load_judge_or_error(name: str) -> JudgeModel | None:
    """The judge, or an error message naming the fix (None); warns when its weights are
    random."""
    try:
        judge = get_judge(name)
    except VlmrmError as exc:  # ModelError names the problem and the fix
        st.error(md_escape(f"Could not load the judge {name}: {exc}"))
        return None
    if judge.untrained:
        st.warning(RANDOM_JUDGE_WARNING, icon=":material/warning:")
    return judge


def judge_reward(judge: JudgeModel, request: JudgeRequest) -> JudgeReward:
    """The request's question bound to a loaded judge, with the persistent feature cache (a
    question edit re-runs only the language model).

    Raises:
        AnswerError: an empty question, or answers that are not one token each.
    """
    from vlmrm_core.judge import JudgeReward, default_feature_cache

    return JudgeReward(
        judge,
        request.question,
        request.answers,
        mode=request.mode,
        frames=request.frames,
        cache=default_feature_cache(),
    )
