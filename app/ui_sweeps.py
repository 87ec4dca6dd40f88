"""The Train page's sweep view: trials of a sweep, curves per arm (mean ± spread over seeds),
and the ranking of rewards by final ground-truth return.

Computation lives in :mod:`vlmrm_core.scale.sweep_stats`; this module only draws.
"""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from app.text import md_escape
from vlmrm_core.scale.sweep_stats import (
    CLIP_RETURN,
    GT_RETURN,
    grouped_curves,
    ranking,
    trial_infos,
)


def sweeps_section(db: object) -> None:
    """A "Sweeps" expander: pick a sweep, see its trials, curves and ranking (nothing if none)."""
    from vlmrm_core.store import get_run, run_metrics
    from vlmrm_core.store.sweeps import list_sweeps, sweep_run_ids

    sweeps = list_sweeps(db)
    if not sweeps:
        return
    with st.expander(f"Sweeps ({len(sweeps)})"):
        labels = {s.id: f"#{s.id} · {s.name} · {s.status} · {s.engine}" for s in sweeps}
        chosen = st.selectbox(
            "Sweep", list(labels), format_func=lambda i: labels[i], key="train-sweep"
        )
        sweep = next(s for s in sweeps if s.id == chosen)
        runs = [get_run(db, r) for r in sweep_run_ids(db, sweep.id)]
        if sweep.error:
            st.error(md_escape(sweep.error))
        if not runs:
            st.info("No trial has started yet.")
            return
        trials = trial_infos(runs)
        st.dataframe(
            [
                {
                    "run": r.id,
                    "reward": t.group,
                    "α": t.alpha,
                    "seed": t.seed,
                    "status": r.status,
                    "steps": f"{r.steps_done:,} / {r.total_steps:,}",
                }
                for r, t in zip(runs, trials, strict=True)
            ],
            hide_index=True,
        )
        metrics = {r.id: run_metrics(db, r.id) for r in runs}
        for column, title in ((GT_RETURN, "Ground-truth return"), (CLIP_RETURN, "CLIP return")):
            curves = grouped_curves(trials, metrics, column)
            if not curves.empty:
                st.plotly_chart(_band_figure(curves, title), key=f"train-sweep-{column}")
        table = ranking(trials, metrics)
        if not table.empty:
            st.caption("Rewards ranked by final ground-truth return (mean over seeds)")
            st.dataframe(table, hide_index=True)


def _band_figure(curves: object, title: str) -> go.Figure:
    figure = go.Figure()
    for arm, part in curves.groupby("arm", sort=False):  # type: ignore[attr-defined]
        upper, lower = part["mean"] + part["std"], part["mean"] - part["std"]
        figure.add_trace(
            go.Scatter(
                x=list(part["step"]) + list(part["step"])[::-1],
                y=list(upper) + list(lower)[::-1],
                fill="toself",
                opacity=0.2,
                line={"width": 0},
                showlegend=False,
                hoverinfo="skip",
                name=str(arm),
            )
        )
        figure.add_trace(go.Scatter(x=part["step"], y=part["mean"], mode="lines", name=str(arm)))
    figure.update_layout(title=title, xaxis_title="environment step", yaxis_title="return")
    return figure
