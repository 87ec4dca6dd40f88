"""Prompt Lab's Judge mode: a VLM judge asked a yes/no question about every frame of a dataset.

Instead of goal and baseline prompts the user picks a judge (a cached Hugging Face model or a
model folder) and types a question and the answer pair; the reward of a frame is
log P(yes) − log P(no) (or P(yes)) at the answer position. The landscape, top/bottom frames and
distribution are Prompt Lab's own (:func:`~vlmrm_studio.views.prompt_lab.landscape.values_section`).
Vision features go through the persistent feature cache, so editing the question re-runs only the
language model. A judge is saved under a name (:mod:`vlmrm_core.services.saved_judges`), which
Evaluate ranks beside the prompt sets, or downloaded as a reward file with source ``judge``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np
import streamlit as st

from vlmrm_core.enums import JudgeMode, choices
from vlmrm_core.errors import VlmrmError
from vlmrm_core.judge.prompt import DEFAULT_ANSWERS
from vlmrm_core.services.judge_scores import JudgeRequest, score_dataset
from vlmrm_core.services.prompt_sets import guess_environment
from vlmrm_core.services.saved_judges import JudgeExistsError, list_saved_judges, save_judge
from vlmrm_core.store import Engine, count_frames
from vlmrm_studio.auth import current_identity
from vlmrm_studio.views.prompt_lab.landscape import values_section
from vlmrm_studio.widgets.common import hide_training_evals, progress_bar
from vlmrm_studio.widgets.counts import frame_count_text
from vlmrm_studio.widgets.embeddings import memo
from vlmrm_studio.widgets.frames import pick_default_dataset, use_dataset
from vlmrm_studio.widgets.judges import (
    RANDOM_JUDGE_WARNING,
    judge_picker,
    judge_reward,
    load_judge_or_error,
)
from vlmrm_studio.widgets.reward_download import judge_download_button
from vlmrm_studio.widgets.text import md_escape

if TYPE_CHECKING:
    from vlmrm_core.judge import JudgeReward

__all__ = ["DEFAULT_QUESTION", "JUDGE_SOURCE", "LAB_SOURCES", "judge_mode"]

JUDGE_SOURCE = "VLM judge"
LAB_SOURCES = ["CLIP prompts", JUDGE_SOURCE]
"""The Prompt Lab's reward sources (the mode switch at the top of the page)."""
DEFAULT_QUESTION = "Is the pole balanced upright on the cart? Answer yes or no."
KEEP = "session"  # the editor keeps its question when the user visits another page and returns


def judge_mode(db: Engine, datasets: list) -> None:
    """The whole Judge mode: dataset and judge pickers, the question, the landscape, saving.

    Args:
        db: the project database.
        datasets: the datasets to offer (all of them; training evaluations are hidden here).
    """
    state = st.session_state
    top_left, top_right = st.columns([2, 3])
    with top_left:
        datasets = hide_training_evals(datasets, "lab-show-evals")
        by_name = {d.name: d for d in datasets}
        pick_default_dataset("lab-dataset", list(by_name))
        dataset = st.selectbox(
            "Dataset",
            list(by_name),
            key="lab-dataset",
            format_func=lambda n: (
                f"{n} ({frame_count_text(by_name[n].n_frames, by_name[n].n_images)})"
            ),
        )
        use_dataset("lab-dataset", dataset)
        _load_saved(dataset)
    with top_right:
        name = judge_picker("lab")
    if flash := state.pop("lab-judge-flash", None):
        getattr(st, flash[0])(md_escape(flash[1]))  # names a saved judge: user text
    if not name:
        st.info("Pick a judge, or give the path of a model folder.")
        return
    judge = load_judge_or_error(name)
    if judge is None:
        return
    request = _editor(name)
    if request is None:
        return
    try:
        reward = judge_reward(judge, request)
    except VlmrmError as exc:  # AnswerError: several tokens, unknown words, an empty question
        st.error(md_escape(exc))
        return
    if count_frames(db, dataset) == 0:
        st.info(f"{md_escape(dataset)} has no frames yet: add some on **Frames**.")
        return
    scored = _scores(db, dataset, reward)
    if scored is None:
        return
    frames, values, seconds = scored
    value_name = "P(yes)" if reward.mode is JudgeMode.PROBABILITY else "log-odds"
    value_name = value_name.replace("yes", reward.answers[0])
    st.caption(
        md_escape(
            f"{reward.description}. Scored {len(frames)} frames in {seconds:.2f} s; the "
            "judge's vision features are cached, so a question edit re-runs only its language "
            "model."
        )
    )
    if judge.untrained:
        st.caption(RANDOM_JUDGE_WARNING)
    values_section(frames, values, value_name, (dataset, "judge", len(frames)), st.container())
    _save(reward, dataset)


def _load_saved(dataset: str) -> None:
    """A popover to load a saved judge's question and answers into the editor."""
    saved = list_saved_judges(environment=dataset)
    if not saved:
        return
    with st.popover("📂 Load a saved judge", width="stretch"):
        names = [j.name for j in saved]
        chosen = st.selectbox("Saved judge", names, key="lab-judge-load-name")
        st.button(
            "Load into the editor",
            key="lab-judge-load",
            on_click=_load_into_editor,
            args=(chosen,),
        )


