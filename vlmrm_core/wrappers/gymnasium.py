"""gymnasium wrappers that replace an environment's reward with a reward of its rendered frames.

The reward of a transition ``(s, a, s')`` is ``reward(frame of s')``. The environment's own
reward is kept in ``info["original_reward"]``.

Auto-reset. A vector env resets a sub-env whose episode has ended; when depends on its
``AutoresetMode`` (``env.metadata["autoreset_mode"]``, see https://farama.org/Vector-Autoreset-Mode):

- ``NEXT_STEP`` (gymnasium's default): ``step`` returns the final state and the *next* ``step``
  of that sub-env only resets it (its action is ignored, gymnasium gives reward 0). The final
  step is scored on the frame rendered after ``step``, the final state. The reset step is not a
  transition: :class:`CLIPRewardVector` gives it reward 0 too, as gymnasium does, and does not
  score its frame (algorithms mask it out, as CleanRL's PPO does with ``next_done``).
- ``SAME_STEP``: ``step`` resets the sub-env before returning, so rendering after ``step`` draws
  the first state of the next episode. Scoring that frame would give the last transition of every
  episode the reward of a fresh start, which for goal-reaching tasks is exactly the wrong reward
  at the most important moment. The final frame must be rendered inside the sub-env's ``step``,
  before the reset: :class:`TerminalFrameWrapper` does that and passes it on in the step's info
  (``info["final_info"]["terminal_frame"]``). :func:`make_clip_vector_env` adds it to every
  sub-env; :class:`CLIPRewardVector` refuses a ``SAME_STEP`` vector env whose sub-envs lack it.
- ``DISABLED``: you reset sub-envs yourself (``reset(options={"reset_mask": ...})``); the frame
  rendered after ``step`` is the final state.

Rewards that look back in an episode (a windowed CLIP reward, progress shaping) return a
:class:`~vlmrm_core.reward.base.RewardHistory` from ``reward.history(num_envs)``: the wrappers
pass it each step's scored frames with the sub-env of each and whether it ends its episode, so
every episode starts afresh (the frame that ends one is still scored with its own episode's
history). Other rewards are called once per step on the frames, as before.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
import numpy.typing as npt
from gymnasium.vector import AutoresetMode, VectorEnv, VectorWrapper

from vlmrm_core.errors import VlmrmError
from vlmrm_core.reward.base import Reward, RewardHistory

RewardFn = Reward | Callable[[np.ndarray], npt.ArrayLike]
"""What scores the frames: a :class:`~vlmrm_core.reward.base.Reward` (``vlmrm_core.load_reward``,
a ``RewardModel``, or a subclass of your own), or any function of ``N×H×W×3`` uint8 frames → ``N``
rewards. It is called once for all frames of a step."""

TERMINAL_FRAME_KEY = "terminal_frame"
"""The info key under which :class:`TerminalFrameWrapper` passes on the frame of a final state."""

ORIGINAL_REWARD_KEY = "original_reward"
"""The info key that keeps the environment's own reward."""

_MARKER = "vlmrm_records_terminal_frame"
"""Attribute of :class:`TerminalFrameWrapper`, found through any wrappers around it."""


class WrapperError(VlmrmError, ValueError):
    """An environment cannot be scored as set up; the message says how to set it up."""


def require_rgb_array(render_mode: str | None, who: str) -> None:
    """Raise :class:`WrapperError` unless ``render_mode`` is ``"rgb_array"``.

    Args:
        render_mode: The environment's render mode.
        who: The class that needs frames, named in the message.
    """
    if render_mode != "rgb_array":
        raise WrapperError(
            f"{who} scores rendered frames, so the environment must render RGB arrays; it has "
            f"render_mode={render_mode!r}. Create it with "
            "gymnasium.make(env_id, render_mode='rgb_array') (or make_vec(..., "
            "render_mode='rgb_array'))."
        )


