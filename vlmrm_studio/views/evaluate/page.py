"""Evaluate: how close each reward is to the human labels (EPIC, AP, ROC AUC), and prompt sweeps.

Labels are the consensus of the current labels per frame (mean over labelers); AP, ROC AUC and
the precision–recall curves binarise it at 0.5.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from vlmrm_core.clip.embedding import PromptError
from vlmrm_core.clip.models import ClipModel, discover_models
from vlmrm_core.errors import VlmrmError
from vlmrm_core.metrics import ConstantRewardError, check_labels
from vlmrm_core.reward.adaptation import HeldOutSelection, frame_groups
from vlmrm_core.reward.file import reward_file_name, reward_file_text, with_checkpoint_hash
from vlmrm_core.reward.spec import ModelRef
from vlmrm_core.services import evaluation, landscape
from vlmrm_core.store import (
    PromptSet,
    dataset_frames,
    list_datasets,
    list_prompt_sets,
    save_prompt_set,
)
from vlmrm_studio.auth import current_identity
from vlmrm_studio.widgets import plots, tables
from vlmrm_studio.widgets.adapt import (
    adapt_section,
    adapted_model_mismatch,
    separation_note,
    starting_sets,
)
from vlmrm_studio.widgets.common import (
    engine,
    get_model,
    hide_training_evals,
    load_model_or_error,
    model_picker,
    progress_bar,
)
from vlmrm_studio.widgets.embeddings import frame_embeddings, frame_grid, memo
from vlmrm_studio.widgets.text import md_escape

# Random-init architectures offered for the scaling plot when no trained weights are around.
# (Comments, not docstrings: Streamlit's magic would print a bare string on the page.)
EXTRA_RANDOM_ARCHS = ("ViT-S-32-alt", "ViT-B-32", "ViT-B-16", "ViT-L-14")
N_BOOT = 1000
LABELS_USED = "consensus of the current labels (mean over labellers)"
# Which (architecture, weights) each evaluated model identity came from, for reward files.
MODEL_OF_IDENTITY: dict[str, tuple[str, str]] = {}
DEFAULT_ALPHAS = "0, 0.25, 0.5, 0.75, 1"

st.title("📏 Evaluate")
st.caption(
    "EPIC distance between each reward and the human labels (0 = same ordering and spacing as "
    "the labels, ≈ 0.71 = unrelated; lower is better), with a bootstrap 95% interval."
)

db = engine()
labelled_sets = hide_training_evals(
    [d for d in list_datasets(db) if d.n_labelled > 0], "eval-show-evals"
)
if not labelled_sets:
    st.info(
        "No labelled frames yet. Label some frames as success or failure on **Label** "
        "(at least one of each), then come back."
    )
    st.stop()

top_left, top_right = st.columns(2)
with top_left:
    counts = {d.name: d.n_labelled for d in labelled_sets}
    dataset = st.selectbox(
        "Labelled dataset",
        list(counts),
        key="eval-dataset",
        format_func=lambda n: f"{n} ({counts[n]} labelled frames)",
    )
with top_right:
    picked = model_picker("eval")

labelled = evaluation.labelled_frames(db, dataset)
try:
    check_labels(labelled.labels)
except (ConstantRewardError, ValueError) as exc:
    st.error(md_escape(f"Can't evaluate on {dataset}: {exc}"))
    st.stop()
st.caption(
    f"{labelled.n} labelled frames: {labelled.n_success} successes and "
    f"{labelled.n - labelled.n_success} failures (consensus label ≥ 0.5 counts as a success)."
)

if picked is None:
    st.stop()
clip = load_model_or_error(*picked, warn_untrained=False)  # the picker shows that warning
if clip is None:
    st.stop()

extra_options: dict[str, tuple[str, str]] = {
    c.label: (c.name, c.pretrained) for c in discover_models()
}
extra_options.update({f"random init · {arch}": (arch, "") for arch in EXTRA_RANDOM_ARCHS})
extra_labels = st.multiselect(
    "More models (EPIC vs model size)",
    [label for label, value in extra_options.items() if value != picked],
    key="eval-extra-models",
    help="Each prompt set is also scored with these models, for the scaling plot.",
)


def _evaluate_rewards(
    model: tuple[str, str], loaded: ClipModel | None, sets: list[PromptSet]
) -> list[evaluation.Evaluation]:
    """Every prompt set with one model; results are remembered per session, so reruns caused by
    other widgets neither reload the model nor re-encode anything."""
    results = []
    for prompt_set in sets:
        key = (
            dataset,
            labelled.hashes,
            tuple(labelled.labels),
            model,
            prompt_set.name,
            prompt_set.reward,  # frozen and hashable: the reward itself is the cache key
            prompt_set.model.aspect,
        )

        def compute(prompt_set: PromptSet = prompt_set) -> evaluation.Evaluation | str:
            if mismatch := adapted_model_mismatch(prompt_set, model):
                return mismatch
            clip_model = loaded if loaded is not None else get_model(*model)
            try:
                x = frame_embeddings(db, clip_model, labelled.hashes, prompt_set.model.aspect)
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
            MODEL_OF_IDENTITY[result.model] = model
    return results


def _prompt_sets_section() -> None:
    st.subheader("Prompt sets")
    sets = list_prompt_sets(db)
    if not sets:
        st.info("No prompt sets yet: save one in the **Prompt Lab**, or run a sweep below.")
        return
    # Sets written for this dataset's environment first, and chosen by default (the first
    # three untagged ones when none is tagged for it); sets for other environments last.
    for_here = [p for p in list_prompt_sets(db, environment=dataset) if p.environment]
    names = list(dict.fromkeys([p.name for p in for_here] + [p.name for p in sets]))
    untagged = [p.name for p in sets if not p.environment]
    defaults = [p.name for p in for_here][:3] or untagged[:3] or names[:3]
    if st.session_state.get("eval-prompt-sets-for") != dataset:  # a new dataset: its defaults
        st.session_state["eval-prompt-sets-for"] = dataset
        st.session_state["eval-prompt-sets"] = defaults
    chosen = st.multiselect(
        "Prompt sets",
        names,
        key="eval-prompt-sets",
        help="Sets saved for this dataset's environment come first and are chosen by default.",
    )
    if not chosen:
        st.info("Choose at least one prompt set to evaluate.")
        return
    selected = [p for p in sets if p.name in chosen]
    evaluations = _evaluate_rewards(picked, clip, selected)
    for label in extra_labels:
        evaluations += _evaluate_rewards(extra_options[label], None, selected)
    if not evaluations:
        return
    for warning in dict.fromkeys(w for e in evaluations for w in e.warnings):
        st.warning(warning)
    # ranked: lowest EPIC distance first, undefined ones last
    evaluations = sorted(
        evaluations, key=lambda e: (e.metrics.epic_distance is None, e.metrics.epic_distance or 0.0)
    )

    table = tables.evaluation_display(
        _dash_missing(
            evaluation.evaluation_table(evaluations),
            ["ci_low", "ci_high", "average_precision", "roc_auc"],
        )
    )
    # metrics that may be undefined are shown as text: "–", never "None"
    texts = {
        "EPIC 95% CI low": "CI low",
        "EPIC 95% CI high": "CI high",
        "average precision": "AP",
        "ROC AUC": "ROC AUC",
    }
    st.dataframe(
        table,
        hide_index=True,
        key="eval-table",
        column_config={
            "EPIC distance": st.column_config.NumberColumn(
                "EPIC distance", format="%.3f", width="small"
            )
        }
        | {c: st.column_config.TextColumn(label, width="small") for c, label in texts.items()}
        | {
            "prompt set": st.column_config.TextColumn(width="medium", pinned=True),
            "model": st.column_config.TextColumn(width="medium"),
            "parameters": st.column_config.NumberColumn(format="compact", width="small"),
            "n labelled": st.column_config.NumberColumn("n", width="small"),
        },
    )

    separation_note(evaluations, labelled.labels)  # do the top two's intervals overlap?

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
    _download_reward(inspected, {p.name: p for p in selected})

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
        if len({e.model for e in evaluations}) > 1:
            st.plotly_chart(plots.scaling_figure(evaluations), key="eval-scaling")
        else:
            st.caption("Add models under *More models* to compare model sizes.")

    _reward_label_mismatches(inspected)


def _reward_label_mismatches(inspected: evaluation.Evaluation) -> None:
    st.subheader("Where reward and labels disagree most")
    k = st.slider("Frames to show", 1, min(24, labelled.n), min(8, labelled.n), key="eval-k")
    try:
        worst = evaluation.reward_label_mismatches(inspected.rewards, labelled.labels, k)
    except (ConstantRewardError, ValueError) as exc:
        st.info(str(exc))
        return
    names = memo(
        "_eval_names",
        (dataset, labelled.n),
        lambda: {f.hash: landscape.frame_label(f) for f in dataset_frames(db, dataset)},
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


def _sweep_section() -> None:
    st.subheader("Prompt sweep")
    st.caption(
        f"Every goal prompt × baseline prompt × α, scored against the labels with {clip.identity} "
        "and ranked by EPIC distance (regularized reward)."
    )
    left, right = st.columns(2)
    goals_text = left.text_area(
        "Candidate goal prompts (one per line)", key="eval-sweep-goals", height=150
    )
    baselines_text = right.text_area(
        "Candidate baseline prompts (one per line)", key="eval-sweep-baselines", height=150
    )
    alpha_col, run_col = st.columns([2, 1], vertical_alignment="bottom")
    alphas_text = alpha_col.text_input("α values", DEFAULT_ALPHAS, key="eval-sweep-alphas")
    run = run_col.button("Run prompt sweep", key="eval-sweep-run", type="primary", width="stretch")

    context = (dataset, labelled.hashes, tuple(labelled.labels), clip.identity)
    if run:
        goals = landscape.parse_prompts(goals_text)
        if not goals:
            st.error("Enter at least one candidate goal prompt (one per line).")
            return
        try:
            alphas = evaluation.parse_alphas(alphas_text)
            x = frame_embeddings(db, clip, labelled.hashes)
            update, clear = progress_bar("Encoding prompts")
            try:
                result = evaluation.prompt_sweep(
                    clip,
                    x,
                    labelled.labels,
                    goals,
                    landscape.parse_prompts(baselines_text),
                    alphas,
                    progress=update,
                    n_boot=N_BOOT,
                )
            finally:
                clear()
        except (PromptError, ValueError) as exc:
            st.error(md_escape(exc))
            return
        held: HeldOutSelection | str | None
        try:
            with st.spinner("Scoring the pick on held-out episodes"):
                groups = frame_groups(list(labelled.hashes), dataset_frames(db, dataset))
                held = evaluation.sweep_held_out(
                    clip, x, labelled.labels, result, groups, n_boot=N_BOOT
                )
        except VlmrmError as exc:  # e.g. too few episodes to hold any out
            held = str(exc)
        st.session_state["eval-sweep-result"] = (context, result, held)

    stored = st.session_state.get("eval-sweep-result")
    if stored is None or stored[0] != context:
        return
    result: evaluation.SweepResult = stored[1]
    held = stored[2]
    for warning in result.warnings:
        st.warning(warning)
    best = result.best()
    if best is None:
        st.error("No combination has a defined EPIC distance (every reward was constant).")
        return
    metric_col, held_col, text_col = st.columns([1, 1, 3])
    metric_col.metric(
        "Best sweep EPIC distance",
        f"{best['epic']:.3f}",
        help="On the same labels it was picked with: this flatters the winner.",
    )
    if isinstance(held, HeldOutSelection) and held.held_out.epic_distance is not None:
        m = held.held_out
        held_col.metric(
            "Held-out EPIC of the pick",
            f"{m.epic_distance:.3f}",
            help="In each fold the best row on the training episodes, scored on held-out ones.",
        )
    with text_col:
        baseline = best["baseline"] if isinstance(best["baseline"], str) else "(none, α = 0)"
        st.text(f"goal: {best['goal']}\nbaseline: {baseline}\nα = {best['alpha']:g}")
    if isinstance(held, HeldOutSelection) and held.held_out.epic_distance is not None:
        m = held.held_out
        interval = f" (95% CI {m.ci_low:.3f}–{m.ci_high:.3f})" if m.ci_low is not None else ""
        st.caption(
            f"Picking the best of {len(result.table)} combinations on the same labels flatters "
            f"the winner. Honest estimate: in each of {held.folds} folds, grouped so that an "
            "episode's frames never sit on both sides, the best row on the training frames was "
            f"scored on the held-out frames: EPIC {m.epic_distance:.3f}{interval}."
        )
    elif isinstance(held, str):
        st.caption(md_escape(f"No held-out estimate of the pick: {held}"))
    st.caption(
        f"{len(result.table)} combinations of {result.n_prompts} prompts on {result.n_frames} "
        f"frames: text encoding {result.text_seconds:.2f} s, scoring {result.score_seconds:.2f} s, "
        f"intervals for the top rows {result.detail_seconds:.2f} s."
    )
    shown = _dash_missing(
        result.table.head(500).copy(), ["roc_auc", "ci_low", "ci_high", "average_precision"]
    )
    shown["baseline"] = shown["baseline"].fillna("— (α = 0: no baseline)")
    st.dataframe(
        shown,
        hide_index=True,
        key="eval-sweep-table",
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
        },
    )
    st.caption(
        "CI and AP are computed for the top rows only (bootstrap is slow); '–' marks the rest."
    )
    ranks = [int(r) for r in result.table["rank"]]
    rank_col, name_col, save_col = st.columns([1, 2, 1], vertical_alignment="bottom")
    save_rank = rank_col.selectbox(
        "Row to save", ranks, key="eval-sweep-save-rank", help="Rank 1 is the best row."
    )
    row = result.table[result.table["rank"] == save_rank].iloc[0]
    name = name_col.text_input("Prompt set name", f"sweep: {dataset}", key="eval-sweep-save-name")
    if save_col.button("Save row as prompt set", key="eval-sweep-save", width="stretch"):
        try:
            stored_set = save_prompt_set(
                db,
                PromptSet(
                    name=name,
                    model=ModelRef(picked[0], picked[1]),
                    reward=evaluation.sweep_spec(row),
                    environment=dataset,
                    created_by=current_identity().email,
                ),
            )
        except VlmrmError as exc:
            st.error(md_escape(exc))
        else:
            st.success(md_escape(f"Saved prompt set {stored_set.name!r}."))


def _dash_missing(table: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """``table`` with the given metric columns as text: 3 decimals, or "–" where undefined."""
    table = table.copy()
    for column in columns:
        if column in table.columns:
            table[column] = [
                "–" if v is None or v != v else f"{float(v):.3f}" for v in table[column]
            ]
    return table


def _download_reward(result: evaluation.Evaluation, sets: dict[str, PromptSet]) -> None:
    """The inspected row as a reward file, with this evaluation as its provenance."""
    prompt_set = sets.get(result.prompt_set)
    model = MODEL_OF_IDENTITY.get(result.model)
    if prompt_set is None or model is None:
        return
    try:
        ref = with_checkpoint_hash(ModelRef(model[0], model[1], aspect=prompt_set.model.aspect))
    except VlmrmError as exc:
        st.error(md_escape(exc))
        return
    provenance = evaluation.evaluation_provenance(result, dataset, LABELS_USED)
    st.download_button(
        "Download reward file",
        reward_file_text(ref, prompt_set.reward, provenance),
        file_name=reward_file_name(prompt_set.name),
        mime="application/json",
        key="eval-download-reward",
        help="The model, the reward and this evaluation, as one JSON file: load it in any "
        "training script with vlmrm_core.load_reward(path).",
    )


_prompt_sets_section()
adapt_section(
    db,
    dataset=dataset,
    labelled=labelled,
    clip=clip,
    picked=picked,
    prompt_sets=starting_sets(db, dataset),
    created_by=current_identity().email,
    progress=progress_bar,
)
_sweep_section()
