"""Evaluate: the prompt search, every candidate goal × baseline × α ranked by EPIC distance.

The search itself, and the honest (held-out) estimate of its winner, are
:func:`vlmrm_core.services.evaluation.prompt_search` and
:func:`~vlmrm_core.services.evaluation.prompt_search_held_out`; this module takes the
candidates, shows the ranked table (with each top row's VOC when the dataset has episodes) and
saves a row as a prompt set.
"""

from __future__ import annotations

import streamlit as st

from vlmrm_core.clip.embedding import PromptError
from vlmrm_core.errors import VlmrmError
from vlmrm_core.reward.adaptation import HeldOutSelection, frame_groups
from vlmrm_core.reward.spec import ModelRef
from vlmrm_core.services import evaluation, landscape
from vlmrm_core.store import PromptSet, consensus_labels, dataset_frames, save_prompt_set
from vlmrm_studio.views.evaluate.context import N_BOOT, EvaluateContext
from vlmrm_studio.views.evaluate.judges import has_episodes
from vlmrm_studio.widgets import tables
from vlmrm_studio.widgets.common import progress_bar
from vlmrm_studio.widgets.embeddings import dataset_embeddings, frame_embeddings
from vlmrm_studio.widgets.text import md_escape

__all__ = ["prompt_search_section"]

K = "eval-search-"
"""Prefix of this section's widget and session-state keys."""
DEFAULT_ALPHAS = "0, 0.25, 0.5, 0.75, 1"
TABLE_ROWS = 500
"""Rows of the ranked table drawn (every row can still be saved by rank)."""

Stored = tuple[tuple, evaluation.PromptSearchResult, HeldOutSelection | str | None]
"""What a search leaves in the session: its inputs, its result, its held-out estimate (or why
there is none)."""


def prompt_search_section(ctx: EvaluateContext, created_by: str | None) -> None:
    """The candidate prompts, the search button, and the last search's result.

    Args:
        ctx: the page's dataset, labels and model.
        created_by: recorded with a prompt set saved from a row.
    """
    st.subheader("Prompt search")
    st.caption(
        f"Every goal prompt × baseline prompt × α, scored against the labels with "
        f"{ctx.clip.identity} and ranked by EPIC distance (regularized reward). Each candidate "
        "scores every frame alone (a window of 1 frame); a windowed prompt set is scored over "
        "each episode in time order in the table above."
    )
    episodes = has_episodes(ctx)
    demonstrations = episodes and st.checkbox(
        "Demonstrations (every episode counts as successful for VOC)",
        key=f"{K}demos",
        help="The dataset has episodes, so the top rows also get their VOC: the rank "
        "correlation of reward and time step within each episode, over the episodes labelled "
        "successful (their last labelled frame), or over all of them here.",
    )
    context = (
        ctx.dataset,
        ctx.labelled.hashes,
        tuple(ctx.labelled.labels),
        ctx.clip.identity,
        episodes,
        demonstrations,
    )
    _search_form(ctx, context, episodes=episodes, demonstrations=demonstrations)
    stored: Stored | None = st.session_state.get(f"{K}result")
    if stored is None or stored[0] != context:
        return
    _, result, held = stored
    for warning in result.warnings:
        st.warning(warning)
    best = result.best()
    if best is None:
        st.error("No combination has a defined EPIC distance (every reward was constant).")
        return
    _winner(result, best, held)
    _ranked_table(result)
    _save_row(ctx, result, created_by)


