"""The scene and camera of Rocamonde et al. (2023) for Humanoid (MuJoCo), as data and files.

The paper's humanoid results depended on the scene: CLIP recognised kneeling far more reliably
with a textured floor, sky and body, and with a camera that tracks the torso from the front
(distance 3.5, look-at height 1, elevation −10°, azimuth 180°). This module holds that camera and
writes a modified copy of gymnasium's ``humanoid.xml`` to a temporary file at runtime. It imports
nothing from the rest of the project: :func:`vlmrm_core.envs.make.make_env` builds environments from
it, and :mod:`.humanoid` renders rollouts and poses in them.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import threading
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "HUMANOID_ENV_ID",
    "PAPER_CAMERA",
    "RENDER_SIZE",
    "textured_humanoid_xml",
    "tracking_camera",
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


def tracking_camera(env: Any, body_id: int) -> Any:
    """Wrap ``env`` so the free camera's look-at point follows body ``body_id`` horizontally."""
    import gymnasium as gym

    class BodyTrackingCamera(gym.Wrapper):
        """Keep the free camera's look-at point above the tracked body.

        Gymnasium renders MuJoCo envs with a *free* camera, which ignores ``trackbodyid`` in
        ``default_camera_config``; without this the humanoid walks out of the frame. The look-at
        height stays as configured (1.0 in the paper); only x and y follow the body.
        """

        def render(self) -> Any:
            sim: Any = self.env.unwrapped
            renderer = sim.mujoco_renderer
            if renderer.viewer is None:
                # The viewer (and its camera) only exists after a first render.
                self.env.render()
            body_xy = sim.data.xpos[body_id][:2]
            renderer.viewer.cam.lookat[:2] = body_xy
            return self.env.render()

    return BodyTrackingCamera(env)
