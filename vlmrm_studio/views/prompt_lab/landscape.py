"""Prompt Lab: the reward landscape of one reward on a dataset, and what is drawn from it.

The chart (one curve per α, or the slider's α alone), the line of figures under it, the frames
selected on the chart, the top-k and bottom-k frames and the distribution of the reward. The
scoring is :mod:`vlmrm_core.services.landscape`; this module only draws.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from vlmrm_core.clip.embedding import PromptError
from vlmrm_core.clip.models import ClipModel
from vlmrm_core.reward.spec import RewardSpec
from vlmrm_core.services import landscape
from vlmrm_studio.widgets import plots, tables
from vlmrm_studio.widgets.counts import frame_count_text
from vlmrm_studio.widgets.embeddings import frame_grid, memo, selected_frames
from vlmrm_studio.widgets.text import md_escape

__all__ = ["ALPHA_CHOICES", "landscape_section", "values_section"]

ALPHA_CHOICES = [0.0, 0.25, 0.5, 0.75, 1.0]
"""The α values the overlay offers (the paper's Fig. 2)."""
CHART_LAYOUT = {"height": 300, "dragmode": "select", "margin": {"l": 10, "r": 10, "t": 20, "b": 10}}
"""Dragging selects a box of points (as the caption under the chart says); zoom stays on the
toolbar."""


def landscape_section(
    clip: ClipModel, embedded: landscape.DatasetEmbeddings, spec: RewardSpec, controls: Sequence
) -> None:
    """The landscape of ``spec`` and everything drawn from its values.

    Args:
        clip: the model the embeddings came from.
        embedded: the dataset's frames and cached embeddings.
        spec: the reward, with the slider's α / β.
        controls: three columns beside the slider, for the axis, overlay and scaling controls.
    """
    try:
        scores, warnings = landscape.score(clip, embedded.embeddings, spec)
    except (PromptError, ValueError) as exc:
        st.error(md_escape(exc))
        return
    for message in warnings:
        st.warning(message)
    values = landscape.reward_values(scores)
    frames = embedded.frames
    value_name = "p(goal)" if spec.kind == "contrastive" else "reward"
    dataset_key = (embedded.dataset, embedded.encoder_key, len(frames))
    drawn = _chart(clip, embedded, spec, values, value_name, dataset_key, controls)
    if drawn is None:
        return
    points, event, figure = drawn
    _summary_line(frames, values, value_name, spec, int(scores.rewards.sum()))
    _selected(frames, values, value_name, points, selected_frames(event, figure))
    _extremes(frames, values, value_name)


def values_section(
    frames: list,
    values: np.ndarray,
    value_name: str,
    dataset_key: tuple,
    axis_column: Any,
) -> None:
    """The landscape of rewards given as values (a VLM judge's), and what is drawn from them:
    the chart, the line of figures, the selected frames, top/bottom frames and distribution.

    Args:
        frames: the dataset's frames, in the order of ``values``.
        values: one reward per frame.
        value_name: what the values are called (e.g. ``log-odds``).
        dataset_key: what the frames' landscape points depend on (kept per session).
        axis_column: where the x-axis control goes.
    """
    axes = memo("_lab_axes", dataset_key, lambda: landscape.available_axes(frames))
    with axis_column:
        axis = st.radio(
            "X axis",
            axes,
            format_func=tables.AXIS_LABELS.get,
            horizontal=True,
            key=f"lab-judge-axis-{'-'.join(axes)}",
        )
    points, x_title = _points(frames, dataset_key, axis, values)
    figure = plots.landscape_figure(
        points, {value_name: values}, x_title=x_title, normalize=False, layout=CHART_LAYOUT
    )
    event = st.plotly_chart(
        figure, key="lab-judge-landscape", on_select="rerun", selection_mode=("points", "box")
    )
    best, worst = int(landscape.top_k(values, 1)[0]), int(landscape.bottom_k(values, 1)[0])
    st.markdown(
        " · ".join(
            [
                f"**{frame_count_text(len(frames))}**",
                f"highest {md_escape(value_name)} **{values[best]:.4f}** "
                f"({md_escape(landscape.frame_label(frames[best]))})",
                f"lowest **{values[worst]:.4f}** "
                f"({md_escape(landscape.frame_label(frames[worst]))})",
                f"spread (max − min) {values[best] - values[worst]:.4f}",
            ]
        )
    )
    _selected(frames, values, value_name, points, selected_frames(event, figure))
    _extremes(frames, values, value_name)


def _points(
    frames: list, dataset_key: tuple, axis: str, values: np.ndarray
) -> tuple[pd.DataFrame, str]:
    """Landscape points, kept per session for the parameter and step axes (they don't depend on
    the rewards; building them for 100k frames takes longer than re-scoring)."""
    if axis == "rank":
        return landscape.landscape_points(frames, axis, order_by=values)
    return memo(
        "_lab_points", (*dataset_key, axis), lambda: landscape.landscape_points(frames, axis)
    )


def _chart(
    clip: ClipModel,
    embedded: landscape.DatasetEmbeddings,
    spec: RewardSpec,
    values: np.ndarray,
    value_name: str,
    dataset_key: tuple,
    controls: Sequence,
) -> tuple[pd.DataFrame, Any, Any] | None:
    """The chart controls and the chart; returns its points, selection event and figure (None
    after an error message)."""
    frames = embedded.frames
    axes = memo("_lab_axes", dataset_key, lambda: landscape.available_axes(frames))
    with controls[0]:
        # One key per set of choices: a stale choice from another dataset can't linger.
        axis = st.radio(
            "X axis",
            axes,
            format_func=tables.AXIS_LABELS.get,
            horizontal=True,
            key=f"lab-axis-{'-'.join(axes)}",
        )
    overlay: list[float] = []
    normalize = False
    if spec.kind == "regularized":
        with controls[1]:
            overlay = st.multiselect(
                "Overlay α values",
                ALPHA_CHOICES,
                format_func=lambda a: f"{a:g}",
                key="lab-alphas",
                persist_state="session",  # kept across page changes, like the prompts
                help="One curve per α, as in the paper's Fig. 2.",
            )
        if overlay:  # only meaningful with several curves: not drawn (checked yet off) without
            with controls[2]:
                normalize = st.checkbox(
                    "Scale each curve to [0, 1]",
                    key="lab-normalize",
                    persist_state="session",
                    help="Different α values give rewards on different scales.",
                )
    if overlay:
        try:
            by_alpha = landscape.alpha_curves(clip, embedded.embeddings, spec, overlay)
        except (PromptError, ValueError) as exc:
            st.error(md_escape(exc))
            return None
        # the slider's α stays drawn (and first) next to the overlay, so moving it shows
        curves = {f"α = {spec.alpha:g} (slider)": values}
        curves.update({f"α = {a:g}": v for a, v in by_alpha.items() if a != spec.alpha})
    else:
        curves = {value_name if spec.kind == "contrastive" else f"α = {spec.alpha:g}": values}
        normalize = False

    points, x_title = _points(frames, dataset_key, axis, values)
    figure = plots.landscape_figure(
        points, curves, x_title=x_title, normalize=normalize, layout=CHART_LAYOUT
    )
    if spec.kind == "contrastive":
        figure.add_hline(y=spec.beta, line_dash="dot", annotation_text="β")
    event = st.plotly_chart(
        figure, key="lab-landscape", on_select="rerun", selection_mode=("points", "box")
    )
    if len(frames) > plots.MAX_CURVE_POINTS:
        st.caption(
            f"{len(frames):,} frames: each curve is drawn with at most "
            f"{plots.MAX_CURVE_POINTS:,} points (the lowest and highest reward of each stretch of "
            "the x axis); the top-k, bottom-k and the distribution below use every frame."
        )
    return points, event, figure


def _summary_line(
    frames: list, values: np.ndarray, value_name: str, spec: RewardSpec, n_rewarded: int
) -> None:
    """One line of figures (a row of st.metric is nine elements for the browser to redraw on
    every α change; this is one)."""
    best, worst = int(landscape.top_k(values, 1)[0]), int(landscape.bottom_k(values, 1)[0])
    summary = [
        f"**{frame_count_text(len(frames))}**",  # memberships, as on every page (widgets.counts)
        f"highest {md_escape(value_name)} **{values[best]:.4f}** "
        f"({md_escape(landscape.frame_label(frames[best]))})",
        f"lowest **{values[worst]:.4f}** ({md_escape(landscape.frame_label(frames[worst]))})",
    ]
    if spec.kind == "contrastive":
        summary.append(f"rewarded (p > β): **{n_rewarded}** frames")
    else:
        summary.append(f"spread (max − min) {values[best] - values[worst]:.4f}")
    st.markdown(" · ".join(summary))


def _selected(
    frames: list, values: np.ndarray, value_name: str, points: pd.DataFrame, chosen: list[int]
) -> None:
    """The frames selected on the chart, in chart order (left to right)."""
    if not chosen:
        st.caption("Click a point (or drag a box) on the chart to see its frame here.")
        return
    # in chart order, whatever order the points were selected in
    x_of = dict(zip(points["frame"], points["x"], strict=True))
    chosen = sorted(chosen, key=lambda i: (x_of.get(i, 0.0), i))
    more = f", the first 10 of {len(chosen)} shown" if len(chosen) > 10 else ""
    st.markdown(f"**Selected frames** (left to right on the chart{more})")
    shown = chosen[:10]
    frame_grid(
        [frames[i].hash for i in shown],
        [f"{landscape.frame_label(frames[i])} · {value_name} {values[i]:.4f}" for i in shown],
    )


def _extremes(frames: list, values: np.ndarray, value_name: str) -> None:
    """The top-k and bottom-k frames and the distribution of the reward over every frame."""
    k = 1  # a slider needs a range: one frame is simply shown
    if len(frames) > 1:
        k = st.slider(
            "Frames to show (top-k and bottom-k)",
            1,
            min(20, len(frames)),
            min(5, len(frames)),
            key="lab-k",
        )
    for heading, picked_frames in (
        (f"Top {k}: highest {value_name}", landscape.top_k(values, k)),
        (f"Bottom {k}: lowest {value_name}", landscape.bottom_k(values, k)),
    ):
        st.markdown(f"**{md_escape(heading)}**")
        frame_grid(
            [frames[i].hash for i in picked_frames],
            [
                f"{landscape.frame_label(frames[i])} · {value_name} {values[i]:.4f}"
                for i in picked_frames
            ],
        )
    st.markdown(f"**Distribution of {md_escape(value_name)}** (every frame)")
    st.image(plots.histogram_svg(values, value_name=value_name), width="stretch")
