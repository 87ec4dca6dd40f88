"""Frame sources: generators of :class:`~vlmrm_core.frames.FrameRecord` | ``Rejection``.

- :mod:`.uploads`: user files (images, GIFs, ZIPs of images, videos), validated as hostile input
  (a package: sniffing, images, archives, video, and the file entry points).
- :mod:`.sweeps`: CartPole pole-angle and MountainCar position sweeps (the paper's Fig. 2).
- :mod:`.rollouts`: random or stable-baselines3 policies in any gymnasium env with rgb_array.
- :mod:`.humanoid`: Humanoid-v5 rollouts and poses in the paper's textured scene and camera
  (:mod:`.humanoid_scene`; environments are made by :func:`vlmrm_core.envs.make.make_env`).
- :mod:`.textures`: the procedurally drawn, realistic MountainCar renderer.

Every source yields one frame at a time and accepts ``progress(done, total_or_None, message)``.
Heavy dependencies (gymnasium, MuJoCo, PyAV, stable-baselines3) are imported only when a source
runs, so importing this package is cheap.
"""

from vlmrm_core.envs.textures import TexturedMountainCarRenderer, render_mountaincar
from vlmrm_core.sources.humanoid import (
    PAPER_CAMERA,
    POSES,
    humanoid_poses,
    humanoid_rollout,
    make_humanoid_env,
    textured_humanoid_xml,
)
from vlmrm_core.sources.rollouts import (
    RolloutError,
    check_env_id,
    load_sb3_policy,
    render_env_frame,
    rollout_env,
    rollout_frames,
)
from vlmrm_core.sources.state_sweeps import SWEEPS, cartpole_sweep, mountaincar_sweep
from vlmrm_core.sources.uploads import SUPPORTED_EXTENSIONS, iter_paths, iter_upload, sniff_kind

__all__ = [
    "PAPER_CAMERA",
    "POSES",
    "SUPPORTED_EXTENSIONS",
    "SWEEPS",
    "RolloutError",
    "TexturedMountainCarRenderer",
    "cartpole_sweep",
    "check_env_id",
    "humanoid_poses",
    "humanoid_rollout",
    "iter_paths",
    "iter_upload",
    "load_sb3_policy",
    "make_humanoid_env",
    "mountaincar_sweep",
    "render_env_frame",
    "render_mountaincar",
    "rollout_env",
    "rollout_frames",
    "sniff_kind",
    "textured_humanoid_xml",
]