def _search_form(
    ctx: EvaluateContext, context: tuple, *, episodes: bool, demonstrations: bool
) -> None:
    """The candidate boxes and the search button; a search's result goes to the session.

    With ``episodes`` the top rows also get their VOC over the dataset's episodes (every
    episode with ``demonstrations``, else the successful ones).
    """
    left, right = st.columns(2)
    goals_text = left.text_area(
        "Candidate goal prompts (one per line)", key=f"{K}goals", height=150
    )
    baselines_text = right.text_area(
        "Candidate baseline prompts (one per line)", key=f"{K}baselines", height=150
    )
    alpha_col, run_col = st.columns([2, 1], vertical_alignment="bottom")
    alphas_text = alpha_col.text_input("α values", DEFAULT_ALPHAS, key=f"{K}alphas")
    if not run_col.button("Run prompt search", key=f"{K}run", type="primary", width="stretch"):
        return
    goals = landscape.parse_prompts(goals_text)
    if not goals:
        st.error("Enter at least one candidate goal prompt (one per line).")
        return
    labelled = ctx.labelled
    try:
        alphas = evaluation.parse_alphas(alphas_text)
        x = frame_embeddings(ctx.db, ctx.clip, labelled.hashes)
        over_time = _search_episodes(ctx, demonstrations) if episodes else None
        update, clear = progress_bar("Encoding prompts")
        try:
            result = evaluation.prompt_search(
                ctx.clip,
                x,
                labelled.labels,
                goals,
                landscape.parse_prompts(baselines_text),
                alphas,
                progress=update,
                n_boot=N_BOOT,
                episodes=over_time,
            )
        finally:
            clear()
    except (PromptError, ValueError) as exc:
        st.error(md_escape(exc))
        return
    held: HeldOutSelection | str | None
    try:
        with st.spinner("Scoring the pick on held-out episodes"):
            groups = frame_groups(list(labelled.hashes), dataset_frames(ctx.db, ctx.dataset))
            held = evaluation.prompt_search_held_out(
                ctx.clip, x, labelled.labels, result, groups, n_boot=N_BOOT
            )
    except VlmrmError as exc:  # e.g. too few episodes to hold any out
        held = str(exc)
    st.session_state[f"{K}result"] = (context, result, held)


def _search_episodes(ctx: EvaluateContext, demonstrations: bool) -> evaluation.SearchEpisodes:
    """The whole dataset's frames and embeddings (VOC is over every frame of an episode,
    labelled or not) and its labels."""
    embedded = dataset_embeddings(ctx.db, ctx.clip, ctx.dataset)
    labels = None
    if not demonstrations:
        labels = {str(k): float(v) for k, v in consensus_labels(ctx.db, ctx.dataset).items()}
    return evaluation.SearchEpisodes(
        embedded.frames,
        embedded.embeddings,
        labels=labels,
        demonstrations=demonstrations,
        top=TABLE_ROWS,  # every row drawn gets its VOC
    )


def _winner(
    result: evaluation.PromptSearchResult, best, held: HeldOutSelection | str | None
) -> None:
    """The best row's EPIC (flattered: picked on the same labels), its held-out estimate and
    its prompts, and the search's timings."""
    metric_col, held_col, text_col = st.columns([1, 1, 3])
    metric_col.metric(
        "Best search EPIC distance",
        f"{best['epic']:.3f}",
        help="On the same labels it was picked with: this flatters the winner.",
    )
    honest = held.held_out if isinstance(held, HeldOutSelection) else None
    if honest is not None and honest.epic_distance is not None:
        held_col.metric(
            "Held-out EPIC of the pick",
            f"{honest.epic_distance:.3f}",
            help="In each fold the best row on the training episodes, scored on held-out ones.",
        )
    with text_col:
        baseline = best["baseline"] if isinstance(best["baseline"], str) else "(none, α = 0)"
        st.text(f"goal: {best['goal']}\nbaseline: {baseline}\nα = {best['alpha']:g}")
    if (
        isinstance(held, HeldOutSelection)
        and honest is not None
        and honest.epic_distance is not None
    ):
        interval = (
            f" (95% CI {honest.ci_low:.3f}–{honest.ci_high:.3f})"
            if honest.ci_low is not None
            else ""
        )
        st.caption(
            f"Picking the best of {len(result.table)} combinations on the same labels flatters "
            f"the winner. Honest estimate: in each of {held.folds} folds, grouped so that an "
            "episode's frames never sit on both sides, the best row on the training frames was "
            f"scored on the held-out frames: EPIC {honest.epic_distance:.3f}{interval}."
        )
    elif isinstance(held, str):
        st.caption(md_escape(f"No held-out estimate of the pick: {held}"))
    st.caption(
        f"{len(result.table)} combinations of {result.n_prompts} prompts on {result.n_frames} "
        f"frames: text encoding {result.text_seconds:.2f} s, scoring {result.score_seconds:.2f} s, "
        f"intervals for the top rows {result.detail_seconds:.2f} s"
        + (f", VOC {result.voc_seconds:.2f} s." if "voc" in result.table.columns else ".")
    )


