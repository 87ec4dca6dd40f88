"""VLM-RM Studio: CLIP reward models for reinforcement learning.

Rewards from sentences (Rocamonde et al. 2023; Baumli et al. 2023)::

    import vlmrm_core

    reward = vlmrm_core.load_reward("reward.json")   # exported from the studio
    rewards = reward(frames)                        # N×H×W×3 frames → N float32 rewards

    spec = vlmrm_core.RewardSpec(goal_prompts=("a humanoid robot kneeling",),
                                 baseline_prompts=("a humanoid robot",), alpha=0.5)
    reward_model = vlmrm_core.RewardModel.from_spec(spec, model="ViT-B-32",
                                                    pretrained="laion2b_s34b_b79k")

Every reward source is a :class:`Reward` (``reward(frames)``, ``identity``, ``description``);
:func:`as_frames` turns the frame inputs it accepts into N×H×W×3 uint8. Environment wrappers
live in :mod:`vlmrm_core.wrappers`.

Importing this package has no side effects: it changes no environment variable and imports
neither torch nor open_clip; the names below are loaded on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "ClipModel",
    "ModelRef",
    "Reward",
    "RewardModel",
    "RewardSpec",
    "as_frames",
    "epic_distance",
    "load_model",
    "load_reward",
    "save_reward",
]

# name -> module that defines it (loaded lazily, on first attribute access)
_EXPORTS = {
    "ClipModel": "vlmrm_core.clip.models",
    "load_model": "vlmrm_core.clip.models",
    "ModelRef": "vlmrm_core.reward.spec",
    "RewardSpec": "vlmrm_core.reward.spec",
    "Reward": "vlmrm_core.reward.base",
    "as_frames": "vlmrm_core.reward.base",
    "RewardModel": "vlmrm_core.reward.model",
    "load_reward": "vlmrm_core.reward.file",
    "save_reward": "vlmrm_core.reward.file",
    "epic_distance": "vlmrm_core.metrics.epic",
}

if TYPE_CHECKING:
    from vlmrm_core.clip.models import ClipModel, load_model
    from vlmrm_core.metrics.epic import epic_distance
    from vlmrm_core.reward.base import Reward, as_frames
    from vlmrm_core.reward.file import load_reward, save_reward
    from vlmrm_core.reward.model import RewardModel
    from vlmrm_core.reward.spec import ModelRef, RewardSpec


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'vlmrm_core' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
