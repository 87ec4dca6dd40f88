"""The Episode view's Plotly figure: reward against time step, one line per reward source.

A builder only (no Streamlit). User strings (prompt-set names, frame names) are HTML-escaped
with :func:`vlmrm_studio.widgets.plots.plain`, as in every other figure of the app.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

from vlmrm_core.metrics.classification import SUCCESS_THRESHOLD
from vlmrm_studio.widgets.plots import (
    MARKER_POINTS,
    WEBGL_POINTS,
    curve_colors,
    normalise,
    plain,
)

__all__ = ["LABEL_TRACE_PREFIX", "episode_figure"]

LABEL_TRACE_PREFIX = "labelled "
"""Names of the traces that mark labelled frames start with this (tests and clicks skip them)."""


def episode_figure(
    steps: np.ndarray,
    curves: Mapping[str, np.ndarray],
    *,
    rows: np.ndarray,
    names: Sequence[str],
    labels: Mapping[int, float] | None = None,
    current_step: int | None = None,
    normalize: bool = False,
    layout: Mapping[str, object] | None = None,
) -> go.Figure:
    """Reward along one episode: one line per source, labelled frames and the scrubber's step.

    Args:
        steps: the episode's time steps, ascending (the x axis).
        curves: source name → one value per step.
        rows: each step's frame index in the dataset (the points' ``customdata``, so a click
            names a frame).
        names: each step's frame name (hover text).
        labels: position in ``steps`` → consensus label, for the labelled frames; drawn as
            triangles along the bottom (up: success, label ≥ 0.5; down: failure).
        current_step: the scrubber's step: a vertical line and a ring on every curve.
        normalize: min–max scale each curve to [0, 1] (sources on different scales).
        layout: more layout settings, applied after the figure's own.

    Returns:
        The figure.
    """
    x = np.asarray(steps, dtype=np.float64)
    frames = np.asarray(rows, dtype=np.float64)
    text = np.array([plain(n) for n in names]) if len(names) else np.array([], dtype="<U1")
    scatter = go.Scattergl if len(x) * max(1, len(curves)) > WEBGL_POINTS else go.Scatter
    mode = "lines+markers" if len(x) <= MARKER_POINTS else "lines"
    colors = curve_colors(len(curves)) if len(curves) > 1 else ["#1f77b4"]
    traces: list[go.Scatter] = []
    drawn: list[np.ndarray] = []
    for color, (name, values) in zip(colors, curves.items(), strict=True):
        y = np.asarray(values, dtype=np.float64)
        if normalize:
            y = normalise(y)
        drawn.append(y)
        traces.append(
            scatter(
                x=x,
                y=y,
                name=plain(name),
                mode=mode,
                line={"color": color},
                marker={"color": color, "size": 5},
                customdata=frames,
                text=text,
                hovertemplate="step %{x}<br>%{text}<br>reward %{y:.4f}"
                "<extra>%{fullData.name}</extra>",
            )
        )
    low = float(min(np.nanmin(y) for y in drawn)) if drawn and len(x) else 0.0
    traces.extend(_label_traces(x, frames, labels or {}, low))
    if current_step is not None and drawn:
        at = np.flatnonzero(x == float(current_step))
        if at.size:
            i = int(at[0])
            traces.append(
                go.Scatter(
                    x=[x[i]] * len(drawn),
                    y=[float(y[i]) for y in drawn],
                    mode="markers",
                    name="scrubber",
                    showlegend=False,
                    customdata=[frames[i]] * len(drawn),
                    marker={"size": 13, "color": "rgba(0,0,0,0)", "line": {"width": 2}},
                    hoverinfo="skip",
                )
            )
    y_title = "reward (min–max scaled per curve)" if normalize else "reward"
    settings: dict[str, object] = {
        "xaxis": {"title": {"text": "time step"}},
        "yaxis": {"title": {"text": y_title}},
        "hovermode": "closest",
        "legend": {"orientation": "h", "yanchor": "bottom", "y": 1.02, "xanchor": "left", "x": 0},
        "showlegend": True,
        "margin": {"l": 10, "r": 10, "t": 40, "b": 10},
    }
    if current_step is not None:
        settings["shapes"] = [
            {
                "type": "line",
                "xref": "x",
                "yref": "paper",
                "x0": current_step,
                "x1": current_step,
                "y0": 0,
                "y1": 1,
                "line": {"dash": "dot", "width": 1.5, "color": "#555"},
            }
        ]
    settings.update(layout or {})
    return go.Figure(data=traces, layout=settings)


def _label_traces(
    x: np.ndarray, frames: np.ndarray, labels: Mapping[int, float], y: float
) -> list[go.Scatter]:
    """Triangles along the bottom of the chart at the labelled steps, successes and failures
    apart (a marker on a curve would hide which curve it belongs to)."""
    traces = []
    for name, symbol, color, keep in (
        ("success", "triangle-up", "#2ca02c", lambda v: v >= SUCCESS_THRESHOLD),
        ("failure", "triangle-down", "#d62728", lambda v: v < SUCCESS_THRESHOLD),
    ):
        where = sorted(i for i, v in labels.items() if keep(v))
        if not where:
            continue
        traces.append(
            go.Scatter(
                x=x[where],
                y=[y] * len(where),
                mode="markers",
                name=f"{LABEL_TRACE_PREFIX}{name}",
                marker={"symbol": symbol, "size": 10, "color": color},
                customdata=frames[where],
                text=[f"label {labels[i]:g}" for i in where],
                hovertemplate="step %{x}<br>%{text}<extra></extra>",
            )
        )
    return traces
