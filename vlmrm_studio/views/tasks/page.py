"""Tasks: labelling tasks (dataset or subset, question, overlap k, labellers), the review of
disagreements with adjudicated final labels, per-labeller statistics and Label Studio export.

Creating tasks and adjudicating need sign-in (researcher or admin): the service layer
(:mod:`vlmrm_core.store.tasks`) checks the role of the signed-in email.
"""

from __future__ import annotations

import json

import streamlit as st

from vlmrm_core.store import dataset_frames, list_datasets
from vlmrm_core.store.tasks import (
    create_task,
    final_labels,
    label_studio_tasks,
    labeller_stats,
    list_tasks,
    select_task_frames,
    set_adjudication,
    task_frame_count,
)
from vlmrm_core.store.users import list_users
from vlmrm_studio.auth import current_identity
from vlmrm_studio.widgets.common import engine
from vlmrm_studio.widgets.text import md_escape

# (Comments, not docstrings: Streamlit's "magic" would render bare strings on the page.)
NOTICE = "tasks-notice"
db = engine()
me = current_identity()

st.title("🗂️ Tasks")
notice = st.session_state.pop(NOTICE, None)
if notice is not None:
    getattr(st, notice[0])(md_escape(notice[1]))

datasets = [d.name for d in list_datasets(db)]
WHOLE, BY_POSITION, BY_PARAMETER = "Whole dataset", "Frame range", "Sweep parameter range"


def _frame_selection(dataset: str) -> list[str] | None:
    """Widgets choosing the task's frames; shows how many it covers.

    Returns:
        The chosen frame hashes, or None for the whole dataset (frames added later included).
    """
    frames = dataset_frames(db, dataset)
    n_images = len({f.hash for f in frames})
    scope = st.radio(
        "Frames", [WHOLE, BY_POSITION, BY_PARAMETER], horizontal=True, key="tasks-new-scope"
    )
    unlabelled = st.checkbox("Only frames nobody has labelled yet", key="tasks-new-unlabelled")
    positions: tuple[int, int] | None = None
    param_range: tuple[float, float] | None = None
    if scope == BY_POSITION and frames:
        first_pos, last_pos = frames[0].position, frames[-1].position
        left, right = st.columns(2)
        first = left.number_input(
            "First position", first_pos, last_pos, first_pos, key=f"tasks-new-first-{dataset}"
        )
        last = right.number_input(
            "Last position", first_pos, last_pos, last_pos, key=f"tasks-new-last-{dataset}"
        )
        positions = (int(first), int(last))
    elif scope == BY_PARAMETER:
        swept = [f for f in frames if f.param_value is not None]
        if not swept:
            st.warning("This dataset has no sweep frames (no parameter to select on).")
            return []
        names = sorted({f.param_name or "parameter" for f in swept})
        low_value = min(float(f.param_value or 0.0) for f in swept)
        high_value = max(float(f.param_value or 0.0) for f in swept)
        left, right = st.columns(2)
        low = left.number_input(
            f"{', '.join(names)} from", value=low_value, key=f"tasks-new-low-{dataset}"
        )
        high = right.number_input("to", value=high_value, key=f"tasks-new-high-{dataset}")
        param_range = (float(low), float(high))
    if scope == WHOLE and not unlabelled:
        st.caption(
            f"The task covers the whole dataset: {n_images} frame(s) "
            "(and frames added to it later)."
        )
        return None
    try:
        chosen = select_task_frames(
            db, dataset, positions=positions, param_range=param_range, unlabelled_only=unlabelled
        )
    except ValueError as exc:
        st.error(md_escape(exc))
        return []
    st.caption(f"The task covers {len(chosen)} of the dataset's {n_images} frame(s).")
    return chosen


tab_tasks, tab_review = st.tabs(["Tasks", "Review and statistics"])

