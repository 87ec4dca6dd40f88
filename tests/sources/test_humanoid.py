"""Humanoid-v5 rendered headless with MuJoCo (EGL by default, see tests/conftest.py)."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from vlmrm_core.frames import FrameRecord


@pytest.fixture(scope="module")
def mujoco_renders() -> None:
    """Skip (naming what is missing) when MuJoCo cannot open an off-screen GL context."""
    backend = os.environ.get("MUJOCO_GL", "<unset>")
    try:
        from vlmrm_core.sources.humanoid import make_humanoid_env

        env = make_humanoid_env(textured=False, width=32, height=32)
        try:
            env.reset(seed=0)
            frame = env.render()
        finally:
            env.close()
    except Exception as exc:  # any failure to create the GL context means "cannot render here"
        pytest.skip(
            f"MuJoCo cannot render off-screen with MUJOCO_GL={backend} ({type(exc).__name__}: {exc}); "
            "EGL needs libegl1, libegl-mesa0, libgl1-mesa-dri and libgbm1; OSMesa needs libosmesa6"
        )
    assert frame.shape == (32, 32, 3)


def _body_mask(frame: np.ndarray) -> np.ndarray:
    """The textured body is skin-toned: clearly more red than green, more green than blue."""
    f = frame.astype(int)
    return (f[..., 0] > f[..., 1] + 25) & (f[..., 1] > f[..., 2] + 10)


def test_textured_xml_is_a_runtime_temp_file_with_the_scene() -> None:
    from vlmrm_core.sources.humanoid import textured_humanoid_xml

    path = Path(textured_humanoid_xml())
    assert path.is_absolute() and path.is_file()
    repo = Path(__file__).resolve().parents[2]
    assert repo not in path.resolve().parents
    root = ET.parse(path).getroot()
    textures = {t.get("name"): t for t in root.iter("texture")}
    assert textures["vlmrm_sky"].get("type") == "skybox"
    assert textures["texplane"].get("builtin") == "checker"
    assert textured_humanoid_xml() == str(path)  # written once per process
    # Dynamics untouched: the same bodies, joints, geoms and actuators as the stock model.
    import gymnasium.envs.mujoco as gym_mujoco

    stock = ET.parse(Path(gym_mujoco.__file__).parent / "assets" / "humanoid.xml").getroot()
    for tag in ("body", "joint", "geom", "motor", "option"):
        assert [e.attrib for e in root.iter(tag) if e.get("name") != "floor"] == [
            e.attrib for e in stock.iter(tag) if e.get("name") != "floor"
        ], tag


@pytest.mark.slow
def test_rollout_frames_with_the_paper_camera(mujoco_renders: None) -> None:
    from vlmrm_core.sources.humanoid import humanoid_rollout

    frames = list(humanoid_rollout(episodes=1, steps=2, textured=True, seed=0))
    assert len(frames) == 3 and all(isinstance(f, FrameRecord) for f in frames)
    first = frames[0]
    assert first.pixels.shape == (480, 480, 3) and first.pixels.dtype == np.uint8
    assert first.source == "rollout" and first.env_id == "Humanoid-v5"
    assert first.name == "Humanoid-v5 ep0 t0" and first.extra["textured"] is True
    assert len(first.state["observation"]) == 348
    # The camera faces the body: it sits in the middle of the frame.
    cols = _body_mask(first.pixels).nonzero()[1]
    assert cols.size > 2000 and abs(cols.mean() - 240) < 40
    # Frames are copies, not views of MuJoCo's reused buffer.
    assert frames[0].hash != frames[2].hash


@pytest.mark.slow
def test_named_poses_render_and_kneeling_is_lower(mujoco_renders: None) -> None:
    from vlmrm_core.sources.humanoid import humanoid_poses

    standing, kneeling, arms = humanoid_poses(poses=["standing", "kneeling", "arms raised"])
    assert standing.name == "pose=standing" and standing.state["pose"] == "standing"
    assert kneeling.param_name == "pose" and kneeling.param_value == 1.0
    top = {f.name: _body_mask(f.pixels).nonzero()[0].min() for f in (standing, kneeling, arms)}
    # Kneeling lowers the head; raised hands reach above the standing head.
    assert top["pose=kneeling"] > top["pose=standing"] + 30
    assert top["pose=arms raised"] < top["pose=standing"] - 30
    with pytest.raises(ValueError, match="unknown pose"):
        humanoid_poses(poses=["backflip"])


def test_camera_tracks_the_torso(mujoco_renders: None) -> None:
    from vlmrm_core.envs.make import make_env
    from vlmrm_core.sources.rollouts import render_env_frame

    # make_env is the one entry point sources and training use for textured Humanoid.
    env = make_env("Humanoid-v5", textured=True, width=160, height=160)
    try:
        env.reset(seed=0)
        sim = env.unwrapped
        qpos = sim.data.qpos.copy()
        qpos[1] += 2.0  # two metres to the side: off-screen for a fixed camera
        sim.set_state(qpos, np.zeros(sim.model.nv))
        cols = _body_mask(render_env_frame(env)).nonzero()[1]
    finally:
        env.close()
    assert cols.size > 100 and abs(cols.mean() - 80) < 20
