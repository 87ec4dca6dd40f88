"""Curve smoothing and the training-curves figure."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from vlmrm_studio.widgets.train_plots import losses_figure, smooth, training_curves_figure


def test_smooth_zero_weight_is_identity() -> None:
    x = np.array([1.0, 5.0, 2.0])
    np.testing.assert_allclose(smooth(x, 0.0), x)


def test_smooth_is_debiased_and_skips_nans() -> None:
    out = smooth([4.0, np.nan, 4.0, 4.0], 0.9)
    assert np.isnan(out[1])
    # A constant series stays constant (no pull towards zero at the start).
    np.testing.assert_allclose(out[[0, 2, 3]], 4.0)


def test_smooth_rejects_bad_weight() -> None:
    with pytest.raises(ValueError, match="smoothing"):
        smooth([1.0], 1.0)


def test_training_curves_figure() -> None:
    metrics = pd.DataFrame(
        {
            "step": [100, 200, 300, 300],
            "episode_clip_return": [1.0, 2.0, 3.0, np.nan],
            "episode_gt_return": [10.0, np.nan, 30.0, np.nan],
            "eval/clip_return": [np.nan, np.nan, np.nan, 2.5],
        }
    )
    fig = training_curves_figure(metrics, smoothing=0.5)
    names = [t.name for t in fig.data]
    assert "CLIP return" in names and "ground-truth return" in names
    assert "eval CLIP return" in names
    clip = next(t for t in fig.data if t.name == "CLIP return")
    assert list(clip.x) == [100, 200, 300]
    gt = next(t for t in fig.data if t.name == "ground-truth return")
    assert gt.yaxis == "y2"  # own axis: the two returns have unrelated scales
    assert list(gt.x) == [100, 300]


def test_empty_metrics_give_a_note() -> None:
    fig = training_curves_figure(pd.DataFrame(columns=["step", "wall_time"]))
    assert not fig.data
    assert "no episodes" in fig.layout.annotations[0].text


def test_losses_figure() -> None:
    metrics = pd.DataFrame({"step": [1, 2], "train/loss": [0.5, 0.4], "other": [1, 2]})
    assert [t.name for t in losses_figure(metrics).data] == ["train/loss"]


def test_sparse_curves_have_markers_dense_ones_do_not() -> None:
    one_point = pd.DataFrame({"step": [500], "episode_clip_return": [0.3]})
    fig = training_curves_figure(one_point, smoothing=0.0)
    smoothed = [t for t in fig.data if t.name == "CLIP return"]
    assert smoothed and "markers" in smoothed[0].mode  # a single point is visible
    dense = pd.DataFrame({"step": np.arange(200) * 10, "episode_clip_return": np.ones(200)})
    fig = training_curves_figure(dense, smoothing=0.0)
    assert [t.mode for t in fig.data if t.name == "CLIP return"] == ["lines"]
