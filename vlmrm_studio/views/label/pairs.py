"""Label page, pair mode: which of two frames is closer to the goal, with the keyboard.

A thin view over :class:`vlmrm_core.services.preferences.PairSession` (every answer committed
at once, skip, undo of this browser session's latest answer). The pairs asked are
:func:`~vlmrm_core.services.preferences.candidate_pairs` (random, the labeller's own seed) and,
"most informative first", the same pairs reordered by
:func:`~vlmrm_core.services.preferences.informative_pairs` over the saved prompt sets' rewards
on the cached embeddings (:func:`vlmrm_studio.views.label.order.prompt_set_rewards`). As in the
single-frame mode, every button is bound to the pair that was on screen.

Keys: ← (left closer), → (right closer), E (equally close), K (skip), U (undo). Streamlit's
shortcuts accept letters, digits and named keys only, so "equal" is E rather than "=".
"""

from __future__ import annotations

import streamlit as st

from vlmrm_core.errors import VlmrmError
from vlmrm_core.services.labeling import frame_infos
from vlmrm_core.services.preferences import (
    PAIR_ORDERS,
    PairSession,
    candidate_pairs,
    informative_pairs,
)
from vlmrm_core.store import Engine, list_prompt_sets
from vlmrm_core.store.comparisons import current_comparisons
from vlmrm_core.store.tasks import TaskInfo
from vlmrm_studio.auth import current_identity
from vlmrm_studio.views.label.order import prompt_set_rewards
from vlmrm_studio.widgets.frame_display import frame_caption
from vlmrm_studio.widgets.frames import full_frame, notify
from vlmrm_studio.widgets.text import md_escape

__all__ = ["CHOICE_TEXT", "DEFAULT_PAIRS", "pair_view"]

# (Comments, not docstrings: Streamlit's "magic" would render bare strings on the page.)
SESSIONS = "label-pair-sessions"  # session state: (dataset, labeler, task) -> PairSession
ASKED = "label-pair-asked"  # session state: session key -> what the pairs were built from
ORDER = "label-pair-order"
COUNT = "label-pair-count"
NOTICE = "label-notice"  # the page's notice slot
LAST_ACTION = "label-pair-last-action"
DEFAULT_PAIRS = 50
QUESTION = "Which frame is closer to the goal?"
ORDER_TITLES = {"random": "random", "informative": "most informative first"}
CHOICE_TEXT = {"a": "left closer", "b": "right closer", "equal": "equally close"}


def _session(dataset: str, labeler: str, task: TaskInfo | None) -> PairSession:
    """This browser session's pair labelling of ``dataset`` (per task: each has its own)."""
    sessions: dict[tuple[str, str, str | None], PairSession] = st.session_state.setdefault(
        SESSIONS, {}
    )
    name = None if task is None else task.name
    return sessions.setdefault(
        (dataset, labeler, name),
        PairSession(dataset, labeler, signed_in=current_identity().signed_in, task=name),
    )


def _tell(session: PairSession, text: str) -> None:
    st.session_state[LAST_ACTION] = ((session.dataset, session.labeler, session.task), text)


def _compare(db: Engine, session: PairSession, pair: tuple[str, str], choice: str) -> None:
    """Callback of ← / → / =: commit the answer about the pair on screen."""
    try:
        session.compare(db, pair, choice)
    except (VlmrmError, KeyError, ValueError, PermissionError) as exc:
        notify(NOTICE, "error", f"The answer was not saved: {exc}")
        return
    _tell(session, f"Saved: {CHOICE_TEXT[choice]}.")


def _skip(session: PairSession, pair: tuple[str, str]) -> None:
    session.skip(pair)
    _tell(session, "Skipped the pair: it comes back at the end.")


def _undo(db: Engine, session: PairSession) -> None:
    try:
        record = session.undo(db)
    except (VlmrmError, KeyError, ValueError, PermissionError) as exc:
        notify(NOTICE, "error", f"Could not undo: {exc}")
        return
    if record is None:
        _tell(session, "Nothing to undo: you have answered no pair in this session.")
    else:
        _tell(
            session, f"Undid your answer ({CHOICE_TEXT[record.choice]}); the pair is shown again."
        )


def _build_pairs(
    db: Engine, dataset: str, session: PairSession, task: TaskInfo | None, order: str, count: int
) -> str | None:
    """Set the session's pairs; returns a note on the order actually used (None: as asked)."""
    frames = None if task is None else task.frame_hashes
    pairs = candidate_pairs(db, dataset, count, seed=session.seed, frames=frames)
    if order != "informative":
        session.pairs = pairs
        return None
    try:
        scored = prompt_set_rewards(db, dataset, list_prompt_sets(db, environment=dataset))
    except VlmrmError as exc:
        session.pairs = pairs
        return f"Can't rank the pairs ({exc}): random order meanwhile."
    if scored is None:
        session.pairs = pairs
        return (
            "Most informative first needs a saved prompt set (Prompt Lab or Evaluate) for this "
            "dataset: random order meanwhile."
        )
    session.pairs = informative_pairs(
        pairs,
        scored.hashes,
        scored.embeddings,
        scored.all_rewards,
        comparisons=current_comparisons(db, dataset),
        seed=session.seed,
    )
    used = ", ".join(scored.used + ((scored.adapted_name,) if scored.adapted_name else ()))
    return f"Ranked with {scored.model}: prompt sets {used or 'none'}."


