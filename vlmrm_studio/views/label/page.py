"""Label: mark frames as success or failure with the keyboard, and check labeler agreement.

A thin view over :class:`vlmrm_core.services.labeling.LabelSession` (queue order, skip, undo; every label
is committed at once) and :func:`vlmrm_core.services.labeling.agreement_report`. Buttons act through
callbacks bound to the frame that was on screen, so a click or key press always labels the frame
the labeler saw, even if the queue changed meanwhile.
"""

from __future__ import annotations

import json
from typing import Literal

import streamlit as st

from vlmrm_core.services.labeling import (
    EXPORT_MIME,
    FAILURE,
    SUCCESS,
    LabelSession,
    agreement_report,
    check_labeler_name,
    export_bytes,
    export_file_name,
    frame_infos,
    label_text,
)
from vlmrm_core.store import DatasetSummary, get_dataset, list_datasets
from vlmrm_core.store.tasks import (
    TaskInfo,
    assigned_datasets,
    label_studio_tasks,
    task_frame_count,
    task_queue,
    tasks_for,
)
from vlmrm_studio.auth import current_identity
from vlmrm_studio.views.label.order import choose_order
from vlmrm_studio.views.label.pairs import pair_view
from vlmrm_studio.widgets.common import engine, hide_training_evals
from vlmrm_studio.widgets.counts import frame_count_text
from vlmrm_studio.widgets.frame_display import frame_caption
from vlmrm_studio.widgets.frames import (
    full_frame,
    notify,
    pick_default_dataset,
    show_notice,
    thumbnail_uri,
    use_dataset,
)
from vlmrm_studio.widgets.success import run_eval_navigation
from vlmrm_studio.widgets.switches import button_switch
from vlmrm_studio.widgets.text import md_escape

# (Comments, not docstrings: Streamlit's "magic" would render bare strings on the page.)
NOTICE = "label-notice"
LAST_ACTION = "label-last-action"
SESSIONS = "label-sessions"  # session state: (dataset, labeler) -> LabelSession
NAME = "label-name"  # kept for the whole session (persist_state), across page changes
NAME_ENTERED = "label-name-entered"  # the name was entered: show it, not the box
DATASET = "label-dataset"
TASK = "label-task"  # + "-<dataset>": the chosen task when several are assigned on a dataset
LABEL_VIEW, AGREEMENT_VIEW = "Label", "Agreement & export"
MODE = "label-mode"
SINGLE_MODE, PAIR_MODE = "Single frames", "Pairs"
# Disagreement rows that get a thumbnail (each is an inline PNG sent to the browser).
DISAGREEMENT_THUMBS = 100

db = engine()


def _session(dataset: str, labeler: str, task: str | None = None) -> LabelSession:
    """This browser session's labelling of ``dataset`` (per task: each has its own queue)."""
    sessions: dict[tuple[str, ...], LabelSession] = st.session_state.setdefault(SESSIONS, {})
    signed_in = current_identity().signed_in
    key = (dataset, labeler) if task is None else (dataset, labeler, task)
    return sessions.setdefault(key, LabelSession(dataset, labeler, signed_in=signed_in, task=task))


def _frame_name(dataset: str, frame_hash: str) -> str:
    info = frame_infos(db, dataset, [frame_hash]).get(frame_hash)
    return frame_caption(info) if info is not None else frame_hash[:12]


def _tell(session: LabelSession, text: str) -> None:
    """Remember what the last action did, for this labeler and dataset only."""
    st.session_state[LAST_ACTION] = ((session.dataset, session.labeler), text)


def _label(session: LabelSession, frame_hash: str, value: float) -> None:
    """Callback of Success / Failure / Submit: commit the label of the frame on screen."""
    try:
        session.label(db, frame_hash, value)
    except (KeyError, ValueError) as exc:  # dataset deleted, frame gone, value refused
        notify(NOTICE, "error", f"The label was not saved: {exc}")
        return
    _tell(session, f"Labelled {_frame_name(session.dataset, frame_hash)} as {label_text(value)}.")


def _grade(session: LabelSession, frame_hash: str) -> None:
    """Callback of Submit: the slider's value is in session state under the frame's key."""
    _label(session, frame_hash, float(st.session_state[f"label-grade-{frame_hash}"]))


def _skip(session: LabelSession, frame_hash: str) -> None:
    session.skip(frame_hash)
    _tell(session, f"Skipped {_frame_name(session.dataset, frame_hash)}: it comes back at the end.")


def _undo(session: LabelSession) -> None:
    try:
        record = session.undo(db)
    except KeyError as exc:
        notify(NOTICE, "error", f"Could not undo: {exc}")
        return
    if record is None:
        _tell(session, "Nothing to undo: you have no labels in this dataset.")
    else:
        _tell(
            session,
            f"Undid your label {label_text(record.value)} of "
            f"{_frame_name(session.dataset, record.frame_hash)}; it is shown again.",
        )


