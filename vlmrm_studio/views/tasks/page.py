"""Tasks: labelling tasks (dataset or subset, question, overlap k, labellers), the review of
disagreements with adjudicated final labels, per-labeller statistics and Label Studio export.

Creating tasks and adjudicating need the researcher or admin role: the service layer
(:mod:`vlmrm_core.store.tasks`) checks the role of the signed-in email. Without sign-in (a laptop
studio) the local user has every role and assigns typed labeller names, shown as unverified.
"""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from vlmrm_core.services.labeling import frame_infos
from vlmrm_core.services.preferences import (
    judge_agreement,
    machine_labelers,
    preference_agreement,
)
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
from vlmrm_studio.widgets.frame_display import frame_caption
from vlmrm_studio.widgets.frames import thumbnail_uri
from vlmrm_studio.widgets.text import md_escape

# (Comments, not docstrings: Streamlit's "magic" would render bare strings on the page.)
NOTICE = "tasks-notice"
THUMBS = 100  # rows that get a thumbnail (each is an inline PNG sent to the browser)
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


def _frame_names(dataset: str, hashes: list[str]) -> dict[str, str]:
    """Frame hash -> the frame's name as every page shows it."""
    infos = frame_infos(db, dataset, hashes)
    return {h: frame_caption(infos[h]) for h in hashes if h in infos}


def _frame_table(dataset: str, table: pd.DataFrame) -> None:
    """Final labels with each frame's thumbnail and name (the hash last, for reference)."""
    hashes = list(table["frame_hash"])
    names = _frame_names(dataset, hashes)
    shown = table.assign(
        thumbnail=[thumbnail_uri(h) if i < THUMBS else None for i, h in enumerate(hashes)],
        frame=[names.get(h, h[:12]) for h in hashes],
    )
    st.dataframe(
        shown[["thumbnail", "frame", "value", "source", "n_labels", "frame_hash"]],
        hide_index=True,
        width="stretch",
        row_height=64,
        column_config={
            "thumbnail": st.column_config.ImageColumn("Image", width="small"),
            "frame": st.column_config.TextColumn("Frame"),
            "value": st.column_config.NumberColumn("Final label", format="%.2f"),
            "source": st.column_config.TextColumn("From"),
            "n_labels": st.column_config.NumberColumn("Labels"),
            "frame_hash": st.column_config.TextColumn("Frame hash", width="small"),
        },
    )


def _machine_agreement(dataset: str) -> None:
    """Each machine labeller's (a judge's, `vlmrm prefs judge`) agreement with people on the
    pairs both answered; its answers are not counted in the people's agreement above."""
    machines = machine_labelers(db, dataset)
    if not machines:
        return
    rows = []
    for machine in machines:
        found = judge_agreement(db, dataset, machine)
        rows.append(
            {
                "judge": machine,
                "pairs with people": found.n_pairs,
                "agreement": None
                if found.percent_agreement is None
                else round(100 * found.percent_agreement),
                "α": found.alpha,
            }
        )
    st.markdown("**Judges' suggestions against people** (not counted above)")
    st.dataframe(
        pd.DataFrame(rows),
        hide_index=True,
        key="tasks-pair-machine-agreement",
        column_config={
            "agreement": st.column_config.NumberColumn("agreement", format="%d%%"),
            "α": st.column_config.NumberColumn("Krippendorff's α", format="%.3f"),
        },
    )


def _side_names(dataset: str, table: pd.DataFrame, side: str) -> list[str]:
    """Each disagreement's side ``a`` or ``b`` by name: a frame's name, or for a clip its
    length and where it starts (its first membership's caption: the same pixels may start
    several clips, so the hash alone would not say which)."""
    names = _frame_names(dataset, list(dict.fromkeys(table[f"frame_{side}"])))
    starts: dict[int, str] = {}
    clips = table["length"] > 1
    if clips.any():
        wanted = {int(p) for p in table.loc[clips, f"position_{side}"]}
        starts = {
            m.position: frame_caption(m)
            for m in dataset_frames(db, dataset)
            if m.position in wanted
        }
    return [
        f"clip of {n} frames from {starts.get(int(p), '?')}" if n > 1 else names.get(h, h[:12])
        for h, p, n in zip(
            table[f"frame_{side}"], table[f"position_{side}"], table["length"], strict=True
        )
    ]


def _pair_review(dataset: str) -> None:
    """Agreement on the pairwise comparisons (percentage and Krippendorff's α on the
    outcomes) and the pairs labellers answered differently."""
    report = preference_agreement(db, dataset)
    st.subheader("Pairwise comparisons")
    if report.n_pairs == 0:
        st.caption("No pairwise comparisons in this dataset (Label → Pairs, or a pairwise task).")
        return
    cols = st.columns(3)
    cols[0].metric("Pairs compared", report.n_pairs)
    cols[1].metric(
        "Agreement",
        "—" if report.percent_agreement is None else f"{100 * report.percent_agreement:.0f}%",
        help="Share of agreeing answers among the pairs several labellers compared",
    )
    cols[2].metric("Krippendorff's α", "—" if report.alpha is None else f"{report.alpha:.3f}")
    st.caption(md_escape(f"Krippendorff's α on the outcomes: {report.alpha_note}."))
    _machine_agreement(dataset)
    table = report.disagreements
    st.markdown(f"**Pair disagreements ({len(table)})**")
    if table.empty:
        st.caption("No pair has answers that differ (or no pair was compared by two labellers).")
        return
    shown = table.assign(
        image_a=[thumbnail_uri(h) if i < THUMBS else None for i, h in enumerate(table["frame_a"])],
        first=_side_names(dataset, table, "a"),
        image_b=[thumbnail_uri(h) if i < THUMBS else None for i, h in enumerate(table["frame_b"])],
        second=_side_names(dataset, table, "b"),
        answers=[", ".join(f"{who}: {said}" for who, said in a.items()) for a in table["answers"]],
    )
    st.dataframe(
        shown[["image_a", "first", "image_b", "second", "answers", "n_labelers"]],
        hide_index=True,
        width="stretch",
        row_height=64,
        key="tasks-pair-disagreements",
        column_config={
            "image_a": st.column_config.ImageColumn("A", width="small"),
            "first": st.column_config.TextColumn(
                "Frame A", help="A frame, or a clip (its first frame shown)"
            ),
            "image_b": st.column_config.ImageColumn("B", width="small"),
            "second": st.column_config.TextColumn("Frame B"),
            "answers": st.column_config.TextColumn(
                "Answers", width="large", help="labeller: a (A closer), b (B closer) or equal"
            ),
            "n_labelers": st.column_config.NumberColumn("Labellers"),
        },
    )


