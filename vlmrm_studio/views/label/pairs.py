"""Label page, pair mode: which of two frames is closer to the goal, with the keyboard.

A thin view over :class:`vlmrm_core.services.preferences.PairSession` (every answer committed
at once, skip, undo of this browser session's latest answer). The pairs asked are
:func:`~vlmrm_core.services.preferences.candidate_pairs` (random, the labeller's own seed) and,
"most informative first", the same pairs reordered by
:func:`~vlmrm_core.services.preferences.informative_pairs` over the saved prompt sets' rewards
on the cached embeddings (:func:`vlmrm_studio.views.label.order.prompt_set_rewards`). As in the
single-frame mode, every button is bound to the pair that was on screen.

Keys: ← (left closer), → (right closer), E (equally close), K (skip), U (undo). Streamlit's
shortcuts accept letters, digits and named keys only, so "equal" is E rather than "=". The mode,
compare and order switches are plain buttons (:mod:`vlmrm_studio.widgets.switches`): a radio or a
segmented control keeps the focus after a click and takes ← / → itself, a button does not.

A saved VLM judge can suggest answers (RL-VLM-F): "Ask a judge for suggestions" has it answer
the next pairs of the queue (:func:`~vlmrm_core.services.preferences.judge_preferences`, both
orders), stored under its machine labeller, never counted as a person's. Its suggestion shows
under the pair only with "Show judge suggestions" on (off by default: seeing it biases people).
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import streamlit as st
from PIL import Image

from vlmrm_core.errors import VlmrmError
from vlmrm_core.services.labeling import frame_infos
from vlmrm_core.services.preferences import (
    DEFAULT_JUDGE_MARGIN,
    PAIR_ORDERS,
    PairSession,
    PairT,
    candidate_clip_pairs,
    candidate_pairs,
    has_episodes,
    informative_pairs,
    judge_preferences,
    machine_suggestions,
)
from vlmrm_core.services.saved_judges import list_saved_judges
from vlmrm_core.store import Engine, dataset_frames, list_prompt_sets, load_pixels
from vlmrm_core.store.comparisons import Clip, Item, clip_frames, current_comparisons
from vlmrm_core.store.tasks import TaskInfo
from vlmrm_studio.auth import current_identity
from vlmrm_studio.views.label.order import prompt_set_rewards
from vlmrm_studio.widgets.common import progress_bar
from vlmrm_studio.widgets.frame_display import frame_caption
from vlmrm_studio.widgets.frames import full_frame, notify, show_frame_problem
from vlmrm_studio.widgets.judges import get_judge, judge_reward
from vlmrm_studio.widgets.switches import button_switch, button_toggle
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
UNITS = ("Frames", "Clips")
UNIT = "label-pair-unit"
CLIP_FRAMES = "label-pair-clip-frames"
DEFAULT_CLIP_FRAMES = 8
CLIP_FRAME_MS = 200  # each frame of a clip's animation shows for 0.2 s
SHOW_SUGGESTIONS = "Show judge suggestions"
SUGGEST = "label-pair-suggest"  # the "Show judge suggestions" switch (off by default)
SUGGESTED_SIDE = {"a": "Left", "b": "Right", "equal": "equally close"}
DEFAULT_JUDGED_PAIRS = 10


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
    db: Engine,
    dataset: str,
    session: PairSession,
    task: TaskInfo | None,
    order: str,
    count: int,
    clip_length: int = 1,
) -> str | None:
    """Set the session's pairs (of frames, or of clips of ``clip_length`` frames); returns a
    note on the order actually used (None: as asked)."""
    frames = None if task is None else task.frame_hashes
    if clip_length > 1:
        clip_pairs = candidate_clip_pairs(
            db, dataset, count, clip_length, seed=session.seed, frames=frames
        )
        session.pairs = list(clip_pairs)
        if not clip_pairs:
            return f"No two clips of {clip_length} frames: choose shorter clips."
        if order != "informative":
            return None
        ranked_clips, note = _informative(db, dataset, clip_pairs, session.seed)
        session.pairs = list(ranked_clips or clip_pairs)
        return note
    pairs = candidate_pairs(db, dataset, count, seed=session.seed, frames=frames)
    session.pairs = list(pairs)
    if order != "informative":
        return None
    ranked, note = _informative(db, dataset, pairs, session.seed)
    session.pairs = list(ranked or pairs)
    return note


def _informative(
    db: Engine, dataset: str, pairs: Sequence[PairT], seed: int
) -> tuple[list[PairT] | None, str]:
    """The pairs (of frames or of clips) most informative first, ranked with the saved prompt
    sets' rewards, and a note on what ranked them; None and a note saying why when they can't
    be ranked (the caller keeps the random order)."""
    try:
        scored = prompt_set_rewards(db, dataset, list_prompt_sets(db, environment=dataset))
        # A clip is scored as its frames summed: the ranking needs each clip's frames.
        clips = [c for p in pairs for c in p if isinstance(c, Clip)]
        members = clip_frames(db, dataset, clips) if scored is not None and clips else None
    except VlmrmError as exc:
        return None, f"Can't rank the pairs ({exc}): random order meanwhile."
    if scored is None:
        return None, (
            "Most informative first needs a saved prompt set (Prompt Lab or Evaluate) for this "
            "dataset: random order meanwhile."
        )
    ranked = informative_pairs(
        pairs,
        scored.hashes,
        scored.embeddings,
        scored.all_rewards,
        comparisons=current_comparisons(db, dataset),
        clip_members=members,
        seed=seed,
    )
    used = ", ".join(scored.used + ((scored.adapted_name,) if scored.adapted_name else ()))
    return ranked, f"Ranked with {scored.model}: prompt sets {used or 'none'}."


def _choose_unit(db: Engine, dataset: str) -> int:
    """Frames or clips: the "Compare" choice (shown when the dataset has episodes) and the
    clip length; returns the frames per side (1: two frames)."""
    if not has_episodes(dataset_frames(db, dataset)):
        return 1
    left, right = st.columns([3, 2], vertical_alignment="bottom")
    # Buttons, not a segmented control: a clicked segmented control keeps the focus and moves
    # it with ← / → instead of answering.
    with left:
        unit = button_switch(
            "Compare",
            list(UNITS),
            key=UNIT,
            help="Frames: two frames side by side. Clips: two clips of consecutive frames of "
            "episodes (two episodes, or two spans of one), each playing as an animation; a "
            "clip's reward is the sum of its frames' rewards.",
        )
    if unit != UNITS[1]:
        return 1
    return int(right.number_input("Clip frames", 2, 64, DEFAULT_CLIP_FRAMES, key=CLIP_FRAMES))


def _choose_pairs(db: Engine, dataset: str, session: PairSession, task: TaskInfo | None) -> None:
    """Frames or clips, the order and the number of pairs to ask; the pairs are built again
    when any changes (or on Re-rank), not after every answer."""
    clip_length = _choose_unit(db, dataset)
    left, middle, right = st.columns([3, 1, 1], vertical_alignment="bottom")
    # Buttons, not a radio: a clicked radio would keep the focus and take ← / →.
    with left:
        order = button_switch(
            "Order",
            list(PAIR_ORDERS),
            format_func=lambda o: ORDER_TITLES[o],
            key=ORDER,
            help="random: random pairs in a shuffle of your own; most informative first: pairs "
            "on which the saved prompt sets disagree most (or the fit to the comparisons so far "
            "is least sure), spread over the frames.",
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
    built_from = (order, count, clip_length)
    if asked.get(key, (None,))[:3] != built_from or rerank:
        built = _build_pairs(db, dataset, session, task, str(order), count, clip_length)
        asked[key] = (*built_from, built)
    note = asked[key][3]
    if note:
        st.caption(md_escape(str(note)))


def _ask_judge(db: Engine, dataset: str, session: PairSession) -> None:
    """The "Ask a judge for suggestions" expander: a saved judge answers the next pairs of this
    labeller's queue (both orders, with a progress bar: slow on a CPU), stored as its machine
    labeller. Signed-in labellers don't see it (the service refuses them too)."""
    identity = current_identity()  # the local user without sign-in is a researcher
    if identity.role not in ("admin", "researcher"):
        return
    with st.expander("Ask a judge for suggestions"):
        saved = list_saved_judges(environment=dataset)
        if not saved:
            st.caption("No saved judges: save one in the **Prompt Lab**'s Judge mode.")
            return
        by_name = {j.name: j for j in saved}
        columns = st.columns([3, 1, 1, 1], vertical_alignment="bottom")
        name = columns[0].selectbox("Judge", list(by_name), key="label-pair-judge")
        count = int(
            columns[1].number_input(
                "Pairs", 1, 1000, DEFAULT_JUDGED_PAIRS, key="label-pair-judge-count",
                help="The next pairs of your queue (pairs it answered before are not asked again).",
            )
        )  # fmt: skip
        margin = float(
            columns[2].number_input(
                "Undecided below", 0.0, 20.0, DEFAULT_JUDGE_MARGIN, step=0.1,
                key="label-pair-judge-margin",
                help="Log-odds (both orders averaged) below which the judge counts as "
                "undecided: no suggestion is stored for that pair.",
            )
        )  # fmt: skip
        st.caption(
            "The judge is asked which image shows the task closer to done, in both orders. Its "
            "answers are stored under its own machine name (judge:…), apart from people's; "
            "their agreement with people is on **Tasks → Review**."
        )
        if not columns[3].button("Ask the judge", key="label-pair-judge-run", width="stretch"):
            return
        chosen = by_name[str(name)]
        pairs = [(a, b) for a, b in session.queue(db) if isinstance(a, str) and isinstance(b, str)]
        pairs = pairs[:count]  # judges answer about frames, not clips
        update, clear = progress_bar(f"{chosen.name} judging {len(pairs)} pairs")
        try:
            reward = judge_reward(get_judge(chosen.request.model), chosen.request)
            result = judge_preferences(
                db, dataset, reward, pairs, margin=margin, progress=update, actor=identity.email
            )
        except (VlmrmError, OSError) as exc:  # a judge that can't load, a missing frame file
            st.error(md_escape(f"The judge {chosen.name} could not answer: {exc}"))
            return
        finally:
            clear()
        undecided = sum(p.choice is None for p in result.pairs)
        st.success(
            md_escape(
                f"{chosen.name} judged {len(result.pairs)} pairs ({result.n_already} answered "
                f"before): {result.n_stored} suggestions stored as {result.labeler}, "
                f"{undecided} undecided."
            )
        )


