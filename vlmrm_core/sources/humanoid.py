"""Humanoid (MuJoCo) frames in the scene and camera of Rocamonde et al. (2023).

The scene and camera are in :mod:`.humanoid_scene` and the environment is made by
:func:`vlmrm_core.envs.make.make_env`; this module renders rollouts in it (through :mod:`.rollouts`)
and a few named poses set directly in ``qpos``.

Rendering is headless: ``MUJOCO_GL=egl`` (Mesa's llvmpipe on a CPU-only machine) or
``MUJOCO_GL=osmesa``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from vlmrm_core.envs.humanoid_scene import (
    HUMANOID_ENV_ID,
    PAPER_CAMERA,
    RENDER_SIZE,
    textured_humanoid_xml,
)
from vlmrm_core.envs.make import make_env
from vlmrm_core.errors import InvalidInputError
from vlmrm_core.frames import FrameRecord, ProgressCallback, Rejection
from vlmrm_core.sources.rollouts import render_env_frame, rollout_env

__all__ = [
    "HUMANOID_ENV_ID",
    "PAPER_CAMERA",
    "POSES",
    "RENDER_SIZE",
    "humanoid_poses",
    "humanoid_rollout",
    "make_humanoid_env",
    "textured_humanoid_xml",
]

# Joint angles in degrees. Poses are set kinematically (qpos, then mj_forward), so some angles go
# beyond the actuated joint ranges: these are pictures of a pose, not states a policy reached.
_ARMS_UP = {
    "right_shoulder1": -110.0,
    "right_shoulder2": 10.0,
    "right_elbow": -100.0,
    "left_shoulder1": 110.0,
    "left_shoulder2": -10.0,
    "left_elbow": -100.0,
}
# Arms hanging down beside the body instead of the model's default bent-forward arms.
_ARMS_DOWN = {
    "right_shoulder1": 35.0,
    "right_shoulder2": -35.0,
    "right_elbow": 60.0,
    "left_shoulder1": -35.0,
    "left_shoulder2": 35.0,
    "left_elbow": 60.0,
}
POSES: dict[str, dict[str, float]] = {
    "standing": {**_ARMS_DOWN},
    "arms raised": {**_ARMS_UP},
    "kneeling": {**_ARMS_DOWN, "right_knee": -90.0, "left_knee": -90.0},
    "lotus": {
        **_ARMS_DOWN,
        "right_hip_x": 90.0,
        "right_hip_y": -135.0,
        "right_knee": -125.0,
        "left_hip_x": 90.0,
        "left_hip_y": -135.0,
        "left_knee": -125.0,
    },
    # Side splits (legs out to the sides): unlike front splits, readable from the front camera.
    "splits": {
        **_ARMS_UP,
        "right_hip_x": -88.0,
        "right_knee": -2.0,
        "left_hip_x": -88.0,
        "left_knee": -2.0,
    },
}
"""Named poses: joint name -> angle in degrees (unlisted joints stay at 0). Standing, arms raised
and kneeling are faithful; lotus and splits are approximations."""


# --------------------------------------------------------------------------------------------
# Environment with the paper's camera
# --------------------------------------------------------------------------------------------


def make_humanoid_env(
    env_id: str = HUMANOID_ENV_ID,
    textured: bool = True,
    *,
    width: int = RENDER_SIZE[1],
    height: int = RENDER_SIZE[0],
    camera: dict[str, Any] | None = None,
    **env_kwargs: Any,
) -> Any:
    """Create a Humanoid env rendering ``rgb_array`` frames with the paper's camera.

    A shorthand for :func:`vlmrm_core.envs.make.make_env` with the paper's camera also for the
    untextured scene.

    Args:
        env_id: Gymnasium id (``'Humanoid-v5'``; the textured scene needs v5's ``xml_file``).
        textured: Use the textured scene from :func:`textured_humanoid_xml`.
        width: Frame width in pixels.
        height: Frame height in pixels.
        camera: Free-camera settings; defaults to :data:`PAPER_CAMERA`. A ``trackbodyid`` entry
            makes the camera follow that body horizontally.
        **env_kwargs: Passed to ``gymnasium.make`` (e.g. ``terminate_when_unhealthy=False``).

    Returns:
        The environment (caller closes it); ``env.render()`` returns H×W×3 uint8.
    """
    return make_env(
        env_id,
        textured=textured,
        camera=dict(PAPER_CAMERA if camera is None else camera),
        width=width,
        height=height,
        **env_kwargs,
    )


# --------------------------------------------------------------------------------------------
# Rollouts and poses
# --------------------------------------------------------------------------------------------


def humanoid_rollout(
    episodes: int = 1,
    steps: int = 100,
    textured: bool = True,
    seed: int | None = 0,
    progress: ProgressCallback | None = None,
    *,
    policy: str | Path | Any = "random",
    terminate_when_unhealthy: bool = False,
    width: int = RENDER_SIZE[1],
    height: int = RENDER_SIZE[0],
) -> Iterator[FrameRecord | Rejection]:
    """Frames of Humanoid-v5 rollouts in the paper's scene and camera.

    Args:
        episodes: Number of episodes.
        steps: Steps per episode (each episode yields ``steps + 1`` frames including the reset
            frame, fewer if it terminates).
        textured: Use the textured floor, sky and body.
        seed: Seed for the reset and the random policy; ``None`` for a fresh rollout.
        progress: Optional ``progress(done, total, message)`` callback.
        policy: ``'random'``/``'seeded'`` or a stable-baselines3 zip path or loaded model.
        terminate_when_unhealthy: End episodes when the torso falls out of the healthy height
            range; the paper's episodes ran their full length, so the default is False.
        width: Frame width.
        height: Frame height.

    Returns:
        A generator of FrameRecord with ``source='rollout'`` and ``env_id='Humanoid-v5'``.
    """
    return _humanoid_rollout(
        episodes, steps, textured, seed, progress, policy, terminate_when_unhealthy, width, height
    )


def _humanoid_rollout(
    episodes: int,
    steps: int,
    textured: bool,
    seed: int | None,
    progress: ProgressCallback | None,
    policy: Any,
    terminate_when_unhealthy: bool,
    width: int,
    height: int,
) -> Iterator[FrameRecord | Rejection]:
    env = make_humanoid_env(
        textured=textured,
        width=width,
        height=height,
        terminate_when_unhealthy=terminate_when_unhealthy,
    )
    try:
        for record in rollout_env(
            env,
            HUMANOID_ENV_ID,
            episodes=episodes,
            max_steps=steps,
            policy=policy,
            seed=seed,
            progress=progress,
        ):
            if isinstance(record, FrameRecord):
                record.extra["textured"] = textured
            yield record
    finally:
        env.close()


_FLOOR_CLEARANCE = 0.004


def _lowest_point(model: Any, data: Any) -> float:
    """Lowest z of the humanoid's geoms (spheres and capsules), ignoring the floor."""
    import mujoco

    lowest = np.inf
    for g in range(model.ngeom):
        if model.geom_bodyid[g] == 0:  # world geoms: the floor
            continue
        radius = model.geom_size[g][0]
        centre = data.geom_xpos[g]
        if model.geom_type[g] == mujoco.mjtGeom.mjGEOM_CAPSULE:
            axis = data.geom_xmat[g].reshape(3, 3)[:, 2] * model.geom_size[g][1]
            z = min(centre[2] + axis[2], centre[2] - axis[2]) - radius
        elif model.geom_type[g] == mujoco.mjtGeom.mjGEOM_SPHERE:
            z = centre[2] - radius
        else:  # other shapes (not in the stock model): the bounding sphere is a safe bound
            z = centre[2] - model.geom_rbound[g]
        lowest = min(lowest, z)
    return float(lowest)


def _pose_qpos(model: Any, data: Any, joints: dict[str, float]) -> np.ndarray:
    """qpos for a pose, with the root lowered or raised so the body rests on the floor."""
    import mujoco

    qpos = model.qpos0.copy()  # root at its default position, identity orientation, joints 0
    for joint, degrees in joints.items():
        qpos[model.joint(joint).qposadr[0]] = np.radians(degrees)
    data.qpos[:] = qpos
    mujoco.mj_kinematics(model, data)
    # Root z is qpos[2] for the free joint. A few millimetres of clearance keep limbs lying on
    # the floor from z-fighting with it.
    qpos[2] += _FLOOR_CLEARANCE - _lowest_point(model, data)
    return qpos


def humanoid_poses(
    textured: bool = True,
    progress: ProgressCallback | None = None,
    *,
    poses: Iterable[str] | None = None,
    width: int = RENDER_SIZE[1],
    height: int = RENDER_SIZE[0],
) -> Iterator[FrameRecord | Rejection]:
    """Frames of the humanoid held in named poses (see :data:`POSES`), in the paper's scene.

    Joint angles are set directly and the body is placed so its lowest point touches the floor;
    no physics is simulated.

    Args:
        textured: Use the textured floor, sky and body.
        progress: Optional ``progress(done, total, message)`` callback.
        poses: Pose names to render, in order; defaults to all of :data:`POSES`.
        width: Frame width.
        height: Frame height.

    Returns:
        A generator of FrameRecord with ``source='sweep'``, ``env_id='Humanoid-v5'``,
        ``param_name='pose'``, ``param_value`` = the pose's index in this call, the pose name in
        ``state['pose']`` and ``name=f"pose={pose}"``.

    Raises:
        ValueError: For an unknown pose name.
    """
    names = list(POSES) if poses is None else list(poses)
    unknown = [n for n in names if n not in POSES]
    if unknown:
        raise InvalidInputError(f"unknown pose(s) {unknown}; known poses are {list(POSES)}")
    return _pose_frames(names, textured, progress, width, height)


def _pose_frames(
    names: list[str],
    textured: bool,
    progress: ProgressCallback | None,
    width: int,
    height: int,
) -> Iterator[FrameRecord | Rejection]:
    env = make_humanoid_env(textured=textured, width=width, height=height)
    try:
        env.reset(seed=0)
        sim = env.unwrapped
        for i, pose in enumerate(names):
            qpos = _pose_qpos(sim.model, sim.data, POSES[pose])
            sim.set_state(qpos, np.zeros(sim.model.nv))  # also runs mj_forward
            name = f"pose={pose}"
            yield FrameRecord(
                pixels=render_env_frame(env),
                source="sweep",
                name=name,
                env_id=HUMANOID_ENV_ID,
                state={"pose": pose, "qpos": qpos.tolist()},
                param_name="pose",
                param_value=float(i),
                extra={"pose": pose, "textured": textured},
            )
            if progress:
                progress(i + 1, len(names), name)
    finally:
        env.close()
