"""Evaluate: how close each reward is to the human labels (EPIC, AP, ROC AUC), and prompt sweeps.

Labels are the consensus of the current labels per frame (mean over labelers); AP, ROC AUC and
the precision–recall curves binarise it at 0.5.
"""

from __future__ import annotations

import streamlit as st

from app.ui import engine, get_model, load_model_or_error, model_picker, progress_bar
from app.ui_lab import frame_embeddings, frame_grid, memo
from vlmrm_core import evaluation, landscape, plots
from vlmrm_core.embedding import PromptError
from vlmrm_core.metrics import ConstantRewardError
from vlmrm_core.models import ClipModel, discover_models
from vlmrm_core.reward_model import RewardSpec
from vlmrm_core.store import (
    PromptSetSpec,
    dataset_frames,
    list_datasets,
    list_prompt_sets,
    save_prompt_set,
)

# Random-init architectures offered for the scaling plot when no trained weights are around.
# (Comments, not docstrings: Streamlit's magic would print a bare string on the page.)
EXTRA_RANDOM_ARCHS = ("ViT-S-32-alt", "ViT-B-32", "ViT-B-16", "ViT-L-14")
N_BOOT = 1000
DEFAULT_ALPHAS = "0, 0.25, 0.5, 0.75, 1"

st.title("📏 Evaluate")
st.caption(
    "EPIC distance between each reward and the human labels (0 = same ordering and spacing as "
    "the labels, ≈ 0.71 = unrelated; lower is better), with a bootstrap 95% interval."
)

db = engine()
labelled_sets = [d for d in list_datasets(db) if d.n_labelled > 0]
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
    evaluation.check_labels(labelled.labels)
except (ConstantRewardError, ValueError) as exc:
    st.error(f"Can't evaluate on {dataset}: {exc}")
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


def _spec_key(spec: PromptSetSpec) -> tuple[object, ...]:
    return (
        tuple(spec.goal_prompts),
        tuple(spec.baseline_prompts),
        spec.alpha,
        spec.reward_kind,
        tuple(spec.negatives),
        spec.tau,
        spec.beta,
        spec.aspect,
    )


def _evaluate(
    model: tuple[str, str], loaded: ClipModel | None, sets: list[PromptSetSpec]
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
            _spec_key(prompt_set),
        )

        def compute(prompt_set: PromptSetSpec = prompt_set) -> evaluation.Evaluation | str:
            clip_model = loaded if loaded is not None else get_model(*model)
            try:
                spec = RewardSpec.from_prompt_set(prompt_set)
                x = frame_embeddings(db, clip_model, labelled.hashes, prompt_set.aspect)
                return evaluation.evaluate_spec(
                    clip_model, x, labelled.labels, spec, prompt_set=prompt_set.name, n_boot=N_BOOT
                )
            except (PromptError, ValueError) as exc:
                return f"{prompt_set.name} with {model[0]}: {exc}"

        try:
            result = memo("_eval_results", key, compute)
        except Exception as exc:  # a model that fails to load names its own fix
            st.error(f"Could not load {model[0]} / {model[1] or 'random init'}: {exc}")
            return results
        if isinstance(result, str):
            st.error(result)
        else:
            results.append(result)
    return results


