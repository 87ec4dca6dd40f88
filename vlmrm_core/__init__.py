"""VLM-RM Studio core: CLIP reward models for reinforcement learning.

Importing this package first installs the torchvision workaround (see
``vlmrm_core._torchvision_compat``) so that open_clip imports on CPU-only torch.
"""

import os

# Rendering is always off-screen (servers, CI, worker processes): pygame and MuJoCo must know
# before they are first imported. Users can still override both.
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

from vlmrm_core import _torchvision_compat  # noqa: E402

_torchvision_compat.install()

__version__ = "0.1.0"