def _load_into_editor(name: str) -> None:
    state = st.session_state
    found = {j.name: j for j in list_saved_judges()}.get(name)
    if found is None:
        state["lab-judge-flash"] = ("error", f"No saved judge named {name!r}.")
        return
    request = found.request
    state["lab-question"] = request.question
    state["lab-answer-pos"], state["lab-answer-neg"] = request.answers
    state["lab-judge-mode"] = request.mode.value
    state["lab-judge-save-name"] = ""  # a later Save must not silently overwrite it
    state["lab-judge-flash"] = (
        "success",
        f"Loaded the question of {name!r} (judge {found.model_label}); pick that judge above "
        "if another is chosen.",
    )


def _editor(model: str) -> JudgeRequest | None:
    """The question, the answer pair and the reward's form; None until a question is typed."""
    state = st.session_state
    state.setdefault("lab-question", DEFAULT_QUESTION)
    state.setdefault("lab-answer-pos", DEFAULT_ANSWERS[0])
    state.setdefault("lab-answer-neg", DEFAULT_ANSWERS[1])
    state.setdefault("lab-judge-mode", JudgeMode.LOG_ODDS.value)
    question_col, answers_col, mode_col = st.columns([3, 2, 2])
    with question_col:
        question = st.text_area(
            "Question (yes/no, about one frame)",
            key="lab-question",
            height=100,
            persist_state=KEEP,
            help="Asked about every frame with the judge's own chat template.",
        )
    with answers_col:
        positive = st.text_input(
            "Positive answer",
            key="lab-answer-pos",
            persist_state=KEEP,
            help="Must be one token of the judge's vocabulary at the answer position.",
        )
        negative = st.text_input("Negative answer", key="lab-answer-neg", persist_state=KEEP)
    with mode_col:
        mode = st.radio(
            "Reward",
            list(choices(JudgeMode)),
            key="lab-judge-mode",
            persist_state=KEEP,
            help="log-odds: log P(positive) − log P(negative); probability: P(positive).",
        )
    if not question.strip():
        st.info("Type a question to see the judge's reward landscape.")
        return None
    return JudgeRequest(
        model=model,
        question=question.strip(),
        answers=(positive.strip(), negative.strip()),
        mode=JudgeMode(mode),
    )


def _scores(db: Engine, dataset: str, reward: JudgeReward) -> tuple[list, np.ndarray, float] | None:
    """The judge's rewards of every frame, kept per session by (dataset, size, reward); the
    first pass shows progress."""
    key = (dataset, count_frames(db, dataset), reward.identity)

    def compute() -> tuple[list, np.ndarray, float] | str:
        update, clear = progress_bar(f"Judging {dataset}")
        start = time.perf_counter()
        try:
            scored = score_dataset(db, dataset, reward, progress=update)
        except VlmrmError as exc:
            return str(exc)
        finally:
            clear()
        return scored.frames, scored.rewards, time.perf_counter() - start

    result = memo("_lab_judge_scores", key, compute, limit=4)
    if isinstance(result, str):
        st.error(md_escape(result))
        return None
    return result


@st.fragment
def _save(reward: JudgeReward, dataset: str) -> None:
    """Save the judge (model, question, answers) under a name, or download it as a reward file."""
    state = st.session_state
    st.subheader("Save the judge")
    state.setdefault("lab-judge-save-env", guess_environment(dataset))
    left, mid, right = st.columns([3, 2, 1], vertical_alignment="bottom")
    name = left.text_input(
        "Judge name", key="lab-judge-save-name", placeholder="e.g. pole upright (SmolVLM)"
    )
    mid.text_input(
        "Written for (environment or dataset)",
        key="lab-judge-save-env",
        help="Evaluate offers the judge first for matching datasets.",
    )
    right.button(
        "Save judge", key="lab-judge-save", width="stretch", on_click=_store, args=(reward, False)
    )
    judge_download_button(
        reward,
        name.strip() or "judge",
        key="lab-judge-download",
        help="This judge and question as one reward file (source judge): load it with "
        "vlmrm_core.load_reward(path) or train on it with `vlmrm train start --reward FILE`.",
    )
    if flash := state.pop("lab-judge-save-flash", None):
        getattr(st, flash[0])(md_escape(flash[1]))  # names a saved judge: user text
    pending = state.get("lab-judge-pending")
    if pending and pending == name.strip():
        st.warning(md_escape(f"A judge named {pending!r} is saved already."))
        st.button(
            md_escape(f"Overwrite {pending!r}"),
            key="lab-judge-overwrite",
            on_click=_store,
            args=(reward, True),
        )


def _store(reward: JudgeReward, overwrite: bool) -> None:
    """The Save button: the name and environment as typed when it was clicked."""
    state = st.session_state
    state.pop("lab-judge-pending", None)
    name = str(state.get("lab-judge-save-name") or "").strip()
    environment = str(state.get("lab-judge-save-env") or "").strip()
    try:
        saved = save_judge(
            name,
            reward,
            environment=environment or None,
            created_by=current_identity().email,
            overwrite=overwrite,
        )
    except JudgeExistsError:
        state["lab-judge-pending"] = name
        return
    except VlmrmError as exc:
        state["lab-judge-save-flash"] = ("error", str(exc))
        return
    note = " (random weights: its rewards are meaningless)" if reward.untrained else ""
    state["lab-judge-save-flash"] = (
        "success",
        f"Saved judge {saved.name!r}{note}: Evaluate ranks it beside the prompt sets.",
    )
