"""Evaluate page: "Adapt to labels" (cross-validated adapted reward, learning curve, save and
download) and whether the two best prompt sets are told apart by the labels yet.

Display only: the fitting and the honest evaluation are :mod:`vlmrm_core.reward.adaptation`, the
separation estimate :mod:`vlmrm_core.reward.active_labels`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from vlmrm_core.clip.models import ClipModel
from vlmrm_core.errors import VlmrmError
from vlmrm_core.metrics import ConstantRewardError
from vlmrm_core.reward import adaptation
from vlmrm_core.reward.active_labels import separation_estimate
from vlmrm_core.reward.adaptation import PreferenceReport
from vlmrm_core.reward.model import score_embeddings
from vlmrm_core.reward.spec import ModelRef
from vlmrm_core.services.evaluation import Evaluation, LabelledFrames
from vlmrm_core.services.landscape import reward_values
from vlmrm_core.services.preferences import comparison_data, fit_preference_reward
from vlmrm_core.store import (
    BuiltinPromptSetError,
    Engine,
    PromptSet,
    PromptSetExistsError,
    current_labels,
    dataset_frames,
    save_prompt_set,
)
from vlmrm_studio.widgets.embeddings import frame_embeddings
from vlmrm_studio.widgets.reward_download import reward_download_button
from vlmrm_studio.widgets.text import md_escape

__all__ = [
    "adaptation_table",
    "adapt_section",
    "fit_to_comparisons_section",
    "preference_table",
    "learning_curve_figure",
    "separation_note",
]

K = "eval-adapt-"
"""Prefix of this section's widget and session-state keys."""
PK = "eval-prefs-"
"""Prefix of the "Fit to comparisons" section's widget and session-state keys."""
DEFAULT_FOLDS = 5
N_BOOT = 1000

ZERO_SHOT_COLOR = "#7f7f7f"
ADAPTED_COLOR = "#2ca02c"
PROBE_COLOR = "#ff7f0e"


# --------------------------------------------------------------------------------------------
# Plain helpers (no Streamlit): tested directly
# --------------------------------------------------------------------------------------------


def adaptation_table(report: adaptation.AdaptationReport) -> pd.DataFrame:
    """The report as the page's table: one row per reward, display titles, no NaN."""
    rows = []
    for row in report.table():
        rows.append(
            {
                "reward": row["reward"],
                "held-out EPIC": row["epic_distance"],
                "EPIC 95% CI": _interval(row["ci_low"], row["ci_high"]),
                "AP": _fmt(row["average_precision"]),
                "ROC AUC": _fmt(row["roc_auc"]),
                "n labels": report.n_labels,
                "folds": report.folds,
                "note": row["note"],
            }
        )
    return pd.DataFrame(rows)


def preference_table(report: PreferenceReport) -> pd.DataFrame:
    """Held-out pair accuracy with its interval per reward: zero-shot, Bradley–Terry pulled
    toward the prompt, plain Bradley–Terry probe."""
    rows = []
    for name, result in (
        ("zero-shot (the prompt set)", report.zero_shot),
        ("Bradley–Terry (prompt prior)", report.adapted),
        ("plain Bradley–Terry (no prior)", report.probe),
    ):
        rows.append(
            {
                "reward": name,
                "held-out pair accuracy": _fmt(result.accuracy),
                "95% CI": _interval(result.ci_low, result.ci_high),
                "decided pairs": result.n_pairs,
                "equal": result.n_equal,
            }
        )
    return pd.DataFrame(rows)


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def _interval(low: float | None, high: float | None) -> str:
    return "–" if low is None or high is None else f"{low:.3f}–{high:.3f}"


