"""Humanoid (MuJoCo) frames in the scene and camera of Rocamonde et al. (2023).

The paper's humanoid results depended on the scene: CLIP recognised kneeling far more reliably
with a textured floor, sky and body, and with a camera that tracks the torso from the front
(distance 3.5, look-at height 1, elevation −10°, azimuth 180°). This module builds that scene by
writing a modified copy of gymnasium's ``humanoid.xml`` to a temporary file at runtime, renders
rollouts in it (through :mod:`.rollouts`), and renders a few named poses set directly in ``qpos``.

Rendering is headless: ``MUJOCO_GL=egl`` (Mesa's llvmpipe on a CPU-only machine) or
``MUJOCO_GL=osmesa``.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from vlmrm_core.frames import FrameRecord, ProgressCallback, Rejection
from vlmrm_core.sources.rollouts import headless_rendering, render_env_frame, rollout_env

__all__ = [
    "HUMANOID_ENV_ID",
    "PAPER_CAMERA",
    "POSES",
    "RENDER_SIZE",
    "humanoid_poses",
    "humanoid_rollout",
    "make_env",
    "make_humanoid_env",
    "textured_humanoid_xml",
]

HUMANOID_ENV_ID = "Humanoid-v5"
RENDER_SIZE = (480, 480)
"""(height, width) the paper rendered Humanoid at."""

PAPER_CAMERA: dict[str, Any] = {
    "trackbodyid": 1,
    "distance": 3.5,
    "lookat": np.array((0.0, 0.0, 1.0)),
    "elevation": -10.0,
    "azimuth": 180.0,
}
"""The paper's camera: tracks body 1 (the torso) and looks at the humanoid's front (it faces +x;
azimuth 180° puts the camera on the +x side looking back)."""

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
# The textured scene
# --------------------------------------------------------------------------------------------

_xml_lock = threading.Lock()
_xml_path: str | None = None


def _stock_humanoid_xml() -> Path:
    import gymnasium.envs.mujoco as gym_mujoco

    return Path(gym_mujoco.__file__).parent / "assets" / "humanoid.xml"


def _texture_scene(root: ET.Element) -> None:
    """Replace the sky, floor and body textures and brighten the lighting, in place."""
    asset = root.find("asset")
    if asset is None:
        asset = ET.SubElement(root, "asset")
    for texture in list(asset.findall("texture")):
        if texture.get("type") == "skybox" or texture.get("name") in ("texplane", "texgeom"):
            asset.remove(texture)
    for material in list(asset.findall("material")):
        if material.get("name") in ("MatPlane", "geom"):
            asset.remove(material)
    # Sky: a blue gradient, pale at the horizon (MuJoCo puts rgb1 at the zenith).
    ET.SubElement(
        asset,
        "texture",
        name="vlmrm_sky",
        type="skybox",
        builtin="gradient",
        rgb1="0.35 0.55 0.85",
        rgb2="0.85 0.9 0.97",
        width="512",
        height="3072",
    )
    # Floor: light stone tiles with dark grout lines, one tile per half metre.
    ET.SubElement(
        asset,
        "texture",
        name="texplane",
        type="2d",
        builtin="checker",
        rgb1="0.62 0.6 0.55",
        rgb2="0.45 0.43 0.4",
        mark="edge",
        markrgb="0.25 0.24 0.22",
        random="0.04",
        width="512",
        height="512",
    )
    ET.SubElement(
        asset,
        "material",
        name="MatPlane",
        texture="texplane",
        texrepeat="1 1",
        texuniform="true",
        # No mirror reflection: it doubles the render cost on a software rasteriser and the
        # ghost image of the body under the floor looks nothing like a real scene.
        reflectance="0",
        shininess="0.2",
        specular="0.2",
    )
    # Body: a speckled, slightly glossy skin tone instead of a flat colour.
    ET.SubElement(
        asset,
        "texture",
        name="texgeom",
        type="cube",
        builtin="gradient",
        rgb1="0.93 0.72 0.55",
        rgb2="0.72 0.5 0.36",
        random="0.05",
        width="256",
        height="256",
    )
    ET.SubElement(
        asset,
        "material",
        name="geom",
        texture="texgeom",
        texuniform="true",
        specular="0.3",
        shininess="0.4",
    )
    # Floor geom colour multiplies the texture; the stock greenish tint would muddy it.
    for geom in root.iter("geom"):
        if geom.get("name") == "floor":
            geom.set("rgba", "1 1 1 1")
    visual = root.find("visual")
    if visual is None:
        visual = ET.SubElement(root, "visual")
    for tag in ("headlight", "quality"):
        for old in visual.findall(tag):
            visual.remove(old)
    ET.SubElement(
        visual, "headlight", ambient="0.35 0.35 0.35", diffuse="0.6 0.6 0.6", specular="0.1 0.1 0.1"
    )
    # Soft-edged shadows at a quarter of MuJoCo's default map size: still ground the body
    # visually, at a fraction of the cost on a software rasteriser (llvmpipe).
    ET.SubElement(visual, "quality", shadowsize="1024")


def textured_humanoid_xml() -> str:
    """Path of the textured humanoid model, written once per process to a temporary directory.

    The file is gymnasium's ``humanoid.xml`` with a gradient sky, a tiled floor, a speckled
    body material and brighter lighting; the bodies, joints and actuators are unchanged, so
    dynamics are identical to the stock ``Humanoid-v5``. The directory is removed at exit.

    Returns:
        Absolute path of the XML file (pass it as ``xml_file`` to ``gymnasium.make``).
    """
    global _xml_path
    with _xml_lock:
        if _xml_path is not None and os.path.exists(_xml_path):
            return _xml_path
        tree = ET.parse(_stock_humanoid_xml())
        _texture_scene(tree.getroot())
        folder = tempfile.mkdtemp(prefix="vlmrm-humanoid-")
        atexit.register(shutil.rmtree, folder, True)
        path = os.path.join(folder, "humanoid_textured.xml")
        tree.write(path, encoding="unicode")
        _xml_path = os.path.abspath(path)
        return _xml_path


# --------------------------------------------------------------------------------------------
# Environment with the paper's camera
# --------------------------------------------------------------------------------------------


def _tracking_wrapper(env: Any, body_id: int) -> Any:
    import gymnasium as gym

    class BodyTrackingCamera(gym.Wrapper):
        """Keep the free camera's look-at point above the tracked body.

        Gymnasium renders MuJoCo envs with a *free* camera, which ignores ``trackbodyid`` in
        ``default_camera_config``; without this the humanoid walks out of the frame. The look-at
        height stays as configured (1.0 in the paper); only x and y follow the body.
        """

        def render(self) -> Any:
            renderer = self.env.unwrapped.mujoco_renderer
            if renderer.viewer is None:
                # The viewer (and its camera) only exists after a first render.
                self.env.render()
            body_xy = self.env.unwrapped.data.xpos[body_id][:2]
            renderer.viewer.cam.lookat[:2] = body_xy
            return self.env.render()

    return BodyTrackingCamera(env)


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
    headless_rendering()
    import gymnasium as gym

    camera = dict(PAPER_CAMERA if camera is None else camera)
    if textured:
        env_kwargs.setdefault("xml_file", textured_humanoid_xml())
    env = gym.make(
        env_id,
        render_mode="rgb_array",
        width=int(width),
        height=int(height),
        default_camera_config=camera,
        **env_kwargs,
    )
    if "trackbodyid" in camera and int(camera["trackbodyid"]) >= 0:
        env = _tracking_wrapper(env, int(camera["trackbodyid"]))
    return env


def make_env(env_id: str = HUMANOID_ENV_ID, render_mode: str = "rgb_array", **kwargs: Any) -> Any:
    """The textured Humanoid with the paper's camera, with ``gymnasium.make``'s call shape.

    Used by training (``vlmrm_core.training.envs``) for ``textured=True`` configs.

    Args:
        env_id: Gymnasium id, ``'Humanoid-v5'``.
        render_mode: Must be ``'rgb_array'`` (CLIP rewards are computed from rendered frames).
        **kwargs: Passed to :func:`make_humanoid_env` (``width``, ``height``, ``camera``) and
            on to ``gymnasium.make`` (``max_episode_steps``, ``terminate_when_unhealthy``, ...).

    Returns:
        The environment.

    Raises:
        ValueError: For any render mode other than ``'rgb_array'``.
    """
    if render_mode != "rgb_array":
        raise ValueError(
            f"the textured humanoid renders rgb_array frames only, not {render_mode!r}"
        )
    return make_humanoid_env(env_id, textured=True, **kwargs)


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
        raise ValueError(f"unknown pose(s) {unknown}; known poses are {list(POSES)}")
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