# Keyed and tracked, as on the Frames page: otherwise choosing a dataset under Review reruns the
# page and, opened from a deep link, the browser shows the Tasks tab again.
tab_tasks, tab_review = st.tabs(
    ["Tasks", "Review and statistics"], key="tasks-tab", on_change="rerun"
)

with tab_tasks:
    if me.role in ("admin", "researcher"):
        st.subheader("New task")
        dataset = st.selectbox("Dataset", datasets, key="tasks-new-dataset")
        subset = _frame_selection(dataset) if dataset else None
        with st.form("tasks-new"):
            name = st.text_input("Task name", key="tasks-new-name")
            question = st.text_input("Question shown to labellers", "Is the goal achieved?")
            instructions = st.text_area(
                "Instructions (success criterion, examples)", key="tasks-instructions"
            )
            kind = st.radio(
                "Kind",
                ["Success / failure", "Graded (0–1)", "Pairwise"],
                horizontal=True,
                key="tasks-new-kind",
                help="Pairwise: labellers say which of two of the task's frames is closer to "
                "the goal (← / → / E on the Label page).",
            )
            overlap = st.number_input(
                "Labels per frame (overlap k)", 1, 100, 1, key="tasks-new-overlap"
            )
            if me.signed_in:
                assignees = st.multiselect(
                    "Labellers", [u.email for u in list_users(db)], key="tasks-new-labellers"
                )
            else:
                typed = st.text_input(
                    "Labellers (names, comma-separated; unverified)",
                    key="tasks-new-typed",
                    placeholder="e.g. alice, bob",
                    help="Without sign-in anyone can type any name on the Label page: these "
                    "names are not verified. Turn sign-in on (README, “Sharing a studio”) for "
                    "verified labellers.",
                )
                assignees = [n.strip() for n in typed.split(",") if n.strip()]
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
                        actor=me.email,
                        instructions=instructions,
                        graded=kind == "Graded (0–1)",
                        pairwise=kind == "Pairwise",
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
                    "kind": t.kind,
                    "frames": task_frame_count(db, t.name),
                    "labellers": ", ".join(t.assignees)
                    + ("" if t.verified else " (typed, unverified)"),
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
    if disputed.empty:
        st.caption("No frame has labellers on both sides (or a graded median in between).")
    else:
        _frame_table(dataset, disputed)
    with st.expander(f"All final labels ({len(final)})"):
        _frame_table(dataset, final)
    if me.role in ("admin", "researcher") and len(final):
        left, middle, right = st.columns([3, 1, 1], vertical_alignment="bottom")
        choices = list(disputed["frame_hash"]) or list(final["frame_hash"])
        names = _frame_names(dataset, choices)
        frame = left.selectbox(
            "Frame to adjudicate",
            choices,
            format_func=lambda h: names.get(h, h[:12]),
            key="tasks-adjudicate-frame",
        )
        value = middle.number_input("Final label", 0.0, 1.0, 1.0, 0.5, key="tasks-adjudicate-value")
        if right.button("Adjudicate", key="tasks-adjudicate"):
            try:
                set_adjudication(db, dataset, frame, value, actor=me.email)
            except (ValueError, KeyError, PermissionError) as exc:
                st.error(md_escape(exc))
            else:
                message = f"Adjudicated {names.get(frame, frame[:12])}: {value:g}."
                st.session_state[NOTICE] = ("success", message)
                st.rerun()
    st.subheader("Per labeller")
    st.dataframe(
        labeller_stats(db, dataset),
        hide_index=True,
        width="stretch",
        column_config={
            "labeler": st.column_config.TextColumn("Labeller"),
            "labels": st.column_config.NumberColumn("Labels"),
            "median_seconds": st.column_config.NumberColumn("Median s / label", format="%.1f"),
            "compared": st.column_config.NumberColumn(
                "Compared", help="Frames labelled by others too, or adjudicated"
            ),
            "agreement": st.column_config.NumberColumn(
                "Agreement",
                format="%.2f",
                help="Share of the compared frames where this labeller is on the final label's "
                "side of 0.5; an unresolved tie counts as a disagreement",
            ),
        },
    )
    _pair_review(dataset)
    st.download_button(
        "Export for Label Studio (JSON)",
        data=json.dumps(label_studio_tasks(db, dataset), indent=1),
        file_name="label-studio.json",
        mime="application/json",
        key="tasks-export-ls",
    )
