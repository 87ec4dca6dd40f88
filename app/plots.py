"""Plotly figures of the Prompt Lab and the Evaluate page. Builders only: no Streamlit here.

Every user string that reaches a figure (frame names, prompt-set names, model names) is
HTML-escaped first: Plotly renders a subset of HTML in hover labels, legends and titles, and
user text must show as typed, never as markup.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from vlmrm_core.evaluation import Evaluation, PRCurve

MAX_GROUP_TRACES = 30
"""With more groups (episodes) than this, one line with gaps is drawn instead of one per group."""

WEBGL_POINTS = 5_000
"""Above this many points, traces use WebGL so the browser stays responsive."""

MARKER_POINTS = 300
"""Up to this many points per trace, markers are drawn on the line (sweeps are small)."""

MAX_CURVE_POINTS = 4_000
"""A landscape curve with more frames than this is drawn with this many points: the lowest and
highest reward of each of ``MAX_CURVE_POINTS / 2`` stretches of the x axis. A 300-px chart can't
show more, and 100k points cost seconds to build, send and draw on every α change."""


def decimate(y: np.ndarray, budget: int = MAX_CURVE_POINTS) -> np.ndarray:
    """Which of ``y``'s points (in drawing order) to draw: all of them when they fit the budget,
    else the minimum and maximum of each of ``budget // 2`` equal stretches (the curve's
    envelope: peaks and dips stay visible, the global extremes are always kept).

    Args:
        y: values in drawing order (NaN allowed).
        budget: the most points returned (at least 2).

    Returns:
        Sorted indices into ``y``.
    """
    n = len(y)
    if n <= budget:
        return np.arange(n)
    buckets = max(1, budget // 2)
    size = -(-n // buckets)
    padded = np.full(buckets * size, np.nan)
    padded[:n] = y
    rows = padded.reshape(buckets, size)
    filled = ~np.isnan(rows).all(axis=1)
    offsets = np.arange(buckets)[filled] * size
    rows = rows[filled]
    low = np.nanargmin(np.where(np.isnan(rows), np.inf, rows), axis=1) + offsets
    high = np.nanargmax(np.where(np.isnan(rows), -np.inf, rows), axis=1) + offsets
    return np.unique(np.concatenate([low, high]))


def plain(text: object) -> str:
    """User text made safe for Plotly labels (shown literally, never as markup)."""
    return html.escape(str(text), quote=False)


def normalise(values: np.ndarray) -> np.ndarray:
    """Min–max scale to [0, 1] so curves on different scales can share an axis (a constant
    curve becomes 0.5)."""
    v = np.asarray(values, dtype=np.float64)
    low, high = float(v.min()), float(v.max())
    if high == low:
        return np.full_like(v, 0.5)
    return (v - low) / (high - low)


def curve_colors(n: int) -> list[str]:
    """n colours in order along Viridis (dark to green; the yellow end is left out, it is hard
    to see on white): ordered curves such as increasing α read as a progression."""
    from plotly.colors import sample_colorscale

    return sample_colorscale("Viridis", [0.85 * i / max(1, n - 1) for i in range(n)])


def landscape_figure(
    points: pd.DataFrame,
    curves: Mapping[str, np.ndarray],
    *,
    x_title: str,
    normalize: bool = False,
    title: str | None = None,
) -> go.Figure:
    """Reward against the landscape's x axis (the paper's Fig. 2 when curves are several α).

    Args:
        points: from :func:`vlmrm_core.landscape.landscape_points`: one row per frame with
            ``frame``, ``x``, ``group``, ``name``, ``detail``, in drawing order.
        curves: name → N rewards in dataset order (indexed by ``points.frame``).
        x_title: the x axis title.
        normalize: min–max scale each curve (for comparing curves on different scales).
        title: figure title.

    Returns:
        The figure. With one curve, each group (episode, swept parameter) is its own trace;
        with several, each curve is one trace whose groups are separated by gaps. Every point's
        ``customdata`` is ``[frame index, frame name, detail]``; gaps have ``customdata`` None.
    """
    order = points["frame"].to_numpy()
    groups, group_names = pd.factorize(points["group"].to_numpy())  # codes: cheap to compare
    n_groups = len(group_names)
    drawn = min(len(points), MAX_CURVE_POINTS)
    many = drawn * max(1, len(curves)) > WEBGL_POINTS
    scatter = go.Scattergl if many else go.Scatter
    traces = []
    split_groups = len(curves) == 1 and 1 < n_groups <= MAX_GROUP_TRACES
    colors = curve_colors(len(curves)) if len(curves) > 1 else [None]
    for color, (curve_name, values) in zip(colors, curves.items(), strict=True):
        y_all = np.asarray(values, dtype=np.float64)
        if normalize:
            y_all = normalise(y_all)
        y = y_all[order]
        if split_groups:
            for code, group in enumerate(group_names):
                rows = np.flatnonzero(groups == code)
                rows = rows[decimate(y[rows], max(2, MAX_CURVE_POINTS // n_groups))]
                traces.append(
                    _line(scatter, points.iloc[rows], y[rows], plain(group), curve_name=curve_name)
                )
        else:
            rows = decimate(y)
            xs, ys, data = _with_gaps(points.iloc[rows], y[rows], groups[rows])
            name = plain(curve_name)
            trace = _line(scatter, None, ys, name, xs=xs, customdata=data)
            if color is not None:
                trace.line.color = trace.marker.color = color
            traces.append(trace)
    figure = go.Figure(data=traces)  # at once: add_trace copies each trace's arrays again
    y_title = "reward (min–max scaled per curve)" if normalize else "reward"
    figure.update_layout(
        title=plain(title) if title else None,
        xaxis_title=plain(x_title),
        yaxis_title=y_title,
        hovermode="closest",
        # Legend above the plot, left: on the right it would cover the chart's tool bar.
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "xanchor": "left", "x": 0},
        showlegend=len(figure.data) > 1,
        margin={"l": 10, "r": 10, "t": 60 if title else 40, "b": 10},
    )
    return figure


def _hover_data(rows: pd.DataFrame) -> np.ndarray:
    """``[frame index, frame name, detail]`` per row, as a k×3 object array (numpy arrays go
    into a Plotly trace without Plotly's per-element validation, ten times faster than lists)."""
    data = np.empty((len(rows), 3), dtype=object)
    data[:, 0] = rows["frame"].to_numpy().tolist()
    data[:, 1] = [plain(n) for n in rows["name"]]
    data[:, 2] = [plain(d) for d in rows["detail"]]
    return data


def _line(
    scatter: type,
    rows: pd.DataFrame | None,
    y: np.ndarray,
    name: str,
    *,
    curve_name: str | None = None,
    xs: np.ndarray | None = None,
    customdata: np.ndarray | None = None,
) -> go.Scatter:
    if rows is not None:
        xs = rows["x"].to_numpy(dtype=np.float64)
        customdata = _hover_data(rows)
    n_points = len(y)
    curve = f"{plain(curve_name)} · " if curve_name and rows is not None else ""
    return scatter(
        x=xs,
        y=np.asarray(y, dtype=np.float64),
        name=name,
        mode="lines+markers" if n_points <= MARKER_POINTS else "lines",
        customdata=customdata,
        hovertemplate=(
            "%{customdata[1]}<br>%{customdata[2]}<br>reward %{y:.4f}"
            f"<extra>{curve}%{{fullData.name}}</extra>"
        ),
    )


def _with_gaps(
    points: pd.DataFrame, y: np.ndarray, groups: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One trace for all groups: a NaN point (customdata ``[None, None, None]``) between groups
    breaks the line."""
    n = len(points)
    breaks = np.flatnonzero(groups[1:] != groups[:-1]) + 1  # a gap goes before each of these
    where = np.arange(n) + np.searchsorted(breaks, np.arange(n), side="right")
    xs = np.full(n + len(breaks), np.nan)
    ys = np.full(n + len(breaks), np.nan)
    data = np.full((n + len(breaks), 3), None, dtype=object)
    xs[where] = points["x"].to_numpy(dtype=np.float64)
    ys[where] = y
    data[where] = _hover_data(points)
    return xs, ys, data


def histogram_figure(
    curves: Mapping[str, np.ndarray], *, title: str | None = None, bins: int = 40
) -> go.Figure:
    """Distribution of rewards, one overlaid histogram per curve.

    Args:
        curves: name → rewards.
        title: figure title.
        bins: number of bins.

    Returns:
        The figure (one ``Histogram`` trace per curve).
    """
    figure = go.Figure()
    for name, values in curves.items():
        figure.add_trace(
            go.Histogram(
                x=np.asarray(values, dtype=np.float64),
                name=plain(name),
                nbinsx=bins,
                opacity=0.75 if len(curves) > 1 else 1.0,
            )
        )
    figure.update_layout(
        title=plain(title) if title else None,
        barmode="overlay",
        bargap=0.05,
        xaxis_title="reward",
        yaxis_title="frames",
        showlegend=len(curves) > 1,
        margin={"l": 10, "r": 10, "t": 40 if title else 10, "b": 10},
    )
    return figure


def pr_figure(curves: Sequence[PRCurve], *, base_rate: float | None = None) -> go.Figure:
    """Precision–recall curves of rewards used as success detectors (Baumli et al. sweep β).

    Args:
        curves: from :func:`vlmrm_core.evaluation.pr_curves`.
        base_rate: the success rate, drawn as the chance level.

    Returns:
        The figure: recall on x, precision on y, one trace per curve (named with its AP).
    """
    figure = go.Figure()
    for curve in curves:
        figure.add_trace(
            go.Scatter(
                x=curve.recall,
                y=curve.precision,
                mode="lines",
                line_shape="hv",
                name=f"{plain(curve.name)} (AP {curve.average_precision:.3f})",
            )
        )
    if base_rate is not None:
        figure.add_trace(
            go.Scatter(
                x=[0.0, 1.0],
                y=[base_rate, base_rate],
                mode="lines",
                line={"dash": "dot", "color": "gray"},
                name=f"chance ({base_rate:.2f})",
            )
        )
    figure.update_layout(
        legend={"orientation": "h", "yanchor": "top", "y": -0.2, "xanchor": "left", "x": 0},
        xaxis_title="recall",
        yaxis_title="precision",
        xaxis_range=[0, 1.02],
        yaxis_range=[0, 1.02],
        margin={"l": 10, "r": 10, "t": 10, "b": 10},
    )
    return figure


def scaling_figure(evaluations: Sequence[Evaluation]) -> go.Figure:
    """EPIC distance against model size, one line per prompt set (the paper's Fig. 4).

    Args:
        evaluations: one per (prompt set, model); those without an EPIC distance are left out.

    Returns:
        The figure: x = parameter count (log scale), y = EPIC distance with the bootstrap 95%
        interval as error bars; hovering names the model.
    """
    figure = go.Figure()
    by_set: dict[str, list[Evaluation]] = {}
    for e in evaluations:
        if e.metrics.epic_distance is not None:
            by_set.setdefault(e.prompt_set, []).append(e)
    for prompt_set, items in by_set.items():
        items = sorted(items, key=lambda e: e.n_params)
        epic = np.array([e.metrics.epic_distance for e in items], dtype=np.float64)
        low = np.array(
            [
                e.metrics.ci_low if e.metrics.ci_low is not None else e.metrics.epic_distance
                for e in items
            ],
            dtype=np.float64,
        )
        high = np.array(
            [
                e.metrics.ci_high if e.metrics.ci_high is not None else e.metrics.epic_distance
                for e in items
            ],
            dtype=np.float64,
        )
        figure.add_trace(
            go.Scatter(
                x=[e.n_params for e in items],
                y=epic,
                mode="lines+markers",
                name=plain(prompt_set),
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": high - epic,
                    "arrayminus": epic - low,
                },
                customdata=[[plain(e.model)] for e in items],
                hovertemplate=(
                    "%{customdata[0]}<br>%{x:.3s} parameters<br>EPIC %{y:.3f}"
                    "<extra>%{fullData.name}</extra>"
                ),
            )
        )
    figure.update_layout(
        legend={"orientation": "h", "yanchor": "top", "y": -0.2, "xanchor": "left", "x": 0},
        xaxis_type="log",
        xaxis_title="model parameters (log scale)",
        yaxis_title="EPIC distance to labels (lower is better)",
        margin={"l": 10, "r": 10, "t": 10, "b": 10},
    )
    return figure