def _current_task(dataset: str, labeler: str) -> TaskInfo | None:
    """The labeller's task on this dataset, if any: the signed-in user's, or without sign-in
    the tasks that name ``labeler`` (typed names, unverified).

    With several tasks on the dataset, a picker lets the labeller choose one.
    """
    identity = current_identity()
    if identity.signed_in:
        mine = tasks_for(db, identity.email or "")
    else:
        try:
            mine = tasks_for(db, labeler, verified=False)
        except ValueError:  # a typed name no task can name (e.g. with an @)
            mine = []
    tasks = [t for t in mine if t.dataset == dataset]
    if len(tasks) <= 1:
        return tasks[0] if tasks else None
    by_name = {t.name: t for t in tasks}
    chosen = st.selectbox(
        "Task",
        list(by_name),
        key=f"{TASK}-{dataset}",
        help="You are assigned several tasks on this dataset; each has its own queue.",
    )
    return by_name[chosen or tasks[0].name]


def label_view(dataset: str, labeler: str) -> None:
    """Progress, the current frame and the labelling buttons (with keyboard shortcuts)."""
    task = _current_task(dataset, labeler)
    # Buttons, not a radio or a segmented control: those keep the focus after a click and take
    # ← / → (the pair mode's answers) for themselves.
    mode = button_switch(
        "Mode",
        [SINGLE_MODE, PAIR_MODE],
        key=MODE,
        disabled=task is not None,  # a task's kind decides
        help="Single frames: success or failure of each frame. Pairs: which of two frames is "
        "closer to the goal (often easier to answer consistently).",
    )
    if (task is None and mode == PAIR_MODE) or (task is not None and task.pairwise):
        pair_view(db, dataset, labeler, task)
        return
    session = _session(dataset, labeler, None if task is None else task.name)
    choose_order(db, dataset, session)  # random, sequential or most informative first
    ds = get_dataset(db, dataset)
    # A task's kind (binary / graded) decides the buttons, whatever the dataset's setting.
    graded = ds.graded if task is None else task.graded
    if task is None:
        queue = session.queue(db)
    else:  # the task's frames and overlap k; frames others labelled first when k >= 2
        queue = session.arrange(task_queue(db, task.name, labeler, session.seed))
        _task_header(task)
    _progress(session, ds)
    if not queue:
        st.success(
            "🎉 All done: no frames are left for you in this dataset. Thank you! "
            "Frames that already had enough labels from others were not queued for you."
        )
        st.button("Undo last", key="label-undo", shortcut="u", on_click=_undo, args=(session,))
        _last_action(session)
        return
    current = queue[0]
    picture, controls = st.columns([3, 1])
    with picture:
        _frame_picture(dataset, current, task)
    with controls:
        st.caption(f"{len(queue)} frame(s) left in your queue")
        _label_buttons(session, current, graded)
        _last_action(session)


def _task_header(task: TaskInfo) -> None:
    """The task's question, size, kind of labels and instructions."""
    st.subheader(md_escape(task.question))
    if not task.verified:
        st.caption("A task of a studio without sign-in: labeller names are typed, not verified.")
    st.caption(
        md_escape(
            f"Task {task.name}: {task_frame_count(db, task.name)} frame(s), "
            f"{'graded 0–1' if task.graded else 'success / failure'} labels, "
            f"k = {task.overlap}."
        )
    )
    if task.instructions:
        with st.expander("Instructions"):
            st.text(task.instructions)  # plain text: no Markdown from the task's author


def _progress(session: LabelSession, ds: DatasetSummary) -> None:
    """The labeller's progress and the dataset's (images with k labels), with the dataset size."""
    yours, total, with_k = session.progress(db)
    left, right = st.columns(2)
    # Labels belong to images: progress counts distinct images; the dataset's size is stated
    # as on every page (vlmrm_studio.widgets.counts), so 40 frames of 39 images read the same
    # everywhere.
    left.progress(yours / total if total else 0.0, text=f"Yours: {yours}/{total} images labelled")
    right.progress(
        with_k / total if total else 0.0,
        text=f"Images with ≥ {ds.labels_required} label(s): {with_k}/{total}",
    )
    size = frame_count_text(ds.n_frames, ds.n_images)
    if ds.n_frames != ds.n_images:
        left.caption(
            f"This dataset: {size}. Identical images stored under several names are labelled once."
        )
    else:
        left.caption(f"This dataset: {size}.")
    right.caption(
        f"k = {ds.labels_required}: a frame leaves everyone's queue once {ds.labels_required} "
        "labeler(s) labelled it. Change k on **Frames → Browse → Labelling settings** (k ≥ 2 "
        "lets several labelers see the same frames, for agreement)."
    )


