"""Figures of a training run's curves (Plotly), built from the store's metric rows."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

CLIP_COLOR = "#1f77b4"
GT_COLOR = "#d62728"


def smooth(values: Sequence[float] | np.ndarray, weight: float) -> np.ndarray:
    """Exponential moving average with TensorBoard's debiasing; NaNs are skipped, not spread.

    Args:
        values: The series.
        weight: Smoothing in [0, 1): 0 returns the values unchanged, 0.9 averages over ~10 points.

    Returns:
        The smoothed series (NaN where the input is NaN).
    """
    if not 0.0 <= weight < 1.0:
        raise ValueError(f"smoothing weight must be in [0, 1); got {weight}")
    x = np.asarray(values, dtype=np.float64)
    out = np.full_like(x, np.nan)
    last = 0.0
    n = 0
    for i, v in enumerate(x):
        if np.isnan(v):
            continue
        last = last * weight + (1.0 - weight) * v
        n += 1
        # Dividing by (1 - weight^n) removes the pull towards the zero the average starts from.
        out[i] = last / (1.0 - weight**n)
    return out


SPARSE_POINTS = 30
"""Curves with at most this many logged points are drawn with markers too."""


def _series(metrics: pd.DataFrame, column: str) -> tuple[np.ndarray, np.ndarray]:
    if column not in metrics.columns or "step" not in metrics.columns:
        return np.zeros(0), np.zeros(0)
    rows = metrics[["step", column]].dropna()
    rows = rows.sort_values("step")
    return rows["step"].to_numpy(), rows[column].to_numpy(dtype=np.float64)


def training_curves_figure(
    metrics: pd.DataFrame, *, smoothing: float = 0.6, title: str | None = None
) -> go.Figure:
    """Episode CLIP return and ground-truth return against environment steps.

    The two returns have unrelated scales (CLIP rewards are cosine-like, ground truth is the
    environment's own), so each gets its own y axis. Raw values are drawn faintly behind the
    smoothed curves; evaluation returns, when present, are drawn as markers.

    Args:
        metrics: One row per logged step, with columns ``step`` and any of
            ``episode_clip_return``, ``episode_gt_return``, ``eval/clip_return``,
            ``eval/gt_return`` (as returned by the store's ``run_metrics``).
        smoothing: EMA weight in [0, 1) (see :func:`smooth`).
        title: Figure title.

    Returns:
        A Plotly figure (empty axes with a note when nothing was logged yet).
    """
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    plotted = False
    for column, name, color, secondary in (
        ("episode_clip_return", "CLIP return", CLIP_COLOR, False),
        ("episode_gt_return", "ground-truth return", GT_COLOR, True),
    ):
        steps, values = _series(metrics, column)
        if len(steps) == 0:
            continue
        plotted = True
        fig.add_trace(
            go.Scatter(
                x=steps,
                y=values,
                mode="lines",
                line={"color": color, "width": 1},
                opacity=0.25,
                name=f"{name} (raw)",
                showlegend=False,
                hoverinfo="skip",
            ),
            secondary_y=secondary,
        )
        fig.add_trace(
            go.Scatter(
                x=steps,
                y=smooth(values, smoothing),
                # a line through one or a few points is invisible or misleading: mark them
                mode="lines+markers" if len(steps) <= SPARSE_POINTS else "lines",
                line={"color": color, "width": 2},
                marker={"color": color, "size": 7},
                name=name,
            ),
            secondary_y=secondary,
        )
    for column, name, color, secondary in (
        ("eval/clip_return", "eval CLIP return", CLIP_COLOR, False),
        ("eval/gt_return", "eval ground-truth return", GT_COLOR, True),
    ):
        steps, values = _series(metrics, column)
        if len(steps) == 0:
            continue
        plotted = True
        fig.add_trace(
            go.Scatter(
                x=steps,
                y=values,
                mode="markers",
                marker={"color": color, "symbol": "diamond", "size": 9},
                name=name,
            ),
            secondary_y=secondary,
        )
    if not plotted:
        fig.add_annotation(
            text="no episodes finished yet",
            showarrow=False,
            xref="paper",
            yref="paper",
            x=0.5,
            y=0.5,
        )
    fig.update_xaxes(title_text="environment steps")
    fig.update_yaxes(title_text="episode CLIP return", secondary_y=False, color=CLIP_COLOR)
    fig.update_yaxes(title_text="episode ground-truth return", secondary_y=True, color=GT_COLOR)
    fig.update_layout(
        title=title,
        legend={"orientation": "h", "y": -0.2},
        margin={"l": 10, "r": 10, "t": 40 if title else 10, "b": 10},
        hovermode="x unified",
    )
    return fig


def losses_figure(metrics: pd.DataFrame, *, smoothing: float = 0.6) -> go.Figure:
    """The SB3 ``train/*`` values (losses, entropy coefficient...) against steps, one line each."""
    fig = go.Figure()
    for column in sorted(c for c in metrics.columns if str(c).startswith("train/")):
        steps, values = _series(metrics, column)
        if len(steps):
            mode = "lines+markers" if len(steps) <= SPARSE_POINTS else "lines"
            fig.add_trace(go.Scatter(x=steps, y=smooth(values, smoothing), mode=mode, name=column))
    fig.update_xaxes(title_text="environment steps")
    fig.update_layout(margin={"l": 10, "r": 10, "t": 10, "b": 10}, hovermode="x unified")
    return fig
