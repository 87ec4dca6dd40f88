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

from vlmrm_core.services.evaluation import Evaluation, PRCurve

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
    layout: Mapping[str, object] | None = None,
) -> go.Figure:
    """Reward against the landscape's x axis (the paper's Fig. 2 when curves are several α).

    Args:
        points: from :func:`vlmrm_core.services.landscape.landscape_points`: one row per frame with
            ``frame``, ``x``, ``group``, ``name``, ``detail``, in drawing order.
        curves: name → N rewards in dataset order (indexed by ``points.frame``).
        x_title: the x axis title.
        normalize: min–max scale each curve (for comparing curves on different scales).
        title: figure title.
        layout: more layout settings (height, drag mode, ...), applied with the figure's own.

    Returns:
        The figure. With one curve, each group (episode, swept parameter) is its own trace;
        with several, each curve is one trace whose groups are separated by gaps. Every point's
        ``customdata`` is its frame index and its ``text`` the frame's name and detail (hover
        label); gaps have ``customdata`` NaN. Plain numeric and string arrays, not per-point
        lists: Prompt Lab rebuilds, copies and serialises this figure on every α change.
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
            xs, ys, frames, text = _with_gaps(points.iloc[rows], y[rows], groups[rows])
            name = plain(curve_name)
            trace = _line(scatter, None, ys, name, xs=xs, frames=frames, text=text)
            if color is not None:
                trace.line.color = trace.marker.color = color
            traces.append(trace)
    y_title = "reward (min–max scaled per curve)" if normalize else "reward"
    settings: dict[str, object] = {
        "title": {"text": plain(title)} if title else None,
        "xaxis": {"title": {"text": plain(x_title)}},
        "yaxis": {"title": {"text": y_title}},
        "hovermode": "closest",
        # Legend above the plot, left: on the right it would cover the chart's tool bar.
        "legend": {"orientation": "h", "yanchor": "bottom", "y": 1.02, "xanchor": "left", "x": 0},
        "showlegend": len(traces) > 1,
        "margin": {"l": 10, "r": 10, "t": 60 if title else 40, "b": 10},
    }
    settings.update(layout or {})
    # data and layout at once: add_trace and update_layout would copy and validate them again
    return go.Figure(data=traces, layout=settings)


def _hover_data(rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Frame indices (float) and ``"name<br>detail"`` hover texts (a numpy string array) of
    ``rows``: numpy arrays go into a trace without Plotly's per-element validation and are
    copied whole, ten times faster than lists of lists."""
    frames = rows["frame"].to_numpy(dtype=np.float64)
    text = np.array(
        [f"{plain(n)}<br>{plain(d)}" for n, d in zip(rows["name"], rows["detail"], strict=True)]
    )
    return frames, text


def _line(
    scatter: type,
    rows: pd.DataFrame | None,
    y: np.ndarray,
    name: str,
    *,
    curve_name: str | None = None,
    xs: np.ndarray | None = None,
    frames: np.ndarray | None = None,
    text: np.ndarray | None = None,
) -> go.Scatter:
    if rows is not None:
        xs = rows["x"].to_numpy(dtype=np.float64)
        frames, text = _hover_data(rows)
    n_points = len(y)
    curve = f"{plain(curve_name)} · " if curve_name and rows is not None else ""
    return scatter(
        x=xs,
        y=np.asarray(y, dtype=np.float64),
        name=name,
        mode="lines+markers" if n_points <= MARKER_POINTS else "lines",
        customdata=frames,
        text=text,
        hovertemplate=f"%{{text}}<br>reward %{{y:.4f}}<extra>{curve}%{{fullData.name}}</extra>",
    )


def _with_gaps(
    points: pd.DataFrame, y: np.ndarray, groups: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One trace for all groups: a NaN point (frame NaN, empty text) between groups breaks the
    line."""
    n = len(points)
    breaks = np.flatnonzero(groups[1:] != groups[:-1]) + 1  # a gap goes before each of these
    where = np.arange(n) + np.searchsorted(breaks, np.arange(n), side="right")
    xs = np.full(n + len(breaks), np.nan)
    ys = np.full(n + len(breaks), np.nan)
    frames = np.full(n + len(breaks), np.nan)
    xs[where] = points["x"].to_numpy(dtype=np.float64)
    ys[where] = y
    frame_ids, texts = _hover_data(points)
    frames[where] = frame_ids
    text = np.full(n + len(breaks), "", dtype=texts.dtype if n else "<U1")
    text[where] = texts
    return xs, ys, frames, text


def histogram_svg(
    values: np.ndarray, *, value_name: str = "reward", bins: int = 40, height: int = 110
) -> str:
    """A small SVG histogram of ``values`` (every finite value counted), shown as an image.

    Prompt Lab redraws it on every α change below the landscape. As a Plotly chart it cost the
    browser as much as the landscape itself (a second full Plotly layout), and as sanitised
    inline HTML still a quarter of the redraw; as an image of forty rectangles it costs next
    to nothing. The lowest and highest value and the tallest bar's count are written on it.

    Args:
        values: the rewards.
        value_name: what they are, for the tooltips and the axis note (escaped).
        bins: number of bars.
        height: height in pixels (the width is the container's).

    Returns:
        ``<svg>`` markup (for ``st.image``) holding only numbers and the escaped
        ``value_name``.
    """
    finite = np.asarray(values, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    name = plain(value_name)
    if finite.size == 0:  # still an SVG: st.image reads any other string as a file path
        return (
            f'<svg width="100%" height="{height}" role="img"><text x="0" y="16" font-size="13" '
            f'fill="#555">No finite {name} values to draw.</text></svg>'
        )
    counts, edges = np.histogram(finite, bins=bins)
    top = max(1, int(counts.max()))
    plot_h = height - 18  # room for the labels under the bars
    bar_w = 100.0 / bins  # percent of the width: the bars fill any container, text stays sharp
    bars = []
    for i, count in enumerate(counts):
        h = plot_h * int(count) / top
        bars.append(
            f'<rect x="{i * bar_w:.3f}%" y="{plot_h - h:.1f}" width="{bar_w * 0.9:.3f}%" '
            f'height="{h:.1f}" fill="#3b5bdb" fill-opacity="0.7"/>'
        )
    label = f'y="{height - 4}" font-size="11" fill="#555"'
    return (
        f'<svg width="100%" height="{height}" role="img" aria-label="Distribution of {name}">'
        f'<line x1="0" y1="{plot_h + 0.5}" x2="100%" y2="{plot_h + 0.5}" stroke="#999"/>'
        + "".join(bars)
        + f'<text x="0" {label}>{edges[0]:.4f}</text>'
        f'<text x="50%" text-anchor="middle" {label}>{name}: {finite.size} frames, '
        f"{top} in the highest bar</text>"
        f'<text x="100%" text-anchor="end" {label}>{edges[-1]:.4f}</text>'
        "</svg>"
    )


def pr_figure(curves: Sequence[PRCurve], *, base_rate: float | None = None) -> go.Figure:
    """Precision–recall curves of rewards used as success detectors (Baumli et al. sweep β).

    Args:
        curves: from :func:`vlmrm_core.services.evaluation.pr_curves`.
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