def _frame_picture(dataset: str, current: str, task: TaskInfo | None) -> None:
    """The frame to label, with its name (hidden when the task hides the state)."""
    info = frame_infos(db, dataset, [current]).get(current)
    caption = frame_caption(info) if info is not None else current[:12]
    if task is not None and not task.show_state:  # names like "angle=+0.1" bias labellers
        caption = f"Frame {current[:8]}"
    image = full_frame(current, caption=caption)  # None: it said why, in one line
    if image is None:
        return
    # Landscape frames fill the column; portrait ones are capped at ~640 px high.
    width: int | Literal["stretch"] = "stretch"
    if info is not None and info.height > info.width:
        width = round(640 * info.width / info.height)
    st.image(image, caption=md_escape(caption), width=width)


def _label_buttons(session: LabelSession, current: str, graded: bool) -> None:
    """Success / Failure (or a grade and Submit), Skip and Undo, with keyboard shortcuts."""
    if graded:
        st.slider(
            "Success (0 = failure, 1 = success)",
            min_value=0.0,
            max_value=1.0,
            value=0.5,
            step=0.05,
            key=f"label-grade-{current}",
        )
        st.button(
            "Submit",
            type="primary",
            key="label-submit",
            shortcut="Enter",
            width="stretch",
            on_click=_grade,
            args=(session, current),
        )
        keys = "Enter submit · K skip · U undo last"
    else:
        st.button(
            "Success",
            type="primary",
            key="label-success",
            shortcut="s",
            width="stretch",
            on_click=_label,
            args=(session, current, SUCCESS),
        )
        st.button(
            "Failure",
            key="label-failure",
            shortcut="f",
            width="stretch",
            on_click=_label,
            args=(session, current, FAILURE),
        )
        keys = "S success · F failure · K skip · U undo last"
    st.button(
        "Skip",
        key="label-skip",
        shortcut="k",
        width="stretch",
        on_click=_skip,
        args=(session, current),
    )
    st.button(
        "Undo last",
        key="label-undo",
        shortcut="u",
        width="stretch",
        on_click=_undo,
        args=(session,),
    )
    st.caption(f"Keyboard: {keys}")


def _last_action(session: LabelSession) -> None:
    owner, text = st.session_state.get(LAST_ACTION, (None, ""))
    if owner == (session.dataset, session.labeler) and text:
        st.caption(md_escape(text))


def agreement_view(dataset: str) -> None:
    """Cohen's κ per pair, Krippendorff's α, disagreements to review, and label exports."""
    report = agreement_report(db, dataset)
    if report.n_frames == 0:
        st.info("No labels in this dataset yet: agreement needs labels from two labelers.")
        _export_buttons(dataset)
        return
    cols = st.columns(4)
    cols[0].metric("Labelers", len(report.labelers))
    cols[1].metric("Labelled frames", report.n_frames)
    cols[2].metric("Frames with ≥ 2 labels", report.n_shared)
    cols[3].metric("Krippendorff's α", "—" if report.alpha is None else f"{report.alpha:.3f}")
    st.caption(f"Krippendorff's α: {report.alpha_note}.")
    if report.graded:
        st.caption("Graded labels: Cohen's κ compares labels split at 0.5 (success vs failure).")

    st.subheader("Cohen's κ per pair of labelers")
    if report.pairwise.empty:
        st.info("Cohen's κ needs two labelers.")
    else:
        st.dataframe(
            report.pairwise,
            hide_index=True,
            column_config={
                "labeler_a": st.column_config.TextColumn("Labeler A"),
                "labeler_b": st.column_config.TextColumn("Labeler B"),
                "n_common": st.column_config.NumberColumn("Frames both labelled"),
                "observed_agreement": st.column_config.NumberColumn(
                    "Observed agreement", format="%.3f"
                ),
                "kappa": st.column_config.NumberColumn(
                    "Cohen's κ", format="%.3f", help="Empty: undefined (no variation in labels)"
                ),
            },
        )

    st.subheader("Disagreements to review")
    table = report.labeller_disagreements
    if table.empty:
        if len(report.labelers) < 2:
            # nothing to compare yet: not a success
            st.info(
                "Disagreements need labels from at least two labelers on the same frames; "
                f"so far only {len(report.labelers)} labeler has labelled this dataset."
            )
        else:
            st.success("No disagreements: every frame labelled by several labelers agrees.")
    else:
        infos = frame_infos(db, dataset, table["frame_hash"])
        table = table.assign(
            frame=[frame_caption(infos[h]) if h in infos else h[:12] for h in table["frame_hash"]],
            thumbnail=[
                thumbnail_uri(h) if i < DISAGREEMENT_THUMBS else None
                for i, h in enumerate(table["frame_hash"])
            ],
        )
        st.dataframe(
            table[["thumbnail", "frame", "labels", "mean", "spread", "frame_hash"]],
            hide_index=True,
            row_height=72,
            column_config={
                "thumbnail": st.column_config.ImageColumn("Frame", width="small"),
                "frame": st.column_config.TextColumn("Name"),
                "labels": st.column_config.TextColumn("Labels", width="large"),
                "mean": st.column_config.NumberColumn("Mean", format="%.2f"),
                "spread": st.column_config.NumberColumn("Spread", format="%.2f"),
                "frame_hash": st.column_config.TextColumn("Frame hash"),
            },
        )

    _export_buttons(dataset)


