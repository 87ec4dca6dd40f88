"""Figure builders: traces, axes and hover data (Plotly charts can't be inspected in AppTest)."""

from __future__ import annotations

import re

import numpy as np
import plotly.graph_objects as go
import pytest

from tests.conftest import frame_info
from vlmrm_core.metrics import RewardMetrics
from vlmrm_core.services.evaluation import Evaluation, PRCurve
from vlmrm_core.services.landscape import landscape_points
from vlmrm_core.store import FrameInfo
from vlmrm_studio.widgets import plots


def _info(i: int, **fields: object) -> FrameInfo:
    """Frame ``i`` of a CartPole sweep."""
    return frame_info(i, **{"source": "sweep", "env_id": "CartPole-v1", **fields})


def _sweep(n: int = 9) -> list[FrameInfo]:
    # Stored in shuffled order: the figure must draw along the parameter, not the position.
    angles = np.linspace(-1.5, 1.5, n)[::-1]
    return [_info(i, param_name="pole_angle", param_value=float(a)) for i, a in enumerate(angles)]


def test_single_curve_landscape_of_a_sweep():
    frames = _sweep()
    values = np.linspace(0.2, 0.3, len(frames))
    points, x_title = landscape_points(frames, "parameter")
    figure = plots.landscape_figure(points, {"α = 0.5": values}, x_title=x_title)
    assert len(figure.data) == 1
    trace = figure.data[0]
    assert isinstance(trace, go.Scatter) and trace.mode == "lines+markers"
    assert list(trace.x) == sorted(trace.x)
    frames_drawn = trace.customdata.astype(int)
    np.testing.assert_allclose(trace.y, values[frames_drawn])
    assert trace.text[0].split("<br>")[0] == frames[frames_drawn[0]].name
    assert "reward" in trace.hovertemplate and "%{text}" in trace.hovertemplate
    assert figure.layout.xaxis.title.text == "pole_angle"
    assert figure.layout.yaxis.title.text == "reward"


def test_alpha_overlay_draws_one_trace_per_alpha_like_fig_2():
    frames = _sweep()
    points, x_title = landscape_points(frames, "parameter")
    alphas = [0.0, 0.25, 0.5, 0.75, 1.0]
    curves = {f"α = {a:g}": np.linspace(a, a + 1 + a, len(frames)) for a in alphas}
    figure = plots.landscape_figure(points, curves, x_title=x_title, normalize=True)
    assert [t.name for t in figure.data] == [f"α = {a:g}" for a in alphas]
    for trace in figure.data:
        assert min(trace.y) == pytest.approx(0.0) and max(trace.y) == pytest.approx(1.0)
    assert "scaled" in figure.layout.yaxis.title.text