def stack_frames(frames: Sequence[Any], who: str) -> np.ndarray:
    """Rendered frames as one ``N×H×W×3`` uint8 array.

    Args:
        frames: One ``H×W×3`` frame per environment (``None`` when an env renders nothing).
        who: The class that rendered them, named in the message.

    Returns:
        The stacked frames.
    """
    if any(frame is None for frame in frames):
        raise WrapperError(f"{who}: an environment rendered no frame; is render_mode 'rgb_array'?")
    return np.stack([np.asarray(frame) for frame in frames]).astype(np.uint8, copy=False)


def score_frames(reward: RewardFn, frames: np.ndarray) -> np.ndarray:
    """One call of ``reward`` on ``frames``; checks that it gives one number per frame.

    Args:
        reward: The reward (a :class:`~vlmrm_core.reward.base.Reward` or a function of frames).
        frames: ``N×H×W×3`` uint8 frames.

    Returns:
        ``N`` rewards, float64.
    """
    rewards = np.asarray(reward(frames), dtype=np.float64)
    if rewards.shape != (len(frames),):
        raise WrapperError(
            f"the reward function returned shape {rewards.shape} for {len(frames)} frames; it "
            f"must return one reward per frame, shape ({len(frames)},)"
        )
    return rewards


def reward_history(reward: RewardFn, n_envs: int) -> RewardHistory | None:
    """The per-sub-env memory of a reward that looks back in time (None: frames are scored alone).

    A windowed CLIP reward or a progress-shaped one returns a
    :class:`~vlmrm_core.reward.base.RewardHistory`; other rewards, and plain functions, keep the
    fast path of one :func:`score_frames` call per step.
    """
    return reward.history(n_envs) if isinstance(reward, Reward) else None


def score_with_history(
    history: RewardHistory, frames: np.ndarray, envs: npt.ArrayLike, ends: npt.ArrayLike
) -> np.ndarray:
    """:meth:`RewardHistory.score` of frames of the sub-envs ``envs``; checks one reward each.

    Args:
        history: The reward's per-sub-env memory.
        frames: ``N×H×W×3`` uint8 frames, oldest step first.
        envs: The sub-env of each frame.
        ends: Whether each frame is the last of its episode.

    Returns:
        ``N`` rewards, float64.
    """
    env_index = np.asarray(envs, dtype=np.int64).reshape(-1)
    last = np.asarray(ends, dtype=bool).reshape(-1)
    rewards = np.asarray(history.score(frames, env_index.tolist(), last.tolist()), dtype=np.float64)
    if rewards.shape != (len(frames),):
        raise WrapperError(
            f"the reward returned shape {rewards.shape} for {len(frames)} frames; it must "
            f"return one reward per frame, shape ({len(frames)},)"
        )
    return rewards


class TerminalFrameWrapper(gym.Wrapper):
    """Render the frame of the state an episode ends in, inside ``step``, before any reset.

    Puts it in ``info["terminal_frame"]`` of the final step only, so ordinary steps cost nothing.
    Needed under vector envs that reset a sub-env within the step that ends its episode
    (gymnasium's ``AutoresetMode.SAME_STEP``, every stable-baselines3 VecEnv). Wrap outermost
    (outside ``TimeLimit``) so truncations are seen too; :func:`make_clip_vector_env` and
    :func:`vlmrm_core.wrappers.make_clip_vec_env` do it for you.

    Args:
        env: An environment with ``render_mode="rgb_array"``.

    Example::

        env = TerminalFrameWrapper(gymnasium.make("CartPole-v1", render_mode="rgb_array"))
    """

    vlmrm_records_terminal_frame = True

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        require_rgb_array(env.render_mode, "TerminalFrameWrapper")

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        if terminated or truncated:
            info = {**info, TERMINAL_FRAME_KEY: np.asarray(self.env.render(), dtype=np.uint8)}
        return obs, reward, terminated, truncated, info


