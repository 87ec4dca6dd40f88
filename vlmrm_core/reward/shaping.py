"""Progress shaping: the reward of a step is how much it raised a reward, r = γ·R(s') − R(s).

Potential-based shaping (Ng, Harada & Russell 1999) with a reward R as the potential: the
return of an episode becomes γᵀ·R(s_T) − R(s_0), so a policy is paid for the progress it makes
rather than for sitting in good states, and the optimal policy of a discounted task is kept
when γ is the algorithm's own discount factor (training uses the run's ``gamma``).

:class:`ProgressShaping` wraps any :class:`~vlmrm_core.reward.base.Reward` (a windowed one
included); the environment wrappers apply it over time through its :meth:`~ProgressShaping.history`,
which keeps each sub-environment's previous reward and forgets it when an episode ends.

    >>> import numpy as np
    >>> from vlmrm_core.reward.base import Reward
    >>> class Step(Reward):  # R(frame) = its first pixel / 255
    ...     identity = "example/step"
    ...     description = "first pixel"
    ...     def reward(self, frames):
    ...         return frames[:, 0, 0, 0].astype(np.float32) / 255
    >>> frames = np.zeros((3, 1, 1, 3), np.uint8); frames[:, 0, 0, 0] = [51, 102, 102]
    >>> ProgressShaping(Step(), gamma=0.5).score_episode(frames).astype(float).round(2).tolist()
    [0.1, 0.0, -0.2]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from vlmrm_core.reward.base import Reward, RewardHistory
from vlmrm_core.reward.spec import SpecError

__all__ = ["ProgressShaping", "ShapingHistory"]


def _check_gamma(gamma: float) -> float:
    value = float(gamma)
    if not (math.isfinite(value) and 0.0 < value <= 1.0):
        raise SpecError(f"the shaping discount γ must be in (0, 1], got {gamma!r}")
    return value


class ProgressShaping(Reward):
    """``base`` as a potential: the reward of reaching frame t is γ·R(frame t) − R(frame t − 1).

    The state before an episode's first scored frame (the reset state, which the wrappers never
    render) has potential 0, so the first step of an episode gets γ·R(s_1). Any constant for the
    start state keeps the optimal policy, as the start does not depend on the policy. The final
    state keeps its potential, as in the formula.

    :meth:`reward` is the potential R frame by frame (what single labelled frames are judged
    with); :meth:`score_episode` and the training wrappers give the shaped rewards.

    Args:
        base: The reward used as the potential.
        gamma: γ in (0, 1]; use the RL algorithm's discount factor.
    """

    source: ClassVar[str] = "shaping"

    def __init__(self, base: Reward, gamma: float) -> None:
        if not isinstance(base, Reward):
            raise TypeError(f"progress shaping needs a Reward, got {type(base).__name__}")
        self.base = base
        self.gamma = _check_gamma(gamma)

    @property
    def identity(self) -> str:
        """The base reward's identity with the shaping and its γ appended."""
        return f"{self.base.identity}+progress(γ={self.gamma:g})"

    @property
    def description(self) -> str:
        return f"progress shaping γ·R(s') − R(s) (γ={self.gamma:g}) of {self.base.description}"

    def reward(self, frames: Any) -> np.ndarray:
        """The potential R of each frame alone (see the class docstring)."""
        return self.base.reward(frames)

    def score_episode(self, frames: Any) -> np.ndarray:
        """T shaped rewards of an episode's T frames (the states its steps reached), in order."""
        potential = np.asarray(self.base.score_episode(frames), dtype=np.float64)
        before = np.concatenate([[0.0], potential[:-1]])
        return (self.gamma * potential - before).astype(np.float32)

    def history(self, n_envs: int) -> ShapingHistory:
        """Per sub-env: the previous potential (and the base reward's own history, if any)."""
        return ShapingHistory(self, n_envs)


class ShapingHistory(RewardHistory):
    """Each sub-environment's previous potential R(s), 0 at the start of an episode.

    Args:
        shaping: The shaped reward.
        n_envs: Number of sub-environments.
    """

    def __init__(self, shaping: ProgressShaping, n_envs: int) -> None:
        self.shaping = shaping
        self.base_history = shaping.base.history(n_envs)
        self.previous = np.zeros(n_envs, dtype=np.float64)

    def score(
        self, frames: Any, envs: Sequence[int], ends: Sequence[bool] | None = None
    ) -> np.ndarray:
        if self.base_history is not None:
            potential = self.base_history.score(frames, envs, ends)
        else:
            potential = self.shaping.base.reward(frames)
        potential = np.asarray(potential, dtype=np.float64).reshape(-1)
        if potential.shape != (len(envs),):
            raise ValueError(f"{potential.shape[0]} rewards for {len(envs)} frames")
        shaped = np.empty(len(envs), dtype=np.float64)
        for j, env in enumerate(envs):
            shaped[j] = self.shaping.gamma * potential[j] - self.previous[env]
            self.previous[env] = 0.0 if ends is not None and ends[j] else potential[j]
        return shaped.astype(np.float32)

    def reset(self, envs: Sequence[int] | None = None) -> None:
        if envs is None:
            self.previous[:] = 0.0
        else:
            self.previous[np.asarray(envs, dtype=np.int64)] = 0.0
        if self.base_history is not None:
            self.base_history.reset(envs)