def learning_curve_figure(curve: adaptation.LearningCurve) -> go.Figure:
    """Held-out EPIC distance against labels used: adapted, plain probe, zero-shot line."""
    fig = go.Figure()
    x = list(curve.n_labels)
    for values, name, color in (
        (curve.adapted, "adapted (prompt prior)", ADAPTED_COLOR),
        (curve.probe, "plain probe (no prior)", PROBE_COLOR),
    ):
        if any(v is not None for v in values):
            fig.add_trace(
                go.Scatter(
                    x=x,
                    y=[np.nan if v is None else v for v in values],
                    mode="lines+markers",
                    name=name,
                    line={"color": color},
                )
            )
    if curve.zero_shot is not None:
        fig.add_hline(
            y=curve.zero_shot,
            line_dash="dot",
            line_color=ZERO_SHOT_COLOR,
            annotation_text="zero-shot",
        )
    fig.update_xaxes(title_text="labels used for fitting (per training side)")
    fig.update_yaxes(title_text="held-out EPIC distance (lower is better)")
    fig.update_layout(
        height=360, margin={"l": 10, "r": 10, "t": 10, "b": 10}, legend={"orientation": "h"}
    )
    return fig


def separation_text(a: Evaluation, b: Evaluation, labels: np.ndarray, n_boot: int = N_BOOT) -> str:
    """One sentence: do the two rewards' EPIC intervals overlap, and how many more labels would
    separate them (:func:`vlmrm_core.reward.active_labels.separation_estimate`)."""
    est = separation_estimate(a.rewards, b.rewards, labels, n_boot=n_boot)
    names = f"{a.prompt_set} · {a.model} and {b.prompt_set} · {b.model}"
    intervals = (
        f"EPIC {est.epic_a:.3f} ({est.ci_a[0]:.3f}–{est.ci_a[1]:.3f}) vs "
        f"{est.epic_b:.3f} ({est.ci_b[0]:.3f}–{est.ci_b[1]:.3f})"
    )
    if not est.overlap:
        return f"The top two, {names}, are separated by the labels: {intervals}."
    if est.labels_needed is None:
        return (
            f"The top two, {names}, have the same EPIC distance ({intervals}): "
            "more labels would not tell them apart."
        )
    return (
        f"The top two, {names}, still overlap: {intervals}. Roughly {est.more_labels:,} more "
        f"labels (about {est.labels_needed:,} in all) would separate them, if the gap stays "
        "as it is (intervals shrink as 1/√n; a planning guide, not a test)."
    )


# --------------------------------------------------------------------------------------------
# Streamlit sections
# --------------------------------------------------------------------------------------------


def separation_note(evaluations: Sequence[Evaluation], labels: np.ndarray) -> None:
    """Under the Evaluate table: whether the two best rows are told apart by the labels."""
    scored = [e for e in evaluations if e.metrics.epic_distance is not None]
    if len(scored) < 2:
        return
    a, b = sorted(scored, key=lambda e: e.metrics.epic_distance)[:2]  # type: ignore[arg-type, return-value]
    try:
        text = separation_text(a, b, labels)
    except (ConstantRewardError, ValueError) as exc:
        st.caption(md_escape(f"No separation estimate for the top two: {exc}"))
        return
    st.info(md_escape(text), icon=":material/compare_arrows:")