class CLIPReward(gym.Wrapper):
    """One env whose reward is ``reward`` of the frame rendered after each step.

    The env's own reward goes to ``info["original_reward"]``. One reward call per step, on one
    frame: for many envs, :class:`CLIPRewardVector` scores all of them in one call.

    Args:
        env: An environment with ``render_mode="rgb_array"``.
        reward: The :class:`~vlmrm_core.reward.base.Reward` of the frames, e.g.
            ``vlmrm_core.load_reward("reward.json")`` (or a function: see :data:`RewardFn`).

    Example::

        import gymnasium, vlmrm_core
        from vlmrm_core.wrappers import CLIPReward

        env = CLIPReward(gymnasium.make("CartPole-v1", render_mode="rgb_array"),
                         vlmrm_core.load_reward("reward.json"))
        obs, info = env.reset(seed=0)
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
    """

    def __init__(self, env: gym.Env, reward: RewardFn) -> None:
        super().__init__(env)
        require_rgb_array(env.render_mode, "CLIPReward")
        self.reward_fn = reward
        self.history = reward_history(reward, 1)
        """The reward's memory of the episode (windowed or shaped rewards), else None."""

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        if self.history is not None:
            self.history.reset()
        return self.env.reset(**kwargs)

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        obs, original, terminated, truncated, info = self.env.step(action)
        frames = stack_frames([self.env.render()], "CLIPReward")
        if self.history is None:
            reward = float(score_frames(self.reward_fn, frames)[0])
        else:
            ended = bool(terminated or truncated)
            reward = float(score_with_history(self.history, frames, [0], [ended])[0])
        info = {**info, ORIGINAL_REWARD_KEY: float(original)}
        return obs, reward, terminated, truncated, info