def test_rollout_landscape_has_one_line_per_episode_or_gaps_when_overlaid():
    frames = [_info(i, episode=i // 4, step=i % 4, source="rollout") for i in range(12)]
    points, x_title = landscape_points(frames, "step")
    values = np.arange(12, dtype=float)
    figure = plots.landscape_figure(points, {"reward": values}, x_title=x_title)
    assert [t.name for t in figure.data] == ["episode 0", "episode 1", "episode 2"]
    assert figure.layout.showlegend
    overlay = plots.landscape_figure(points, {"a": values, "b": -values}, x_title=x_title)
    assert len(overlay.data) == 2
    xs = np.asarray(overlay.data[0].x, dtype=float)
    assert np.isnan(xs).sum() == 2  # a gap between consecutive episodes
    assert np.isnan(overlay.data[0].customdata[4]) and overlay.data[0].text[4] == ""


def test_user_text_is_escaped_not_rendered_as_html():
    frames = [
        _info(0, name="<b>bold</b>", param_name="p", param_value=0.0),
        _info(1, name="<img src=x onerror=alert(1)>", param_name="p", param_value=1.0),
    ]
    points, _ = landscape_points(frames, "parameter")
    figure = plots.landscape_figure(
        points, {"<i>set</i>": np.array([0.1, 0.2])}, x_title="<u>x</u>", title="<a href=y>t</a>"
    )
    names = [t.split("<br>")[0] for t in figure.data[0].text]
    assert names == ["&lt;b&gt;bold&lt;/b&gt;", "&lt;img src=x onerror=alert(1)&gt;"]
    assert figure.data[0].name == "&lt;i&gt;set&lt;/i&gt;"
    assert figure.layout.xaxis.title.text == "&lt;u&gt;x&lt;/u&gt;"
    assert "<a" not in figure.layout.title.text


def test_large_landscapes_use_webgl_without_markers():
    frames = [_info(i) for i in range(6000)]
    values = np.random.default_rng(0).random(6000)
    points, x_title = landscape_points(frames, "rank", order_by=values)
    curves = {"reward": values, "other": 1 - values}  # 2 × 4,000 drawn points
    figure = plots.landscape_figure(points, curves, x_title=x_title)
    assert isinstance(figure.data[0], go.Scattergl) and figure.data[0].mode == "lines"
    drawn = list(figure.data[0].y)
    assert drawn == sorted(drawn, reverse=True)  # in rank order
    small = plots.landscape_figure(points.iloc[:3000], {"reward": values}, x_title=x_title)
    assert len(small.data[0].y) == 3000  # within the budget: every point


def test_decimation_keeps_the_envelope_of_a_100k_curve():
    rng = np.random.default_rng(1)
    values = rng.standard_normal(100_000)
    values[[7, 54_321]] = [9.0, -9.0]  # single-frame spikes stay visible
    frames = [_info(i, param_name="x", param_value=float(i)) for i in range(len(values))]
    points, x_title = landscape_points(frames, "parameter")
    figure = plots.landscape_figure(points, {"α = 0.5": values}, x_title=x_title)
    trace = figure.data[0]
    assert len(trace.y) <= plots.MAX_CURVE_POINTS
    assert max(trace.y) == 9.0 and min(trace.y) == -9.0
    frames_drawn = trace.customdata.astype(int)
    np.testing.assert_allclose(trace.y, values[frames_drawn])  # real frames, real rewards
    assert list(trace.x) == sorted(trace.x)
    keep = plots.decimate(values, 1000)
    assert len(keep) <= 1000 and {7, 54_321} <= set(keep.tolist())


def test_histogram_svg_counts_every_finite_value_and_escapes_its_name():
    values = np.r_[np.zeros(30), np.ones(10), np.nan]
    svg = plots.histogram_svg(values, value_name="<b>p</b>", bins=4)
    heights = [float(h) for h in re.findall(r'<rect [^>]*height="([0-9.]+)"', svg)]
    assert len(heights) == 4 and heights[0] == max(heights) and heights[1] == heights[2] == 0
    assert heights[3] == pytest.approx(heights[0] * 10 / 30, abs=0.1)
    assert "40 frames, 30 in the highest bar" in svg and ">0.0000<" in svg and ">1.0000<" in svg
    assert "<b>" not in svg and "&lt;b&gt;p&lt;/b&gt;" in svg
    empty = plots.histogram_svg(np.array([np.nan]))
    assert empty.startswith("<svg") and "No finite" in empty  # st.image takes it as an image


def test_pr_figure():
    curves = [
        PRCurve("set · model", np.array([0.5, 1.0, 1.0]), np.array([1.0, 0.5, 0.0]), 0.875),
        PRCurve("other", np.array([0.5, 1.0]), np.array([1.0, 0.0]), 0.5),
    ]
    figure = plots.pr_figure(curves, base_rate=0.5)
    assert [t.name for t in figure.data] == [
        "set · model (AP 0.875)",
        "other (AP 0.500)",
        "chance (0.50)",
    ]
    assert figure.layout.xaxis.title.text == "recall"
    assert figure.layout.yaxis.title.text == "precision"
    assert list(figure.data[0].x) == [1.0, 0.5, 0.0]


def _evaluation(prompt_set: str, model: str, n_params: int, epic: float | None) -> Evaluation:
    metrics = RewardMetrics(
        n=10,
        epic_distance=epic,
        ci_low=None if epic is None else epic - 0.05,
        ci_high=None if epic is None else epic + 0.1,
    )
    return Evaluation(prompt_set, model, n_params, np.zeros(10), metrics)


def test_scaling_figure_is_epic_against_log_model_size():
    evals = [
        _evaluation("paper", "ViT-L-14", 427_000_000, 0.5),
        _evaluation("paper", "RN50", 102_000_000, 0.6),
        _evaluation("paper", "ViT-bigG-14", 2_540_000_000, 0.4),
        _evaluation("mine", "RN50", 102_000_000, 0.65),
        _evaluation("mine", "ViT-L-14", 427_000_000, None),  # undefined: left out
    ]
    figure = plots.scaling_figure(evals)
    assert figure.layout.xaxis.type == "log"
    assert "parameters" in figure.layout.xaxis.title.text
    assert "EPIC" in figure.layout.yaxis.title.text
    paper, mine = figure.data
    assert paper.name == "paper" and mine.name == "mine"
    assert list(paper.x) == [102_000_000, 427_000_000, 2_540_000_000]
    np.testing.assert_allclose(paper.y, [0.6, 0.5, 0.4])
    np.testing.assert_allclose(paper.error_y.array, [0.1, 0.1, 0.1])
    np.testing.assert_allclose(paper.error_y.arrayminus, [0.05, 0.05, 0.05])
    assert [c[0] for c in paper.customdata] == ["RN50", "ViT-L-14", "ViT-bigG-14"]
    assert list(mine.x) == [102_000_000]


def test_normalise_handles_constant_curves():
    np.testing.assert_allclose(plots.normalise(np.array([2.0, 4.0, 3.0])), [0.0, 1.0, 0.5])
    np.testing.assert_allclose(plots.normalise(np.ones(3)), [0.5, 0.5, 0.5])


def test_overlay_curves_get_distinct_ordered_colours():
    frames = _sweep(5)
    points, x_title = landscape_points(frames, "parameter")
    curves = {f"α = {a:g}": np.arange(5.0) * (a + 1) for a in (0.0, 0.5, 1.0)}
    figure = plots.landscape_figure(points, curves, x_title=x_title)
    colours = [t.line.color for t in figure.data]
    assert len(set(colours)) == 3 and colours == plots.curve_colors(3)