def _export_buttons(dataset: str) -> None:
    """CSV, JSONL, Parquet and Label Studio JSON downloads of the current labels, built only
    when clicked."""
    st.subheader("Export labels")
    st.caption(
        "Each labeler's current label per frame, with the frame's name and position; "
        "Label Studio JSON has one task per labelled frame, one annotation per labeler."
    )
    cols = st.columns(4)
    cols[3].download_button(
        "Download Label Studio JSON",
        data=lambda: json.dumps(label_studio_tasks(db, dataset), indent=1),
        file_name=export_file_name(dataset, "label-studio.json"),
        mime="application/json",
        key="label-export-label-studio",
        on_click="ignore",
        width="stretch",
    )
    for col, fmt in zip(cols[:3], ("csv", "jsonl", "parquet"), strict=True):
        col.download_button(
            f"Download {fmt.upper() if fmt != 'parquet' else 'Parquet'}",
            # Deferred: the file is built only when the button is clicked.
            data=lambda fmt=fmt: export_bytes(db, dataset, fmt),
            file_name=export_file_name(dataset, fmt),
            mime=EXPORT_MIME[fmt],
            key=f"label-export-{fmt}",
            on_click="ignore",
            width="stretch",
        )


def _set_name_entered(entered: bool) -> None:
    st.session_state[NAME_ENTERED] = entered


def _acceptable_name(name: str) -> bool:
    """A typed name that can label: a refused one keeps its box open, to be corrected there."""
    try:
        check_labeler_name(name)
    except ValueError:
        return False
    return True


def _name_box(signed_in_email: str | None) -> str:
    """Who is labelling: the signed-in identity, or a typed name.

    Once a typed name is entered (Enter, or leaving the box) and accepted, it is shown as text
    with a "Change" button instead of the box: the focused box leaves the page, so the next key
    press is a labelling shortcut (s, f, k, u) rather than more letters in the name, which would
    make a new labeller. No script of ours moves the focus.

    Returns:
        The name as typed (checked by the caller).
    """
    if signed_in_email is not None:  # labels go under the signed-in identity: no typed name
        st.text_input("Labelling as", value=signed_in_email, disabled=True, key="label-identity")
        return signed_in_email
    name = str(st.session_state.get(NAME) or "")
    if st.session_state.get(NAME_ENTERED) and _acceptable_name(name):
        st.markdown(f"Labelling as **{md_escape(name.strip())}**")
        st.button("Change name", key="label-change-name", on_click=_set_name_entered, args=(False,))
        return name
    return st.text_input(
        "Your name",
        key=NAME,
        placeholder="e.g. alice",
        persist_state="session",
        on_change=_set_name_entered,
        args=(True,),
    )


st.title("🏷️ Label")
show_notice(NOTICE)
identity = current_identity()
names = [d.name for d in hide_training_evals(list_datasets(db), "label-show-evals")]
if identity.role == "labeller":  # a labeller sees only the datasets of their tasks
    assigned = set(assigned_datasets(db, identity.email or ""))
    names = [n for n in names if n in assigned]
    if not names:
        st.info("No labelling tasks are assigned to you yet.")
        st.stop()
if not names:
    st.info("No datasets yet: create one on the Frames page.")
    st.stop()

pick_default_dataset(DATASET, names)
top = st.columns([1, 1, 1])
with top[0]:
    raw_name = _name_box((identity.email or "") if identity.signed_in else None)
dataset = top[1].selectbox("Dataset", names, key=DATASET)
run_eval_navigation(db, dataset, DATASET, names)  # a training run's evaluation?
with top[2]:  # buttons, not a radio: a clicked radio would take the ← / → of pair mode
    view = button_switch("View", [LABEL_VIEW, AGREEMENT_VIEW], key="label-view")
use_dataset(DATASET, dataset)

if view == AGREEMENT_VIEW:
    agreement_view(dataset)
else:
    try:
        labeler = check_labeler_name(raw_name)
    except ValueError as exc:
        st.info(md_escape(str(exc)))
    else:
        label_view(dataset, labeler)