class CLIPRewardVector(VectorWrapper):
    """A vector env whose rewards are ``reward`` of the frames of the states reached.

    After each step it renders all sub-envs and calls ``reward`` once for all of them. The
    final step of an episode is scored on the frame of its final state in every autoreset mode
    (see the module docstring); under ``SAME_STEP`` that frame comes from
    :class:`TerminalFrameWrapper` around each sub-env (:func:`make_clip_vector_env` adds it). In
    ``NEXT_STEP`` mode the reset step that follows an episode's end gets reward 0, as gymnasium
    gives it. The env's own rewards go to ``infos["original_reward"]``.

    Args:
        env: A vector env with ``render_mode="rgb_array"``.
        reward: The :class:`~vlmrm_core.reward.base.Reward` of the frames, e.g.
            ``vlmrm_core.load_reward("reward.json")`` (or a function: see :data:`RewardFn`).

    Raises:
        WrapperError: The env does not render RGB arrays, or it resets sub-envs within ``step``
            and they are not wrapped in :class:`TerminalFrameWrapper`.

    Example::

        import gymnasium, vlmrm_core
        from vlmrm_core.wrappers import CLIPRewardVector

        envs = gymnasium.make_vec("CartPole-v1", num_envs=8, vectorization_mode="sync",
                                  render_mode="rgb_array")
        envs = CLIPRewardVector(envs, vlmrm_core.load_reward("reward.json"))
        obs, infos = envs.reset(seed=0)
        obs, rewards, terminations, truncations, infos = envs.step(envs.action_space.sample())
    """

    def __init__(self, env: VectorEnv, reward: RewardFn) -> None:
        super().__init__(env)
        require_rgb_array(env.render_mode, "CLIPRewardVector")
        self.reward_fn = reward
        self.autoreset_mode = _autoreset_mode(env)
        if (
            self.autoreset_mode == AutoresetMode.SAME_STEP
            and _records_terminal_frames(env) is False
        ):
            raise WrapperError(_SAME_STEP_FIX)
        # NEXT_STEP: sub-envs whose next step only resets them.
        self._resetting = np.zeros(self.num_envs, dtype=bool)
        self.history = reward_history(reward, self.num_envs)
        """The reward's memory of each sub-env's episode (windowed or shaped rewards), else
        None. Cleared after the frame that ends an episode, and on ``reset``."""

    def reset(
        self, *, seed: int | list[int] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        # Read before the vector env pops it from ``options``.
        reset_mask = None if options is None else options.get("reset_mask")
        # VectorEnv.reset is annotated ``seed: int | None``, but Sync/AsyncVectorEnv take a list.
        result = self.env.reset(seed=seed, options=options)  # type: ignore[arg-type]
        if reset_mask is None:
            self._resetting[:] = False
            if self.history is not None:
                self.history.reset()
        else:
            mask = np.asarray(reset_mask, dtype=bool)
            self._resetting[mask] = False
            if self.history is not None:
                self.history.reset(np.flatnonzero(mask).tolist())
        return result

    def step(self, actions: Any) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        obs, original, terminated, truncated, infos = self.env.step(actions)
        done = np.logical_or(terminated, truncated)
        infos = dict(infos)
        terminal_frames = _pop_terminal_frames(infos)
        rendered = self.env.render()
        if rendered is None:
            raise WrapperError("CLIPRewardVector: the vector env rendered no frames")
        frames = list(rendered)
        if self.autoreset_mode == AutoresetMode.SAME_STEP:
            # The sub-env is already reset: its final frame was rendered inside its step.
            for i in np.flatnonzero(done).tolist():
                if i not in terminal_frames:
                    raise WrapperError(_SAME_STEP_FIX)
                frames[i] = terminal_frames[i]
        scored = ~self._resetting if self.autoreset_mode == AutoresetMode.NEXT_STEP else None
        rewards = np.zeros(self.num_envs, dtype=np.float64)
        envs = np.arange(self.num_envs) if scored is None else np.flatnonzero(scored)
        if envs.size:
            batch = stack_frames([frames[i] for i in envs], "CLIPRewardVector")
            if self.history is None:
                rewards[envs] = score_frames(self.reward_fn, batch)
            else:
                # A frame that ends its episode is scored with its episode's history, which is
                # then cleared: the next episode starts afresh in every autoreset mode.
                rewards[envs] = score_with_history(self.history, batch, envs, done[envs])
        if self.autoreset_mode == AutoresetMode.NEXT_STEP:
            self._resetting = done
        infos[ORIGINAL_REWARD_KEY] = np.array(original, dtype=np.float64)
        infos["_" + ORIGINAL_REWARD_KEY] = np.ones(self.num_envs, dtype=bool)
        return obs, rewards, terminated, truncated, infos


_SAME_STEP_FIX = (
    "CLIPRewardVector: this vector env resets sub-envs within the step that ends their episode "
    "(AutoresetMode.SAME_STEP), so the frame of the final state must be rendered inside each "
    "sub-env before the reset, and its sub-envs are not wrapped in TerminalFrameWrapper (or "
    "not outermost, outside TimeLimit). Build it with "
    "vlmrm_core.wrappers.make_clip_vector_env(env_id, num_envs, reward, "
    "autoreset_mode=AutoresetMode.SAME_STEP), or add wrappers=[TerminalFrameWrapper] last in "
    "gymnasium.make_vec."
)


def make_clip_vector_env(
    env_id: str,
    num_envs: int,
    reward: RewardFn,
    *,
    vectorization_mode: str = "sync",
    autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
    env_kwargs: dict[str, Any] | None = None,
    wrappers: Sequence[Callable[[gym.Env], gym.Wrapper]] = (),
    vector_kwargs: dict[str, Any] | None = None,
) -> CLIPRewardVector:
    """A gymnasium vector env of ``env_id`` rewarded by ``reward``, right for every autoreset mode.

    Builds on ``gymnasium.make_vec`` with ``render_mode="rgb_array"`` and wraps each sub-env in
    :class:`TerminalFrameWrapper` (outermost), so the final step of each episode is scored on
    its final state whatever the autoreset mode.

    Args:
        env_id: A registered gymnasium env id.
        num_envs: Number of sub-envs.
        reward: The :class:`~vlmrm_core.reward.base.Reward` of the frames, e.g.
            ``vlmrm_core.load_reward("reward.json")`` (or a function: see :data:`RewardFn`).
        vectorization_mode: ``"sync"`` (sub-envs in this process) or ``"async"`` (one
            subprocess each); the reward is computed in this process either way.
        autoreset_mode: gymnasium's ``AutoresetMode`` (or its value, e.g. ``"SameStep"``).
        env_kwargs: Keyword arguments of ``gymnasium.make`` (e.g. ``max_episode_steps``).
        wrappers: Wrappers applied to each sub-env, innermost first.
        vector_kwargs: Further arguments of ``SyncVectorEnv`` / ``AsyncVectorEnv``.

    Returns:
        The wrapped vector env.

    Example::

        import vlmrm_core
        from gymnasium.vector import AutoresetMode
        from vlmrm_core.wrappers import make_clip_vector_env

        envs = make_clip_vector_env("CartPole-v1", 8, vlmrm_core.load_reward("reward.json"),
                                    autoreset_mode=AutoresetMode.SAME_STEP)
    """
    if vectorization_mode not in ("sync", "async"):
        raise WrapperError(
            f"vectorization_mode must be 'sync' or 'async', not {vectorization_mode!r}: the "
            "reward needs each sub-env's own rendered frame and TerminalFrameWrapper around it"
        )
    kwargs = dict(env_kwargs or {})
    require_rgb_array(kwargs.setdefault("render_mode", "rgb_array"), "make_clip_vector_env")
    envs = gym.make_vec(
        env_id,
        num_envs=num_envs,
        vectorization_mode=vectorization_mode,
        vector_kwargs={**(vector_kwargs or {}), "autoreset_mode": AutoresetMode(autoreset_mode)},
        wrappers=[*wrappers, TerminalFrameWrapper],
        **kwargs,
    )
    return CLIPRewardVector(envs, reward)


def _autoreset_mode(env: VectorEnv) -> AutoresetMode:
    """The vector env's autoreset mode; NEXT_STEP (gymnasium's default) when it does not say."""
    mode = env.metadata.get("autoreset_mode")
    if mode is None:
        warnings.warn(
            f"{env} has no 'autoreset_mode' in its metadata; CLIPRewardVector assumes "
            "gymnasium's default, AutoresetMode.NEXT_STEP",
            stacklevel=3,
        )
        return AutoresetMode.NEXT_STEP
    return AutoresetMode(mode)


def _records_terminal_frames(env: VectorEnv) -> bool | None:
    """Whether every sub-env is wrapped in :class:`TerminalFrameWrapper`; None if unknown."""
    call = getattr(env.unwrapped, "call", None)
    if call is None:
        return None
    try:
        return all(call("has_wrapper_attr", _MARKER))
    except (AttributeError, NotImplementedError):
        return None


def _pop_terminal_frames(infos: dict[str, Any]) -> dict[int, np.ndarray]:
    """Take :class:`TerminalFrameWrapper`'s frames out of a vector env's infos, by sub-env.

    Under ``SAME_STEP`` they are in ``infos["final_info"]``, else at the top level. Popped so
    that large arrays do not linger in infos an algorithm keeps.
    """
    found: dict[int, np.ndarray] = {}
    for holder in (infos, infos.get("final_info")):
        if not isinstance(holder, dict) or TERMINAL_FRAME_KEY not in holder:
            continue
        frames = holder.pop(TERMINAL_FRAME_KEY)
        mask = holder.pop("_" + TERMINAL_FRAME_KEY, np.ones(len(frames), dtype=bool))
        for i in np.flatnonzero(mask):
            found[int(i)] = np.asarray(frames[i], dtype=np.uint8)
    return found
