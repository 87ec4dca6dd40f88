"""State sweeps render real gymnasium environments (headless pygame, see tests/conftest.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vlmrm_core.envs.textures import render_mountaincar
from vlmrm_core.frames import FrameRecord
from vlmrm_core.sources.state_sweeps import SWEEPS, cartpole_sweep, mountaincar_sweep


def _car_column(frame: np.ndarray) -> float:
    """Mean x of the car's red body pixels in a textured frame."""
    red = (frame[..., 0] > 150) & (frame[..., 1] < 70) & (frame[..., 2] < 70)
    cols = red.nonzero()[1]
    assert cols.size > 20, "no car found"
    return float(cols.mean())


def test_cartpole_sweep_angles_metadata_and_progress() -> None:
    calls: list[tuple[int, int | None, str]] = []
    frames = list(cartpole_sweep(points=5, progress=lambda d, t, m: calls.append((d, t, m))))
    assert len(frames) == 5 and all(isinstance(f, FrameRecord) for f in frames)
    values = [f.param_value for f in frames]
    assert values == pytest.approx([-math.pi / 2, -math.pi / 4, 0.0, math.pi / 4, math.pi / 2])
    first = frames[0]
    assert first.source == "sweep" and first.env_id == "CartPole-v1"
    assert first.param_name == "pole_angle" and first.name == "pole_angle=-1.571"
    assert first.state == {"x": 0.0, "x_dot": 0.0, "theta": -math.pi / 2, "theta_dot": 0.0}
    assert all(f.pixels.shape == (400, 600, 3) and f.pixels.dtype == np.uint8 for f in frames)
    assert calls[-1][:2] == (5, 5)
    # Upright differs from both tilts, and the two tilts mirror each other.
    upright, left, right = frames[2].pixels, frames[0].pixels, frames[4].pixels
    assert not np.array_equal(upright, left) and not np.array_equal(upright, right)
    assert (
        np.array_equal(left, right[:, ::-1])
        or np.abs(left.astype(int) - right[:, ::-1].astype(int)).mean() < 1.0
    )


def test_cartpole_sweep_is_deterministic_and_sizes() -> None:
    a = [f.hash for f in cartpole_sweep(points=3)]
    b = [f.hash for f in cartpole_sweep(points=3)]
    assert a == b and len(set(a)) == 3
    (small,) = cartpole_sweep(points=1, render_size=(200, 300))
    assert small.pixels.shape == (200, 300, 3) and small.param_value == 0.0


def test_mountaincar_sweep_positions() -> None:
    frames = list(mountaincar_sweep(points=4))
    assert [round(f.param_value, 6) for f in frames] == [-1.2, -0.6, 0.0, 0.6]
    assert frames[0].param_name == "position" and frames[0].env_id == "MountainCar-v0"
    assert frames[0].state == {"position": -1.2, "velocity": 0.0}
    assert len({f.hash for f in frames}) == 4


def test_textured_mountaincar_differs_from_stock_and_the_car_moves() -> None:
    stock = list(mountaincar_sweep(points=3))
    textured = list(mountaincar_sweep(points=3, textured=True))
    assert all(t.pixels.shape == (400, 600, 3) for t in textured)
    for s, t in zip(stock, textured, strict=True):
        assert np.abs(s.pixels.astype(int) - t.pixels.astype(int)).mean() > 30
    columns = [_car_column(t.pixels) for t in textured]
    assert columns == sorted(columns) and columns[-1] - columns[0] > 400
    # Deterministic across calls (fixed noise seed, cached background).
    again = [f.hash for f in mountaincar_sweep(points=3, textured=True)]
    assert again == [t.hash for t in textured]


def test_textured_renderer_car_follows_the_track_and_is_fast() -> None:
    import time

    low = render_mountaincar(-0.52)  # near the valley floor
    high = render_mountaincar(0.45)  # near the flag
    assert _car_column(high) > _car_column(low)
    red_rows = lambda f: ((f[..., 0] > 150) & (f[..., 1] < 70) & (f[..., 2] < 70)).nonzero()[0]  # noqa: E731
    assert red_rows(high).mean() < red_rows(low).mean() - 150  # higher up the screen
    started = time.perf_counter()
    for p in np.linspace(-1.2, 0.6, 20):
        render_mountaincar(float(p))
    assert (time.perf_counter() - started) / 20 < 0.05


def test_registry_and_continuous_variant() -> None:
    assert SWEEPS["cartpole"] is cartpole_sweep and SWEEPS["mountaincar"] is mountaincar_sweep
    (frame,) = mountaincar_sweep(points=1, textured=True, env_id="MountainCarContinuous-v0")
    assert frame.env_id == "MountainCarContinuous-v0" and frame.extra["goal_position"] == 0.45
    with pytest.raises(ValueError, match="points"):
        cartpole_sweep(points=0)
    with pytest.raises(ValueError, match="MountainCar"):
        mountaincar_sweep(env_id="CartPole-v1")
