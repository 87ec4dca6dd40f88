"""State sweeps: set an environment's state directly and render it (Rocamonde et al. 2023, Fig. 2).

A sweep moves one state variable across its range with everything else fixed, so that plotting
the CLIP reward against the swept value shows how well shaped the reward is: the pole angle of
CartPole from −π/2 to π/2, and the car position of MountainCar along the whole track.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import numpy as np

from vlmrm_core.envs.make import make_env
from vlmrm_core.errors import InvalidInputError
from vlmrm_core.frames import FrameRecord, ProgressCallback, Rejection

__all__ = ["SWEEPS", "cartpole_sweep", "mountaincar_sweep"]

DEFAULT_POINTS = 51
"""An odd number, so the sweep includes the midpoint (upright pole) exactly."""


def _linspace(low: float, high: float, points: int) -> np.ndarray:
    if points < 1:
        raise InvalidInputError(f"points must be at least 1, got {points}")
    if points == 1:
        return np.array([(low + high) / 2.0])
    return np.linspace(low, high, points)


def cartpole_sweep(
    points: int = DEFAULT_POINTS,
    render_size: tuple[int, int] = (400, 600),
    progress: ProgressCallback | None = None,
) -> Iterator[FrameRecord | Rejection]:
    """Frames of CartPole-v1 with the pole angle swept from −π/2 to π/2 (inclusive).

    The cart is centred (x = 0) and all velocities are 0; only the pole angle θ changes.
    Positive θ tilts the pole to the right, as in gymnasium.

    Args:
        points: Number of frames (evenly spaced angles; 1 gives the upright pole only).
        render_size: Frame (height, width); gymnasium's default 400×600 is the paper's size.
        progress: Optional ``progress(done, total, message)`` callback.

    Returns:
        A generator of FrameRecord with ``source='sweep'``, ``env_id='CartPole-v1'``,
        ``param_name='pole_angle'`` and ``param_value=θ`` in radians.
    """
    angles = _linspace(-math.pi / 2, math.pi / 2, points)
    return _cartpole_frames(angles, render_size, progress)


def _cartpole_frames(
    angles: np.ndarray, render_size: tuple[int, int], progress: ProgressCallback | None
) -> Iterator[FrameRecord | Rejection]:
    # CartPole is drawn at render_size, with the scene scaled to the width as gymnasium scales it.
    env = make_env("CartPole-v1", render_size=render_size)
    try:
        env.reset(seed=0)
        cartpole = env.unwrapped
        total = len(angles)
        for i, theta in enumerate(angles):
            theta = float(theta)
            state = {"x": 0.0, "x_dot": 0.0, "theta": theta, "theta_dot": 0.0}
            cartpole.state = np.array([0.0, 0.0, theta, 0.0], dtype=np.float64)
            pixels = np.ascontiguousarray(env.render(), dtype=np.uint8).copy()
            name = f"pole_angle={theta:+.3f}"
            yield FrameRecord(
                pixels=pixels,
                source="sweep",
                name=name,
                env_id="CartPole-v1",
                state=state,
                param_name="pole_angle",
                param_value=theta,
                extra={"index": i, "theta_degrees": math.degrees(theta)},
            )
            if progress:
                progress(i + 1, total, name)
    finally:
        env.close()


def mountaincar_sweep(
    points: int = DEFAULT_POINTS,
    textured: bool = False,
    progress: ProgressCallback | None = None,
    *,
    env_id: str = "MountainCar-v0",
    render_size: tuple[int, int] = (400, 600),
) -> Iterator[FrameRecord | Rejection]:
    """Frames of MountainCar with the car position swept along the whole track.

    Positions run from ``min_position`` (−1.2) to ``max_position`` (0.6) inclusive, velocity 0.
    The goal flag stands at 0.5 (0.45 for the continuous variant).

    Args:
        points: Number of frames (evenly spaced positions).
        textured: Draw with the project's realistic renderer (:mod:`.textures`) instead of
            gymnasium's line drawing; the paper found textures give a smoother CLIP reward.
        progress: Optional ``progress(done, total, message)`` callback.
        env_id: ``'MountainCar-v0'`` or ``'MountainCarContinuous-v0'``.
        render_size: Frame (height, width); 400×600 is gymnasium's and the paper's size.

    Returns:
        A generator of FrameRecord with ``source='sweep'``, ``param_name='position'``.
    """
    if env_id not in ("MountainCar-v0", "MountainCarContinuous-v0"):
        raise InvalidInputError(
            f"mountaincar_sweep works with MountainCar-v0 or MountainCarContinuous-v0, not {env_id!r}"
        )
    if points < 1:
        raise InvalidInputError(f"points must be at least 1, got {points}")
    return _mountaincar_frames(points, textured, progress, env_id, render_size)


def _mountaincar_frames(
    points: int,
    textured: bool,
    progress: ProgressCallback | None,
    env_id: str,
    render_size: tuple[int, int],
) -> Iterator[FrameRecord | Rejection]:
    env = make_env(env_id, textured=textured, render_size=render_size)
    try:
        env.reset(seed=0)
        car = env.unwrapped
        positions = _linspace(car.min_position, car.max_position, points)
        for i, position in enumerate(positions):
            position = float(position)
            car.state = np.array([position, 0.0], dtype=np.float64)
            pixels = np.ascontiguousarray(env.render(), dtype=np.uint8).copy()
            name = f"position={position:+.3f}"
            yield FrameRecord(
                pixels=pixels,
                source="sweep",
                name=name,
                env_id=env_id,
                state={"position": position, "velocity": 0.0},
                param_name="position",
                param_value=position,
                extra={"index": i, "textured": textured, "goal_position": car.goal_position},
            )
            if progress:
                progress(i + 1, points, name)
    finally:
        env.close()


SWEEPS: dict[str, Callable[..., Iterator[FrameRecord | Rejection]]] = {
    "cartpole": cartpole_sweep,
    "mountaincar": mountaincar_sweep,
}
"""Sweeps by short name, for the CLI and the app: ``SWEEPS[name](points=..., progress=...)``."""
