"""Off-screen rendering defaults, applied by the entry points that render (app, CLI, workers).

Library code never calls this on import: a researcher's notebook may want ``render_mode="human"``.
"""

from __future__ import annotations

import os


def use_headless_rendering() -> None:
    """Choose off-screen rendering back-ends when no display is available.

    Gymnasium's classic-control envs call ``pygame.display.init()`` even for ``rgb_array``
    rendering, which fails on a server without SDL's dummy driver; MuJoCo defaults to GLFW, which
    needs a display. Only unset variables are filled in, so an explicit choice (e.g.
    ``MUJOCO_GL=osmesa``) always wins. Call it before MuJoCo or pygame is first imported.
    """
    headless = not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    if headless:
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
        os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
        if "MUJOCO_GL" not in os.environ:
            os.environ["MUJOCO_GL"] = "egl"
            os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