def _prompt_sets_section() -> None:
    st.subheader("Prompt sets")
    sets = list_prompt_sets(db)
    if not sets:
        st.info("No prompt sets yet: save one in the **Prompt Lab**, or run a sweep below.")
        return
    names = [p.name for p in sets]
    chosen = st.multiselect(
        "Prompt sets", names, default=names[: min(3, len(names))], key="eval-prompt-sets"
    )
    if not chosen:
        st.info("Choose at least one prompt set to evaluate.")
        return
    selected = [p for p in sets if p.name in chosen]
    evaluations = _evaluate(picked, clip, selected)
    for label in extra_labels:
        evaluations += _evaluate(extra_options[label], None, selected)
    if not evaluations:
        return
    for warning in dict.fromkeys(w for e in evaluations for w in e.warnings):
        st.warning(warning)

    table = evaluation.evaluation_table(evaluations)
    number = {
        "EPIC distance": "EPIC distance",
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
            c: st.column_config.NumberColumn(label, format="%.3f", width="small")
            for c, label in number.items()
        }
        | {
            "prompt set": st.column_config.TextColumn(width="medium", pinned=True),
            "model": st.column_config.TextColumn(width="medium"),
            "parameters": st.column_config.NumberColumn(format="compact", width="small"),
            "n labelled": st.column_config.NumberColumn("n", width="small"),
        },
    )

    best = evaluation.best_evaluation(evaluations)
    row_names = [f"{e.prompt_set} · {e.model}" for e in evaluations]
    inspected_name = st.selectbox(
        "Inspect",
        row_names,
        index=evaluations.index(best) if best is not None else 0,
        key="eval-inspect",
        help="The metrics, PR curve and disagreeing frames below are of this row "
        "(the best one, lowest EPIC, by default).",
    )
    inspected = evaluations[row_names.index(inspected_name)]
    m = inspected.metrics
    cols = st.columns(4)
    if m.epic is None:
        cols[0].metric("EPIC distance", "undefined")
        st.warning(m.note)
    else:
        interval = (
            f"95% CI {m.ci_low:.3f}–{m.ci_high:.3f}" if m.ci_low is not None else "no interval"
        )
        cols[0].metric("EPIC distance", f"{m.epic:.3f}", help=interval)
        cols[0].caption(interval)
    cols[1].metric(
        "Average precision",
        "undefined" if m.average_precision is None else f"{m.average_precision:.3f}",
    )
    cols[2].metric("ROC AUC", "undefined" if m.roc_auc is None else f"{m.roc_auc:.3f}")
    cols[3].metric("Labelled frames", m.n)

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

    _disagreements(inspected)


def _disagreements(inspected: evaluation.Evaluation) -> None:
    st.subheader("Where reward and labels disagree most")
    k = st.slider("Frames to show", 1, min(24, labelled.n), min(8, labelled.n), key="eval-k")
    try:
        worst = evaluation.disagreements(inspected.rewards, labelled.labels, k)
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
        columns=4,
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
            st.error(str(exc))
            return
        st.session_state["eval-sweep-result"] = (context, result)

    stored = st.session_state.get("eval-sweep-result")
    if stored is None or stored[0] != context:
        return
    result: evaluation.SweepResult = stored[1]
    for warning in result.warnings:
        st.warning(warning)
    best = result.best()
    if best is None:
        st.error("No combination has a defined EPIC distance (every reward was constant).")
        return
    metric_col, text_col = st.columns([1, 3])
    metric_col.metric("Best sweep EPIC distance", f"{best['epic']:.3f}")
    with text_col:
        st.text(
            f"goal: {best['goal']}\n"
            f"baseline: {best['baseline'] if isinstance(best['baseline'], str) else '(none, α = 0)'}\n"
            f"α = {best['alpha']:g}"
        )
    st.caption(
        f"{len(result.table)} combinations of {result.n_prompts} prompts on {result.n_frames} "
        f"frames: text encoding {result.text_seconds:.2f} s, scoring {result.score_seconds:.2f} s, "
        f"intervals for the top rows {result.detail_seconds:.2f} s."
    )
    shown = result.table.head(500).copy()
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
            "goal": st.column_config.TextColumn(width="medium"),
            "alpha": st.column_config.NumberColumn("α", format="%.2f"),
            "epic": st.column_config.NumberColumn("EPIC distance", format="%.3f"),
            "roc_auc": st.column_config.NumberColumn("ROC AUC", format="%.3f"),
            "ci_low": st.column_config.NumberColumn("CI low", format="%.3f"),
            "ci_high": st.column_config.NumberColumn("CI high", format="%.3f"),
            "average_precision": st.column_config.NumberColumn("AP", format="%.3f"),
        },
    )
    name_col, save_col = st.columns([2, 1], vertical_alignment="bottom")
    name = name_col.text_input(
        "Name for the best combination", f"sweep: {dataset}", key="eval-sweep-save-name"
    )
    if save_col.button("Save best as prompt set", key="eval-sweep-save", width="stretch"):
        try:
            stored_set = save_prompt_set(
                db,
                evaluation.sweep_prompt_set(best, name, model_name=picked[0], pretrained=picked[1]),
            )
        except ValueError as exc:
            st.error(str(exc))
        else:
            st.success(f"Saved prompt set {stored_set.name!r}.")


_prompt_sets_section()
_sweep_section()