def adapt_section(
    db: Engine,
    *,
    dataset: str,
    labelled: LabelledFrames,
    clip: ClipModel,
    picked: tuple[str, str],
    prompt_sets: Sequence[PromptSet],
    created_by: str | None = None,
    progress: Callable[[str], tuple[Callable[[int, int | None, str], None], Callable[[], None]]]
    | None = None,
) -> None:
    """The "Adapt to labels" section of the Evaluate page.

    Args:
        db: the project database.
        dataset: the labelled dataset.
        labelled: its consensus labels.
        clip: the page's model (the adapted reward is fitted on its embeddings).
        picked: ``(architecture, pretrained)`` of that model ('' for random init).
        prompt_sets: the starting points offered.
        created_by: recorded with a saved prompt set.
        progress: the app's progress bar factory (``vlmrm_studio.widgets.common.progress_bar``).
    """
    st.subheader("Adapt to labels")
    st.caption(
        "Fit a linear reward on the cached image embeddings, pulled toward the starting prompt "
        "set's own direction so that few labels move it only as far as they justify (strength "
        "chosen by cross-validation). Scored honestly: k-fold cross-validation over whole "
        "episodes (or state-sweep blocks), every metric on held-out folds."
    )
    if not prompt_sets:
        st.info(
            "Save a prompt set first (Prompt Lab, or the prompt search below): it is the start."
        )
        return
    start, folds, run = _start_controls(prompt_sets, K, "Adapt")
    context = (dataset, labelled.hashes, tuple(labelled.labels), clip.identity, start, folds)
    if run:
        try:
            result = _run_adaptation(db, dataset, labelled, clip, start, folds, progress)
        except (VlmrmError, ValueError) as exc:
            st.error(md_escape(f"Can't adapt {start.name!r} to {dataset}'s labels: {exc}"))
            return
        st.session_state[f"{K}result"] = (context, result)
        st.session_state.pop(f"{K}pending", None)
    stored = st.session_state.get(f"{K}result")
    if stored is None or stored[0] != context:
        st.caption("Pick a starting prompt set and press **Adapt**.")
        return
    report: adaptation.AdaptationReport = stored[1]
    _show_report(db, report, dataset, labelled, clip, picked, start, created_by)


def _start_controls(
    prompt_sets: Sequence[PromptSet], prefix: str, action: str
) -> tuple[PromptSet, int, bool]:
    """The row both fitting sections start with: the starting prompt set, the folds and the
    button (labelled ``action``). Returns the prompt set, the folds and whether it was clicked.
    """
    names = [p.name for p in prompt_sets]
    left, mid, right = st.columns([3, 1, 1], vertical_alignment="bottom")
    start_name = left.selectbox("Starting prompt set", names, key=f"{prefix}start")
    folds = int(
        mid.number_input(
            "Folds", min_value=2, max_value=20, value=DEFAULT_FOLDS, key=f"{prefix}folds"
        )
    )
    run = right.button(action, key=f"{prefix}run", type="primary", width="stretch")
    start = next(p for p in prompt_sets if p.name == start_name)
    return start, folds, run


def _run_adaptation(
    db: Engine,
    dataset: str,
    labelled: LabelledFrames,
    clip: ClipModel,
    start: PromptSet,
    folds: int,
    progress: Any,
) -> adaptation.AdaptationReport:
    from vlmrm_core.reward.model import reward_direction

    aspect = start.model.aspect
    x = frame_embeddings(db, clip, labelled.hashes, aspect).astype(np.float64)
    zero_shot = reward_values(score_embeddings(clip, x, start.reward))
    prior = reward_direction(clip, start.reward, x)
    groups = adaptation.frame_groups(list(labelled.hashes), dataset_frames(db, dataset))
    update, clear = progress("Adapting") if progress is not None else (None, None)
    try:
        if update:
            update(0, 2, f"{folds}-fold cross-validation of the adapted reward and the probe")
        report = adaptation.cross_validate_adaptation(
            x, labelled.labels, groups, prior, zero_shot, folds=folds, n_boot=N_BOOT, curve=False
        )
        if update:
            update(1, 2, "learning curve (held-out EPIC vs labels used)")
        curve = adaptation.learning_curve(
            x, labelled.labels, groups, prior, folds=folds, zero_shot=zero_shot
        )
        if update:
            update(2, 2, "done")
    finally:
        if clear:
            clear()
    from dataclasses import replace

    return replace(report, curve=curve)