def _ranked_table(result: evaluation.PromptSearchResult) -> None:
    """The combinations, best first (the first :data:`TABLE_ROWS`)."""
    voc_columns = ["voc", "voc_ci_low", "voc_ci_high"]
    has_voc = "voc" in result.table.columns
    shown = tables.dash_missing(
        result.table.head(TABLE_ROWS),
        ["roc_auc", "ci_low", "ci_high", "average_precision", *voc_columns],
    )
    shown["baseline"] = shown["baseline"].fillna("— (α = 0: no baseline)")
    st.dataframe(
        shown,
        hide_index=True,
        key=f"{K}table",
        # The EPIC distance next to the rank: it is what the table is sorted by.
        column_order=[
            "rank",
            "epic",
            "goal",
            "baseline",
            "alpha",
            "roc_auc",
            "ci_low",
            "ci_high",
            "average_precision",
            *(voc_columns if has_voc else []),
            "note",
        ],
        column_config={
            "rank": st.column_config.NumberColumn(width="small"),
            # wide enough to read a prompt; the full text is also in the cell's tooltip
            "goal": st.column_config.TextColumn(width="large"),
            "baseline": st.column_config.TextColumn(width="medium"),
            "alpha": st.column_config.NumberColumn("α", format="%.2f"),
            "epic": st.column_config.NumberColumn("EPIC distance", format="%.3f"),
            "roc_auc": st.column_config.TextColumn("ROC AUC"),
            "ci_low": st.column_config.TextColumn("CI low"),
            "ci_high": st.column_config.TextColumn("CI high"),
            "average_precision": st.column_config.TextColumn("AP"),
            "voc": st.column_config.TextColumn(
                "VOC", help="Mean over episodes of ρ(reward, time step)."
            ),
            "voc_ci_low": st.column_config.TextColumn("VOC CI low"),
            "voc_ci_high": st.column_config.TextColumn("VOC CI high"),
        },
    )
    st.caption(
        "CI and AP are computed for the top rows only (bootstrap is slow); '–' marks the rest."
    )


def _save_row(
    ctx: EvaluateContext, result: evaluation.PromptSearchResult, created_by: str | None
) -> None:
    """Save one row (by rank) as a prompt set; the page then runs again so that the prompt-set
    picker above offers it at once."""
    if flash := st.session_state.pop(f"{K}saved", None):
        st.success(md_escape(f"Saved prompt set {flash!r}."))
    ranks = [int(r) for r in result.table["rank"]]
    rank_col, name_col, save_col = st.columns([1, 2, 1], vertical_alignment="bottom")
    save_rank = rank_col.selectbox(
        "Row to save", ranks, key=f"{K}save-rank", help="Rank 1 is the best row."
    )
    row = result.table[result.table["rank"] == save_rank].iloc[0]
    name = name_col.text_input(
        "Prompt set name", f"prompt search: {ctx.dataset}", key=f"{K}save-name"
    )
    if not save_col.button("Save row as prompt set", key=f"{K}save", width="stretch"):
        return
    try:
        stored_set = save_prompt_set(
            ctx.db,
            PromptSet(
                name=name,
                model=ModelRef(ctx.picked[0], ctx.picked[1]),
                reward=evaluation.search_row_spec(row),
                environment=ctx.dataset,
                created_by=created_by,
            ),
        )
    except VlmrmError as exc:
        st.error(md_escape(exc))
        return
    st.session_state[f"{K}saved"] = stored_set.name
    st.rerun()
