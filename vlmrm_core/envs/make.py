"""Creating gymnasium environments: the one place an environment is made.

:func:`make_env` is used by every frame source (rollouts, sweeps, humanoid poses) and by
training, so an environment looks the same wherever it appears: textured MountainCar is drawn by
:mod:`vlmrm_core.envs.textures`, textured Humanoid is the paper's scene and camera
(:mod:`vlmrm_core.envs.humanoid_scene`). Gymnasium, pygame and MuJoCo are imported only when an
environment is made, never at import time. Off-screen rendering defaults are the entry points'
business (:func:`vlmrm_core.headless.use_headless_rendering`): a notebook may want ``'human'``.
"""

from __future__ import annotations

from typing import Any

from vlmrm_core.errors import VlmrmError

__all__ = [
    "TEXTURED_FAMILIES",
    "EnvError",
    "env_family",
    "make_env",
    "textured_mountaincar",
]

TEXTURED_FAMILIES = ("MountainCar", "Humanoid")
"""Environment families that have a textured renderer (see :func:`env_family`)."""


class EnvError(VlmrmError, ValueError):
    """An environment cannot be made: unknown id, no ``rgb_array`` rendering, no textures."""


def env_family(env_id: str) -> str:
    """The family of an environment id: ``'MountainCar-v0'`` -> ``'MountainCar'``.

    Namespaces are dropped and ``MountainCarContinuous`` counts as ``MountainCar``.

    Args:
        env_id: A gymnasium id such as ``'Humanoid-v5'`` or ``'ns/Name-v1'``.

    Returns:
        The name without namespace and version.
    """
    name = env_id.split("/")[-1].split("-v")[0]
    return "MountainCar" if name.startswith("MountainCar") else name


_textured_mountaincar_cls: type | None = None


def textured_mountaincar(env: Any, size: tuple[int, int] | None = None) -> Any:
    """Wrap MountainCar so it is drawn by the realistic renderer of :mod:`.sources.textures`.

    Rocamonde et al. (2023) found CLIP rewards for MountainCar better shaped on a textured scene;
    the renderer draws the same track, flag and scale as gymnasium's.

    Args:
        env: A ``MountainCar-v0`` or ``MountainCarContinuous-v0`` env.
        size: Frame (height, width); defaults to the env's own screen size (400×600).

    Returns:
        A ``gymnasium.Wrapper`` whose ``render()`` returns the textured H×W×3 uint8 frame.
    """
    global _textured_mountaincar_cls
    if _textured_mountaincar_cls is None:
        _textured_mountaincar_cls = _define_textured_mountaincar()
    return _textured_mountaincar_cls(env, size)


def _define_textured_mountaincar() -> type:
    # Defined on first use so that importing this module does not import gymnasium.
    import gymnasium as gym
    import numpy as np

    from vlmrm_core.envs.textures import TexturedMountainCarRenderer

    class TexturedMountainCar(gym.Wrapper):
        """MountainCar whose ``render()`` draws the textured scene at the car's position."""

        def __init__(self, env: Any, size: tuple[int, int] | None) -> None:
            super().__init__(env)
            base = env.unwrapped
            if size is None:
                size = (int(base.screen_height), int(base.screen_width))
            self.renderer = TexturedMountainCarRenderer(
                size,
                min_position=float(base.min_position),
                max_position=float(base.max_position),
                goal_position=float(base.goal_position),
            )

        def render(self) -> np.ndarray:
            car: Any = self.env.unwrapped
            return self.renderer.render(float(car.state[0]))

    return TexturedMountainCar


def _make_humanoid(
    env_id: str,
    textured: bool,
    render_mode: str,
    camera: dict[str, Any] | None,
    kwargs: dict[str, Any],
) -> Any:
    import gymnasium as gym

    from vlmrm_core.envs.humanoid_scene import (
        PAPER_CAMERA,
        RENDER_SIZE,
        textured_humanoid_xml,
        tracking_camera,
    )

    camera = dict(PAPER_CAMERA if camera is None else camera)
    kwargs.setdefault("width", RENDER_SIZE[1])
    kwargs.setdefault("height", RENDER_SIZE[0])
    kwargs["width"], kwargs["height"] = int(kwargs["width"]), int(kwargs["height"])
    if textured:
        kwargs.setdefault("xml_file", textured_humanoid_xml())
    env = gym.make(env_id, render_mode=render_mode, default_camera_config=camera, **kwargs)
    if "trackbodyid" in camera and int(camera["trackbodyid"]) >= 0:
        env = tracking_camera(env, int(camera["trackbodyid"]))
    return env


def make_env(
    env_id: str,
    *,
    textured: bool = False,
    render_mode: str | None = "rgb_array",
    render_size: tuple[int, int] | None = None,
    camera: dict[str, Any] | None = None,
    **kwargs: Any,
) -> Any:
    """Make one gymnasium environment, the same way for sources, sweeps and training.

    Args:
        env_id: A registered gymnasium id.
        textured: Draw MountainCar with the realistic renderer, or Humanoid in the paper's
            textured scene (with the paper's camera); other environments have no textures.
        render_mode: Passed to ``gymnasium.make``; textured environments and ``render_size``
            need ``'rgb_array'``. ``None`` makes an environment that does not render.
        render_size: Frame (height, width). Classic-control scenes (CartPole, MountainCar, ...)
            are drawn at that size, scaled as gymnasium scales them; MuJoCo scenes render at it.
        camera: Humanoid only: free-camera settings (``distance``, ``lookat``, ``elevation``,
            ``azimuth``, ``trackbodyid`` to follow a body). Textured Humanoid defaults to
            :data:`~vlmrm_core.envs.humanoid_scene.PAPER_CAMERA`.
        **kwargs: Passed on to ``gymnasium.make`` (``max_episode_steps``,
            ``terminate_when_unhealthy``, ``width``/``height`` of MuJoCo envs, ...).

    Returns:
        The environment; the caller closes it.

    Raises:
        EnvError: ``textured`` for an environment without textures, or a textured / sized
            environment with a render mode other than ``'rgb_array'``.
    """
    family = env_family(env_id)
    if textured and family not in TEXTURED_FAMILIES:
        raise EnvError(f"textured rendering exists for MountainCar and Humanoid, not for {env_id}")
    if (textured or render_size is not None) and render_mode != "rgb_array":
        raise EnvError(
            f"textured or resized {env_id} renders rgb_array frames only, not {render_mode!r}"
        )
    import gymnasium as gym

    if family == "Humanoid" and (textured or camera is not None):
        if render_size is not None:
            kwargs["height"], kwargs["width"] = render_size
        return _make_humanoid(env_id, textured, "rgb_array", camera, kwargs)
    if camera is not None:
        raise EnvError(f"a camera can be set for Humanoid, not for {env_id}")
    if render_size is not None and family == "Humanoid":
        kwargs["height"], kwargs["width"] = render_size
        render_size = None
    env = gym.make(env_id, render_mode=render_mode, **kwargs)
    if render_size is not None:
        base = env.unwrapped
        if not (hasattr(base, "screen_height") and hasattr(base, "screen_width")):
            env.close()
            raise EnvError(f"{env_id} cannot be rendered at a chosen size")
        # Classic-control envs draw into a surface of screen_width × screen_height created on the
        # first render; setting them before that renders the scene at this size.
        base.screen_height, base.screen_width = int(render_size[0]), int(render_size[1])
    if textured:
        env = textured_mountaincar(env, render_size)
    return env