def _choose_pairs(db: Engine, dataset: str, session: PairSession, task: TaskInfo | None) -> None:
    """The order and the number of pairs to ask; the pairs are built again when either changes
    (or on Re-rank), not after every answer."""
    left, middle, right = st.columns([3, 1, 1], vertical_alignment="bottom")
    order = left.radio(
        "Order",
        list(PAIR_ORDERS),
        format_func=ORDER_TITLES.get,
        horizontal=True,
        key=ORDER,
        help="random: random pairs in a shuffle of your own; most informative first: pairs on "
        "which the saved prompt sets disagree most (or the fit to the comparisons so far is "
        "least sure), spread over the frames.",
    )
    count = int(middle.number_input("Pairs to ask", 1, 5000, DEFAULT_PAIRS, step=10, key=COUNT))
    rerank = right.button(
        "Re-rank",
        key="label-pair-rerank",
        disabled=order != "informative",
        help="Rank the pairs again with the comparisons so far.",
    )
    asked: dict[tuple[str, str, str | None], tuple[object, ...]] = st.session_state.setdefault(
        ASKED, {}
    )
    key = (session.dataset, session.labeler, session.task)
    built_from = (order, count)
    if asked.get(key, (None,))[:2] != built_from or rerank:
        note = _build_pairs(db, dataset, session, task, str(order), count)
        asked[key] = (*built_from, note)
    note = asked[key][2]
    if note:
        st.caption(md_escape(str(note)))


def _picture(db: Engine, dataset: str, frame_hash: str, side: str, show_state: bool) -> None:
    """One frame of the pair, captioned with its side (and its name unless the task hides it:
    names like "angle=+0.1" bias labellers)."""
    info = frame_infos(db, dataset, [frame_hash]).get(frame_hash)
    caption = side
    if info is not None and show_state:
        caption = f"{side}: {md_escape(frame_caption(info))}"
    image = full_frame(frame_hash)
    if image is None:
        st.warning(md_escape(f"The image file of this frame is missing: {frame_hash[:12]}"))
        return
    st.image(image, caption=caption, width="stretch")


def pair_view(db: Engine, dataset: str, labeler: str, task: TaskInfo | None) -> None:
    """Progress, two frames side by side, and the answer buttons (with keyboard shortcuts).

    Args:
        db: the project database.
        dataset: the dataset compared.
        labeler: the checked labeller name (the signed-in email when sign-in is on).
        task: the pairwise task worked on (its frames, question and name go with each answer),
            or None.
    """
    session = _session(dataset, labeler, task)
    _choose_pairs(db, dataset, session, task)
    if task is not None:
        st.caption(md_escape(f"Task {task.name}: pairwise comparisons."))
        if task.instructions:
            with st.expander("Instructions"):
                st.text(task.instructions)  # plain text: no Markdown from the task's author
    st.subheader(md_escape(QUESTION if task is None else task.question))
    if task is None:
        goals = [
            g for p in list_prompt_sets(db, environment=dataset) if p.environment
            for g in p.reward.goal_prompts
        ][:1]  # fmt: skip
        if goals:
            st.caption(md_escape(f"Goal: {goals[0]}"))
    queue = session.queue(db)
    asked = len(session.pairs)
    done = asked - len(queue)
    st.progress(done / asked if asked else 0.0, text=f"Pairs done: {done}/{asked}")
    if not queue:
        if asked:
            st.success("🎉 All pairs done. Thank you! Ask more pairs above to go on.")
        else:
            st.info("No pairs to ask: the dataset needs at least two different frames.")
        st.button(
            "Undo last", key="label-pair-undo", shortcut="u", on_click=_undo, args=(db, session)
        )
        _last_action(session)
        return
    pair = queue[0]
    show_state = task.show_state if task is not None else True
    left, right = st.columns(2)
    with left:
        _picture(db, dataset, pair[0], "Left", show_state)
    with right:
        _picture(db, dataset, pair[1], "Right", show_state)
    buttons = st.columns(5)
    buttons[0].button(
        "← Left closer", key="label-pair-a", shortcut="Left", type="primary", width="stretch",
        on_click=_compare, args=(db, session, pair, "a"),
    )  # fmt: skip
    buttons[1].button(
        "Equally close", key="label-pair-equal", shortcut="e", width="stretch",
        on_click=_compare, args=(db, session, pair, "equal"),
    )  # fmt: skip
    buttons[2].button(
        "Right closer →", key="label-pair-b", shortcut="Right", type="primary", width="stretch",
        on_click=_compare, args=(db, session, pair, "b"),
    )  # fmt: skip
    buttons[3].button(
        "Skip", key="label-pair-skip", shortcut="k", width="stretch",
        on_click=_skip, args=(session, pair),
    )  # fmt: skip
    buttons[4].button(
        "Undo last", key="label-pair-undo", shortcut="u", width="stretch",
        on_click=_undo, args=(db, session),
    )  # fmt: skip
    st.caption(
        f"Keyboard: ← left closer · → right closer · E equally close · K skip · U undo last · "
        f"{len(queue)} pair(s) left"
    )
    _last_action(session)


def _last_action(session: PairSession) -> None:
    owner, text = st.session_state.get(LAST_ACTION, (None, ""))
    if owner == (session.dataset, session.labeler, session.task) and text:
        st.caption(md_escape(text))