with tab_tasks:
    if not me.signed_in:
        st.info(
            "Tasks assign datasets to signed-in labellers: turn sign-in on (README, "
            "“Sharing a studio”) to create them."
        )
    else:
        labellers = [u.email for u in list_users(db)]
        st.subheader("New task")
        dataset = st.selectbox("Dataset", datasets, key="tasks-new-dataset")
        subset = _frame_selection(dataset) if dataset else None
        with st.form("tasks-new"):
            name = st.text_input("Task name", key="tasks-new-name")
            question = st.text_input("Question shown to labellers", "Is the goal achieved?")
            instructions = st.text_area(
                "Instructions (success criterion, examples)", key="tasks-instructions"
            )
            graded = st.toggle(
                "Graded labels (0–1) instead of success / failure", key="tasks-new-graded"
            )
            overlap = st.number_input(
                "Labels per frame (overlap k)", 1, 100, 1, key="tasks-new-overlap"
            )
            assignees = st.multiselect("Labellers", labellers, key="tasks-new-labellers")
            show_state = st.toggle(
                "Show the state caption (e.g. the pole angle: it can bias labellers)", value=False
            )
            if st.form_submit_button("Create task", type="primary"):
                try:
                    create_task(
                        db,
                        name,
                        dataset or "",
                        question,
                        actor=me.email or "",
                        instructions=instructions,
                        graded=graded,
                        overlap=int(overlap),
                        assignees=assignees,
                        frame_hashes=subset,
                        show_state=show_state,
                    )
                except (ValueError, KeyError, PermissionError) as exc:
                    st.error(md_escape(exc))
                else:
                    st.session_state[NOTICE] = ("success", f"Created task {name.strip()!r}.")
                    st.rerun()
    tasks = list_tasks(db)
    if tasks:
        st.subheader("Tasks")
        st.dataframe(
            [
                {
                    "task": t.name,
                    "dataset": t.dataset,
                    "question": t.question,
                    "k": t.overlap,
                    "kind": "graded" if t.graded else "binary",
                    "frames": task_frame_count(db, t.name),
                    "labellers": ", ".join(t.assignees),
                    "created by": t.created_by or "",
                }
                for t in tasks
            ],
            hide_index=True,
            width="stretch",
        )

with tab_review:
    if not datasets:
        st.info("No datasets yet.")
        st.stop()
    dataset = st.selectbox("Dataset", datasets, key="tasks-review-dataset")
    final = final_labels(db, dataset)
    st.caption(
        "Final labels: the adjudicated label where a reviewer set one, otherwise the majority "
        "of the labellers (the median for graded labels; a tie gives 0.5). The Evaluate page "
        "(EPIC) uses the adjudicated label where there is one and the labellers' mean otherwise "
        "(a mean ≥ 0.5 counts as a success, i.e. the majority of binary labels)."
    )
    disputed = final[(final["n_labels"] >= 2) & (final["value"].between(0.01, 0.99))]
    st.subheader(f"Disagreements ({len(disputed)})")
    st.dataframe(final, hide_index=True, width="stretch")
    if me.signed_in and me.role in ("admin", "researcher") and len(final):
        left, middle, right = st.columns([3, 1, 1], vertical_alignment="bottom")
        frame = left.selectbox(
            "Frame to adjudicate",
            list(disputed["frame_hash"]) or list(final["frame_hash"]),
            key="tasks-adjudicate-frame",
        )
        value = middle.number_input("Final label", 0.0, 1.0, 1.0, 0.5, key="tasks-adjudicate-value")
        if right.button("Adjudicate", key="tasks-adjudicate"):
            try:
                set_adjudication(db, dataset, frame, value, actor=me.email or "")
            except (ValueError, KeyError, PermissionError) as exc:
                st.error(md_escape(exc))
            else:
                st.session_state[NOTICE] = ("success", f"Adjudicated {frame[:12]}: {value:g}.")
                st.rerun()
    st.subheader("Per labeller")
    st.dataframe(labeller_stats(db, dataset), hide_index=True, width="stretch")
    st.download_button(
        "Export for Label Studio (JSON)",
        data=json.dumps(label_studio_tasks(db, dataset), indent=1),
        file_name="label-studio.json",
        mime="application/json",
        key="tasks-export-ls",
    )