def _show_report(
    db: Engine,
    report: adaptation.AdaptationReport,
    dataset: str,
    labelled: LabelledFrames,
    clip: ClipModel,
    picked: tuple[str, str],
    start: PromptSet,
    created_by: str | None,
) -> None:
    st.caption(
        f"{report.n_labels} labelled frames in {report.n_groups} groups (episodes, videos or "
        f"state-sweep blocks), {report.folds}-fold cross-validation. Zero-shot has nothing to fit: its "
        "row is the prompt set on all labelled frames."
    )
    for note in report.notes:
        st.caption(md_escape(note))
    st.dataframe(
        adaptation_table(report),
        hide_index=True,
        key=f"{K}table",
        column_config={
            "held-out EPIC": st.column_config.NumberColumn(format="%.3f"),
            "note": st.column_config.TextColumn(width="medium"),
        },
    )
    if report.curve is not None:
        st.markdown("**Learning curve**: held-out EPIC distance vs labels used")
        st.plotly_chart(learning_curve_figure(report.curve), key=f"{K}curve")

    spec = adaptation.adapted_spec(start.reward, report.fit)
    ref = ModelRef(picked[0], picked[1] or None, aspect=start.model.aspect)
    labels_table = current_labels(db, dataset)
    labelers = sorted(set(labels_table["labeler"])) if len(labels_table) else []
    provenance = adaptation.adaptation_provenance(
        report,
        dataset=dataset,
        labelers=labelers,
        hashes=labelled.hashes,
        labels=labelled.labels,
        started_from=f"prompt set {start.name!r}",
        starting_reward=start.reward,
    )
    st.caption(
        md_escape(
            f"Fitted on the embeddings of {clip.identity} (the model chosen above), starting "
            f"from {start.name!r}; the saved reward only works with that model."
        )
    )
    _save_or_download(
        db,
        PromptSet(
            f"adapted: {start.name} on {dataset}"[:120],
            ref,
            spec,
            environment=dataset,
            created_by=created_by,
        ),
        file_name=f"adapted {start.name}",
        provenance=provenance,
        untrained=clip.untrained,
        prefix=K,
        help="The adapted reward (its learned direction), the model and the cross-validated "
        "table as one JSON file: vlmrm_core.load_reward(path) in any training script.",
    )


def _save_or_download(
    db: Engine,
    fitted: PromptSet,
    *,
    file_name: str,
    provenance: dict[str, Any],
    untrained: bool,
    prefix: str,
    help: str,
) -> None:
    """The name box, "Save as prompt set" (with overwrite on a clash) and the reward file
    download of a fitted reward. ``fitted.name`` is the default name (kept until the start
    changes); ``prefix``: the section's state keys."""
    state = st.session_state
    name_col, save_col, download_col = st.columns([3, 1, 1], vertical_alignment="bottom")
    if state.get(f"{prefix}default-name") != fitted.name:  # a new start: a new default
        state[f"{prefix}default-name"] = fitted.name
        state[f"{prefix}name"] = fitted.name
    name = name_col.text_input("Prompt set name", key=f"{prefix}name").strip()
    if save_col.button(
        "Save as prompt set", key=f"{prefix}save", width="stretch", disabled=not name
    ):
        try:
            named = fitted.replace(name=name)
        except VlmrmError as exc:  # e.g. a name too long: one line, nothing saved
            state[f"{prefix}flash"] = ("error", str(exc))
        else:
            _save(db, named, prefix=prefix)
    reward_download_button(
        fitted.model,
        fitted.reward,
        name or file_name,
        key=f"{prefix}download",
        provenance=provenance,
        container=download_col,
        help=help,
    )
    pending = state.get(f"{prefix}pending")
    if pending is not None and pending.name == name:
        st.warning(md_escape(f"A prompt set named {name!r} already exists."))
        if st.button(md_escape(f"Overwrite {name!r}"), key=f"{prefix}overwrite"):
            _save(db, pending, overwrite=True, prefix=prefix)
    if flash := state.pop(f"{prefix}flash", None):
        getattr(st, flash[0])(md_escape(flash[1]))
    if untrained:
        st.caption("Fitted on untrained (random) embeddings: only a demonstration.")


