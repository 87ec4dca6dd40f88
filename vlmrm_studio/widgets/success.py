"""Train page: the human-labelled success rate per evaluation checkpoint, next to the CLIP and
ground-truth returns (Rocamonde Fig. 4, right), a reward-hacking flag, and one click to label a
run's evaluation frames. Display only: the numbers are :mod:`vlmrm_core.training.success`."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from vlmrm_core.store import Engine, run_metrics
from vlmrm_core.store.run_evals import (
    RunEvalDataset,
    parse_eval_name,
    run_eval_datasets,
    run_eval_labels,
)
from vlmrm_core.training.success import (
    CheckpointSuccess,
    reward_hacking_flag,
    success_by_checkpoint,
)
from vlmrm_studio.widgets.frames import CURRENT_DATASET
from vlmrm_studio.widgets.text import md_escape
from vlmrm_studio.widgets.train_plots import CLIP_COLOR, GT_COLOR

__all__ = [
    "label_target",
    "run_eval_navigation",
    "success_figure",
    "success_section",
    "success_table",
]

K = "train-success-"
SUCCESS_COLOR = "#2ca02c"
LABEL_PAGE = Path(__file__).parents[1] / "views" / "label" / "page.py"
INTERVALS = {
    "wilson": "Wilson (labelled frames as independent)",
    "bootstrap": "bootstrap over episodes",
}


def label_target(evals: list[RunEvalDataset]) -> RunEvalDataset | None:
    """The evaluation to label next: the one with the fewest labelled frames (the latest on a
    tie), so every checkpoint gets a success rate before any gets a precise one."""
    todo = [d for d in evals if d.n_labelled < d.n_frames]
    if not todo:
        return None
    return min(todo, key=lambda d: (d.n_labelled, -d.step))


def success_table(points: list[CheckpointSuccess]) -> pd.DataFrame:
    """One row per checkpoint, display titles, "–" for what is not known yet."""

    def fmt(v: float | None, digits: int = 3) -> str:
        return "–" if v is None else f"{v:.{digits}f}"

    return pd.DataFrame(
        [
            {
                "step": p.step,
                "labelled": f"{p.n_labelled} / {p.n_frames}" if p.n_frames else str(p.n_labelled),
                "success rate": fmt(p.rate, 2),
                "95% CI": "–" if p.ci_low is None else f"{p.ci_low:.2f}–{p.ci_high:.2f}",
                "episodes labelled": p.n_episodes,
                "CLIP return": fmt(p.clip_return),
                "ground-truth return": fmt(p.gt_return),
                "dataset": p.dataset or "",
            }
            for p in points
        ]
    )


def success_figure(points: list[CheckpointSuccess]) -> go.Figure:
    """Success rate (with its interval), CLIP return and ground-truth return against steps."""
    fig = make_subplots(
        rows=3,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.06,
        subplot_titles=("labelled success rate", "CLIP return", "ground-truth return"),
    )
    rated = [p for p in points if p.rate is not None]
    if rated:
        rate = np.array([p.rate for p in rated])
        fig.add_trace(
            go.Scatter(
                x=[p.step for p in rated],
                y=rate,
                mode="lines+markers",
                name="success rate",
                line={"color": SUCCESS_COLOR},
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": np.array([p.ci_high for p in rated]) - rate,
                    "arrayminus": rate - np.array([p.ci_low for p in rated]),
                },
            ),
            row=1,
            col=1,
        )
    for row, attr, name, color in (
        (2, "clip_return", "CLIP return", CLIP_COLOR),
        (3, "gt_return", "ground-truth return", GT_COLOR),
    ):
        known = [p for p in points if getattr(p, attr) is not None]
        if known:
            fig.add_trace(
                go.Scatter(
                    x=[p.step for p in known],
                    y=[getattr(p, attr) for p in known],
                    mode="lines+markers",
                    name=name,
                    line={"color": color},
                ),
                row=row,
                col=1,
            )
    fig.update_yaxes(range=[0, 1.05], row=1, col=1)
    fig.update_xaxes(title_text="environment steps", row=3, col=1)
    fig.update_layout(height=560, showlegend=False, margin={"l": 10, "r": 10, "t": 30, "b": 10})
    return fig


def _eval_returns(db: Engine, run_id: int) -> pd.DataFrame:
    metrics = run_metrics(db, run_id)
    columns = {"eval/clip_return": "clip_return", "eval/gt_return": "gt_return"}
    if "step" not in metrics.columns or not set(columns) & set(metrics.columns):
        return pd.DataFrame(columns=["step", "clip_return", "gt_return"])
    table = metrics[["step", *[c for c in columns if c in metrics.columns]]].rename(columns=columns)
    present = [c for c in ("clip_return", "gt_return") if c in table.columns]
    return table.dropna(subset=present, how="all")


def _open_label_page(target: RunEvalDataset) -> None:
    """Point the Label page at an evaluation dataset and go there (when pages are navigable)."""
    state = st.session_state
    state["label-show-evals"] = True  # the Label page hides training evaluations otherwise
    state.pop("label-dataset", None)
    state[CURRENT_DATASET] = target.name
    state[f"{K}notice"] = target.name
    # Under the app's navigation this opens Label; a page run on its own can't switch pages.
    with contextlib.suppress(st.errors.StreamlitAPIException):
        st.switch_page(LABEL_PAGE)


def success_section(db: Engine, run_id: int) -> None:
    """The success-rate tab of one run."""
    evals = run_eval_datasets(db, run_id)
    if not evals:
        st.info("No evaluation frames stored yet: set *Evaluate every* when starting a run.")
        return
    target = label_target(evals)
    left, right = st.columns([2, 3], vertical_alignment="bottom")
    if target is not None:
        if left.button(
            "🏷️ Label this run's evaluations",
            key=f"{K}label",
            help="Opens the Label page on the evaluation with the fewest labels "
            f"({target.name}). Label a few frames of each evaluation: the success rate and its "
            "interval appear here.",
        ):
            _open_label_page(target)
    else:
        left.caption("Every evaluation frame of this run is labelled.")
    if name := st.session_state.pop(f"{K}notice", None):
        st.success(md_escape(f"Dataset {name} is selected on the Label page: open Label to start."))
    method = right.radio(
        "Interval",
        list(INTERVALS),
        format_func=INTERVALS.get,
        horizontal=True,
        key=f"{K}method",
    )
    labels = run_eval_labels(db, run_id)
    points = success_by_checkpoint(
        labels,
        _eval_returns(db, run_id),
        frames={d.step: d.n_frames for d in evals},
        datasets={d.step: d.name for d in evals},
        method="bootstrap" if method == "bootstrap" else "wilson",
    )
    flag = reward_hacking_flag(points) if len(points) >= 2 else None
    if flag is not None and flag.flagged:
        st.error(flag.reason, icon=":material/warning:")
    elif flag is not None:
        st.caption(f"Reward-hacking check (last {len(flag.window)} evaluations): {flag.reason}.")
    if labels.empty:
        st.caption(
            "No evaluation frame is labelled yet: the success rate appears once some are "
            "(a frame labelled success counts as a success; the rate is per checkpoint)."
        )
    st.plotly_chart(success_figure(points), key=f"{K}chart-{run_id}")
    st.dataframe(success_table(points), hide_index=True, key=f"{K}table-{run_id}")


def _go_to_dataset(widget_key: str, name: str) -> None:
    st.session_state[widget_key] = name
    st.session_state[CURRENT_DATASET] = name


def run_eval_navigation(db: Engine, dataset: str, widget_key: str, offered: Sequence[str]) -> None:
    """On the Label page, for a training-evaluation dataset: which run and step it is, and a
    button to the run's next evaluation (among the ``offered`` datasets) with frames left."""
    parsed = parse_eval_name(dataset)
    if parsed is None:
        return
    run_id, step = parsed
    evals = run_eval_datasets(db, run_id)
    if not any(d.name == dataset for d in evals):
        return
    later = [
        d for d in evals if d.name != dataset and d.name in offered and d.n_labelled < d.n_frames
    ]
    left, right = st.columns([3, 1], vertical_alignment="center")
    left.caption(
        f"Evaluation of training run {run_id} at step {step:,}: its labels give the run's "
        f"success rate on Train. {len(later)} other evaluation(s) of this run have frames left."
    )
    if later:
        target = min(later, key=lambda d: (d.n_labelled, d.step))
        right.button(
            f"Next: step {target.step:,}",
            key="label-next-eval",
            on_click=_go_to_dataset,
            args=(widget_key, target.name),
        )
