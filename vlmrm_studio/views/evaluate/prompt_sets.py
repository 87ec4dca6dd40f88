"""Evaluate: the saved prompt sets and VLM judges scored against the labels.

The ranked table (EPIC distance with its bootstrap interval, AP, ROC AUC, and VOC when the
dataset has episodes; judges are :mod:`~vlmrm_studio.views.evaluate.judges`), the inspected row's
metrics and reward file, precision–recall curves, EPIC against model size and the frames where
reward and labels disagree most. The numbers are :mod:`vlmrm_core.services.evaluation`'s.

A windowed set (window k > 1) is scored over each episode of the dataset in time order, as in
training (:func:`~vlmrm_core.services.evaluation.evaluate_reward_over_time`), for its metrics,
its VOC and its reversed copy's; the others on the labelled frames alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import numpy as np
import streamlit as st

from vlmrm_core.clip.embedding import PromptError
from vlmrm_core.clip.models import ClipModel
from vlmrm_core.errors import VlmrmError
from vlmrm_core.metrics import ConstantRewardError
from vlmrm_core.reward.model import RewardModel
from vlmrm_core.reward.spec import ModelRef
from vlmrm_core.services import evaluation, landscape
from vlmrm_core.services.episodes import clip_scores_over_time
from vlmrm_core.services.judge_evaluation import JUDGE_MODEL_PREFIX
from vlmrm_core.services.prompt_sets import adapted_model_mismatch
from vlmrm_core.store import PromptSet, count_frames, dataset_frames, list_prompt_sets
from vlmrm_studio.views.evaluate.context import LABELS_USED, N_BOOT, EvaluateContext
from vlmrm_studio.views.evaluate.judges import (
    DatasetRewards,
    VocColumn,
    add_voc_columns,
    choose_judges,
    judge_download,
    judge_evaluations,
    voc_column,
)
from vlmrm_studio.views.evaluate.pairs import PAIR_COLUMN, pair_accuracy_column
from vlmrm_studio.widgets import plots, tables
from vlmrm_studio.widgets.adapt import separation_note
from vlmrm_studio.widgets.common import get_model
from vlmrm_studio.widgets.embeddings import (
    dataset_embeddings,
    frame_embeddings,
    frame_grid,
    memo,
)
from vlmrm_studio.widgets.reward_download import reward_download_button
from vlmrm_studio.widgets.text import md_escape

__all__ = ["CHOSEN_KEY", "prompt_sets_section"]

CHOSEN_KEY = "eval-prompt-sets"
"""The prompt sets chosen for evaluation: a widget key kept for the whole session
(``persist_state``), so a visit to another page does not empty the choice."""
CHOSEN_FOR_KEY = "eval-prompt-sets-for"
"""The dataset whose default prompt sets :data:`CHOSEN_KEY` started from."""
KEEP: Literal["session"] = "session"
METRIC_HEADERS: dict[str, tuple[str, str]] = {
    "EPIC distance": (
        "EPIC",
        "EPIC distance between the reward and the labels: 0 = it orders the frames as the labels "
        "do, 1 = opposite; lower is better.",
    ),
    "EPIC 95% CI low": ("CI low", "Lower end of the EPIC distance's 95% bootstrap interval."),
    "EPIC 95% CI high": ("CI high", "Upper end of the EPIC distance's 95% bootstrap interval."),
    "average precision": (
        "AP",
        "Average precision of the reward as a success detector (area under the precision–recall "
        "curve): the share of successes is chance, 1 is perfect.",
    ),
    "ROC AUC": (
        "AUC",
        "ROC AUC of the reward as a success detector: 0.5 is chance, 1 is perfect.",
    ),
    "VOC": (
        "VOC",
        "Value-order correlation: the rank correlation of reward and time step within each "
        "successful episode (1 = the reward rises steadily towards the goal).",
    ),
    "VOC 95% CI": ("VOC CI", "VOC's 95% bootstrap interval."),
    "reversed VOC": ("rev. VOC", "VOC of the dataset's reversed copy (episodes played backwards)."),
    "VOC gap": (
        "VOC gap",
        "VOC minus the reversed copy's VOC: large when the reward tracks progress, not the look "
        "of the frames.",
    ),
    "VOC gap 95% CI": ("gap CI", "The VOC gap's 95% bootstrap interval."),
    PAIR_COLUMN: (
        "pairs",
        "Pair accuracy: the share of the dataset's comparisons (equal answers left out) in which "
        "the reward prefers the frame the labeller preferred, with its 95% interval and the "
        "number of pairs.",
    ),
}
"""Metric columns of the results table: title → (short header, its full meaning as the header's
tooltip). Long headers were cut off ("EPIC distanc…") in the narrow metric columns."""
SIZED_TO_CONTENT = frozenset({"VOC 95% CI", "VOC gap 95% CI", PAIR_COLUMN})
"""Metric columns whose cells are longer than a number (intervals, "0.83 (0.71–0.92), 40 pairs"):
sized to their content rather than narrow."""

Model = tuple[str, str]
"""``(architecture, pretrained)``, ``''`` for random init."""


def prompt_sets_section(ctx: EvaluateContext, extra_models: Mapping[str, Model]) -> None:
    """Score the chosen prompt sets with the page's model and the extra ones, and show them.

    Args:
        ctx: the page's dataset, labels and model.
        extra_models: more models to score every set with (the scaling plot), by label.
    """
    st.subheader("Prompt sets and judges")
    sets = list_prompt_sets(ctx.db)
    if not sets:
        st.info("No prompt sets yet: save one in the **Prompt Lab**, or run a prompt search below.")
    chosen = _choose_sets(ctx, sets) if sets else []
    judges = choose_judges(ctx)  # VLM judges saved in Prompt Lab's Judge mode
    if not chosen and not judges:
        if sets:
            st.info("Choose at least one prompt set (or judge) to evaluate.")
        return
    selected = [p for p in sets if p.name in chosen]
    models: dict[str, Model] = {}  # evaluated model identity -> how to load it (reward files)
    scorers: dict[tuple[str, str], DatasetRewards] = {}  # row -> its rewards of every frame
    evaluations = _evaluate_rewards(ctx, ctx.picked, ctx.clip, selected, models, scorers)
    for model in extra_models.values():
        evaluations += _evaluate_rewards(ctx, model, None, selected, models)
    judged, judge_scorers = judge_evaluations(ctx, judges)
    evaluations += judged
    scorers.update(judge_scorers)
    if not evaluations:
        return
    for warning in dict.fromkeys(w for e in evaluations for w in e.warnings):
        st.warning(md_escape(warning))  # may name prompts or judge folders: user text
    # ranked: lowest EPIC distance first, undefined ones last
    evaluations = sorted(
        evaluations, key=lambda e: (e.metrics.epic_distance is None, e.metrics.epic_distance or 0.0)
    )
    pairs = pair_accuracy_column(ctx.db, ctx.dataset, ctx.labelled.hashes, evaluations)
    _results_table(evaluations, voc_column(ctx, scorers), pairs)
    separation_note(evaluations, ctx.labelled.labels)  # do the top two's intervals overlap?
    inspected = _inspect(evaluations)
    if not judge_download(ctx, inspected, {j.name: j for j in judges}):
        _download_reward(ctx, inspected, {p.name: p for p in selected}, models)
    _charts(ctx, evaluations)
    _reward_label_mismatches(ctx, inspected)


def _choose_sets(ctx: EvaluateContext, sets: list[PromptSet]) -> list[str]:
    """The prompt-set picker: sets written for this dataset's environment first, and chosen by
    default (the first three untagged ones when none is tagged for it); the others last."""
    for_here = [p for p in list_prompt_sets(ctx.db, environment=ctx.dataset) if p.environment]
    names = list(dict.fromkeys([p.name for p in for_here] + [p.name for p in sets]))
    untagged = [p.name for p in sets if not p.environment]
    defaults = [p.name for p in for_here][:3] or untagged[:3] or names[:3]
    state = st.session_state
    if state.get(CHOSEN_FOR_KEY) != ctx.dataset:  # a new dataset: its defaults
        state[CHOSEN_FOR_KEY] = ctx.dataset
        state[CHOSEN_KEY] = defaults
    elif CHOSEN_KEY in state:  # a set deleted meanwhile is no longer an option
        state[CHOSEN_KEY] = [n for n in state[CHOSEN_KEY] if n in names]
    return st.multiselect(
        "Prompt sets",
        names,
        key=CHOSEN_KEY,
        persist_state=KEEP,
        help="Sets saved for this dataset's environment come first and are chosen by default.",
    )


def _evaluate_rewards(
    ctx: EvaluateContext,
    model: Model,
    loaded: ClipModel | None,
    sets: list[PromptSet],
    models: dict[str, Model],
    scorers: dict[tuple[str, str], DatasetRewards] | None = None,
) -> list[evaluation.Evaluation]:
    """Every prompt set with one model; results are remembered per session, so reruns caused by
    other widgets neither reload the model nor re-encode anything.

    Args:
        ctx: the page's dataset and labels.
        model: the model to score with.
        loaded: that model when it is already loaded (the page's), else None.
        sets: the prompt sets.
        models: filled with each evaluated model identity's ``model``.
        scorers: when given, filled with each row's rewards of the whole dataset (for VOC).
    """
    labelled = ctx.labelled
    results: list[evaluation.Evaluation] = []
    for prompt_set in sets:
        key = (
            ctx.dataset,
            labelled.hashes,
            tuple(labelled.labels),
            model,
            prompt_set.name,
            prompt_set.reward,  # frozen and hashable: the reward itself is the cache key
            prompt_set.model.aspect,
            # a windowed set is scored over the whole dataset's episodes
            count_frames(ctx.db, ctx.dataset) if prompt_set.reward.window > 1 else None,
        )

        def compute(prompt_set: PromptSet = prompt_set) -> evaluation.Evaluation | str:
            if mismatch := adapted_model_mismatch(prompt_set, model):
                return mismatch
            clip_model = loaded if loaded is not None else get_model(*model)
            aspect = prompt_set.model.aspect
            try:
                if prompt_set.reward.window > 1:  # looks back: score the episodes in time order
                    embedded = dataset_embeddings(ctx.db, clip_model, ctx.dataset, aspect)
                    return evaluation.evaluate_reward_over_time(
                        clip_model,
                        embedded.frames,
                        embedded.embeddings,
                        labelled,
                        prompt_set.reward,
                        prompt_set=prompt_set.name,
                        n_boot=N_BOOT,
                    )
                x = frame_embeddings(ctx.db, clip_model, labelled.hashes, aspect)
                return evaluation.evaluate_reward(
                    clip_model,
                    x,
                    labelled.labels,
                    prompt_set.reward,
                    prompt_set=prompt_set.name,
                    n_boot=N_BOOT,
                )
            except (PromptError, ValueError) as exc:
                return f"{prompt_set.name} with {model[0]}: {exc}"

        try:
            result = memo("_eval_results", key, compute)
        except VlmrmError as exc:  # a model that fails to load names its own fix
            st.error(md_escape(f"Could not load {model[0]} / {model[1] or 'random init'}: {exc}"))
            return results
        if isinstance(result, str):
            st.error(md_escape(result))
        else:
            results.append(result)
            models[result.model] = model
            if scorers is not None and loaded is not None:
                scorers[(result.prompt_set, result.model)] = _dataset_scorer(
                    ctx, loaded, prompt_set
                )
    return results


def _dataset_scorer(ctx: EvaluateContext, clip: ClipModel, prompt_set: PromptSet) -> DatasetRewards:
    """The prompt set's rewards of every frame of a dataset (embedded once per session), each
    episode in time order for a windowed set."""
    spec, aspect = prompt_set.reward, prompt_set.model.aspect

    def rewards(dataset: str) -> np.ndarray:
        embedded = dataset_embeddings(ctx.db, clip, dataset, aspect)
        if spec.window > 1:
            scores = clip_scores_over_time(clip, embedded.frames, embedded.embeddings, spec)
        else:
            scores, _ = landscape.score(clip, embedded.embeddings, spec)
        return landscape.reward_values(scores)

    return DatasetRewards(lambda: RewardModel(clip, spec, aspect=aspect), rewards)


def _results_table(
    evaluations: list[evaluation.Evaluation],
    voc: VocColumn | None,
    pairs: list[str] | None = None,
) -> None:
    """The ranked table of every prompt set × model and every judge (with VOC when the dataset
    has episodes)."""
    table = tables.evaluation_display(
        tables.dash_missing(
            evaluation.evaluation_table(evaluations),
            ["ci_low", "ci_high", "average_precision", "roc_auc"],
        )
    )
    if voc is not None:
        table = add_voc_columns(table, evaluations, voc)
    if pairs is not None:  # pair accuracy against the comparisons (views/evaluate/pairs.py)
        table = table.assign(**{PAIR_COLUMN: pairs})
    st.dataframe(
        table,
        hide_index=True,
        key="eval-table",
        # metrics that may be undefined are text ("–", never "None"): only EPIC is a number
        column_config={
            c: st.column_config.TextColumn(
                label, help=meaning, width=None if c in SIZED_TO_CONTENT else "small"
            )
            for c, (label, meaning) in METRIC_HEADERS.items()
        }
        | {
            "EPIC distance": st.column_config.NumberColumn(
                METRIC_HEADERS["EPIC distance"][0],
                help=METRIC_HEADERS["EPIC distance"][1],
                format="%.3f",
                width="small",
            ),
            "prompt set": st.column_config.TextColumn(width="medium", pinned=True),
            "model": st.column_config.TextColumn(width="medium"),
            "parameters": st.column_config.NumberColumn(format="compact", width="small"),
            "n labelled": st.column_config.NumberColumn(
                "n", help="Labelled frames the row was scored on.", width="small"
            ),
        },
    )


def _inspect(evaluations: list[evaluation.Evaluation]) -> evaluation.Evaluation:
    """The row picker (the best row by default) and that row's metrics; returns the row."""
    best = evaluation.best_evaluation(evaluations)
    row_names = [f"{e.prompt_set} · {e.model}" for e in evaluations]
    # Whenever the rows or their metrics change, Inspect jumps to the (new) best row; the
    # user's own pick stays only while the table stays the same.
    table_state = tuple(
        (n, e.metrics.epic_distance) for n, e in zip(row_names, evaluations, strict=True)
    )
    if (
        st.session_state.get("eval-inspect-rows") != table_state
        or st.session_state.get("eval-inspect") not in row_names
    ):
        st.session_state["eval-inspect-rows"] = table_state
        st.session_state["eval-inspect"] = row_names[evaluations.index(best) if best else 0]
    inspected_name = st.selectbox(
        "Inspect",
        row_names,
        key="eval-inspect",
        help="The metrics, PR curve and disagreeing frames below are of this row "
        "(the best one, lowest EPIC, by default).",
    )
    inspected = evaluations[row_names.index(inspected_name)]
    m = inspected.metrics
    cols = st.columns(4)
    if m.epic_distance is None:
        cols[0].metric("EPIC distance", "undefined")
        st.warning(m.note)
    else:
        interval = (
            f"95% CI {m.ci_low:.3f}–{m.ci_high:.3f}" if m.ci_low is not None else "no interval"
        )
        cols[0].metric("EPIC distance", f"{m.epic_distance:.3f}", help=interval)
        cols[0].caption(interval)
    cols[1].metric(
        "Average precision",
        "undefined" if m.average_precision is None else f"{m.average_precision:.3f}",
    )
    cols[2].metric("ROC AUC", "undefined" if m.roc_auc is None else f"{m.roc_auc:.3f}")
    cols[3].metric("Labelled frames", m.n)
    return inspected


def _download_reward(
    ctx: EvaluateContext,
    result: evaluation.Evaluation,
    sets: Mapping[str, PromptSet],
    models: Mapping[str, Model],
) -> None:
    """The inspected row as a reward file, with this evaluation as its provenance."""
    prompt_set = sets.get(result.prompt_set)
    model = models.get(result.model)
    if prompt_set is None or model is None:
        return
    reward_download_button(
        ModelRef(model[0], model[1], aspect=prompt_set.model.aspect),
        prompt_set.reward,
        prompt_set.name,
        key="eval-download-reward",
        provenance=evaluation.evaluation_provenance(result, ctx.dataset, LABELS_USED),
        help="The model, the reward and this evaluation, as one JSON file: load it in any "
        "training script with vlmrm_core.load_reward(path).",
    )


def _charts(ctx: EvaluateContext, evaluations: list[evaluation.Evaluation]) -> None:
    """Precision–recall curves and EPIC against model size, side by side."""
    labelled = ctx.labelled
    chart_left, chart_right = st.columns(2)
    with chart_left:
        st.markdown("**Precision–recall** (reward as a success detector)")
        curves = evaluation.pr_curves(evaluations, labelled.binary)
        if curves:
            st.plotly_chart(
                plots.pr_figure(curves, base_rate=labelled.n_success / labelled.n),
                key="eval-pr",
            )
        else:
            st.caption("Precision–recall needs at least one success and one failure.")
    with chart_right:
        st.markdown("**EPIC vs model size** (the paper's Fig. 4)")
        clip_rows = [e for e in evaluations if not e.model.startswith(JUDGE_MODEL_PREFIX)]
        if len({e.model for e in clip_rows}) > 1:
            st.plotly_chart(plots.scaling_figure(clip_rows), key="eval-scaling")
        else:
            st.caption("Add models under *More models* to compare model sizes.")


def _reward_label_mismatches(ctx: EvaluateContext, inspected: evaluation.Evaluation) -> None:
    """The frames that pull the inspected reward furthest from the labels."""
    labelled = ctx.labelled
    st.subheader("Where reward and labels disagree most")
    k = st.slider("Frames to show", 1, min(24, labelled.n), min(8, labelled.n), key="eval-k")
    try:
        worst = evaluation.reward_label_mismatches(inspected.rewards, labelled.labels, k)
    except (ConstantRewardError, ValueError) as exc:
        st.info(md_escape(exc))
        return
    names = memo(
        "_eval_names",
        (ctx.dataset, labelled.n),
        lambda: {f.hash: landscape.frame_label(f) for f in dataset_frames(ctx.db, ctx.dataset)},
    )
    hashes = [labelled.hashes[i] for i in worst["frame"]]
    frame_grid(
        hashes,
        [
            f"{names.get(h, h[:12])} · reward {r:.4f} · label {y:.2f}"
            for h, r, y in zip(hashes, worst["reward"], worst["label"], strict=True)
        ],
        width=220,  # four to a row: larger than Prompt Lab's, these are read closely
    )
    st.caption(
        "Ranked by each frame's share of 1 − ρ (the squared gap between its standardised reward "
        "and standardised label)."
    )