def _save(db: Engine, prompt_set: PromptSet, *, overwrite: bool = False, prefix: str = K) -> None:
    """Save a fitted reward as a prompt set; ``prefix``: the section's state keys."""
    state = st.session_state
    try:
        stored = save_prompt_set(db, prompt_set, overwrite=overwrite)
    except PromptSetExistsError:
        state[f"{prefix}pending"] = prompt_set
        st.rerun()
    except BuiltinPromptSetError as exc:
        state.pop(f"{prefix}pending", None)
        state[f"{prefix}flash"] = ("error", str(exc))
    except VlmrmError as exc:
        state[f"{prefix}flash"] = ("error", str(exc))
    else:
        state.pop(f"{prefix}pending", None)
        state[f"{prefix}flash"] = (
            "success",
            f"Saved the adapted reward as prompt set {stored.name!r}: it is offered on "
            "Evaluate, Train and the Prompt Lab.",
        )
    st.rerun()


def fit_to_comparisons_section(
    db: Engine,
    *,
    dataset: str,
    clip: ClipModel,
    picked: tuple[str, str],
    prompt_sets: Sequence[PromptSet],
    created_by: str | None = None,
) -> None:
    """The "Fit to comparisons" section, beside "Adapt to labels": a Bradley–Terry reward fitted
    to the dataset's pairwise comparisons (:func:`~vlmrm_core.services.preferences.
    fit_preference_reward`), its held-out pair accuracy next to the zero-shot reward's, saved
    as an adapted prompt set or downloaded as a reward file.

    Args:
        db: the project database.
        dataset: the compared dataset.
        clip: the page's model (only its identity is shown; the fit loads the model by name).
        picked: ``(architecture, pretrained)`` of that model ('' for random init).
        prompt_sets: the starting points offered.
        created_by: recorded with a saved prompt set.
    """
    st.subheader("Fit to comparisons")
    st.caption(
        "Fit a Bradley–Terry reward to the pairwise comparisons (Label → Pairs) on the cached "
        "image embeddings, pulled toward the starting prompt set's direction as the adapted "
        "reward is. Scored by held-out pair accuracy: cross-validation over whole episodes (or "
        "sweep blocks); a pair straddling training and test frames is never tested."
    )
    data = comparison_data(db, dataset)
    if data.n_pairs == 0:
        st.info("No comparisons in this dataset yet: compare pairs on **Label → Pairs** first.")
        return
    if not prompt_sets:
        st.info("Save a prompt set first (Prompt Lab): it is the start.")
        return
    start, folds, run = _start_controls(prompt_sets, PK, "Fit")
    ref = ModelRef(picked[0], picked[1] or None, aspect=start.model.aspect)
    context = (dataset, data.pairs.tobytes(), data.outcomes.tobytes(), ref, start, folds)
    if run:
        try:
            fit = fit_preference_reward(
                db, dataset, ref, start.reward, started_from=f"prompt set {start.name!r}",
                folds=folds, n_boot=N_BOOT,
            )  # fmt: skip
        except (VlmrmError, ValueError) as exc:
            st.error(md_escape(f"Can't fit {start.name!r} to {dataset}'s comparisons: {exc}"))
            return
        st.session_state[f"{PK}result"] = (context, fit)
        st.session_state.pop(f"{PK}pending", None)
    stored = st.session_state.get(f"{PK}result")
    if stored is None or stored[0] != context:
        st.caption(
            f"{data.n_pairs} comparison(s) by {len(data.labelers)} labeller(s). Pick a starting "
            "prompt set and press **Fit**."
        )
        return
    fit = stored[1]
    report: PreferenceReport = fit.report
    st.caption(
        f"{report.n_pairs} comparisons, {report.n_held_out} tested held out, "
        f"{report.folds}-fold cross-validation."
    )
    for note in report.notes:
        st.caption(md_escape(note))
    st.dataframe(preference_table(report), hide_index=True, key=f"{PK}table")
    _save_or_download(
        db,
        PromptSet(
            f"preferences: {start.name} on {dataset}"[:120],
            ref,
            fit.spec,
            environment=dataset,
            created_by=created_by,
        ),
        file_name=f"preferences {start.name}",
        provenance=fit.provenance,
        untrained=clip.untrained,
        prefix=PK,
        help="The Bradley–Terry reward, the model and the held-out pair accuracies as one JSON "
        "file: vlmrm_core.load_reward(path) in any training script.",
    )
