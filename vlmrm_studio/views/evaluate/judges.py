"""Evaluate: saved VLM judges scored against the labels (ranked in the prompt sets' table), VOC
over the dataset's episodes (and its gap to a reversed copy's), and the judge's phrasing search.

A judge of several frames is scored over each episode in time order (each frame judged with the
frames before it), as in training, for its metrics, its VOC and the reversed copy's VOC.
The numbers are :mod:`vlmrm_core.services.judge_evaluation`'s and
:func:`vlmrm_core.services.episodes.dataset_voc`'s (``reward_voc_gap``'s); this module picks,
caches and draws.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import streamlit as st

from vlmrm_core.errors import VlmrmError
from vlmrm_core.metrics.progress import VocGap, VocResult
from vlmrm_core.reward.base import Reward
from vlmrm_core.services import evaluation
from vlmrm_core.services.episodes import (
    dataset_voc,
    episode_frames,
    reversed_copies,
    reward_voc_gap,
)
from vlmrm_core.services.judge_evaluation import (
    JUDGE_MODEL_PREFIX,
    evaluate_judge,
    phrasing_search,
)
from vlmrm_core.services.judge_scores import DatasetJudgeScores, score_dataset
from vlmrm_core.services.saved_judges import SavedJudge, list_saved_judges
from vlmrm_core.store import FrameInfo, consensus_labels, count_frames, dataset_frames
from vlmrm_studio.views.evaluate.context import LABELS_USED, N_BOOT, EvaluateContext
from vlmrm_studio.widgets import tables
from vlmrm_studio.widgets.common import progress_bar
from vlmrm_studio.widgets.embeddings import memo
from vlmrm_studio.widgets.judges import get_judge, judge_reward
from vlmrm_studio.widgets.reward_download import judge_download_button
from vlmrm_studio.widgets.text import md_escape

__all__ = [
    "JUDGES_KEY",
    "VocColumn",
    "add_voc_columns",
    "choose_judges",
    "has_episodes",
    "judge_download",
    "judge_evaluations",
    "judge_phrasing_section",
    "voc_column",
]

JUDGES_KEY = "eval-judges"
"""The saved judges chosen for evaluation (kept for the session)."""
DEMOS_KEY = "eval-voc-demos"


@dataclass(frozen=True)
class DatasetRewards:
    """How a table row scores whole datasets, for VOC and the VOC gap."""

    reward: Callable[[], Reward]
    """The row's reward: whether it looks at time decides whether a reversed copy is scored
    itself (:func:`~vlmrm_core.services.episodes.reward_voc_gap`)."""
    of: Callable[[str], np.ndarray]
    """One reward per frame of the named dataset (the page's, or a reversed copy of it), in
    dataset order, each episode scored in time order."""


def choose_judges(ctx: EvaluateContext) -> list[SavedJudge]:
    """The saved-judge picker (none when no judge is saved); those written for this dataset's
    environment come first and are chosen by default."""
    saved = list_saved_judges(environment=ctx.dataset)
    if not saved:
        st.caption("No saved judges: save one in the **Prompt Lab**'s Judge mode to rank it here.")
        return []
    names = [j.name for j in saved]
    state = st.session_state
    if f"{JUDGES_KEY}-for" not in state or state[f"{JUDGES_KEY}-for"] != ctx.dataset:
        state[f"{JUDGES_KEY}-for"] = ctx.dataset
        state[JUDGES_KEY] = names[:3]
    else:
        state[JUDGES_KEY] = [n for n in state.get(JUDGES_KEY, []) if n in names]
    chosen = st.multiselect(
        "VLM judges",
        names,
        key=JUDGES_KEY,
        help="Saved judges (Prompt Lab, Judge mode), ranked in the same table as the prompt sets.",
    )
    return [j for j in saved if j.name in chosen]


def judge_evaluations(
    ctx: EvaluateContext, judges: list[SavedJudge]
) -> tuple[list[evaluation.Evaluation], dict[tuple[str, str], DatasetRewards]]:
    """Each judge scored on the labelled frames (cached per session), and for each row a
    function giving the judge's rewards of the whole dataset (for VOC)."""
    labelled = ctx.labelled
    results: list[evaluation.Evaluation] = []
    scorers: dict[tuple[str, str], DatasetRewards] = {}
    for saved in judges:
        key = (
            ctx.dataset,
            labelled.hashes,
            tuple(labelled.labels),
            saved.name,
            saved.request,
            saved.revision,
        )

        key += (count_frames(ctx.db, ctx.dataset),)  # a judge of k frames sees the episodes

        def compute(saved: SavedJudge = saved) -> evaluation.Evaluation | str:
            try:
                # A judge of several frames judges each labelled frame with the frames before
                # it in its episode, so the whole dataset is judged in time order.
                over_time = (
                    _judged_over_time(ctx, saved, ctx.dataset) if saved.request.frames > 1 else None
                )
                update, clear = progress_bar(f"Judging the labelled frames with {saved.name}")
                try:
                    reward = judge_reward(get_judge(saved.request.model), saved.request)
                    return evaluate_judge(
                        reward, labelled, name=saved.name, n_boot=N_BOOT, over_time=over_time
                    )
                finally:
                    clear()
            except VlmrmError as exc:  # a judge that can't load, or its answers: names the fix
                return f"Judge {saved.name}: {exc}"

        result = memo("_eval_judges", key, compute)
        if isinstance(result, str):
            st.error(md_escape(result))
            continue
        results.append(result)
        scorers[(result.prompt_set, result.model)] = DatasetRewards(
            lambda saved=saved: judge_reward(get_judge(saved.request.model), saved.request),
            lambda dataset, saved=saved: _judged_over_time(ctx, saved, dataset).rewards,
        )
    return results, scorers


def _judged_over_time(ctx: EvaluateContext, saved: SavedJudge, dataset: str) -> DatasetJudgeScores:
    """A judge's rewards of every frame of a dataset, each episode in time order (a judge of k
    frames sees the k frames up to each one), once per session."""
    key = (dataset, count_frames(ctx.db, dataset), saved.request, saved.revision)

    def compute() -> DatasetJudgeScores:
        update, clear = progress_bar(f"Judging {dataset} with {saved.name}")
        try:
            reward = judge_reward(get_judge(saved.request.model), saved.request)
            return score_dataset(ctx.db, dataset, reward, progress=update)
        finally:
            clear()

    return memo("_eval_judged_over_time", key, compute)


def judge_download(
    ctx: EvaluateContext, result: evaluation.Evaluation, judges: Mapping[str, SavedJudge]
) -> bool:
    """The inspected row as a judge reward file when it is a judge's; False when it is not."""
    saved = judges.get(result.prompt_set)
    if saved is None or not result.model.startswith(JUDGE_MODEL_PREFIX):
        return False
    try:
        reward = judge_reward(get_judge(saved.request.model), saved.request)
    except VlmrmError as exc:
        st.error(md_escape(exc))
        return True
    judge_download_button(
        reward,
        saved.name,
        key="eval-download-reward",
        provenance=evaluation.evaluation_provenance(result, ctx.dataset, LABELS_USED),
        help="The judge, its question and this evaluation, as one reward file (source judge).",
    )
    return True


@dataclass(frozen=True)
class VocColumn:
    """VOC per table row (None where it was not computed) and what it was computed over."""

    by_row: dict[tuple[str, str], VocResult]
    demonstrations: bool
    reversed_copy: str | None = None
    """The reversed copy of the dataset the gaps are against (its newest); None when none."""
    gaps: dict[tuple[str, str], VocGap] = field(default_factory=dict)
    """Forward minus reversed VOC per row (rows with a forward VOC)."""


def _frames(ctx: EvaluateContext) -> list[FrameInfo]:
    return memo(
        "_eval_frames",
        (ctx.dataset, count_frames(ctx.db, ctx.dataset)),
        lambda: dataset_frames(ctx.db, ctx.dataset),
    )


def has_episodes(ctx: EvaluateContext) -> bool:
    """Whether some frame of the page's dataset has an episode and a step (VOC is defined)."""
    return len(episode_frames(_frames(ctx)).rows) > 0


def voc_column(
    ctx: EvaluateContext, scorers: Mapping[tuple[str, str], DatasetRewards]
) -> VocColumn | None:
    """VOC of every row that can be scored on the whole dataset, when it has episodes (None
    otherwise); a checkbox says whether every episode counts (demonstrations)."""
    frames = _frames(ctx)
    if len(episode_frames(frames).rows) == 0:
        return None
    demonstrations = st.checkbox(
        "Demonstrations (every episode counts as successful for VOC)",
        key=DEMOS_KEY,
        help="VOC is the rank correlation of reward and time step within each episode, over the "
        "episodes labelled successful (their last labelled frame), or over all of them here.",
    )
    labels = None
    if not demonstrations:
        labels = memo(
            "_eval_voc_labels",
            (ctx.dataset, ctx.labelled.hashes, tuple(ctx.labelled.labels)),
            lambda: consensus_labels(ctx.db, ctx.dataset).to_dict(),
        )
    by_row: dict[tuple[str, str], VocResult] = {}
    for row, scorer in scorers.items():
        key = (ctx.dataset, len(frames), row, demonstrations, ctx.labelled.labels.tobytes())

        def compute(scorer: DatasetRewards = scorer) -> VocResult | str:
            try:
                return dataset_voc(
                    frames,
                    scorer.of(ctx.dataset),
                    labels=labels,
                    demonstrations=demonstrations,
                    n_boot=N_BOOT,
                )
            except VlmrmError as exc:
                return str(exc)

        result = memo("_eval_voc", key, compute)
        if isinstance(result, str):
            st.error(md_escape(f"VOC of {row[0]}: {result}"))
        else:
            by_row[row] = result
    copy, gaps = _voc_gaps(ctx, frames, scorers, by_row, demonstrations)
    return VocColumn(by_row, demonstrations, copy, gaps)


def _voc_gaps(
    ctx: EvaluateContext,
    frames: list[FrameInfo],
    scorers: Mapping[tuple[str, str], DatasetRewards],
    by_row: Mapping[tuple[str, str], VocResult],
    demonstrations: bool,
) -> tuple[str | None, dict[tuple[str, str], VocGap]]:
    """The newest reversed copy of the dataset and each row's VOC gap to it (ReWiND); without a
    copy, a note on how to make one."""
    copies = reversed_copies(ctx.db, ctx.dataset)
    if not copies:
        st.caption(
            "No reversed copy of this dataset: make one on the **Frames** page (*Make reversed "
            "copies*) to see each row's VOC gap between forward and reversed episodes."
        )
        return None, {}
    copy = copies[-1]
    st.caption(
        md_escape(
            f"VOC gap: forward VOC minus the VOC of the reversed copy {copy!r} over the paired "
            "episodes (a reward that tracks progress falls when time runs backwards)."
        )
    )
    n_copied = count_frames(ctx.db, copy)
    copied = memo("_eval_frames", (copy, n_copied), lambda: dataset_frames(ctx.db, copy))
    gaps: dict[tuple[str, str], VocGap] = {}
    for row, forward in by_row.items():
        if forward.n_episodes == 0:
            continue
        key = (ctx.dataset, len(frames), copy, n_copied, row, demonstrations)
        key += (ctx.labelled.labels.tobytes(),)

        def compute(
            scorer: DatasetRewards = scorers[row], forward: VocResult = forward
        ) -> VocGap | str:
            # A reward of single frames gives a copied frame its forward twin's reward; one that
            # looks at time scores the copy itself, each episode played backwards.
            try:
                return reward_voc_gap(
                    scorer.reward(),
                    forward,
                    frames,
                    scorer.of(ctx.dataset),
                    copied,
                    n_boot=N_BOOT,
                    score_copy=lambda: scorer.of(copy),
                )
            except VlmrmError as exc:
                return str(exc)

        gap = memo("_eval_voc_gap", key, compute)
        if isinstance(gap, str):
            st.error(md_escape(f"VOC gap of {row[0]}: {gap}"))
        else:
            gaps[row] = gap
    return copy, gaps


def add_voc_columns(
    table: pd.DataFrame, evaluations: list[evaluation.Evaluation], voc: VocColumn
) -> pd.DataFrame:
    """The display table with "VOC" and "VOC 95% CI" (text; "–" where undefined or not
    computed), one value per evaluation row in order; with a reversed copy also "reversed VOC",
    "VOC gap" and "VOC gap 95% CI"."""
    table = table.copy()
    values, intervals = [], []
    for e in evaluations:
        result = voc.by_row.get((e.prompt_set, e.model))
        if result is None or result.voc is None:
            values.append("–")
            intervals.append("–")
            continue
        values.append(f"{result.voc:.3f}")
        intervals.append(
            "–"
            if result.ci_low is None or result.ci_high is None
            else f"{result.ci_low:.3f}–{result.ci_high:.3f}"
        )
    table["VOC"] = values
    table["VOC 95% CI"] = intervals
    if voc.reversed_copy is not None:
        gaps = [voc.gaps.get((e.prompt_set, e.model)) for e in evaluations]
        table["reversed VOC"] = [_number(g.reversed.voc if g is not None else None) for g in gaps]
        table["VOC gap"] = [_number(g.gap if g is not None else None) for g in gaps]
        table["VOC gap 95% CI"] = [
            "–"
            if g is None or g.ci_low is None or g.ci_high is None
            else f"{g.ci_low:.3f}–{g.ci_high:.3f}"
            for g in gaps
        ]
    return table


def _number(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def judge_phrasing_section(ctx: EvaluateContext) -> None:
    """Several phrasings of a saved judge's question, ranked by EPIC distance like prompt
    combinations."""
    saved = list_saved_judges(environment=ctx.dataset)
    if not saved:
        return
    st.subheader("Judge phrasings")
    st.caption(
        "Several phrasings of a judge's question (one per line), each scored against the labels "
        "with the same judge and answers and ranked by EPIC distance. The frames' vision "
        "features are cached, so each phrasing runs only the language model."
    )
    names = [j.name for j in saved]
    left, right = st.columns([1, 2])
    name = left.selectbox("Judge", names, key="eval-phrase-judge")
    chosen = saved[names.index(name)]
    text = right.text_area(
        "Phrasings of the question (one per line)",
        value=chosen.request.question,
        key="eval-phrase-text",
        height=120,
    )
    context = (ctx.dataset, ctx.labelled.hashes, tuple(ctx.labelled.labels), name)
    if st.button("Rank the phrasings", key="eval-phrase-run", type="primary"):
        update, clear = progress_bar("Scoring phrasings")
        try:
            reward = judge_reward(get_judge(chosen.request.model), chosen.request)
            ranked = phrasing_search(
                reward,
                text.splitlines(),
                ctx.labelled,
                n_boot=N_BOOT,
                progress=update,
                engine=ctx.db,  # a judge of several frames judges the episodes in time order
            )
        except VlmrmError as exc:
            st.error(md_escape(exc))
            return
        finally:
            clear()
        st.session_state["eval-phrase-result"] = (context, ranked)
    stored = st.session_state.get("eval-phrase-result")
    if stored is None or stored[0] != context:
        return
    ranked = stored[1]
    for warning in dict.fromkeys(w for e in ranked for w in e.warnings):
        st.warning(md_escape(warning))
    table = tables.evaluation_display(
        tables.dash_missing(
            evaluation.evaluation_table(ranked),
            ["ci_low", "ci_high", "average_precision", "roc_auc"],
        )
    ).rename(columns={"prompt set": "phrasing"})
    st.dataframe(table.drop(columns=["parameters"]), hide_index=True, key="eval-phrase-table")
