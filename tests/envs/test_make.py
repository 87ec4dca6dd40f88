"""make_env: the one place environments are made, for sources, sweeps and training."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from vlmrm_core.envs.make import EnvError, env_family, make_env
from vlmrm_core.envs.textures import TexturedMountainCarRenderer


def test_env_family() -> None:
    assert env_family("MountainCarContinuous-v0") == "MountainCar"
    assert env_family("MountainCar-v0") == "MountainCar"
    assert env_family("Humanoid-v5") == "Humanoid"
    assert env_family("ns/CartPole-v1") == "CartPole"


def test_textured_mountaincar_is_the_textures_renderer_at_the_car_position() -> None:
    env = make_env("MountainCar-v0", textured=True)
    try:
        env.reset(seed=3)
        car = env.unwrapped
        expected = TexturedMountainCarRenderer(
            (400, 600),
            min_position=car.min_position,
            max_position=car.max_position,
            goal_position=car.goal_position,
        ).render(float(car.state[0]))
        np.testing.assert_array_equal(env.render(), expected)
    finally:
        env.close()


def test_render_size_and_plain_env() -> None:
    env = make_env("CartPole-v1", render_size=(120, 180))
    try:
        env.reset(seed=0)
        assert env.render().shape == (120, 180, 3)
    finally:
        env.close()
    quiet = make_env("CartPole-v1", render_mode=None, max_episode_steps=3)
    try:
        quiet.reset(seed=0)
        assert quiet.render() is None
        assert quiet.spec.max_episode_steps == 3
    finally:
        quiet.close()


def test_textures_only_where_they_exist() -> None:
    with pytest.raises(EnvError, match="not for CartPole-v1"):
        make_env("CartPole-v1", textured=True)
    with pytest.raises(EnvError, match="rgb_array"):
        make_env("MountainCar-v0", textured=True, render_mode="human")
    with pytest.raises(EnvError, match="camera"):
        make_env("CartPole-v1", camera={"distance": 3.0})


def test_importing_envs_and_sources_imports_no_gymnasium() -> None:
    code = "import sys, vlmrm_core.envs.make, vlmrm_core.sources; print('gymnasium' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_no_import_cycle_between_humanoid_and_rollouts() -> None:
    import ast
    from pathlib import Path

    import vlmrm_core.sources.rollouts as rollouts

    tree = ast.parse(Path(rollouts.__file__).read_text())
    imported = {
        node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
    }
    assert "vlmrm_core.sources.humanoid" not in imported
