"""Put a CLIP reward into your own training code: gymnasium and stable-baselines3 wrappers.

The reward of a transition ``(s, a, s')`` is the reward of the frame of ``s'``, the state the
transition leads to (Rocamonde et al. 2023), also on the step that ends an episode, whatever the
vector env does with that sub-env afterwards (auto-reset).

``reward`` is a :class:`vlmrm_core.Reward`: a reward file loaded with
``vlmrm_core.load_reward("reward.json")``, a :class:`vlmrm_core.RewardModel` built from prompts,
or a ``Reward`` subclass of your own (any source: it only has to map ``N×H×W×3`` frames to ``N``
rewards). A plain function of the frames works too (:data:`RewardFn`). All frames of a step are
scored in one call.

gymnasium:

- :class:`CLIPReward`: one env.
- :class:`CLIPRewardVector`: a ``gymnasium.vector.VectorEnv``, one reward call per step for all
  sub-envs, every autoreset mode. :func:`make_clip_vector_env` builds one that is right by
  construction (it wraps each sub-env in :class:`TerminalFrameWrapper`).

stable-baselines3 (imported on first use, so gymnasium users need not install it):

- :class:`CLIPRewardVecEnv`: a ``VecEnvWrapper``; :func:`make_clip_vec_env` builds one on SB3's
  ``make_vec_env``. With ``defer=True`` (DQN, SAC, other off-policy algorithms) the frames of a
  rollout window are scored in one call at its end, and :class:`RolloutRewardCallback` writes the
  rewards into the replay buffer before the gradient steps.

Example::

    import vlmrm_core
    from vlmrm_core.wrappers import make_clip_vector_env

    envs = make_clip_vector_env("CartPole-v1", 8, vlmrm_core.load_reward("reward.json"))
"""

from __future__ import annotations

from typing import Any

from vlmrm_core.wrappers.gymnasium import (
    TERMINAL_FRAME_KEY,
    CLIPReward,
    CLIPRewardVector,
    RewardFn,
    TerminalFrameWrapper,
    WrapperError,
    make_clip_vector_env,
)

__all__ = [
    "TERMINAL_FRAME_KEY",
    "CLIPReward",
    "CLIPRewardVecEnv",
    "CLIPRewardVector",
    "RewardFn",
    "RolloutRewardCallback",
    "TerminalFrameWrapper",
    "WrapperError",
    "make_clip_vec_env",
    "make_clip_vector_env",
    "score_stored_rewards",
]

_SB3_NAMES = (
    "CLIPRewardVecEnv",
    "RolloutRewardCallback",
    "make_clip_vec_env",
    "score_stored_rewards",
)


def __getattr__(name: str) -> Any:
    # stable-baselines3 loads only for its wrappers: CleanRL-style users need not install it.
    if name in _SB3_NAMES:
        from vlmrm_core.wrappers import sb3

        return getattr(sb3, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