def _show_suggestions() -> bool:
    """The "Show judge suggestions" switch, off by default (seeing a machine's answer biases
    people); a button, so clicking it leaves ← / → to the answers."""
    return button_toggle(
        SHOW_SUGGESTIONS,
        key=SUGGEST,
        help="Show, under the pair, what judges asked here (Ask a judge for suggestions, or "
        "`vlmrm prefs judge`) answered. Off by default: seeing it biases your answer.",
    )


def _suggestion(db: Engine, dataset: str, pair: tuple[str, str]) -> None:
    """A caption per judge that answered the pair on screen: "judge:X suggests Left"."""
    found = machine_suggestions(db, dataset, pair)
    if not found:
        st.caption("No judge suggestion for this pair.")
        return
    st.caption(
        " · ".join(
            md_escape(f"{name} suggests {SUGGESTED_SIDE[choice]}") for name, choice in found.items()
        )
    )


def _clip_animation(hashes: Sequence[str], caption: str) -> bytes | None:
    """A clip's frames as a looping animated GIF (Streamlit plays it with no script); None when
    a frame can't be read, after saying why in one line (as :func:`full_frame` does)."""
    images = []
    for frame_hash in hashes:
        try:
            images.append(Image.fromarray(load_pixels(frame_hash)))
        except (VlmrmError, FileNotFoundError) as exc:  # a PNG or a stored video gone or altered
            show_frame_problem(frame_hash, exc, caption)
            return None
    out = io.BytesIO()
    images[0].save(
        out, format="GIF", save_all=True, append_images=images[1:], duration=CLIP_FRAME_MS, loop=0
    )
    return out.getvalue()


def _picture(db: Engine, dataset: str, item: Item, side: str, show_state: bool) -> None:
    """One side of the pair: a frame, or a clip playing as an animation; captioned with its
    side (and its first frame's name unless the task hides it: names like "angle=+0.1" bias
    labellers). A frame that can't be read is one line saying why, in place of the image."""
    hashes = clip_frames(db, dataset, [item])[item] if isinstance(item, Clip) else [item]
    if isinstance(item, Clip):
        side = f"{side} ({item.length} frames)"
    info = frame_infos(db, dataset, [hashes[0]]).get(hashes[0])
    name = frame_caption(info) if info is not None and show_state else None
    caption = side if name is None else f"{side}: {name}"  # plain text, for a message
    if isinstance(item, Clip):
        image = _clip_animation(hashes, caption)
    else:
        image = full_frame(item, caption=caption)
    if image is not None:  # the side is ours; the frame's name is escaped
        st.image(
            image, caption=side if name is None else f"{side}: {md_escape(name)}", width="stretch"
        )


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
    _ask_judge(db, dataset, session)
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
    if isinstance(pair[0], str) and isinstance(pair[1], str) and _show_suggestions():
        _suggestion(db, dataset, (pair[0], pair[1]))  # judges answer about frames only
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
