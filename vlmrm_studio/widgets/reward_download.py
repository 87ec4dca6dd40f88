"""The "Download reward file" button of Prompt Lab and Evaluate (plain and adapted CLIP rewards,
and VLM judges).

The file's bytes are made while the page's script runs, from the values the page shows in that
same run: a click-time callable would run outside the script run, where Session State can't be
read (Streamlit's "missing ScriptRunContext"), and so could write other α / β than the screen.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import streamlit as st

from vlmrm_core.errors import VlmrmError
from vlmrm_core.reward.file import (
    Provenance,
    reward_file_name,
    reward_file_text,
    with_checkpoint_hash,
)
from vlmrm_core.reward.spec import ModelRef, RewardSpec
from vlmrm_studio.widgets.text import md_escape

if TYPE_CHECKING:
    from vlmrm_core.judge import JudgeReward

__all__ = ["judge_download_button", "reward_download_button"]


def reward_download_button(
    model: ModelRef,
    reward: RewardSpec,
    name: str,
    *,
    key: str,
    help: str,
    provenance: Provenance | None = None,
    container: Any = st,
) -> None:
    """Offer ``reward`` with ``model`` as a reward file (``vlmrm_core.load_reward(path)``).

    Args:
        model: the model the reward is scored with (a checkpoint's hash is added to the file).
        reward: the reward exactly as the page shows it (α, β, prompts, direction).
        name: the file is named after it (``reward_file_name``).
        key: the button's widget key.
        help: the button's tooltip.
        provenance: where the reward was evaluated and how it scored, if it was.
        container: where the button goes (``st``, a column, ...).
    """
    try:
        ref = with_checkpoint_hash(model)
    except VlmrmError as exc:  # e.g. a checkpoint file that went missing: names the fix
        container.error(md_escape(exc))
        return
    _offer(reward_file_text(ref, reward, provenance), name, key, help, container)


def judge_download_button(
    reward: JudgeReward,
    name: str,
    *,
    key: str,
    help: str,
    provenance: Provenance | None = None,
    container: Any = st,
) -> None:
    """Offer a judge reward (model, question, answers) as a reward file with source ``judge``.

    Args are as in :func:`reward_download_button`; ``reward`` is the judge as the page shows it.
    """
    from vlmrm_core.services.saved_judges import judge_file_text

    try:
        text = judge_file_text(reward, provenance)
    except VlmrmError as exc:
        container.error(md_escape(exc))
        return
    _offer(text, name, key, help, container)


def _offer(text: str, name: str, key: str, help: str, container: Any) -> None:
    container.download_button(
        "Download reward file",
        text.encode(),
        file_name=reward_file_name(name),
        mime="application/json",
        key=key,
        help=help,
        on_click="ignore",  # downloading changes nothing on the page: no rerun
        width="stretch" if container is not st else "content",
    )
