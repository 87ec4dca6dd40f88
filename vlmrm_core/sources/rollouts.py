"""Frames from rolling out a policy in a gymnasium environment.

Any registered environment that can render ``rgb_array`` frames works. The policy is either
uniformly random actions (seeded, so the same call gives the same frames) or a saved
stable-baselines3 model, run deterministically. Each episode yields its reset frame (step 0) and
then one frame after every step, until the episode terminates, is truncated, or ``max_steps``
steps have been taken.
"""

from __future__ import annotations

import difflib
import json
import zipfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from vlmrm_core.envs.make import TEXTURED_FAMILIES, EnvError, env_family, make_env
from vlmrm_core.errors import InvalidInputError
from vlmrm_core.frames import FrameRecord, ProgressCallback, Rejection
from vlmrm_core.plain_json import to_plain_json

__all__ = [
    "RANDOM_POLICIES",
    "RolloutError",
    "check_env_id",
    "load_sb3_policy",
    "render_env_frame",
    "rollout_env",
    "rollout_frames",
]

RANDOM_POLICIES = ("random", "seeded")
"""Names of the built-in policy: both mean uniformly random actions drawn from an action space
seeded with ``seed``. ``'seeded'`` is kept as an explicit alias so a user who wants to stress that
the rollout is reproducible can say so; a fresh, unrepeatable rollout is ``seed=None``."""

# Stable-baselines3 algorithms whose saved zips we can load, in the order we try them when the
# zip does not say which one wrote it. Prediction only needs the policy network, so loading a
# zip with a sibling algorithm's class (PPO for an A2C zip) still predicts correctly.
_SB3_ALGOS = ("PPO", "A2C", "DQN", "SAC", "TD3", "DDPG")


class RolloutError(EnvError):
    """A rollout cannot start: unknown env id, no rgb_array rendering, or an unusable policy."""


def check_env_id(env_id: str) -> None:
    """Raise a helpful :class:`RolloutError` unless ``env_id`` is registered and renders frames.

    Args:
        env_id: A gymnasium environment id such as ``'CartPole-v1'``.

    Raises:
        RolloutError: Unknown id (with close matches suggested), or the environment does not
            list ``rgb_array`` among its render modes.
    """
    import gymnasium as gym
    from gymnasium.envs.registration import load_env_creator

    from vlmrm_core.security import NotAllowedError, check_env_id_allowed

    try:
        # Registered ids only: gym.spec("module:Env") would import any installed module.
        check_env_id_allowed(env_id, gym.registry.keys())
        spec = gym.spec(env_id)
    except NotAllowedError as exc:
        if ":" in env_id or env_id in gym.registry:
            raise RolloutError(str(exc)) from None
        raise _unknown_env_error(env_id, gym.registry.keys(), exc) from None
    except gym.error.Error as exc:
        raise _unknown_env_error(env_id, gym.registry.keys(), exc) from None
    creator: Any = spec.entry_point
    if isinstance(creator, str):
        try:
            creator = load_env_creator(creator)
        except Exception as exc:  # missing optional dependency (e.g. box2d, ale-py)
            raise RolloutError(
                f"{env_id} is registered but cannot be loaded ({type(exc).__name__}: {exc})"
            ) from None
    modes = getattr(creator, "metadata", {}).get("render_modes")
    if modes is not None and "rgb_array" not in modes:
        raise RolloutError(
            f"{env_id} cannot render images (its render modes are {list(modes)}); "
            "choose an environment that supports render_mode='rgb_array'"
        )


def _unknown_env_error(env_id: str, known_ids: Iterable[str], cause: Exception) -> RolloutError:
    """The error for an id gymnasium does not know, suggesting up to three close ids."""
    known = list(known_ids)
    close = difflib.get_close_matches(env_id, known, n=3, cutoff=0.5)
    if not close:
        lowered = env_id.lower()
        close = [k for k in known if lowered.split("-")[0] in k.lower()][:3]
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return RolloutError(f"Unknown gymnasium environment {env_id!r} ({cause}).{hint}")


def render_env_frame(env: Any) -> np.ndarray:
    """Render one frame from an environment made with ``render_mode='rgb_array'``.

    Args:
        env: A gymnasium environment (or wrapper).

    Returns:
        A fresh H×W×3 uint8 RGB array (a copy: MuJoCo's renderer reuses its buffer).

    Raises:
        RolloutError: If the environment returns no frame or not an image.
    """
    frame = env.render()
    if isinstance(frame, list):  # rgb_array_list mode: the latest frame
        frame = frame[-1] if frame else None
    if frame is None:
        raise RolloutError(
            "the environment rendered nothing; create it with render_mode='rgb_array'"
        )
    arr = np.asarray(frame)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise RolloutError(f"the environment rendered an array of shape {arr.shape}, not an image")
    if arr.dtype != np.uint8:
        arr = np.clip(arr, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(arr[:, :, :3]).copy()


def _sb3_algo_order(data: dict[str, Any]) -> list[str]:
    """Most likely algorithms first, guessed from the zip's readable ``data`` (no unpickling)."""
    hints: list[str] = []
    module = str(data.get("policy_class", {}).get("__module__", ""))
    for algo in _SB3_ALGOS:
        if f".{algo.lower()}." in module:
            hints.append(algo)
    if "clip_range" in data:
        hints.append("PPO")
    if "exploration_rate" in data or "target_update_interval" in data:
        hints.append("DQN")
    if "target_entropy" in data:
        hints.append("SAC")
    if "policy_delay" in data:
        hints.append("TD3")
    return list(dict.fromkeys(hints + list(_SB3_ALGOS)))


def load_sb3_policy(path: str | Path, observation_space: Any, action_space: Any) -> Any:
    """Load a saved stable-baselines3 model for prediction, weights only: nothing is unpickled.

    A stable-baselines3 zip stores some of its attributes (spaces, policy class, schedules) as
    pickled Python objects, which run code when loaded. Every one of them is replaced (through
    ``custom_objects``) by a value built here: the spaces of the environment the policy will run
    in, the policy class named after the observation space, constant schedules. The network
    weights are read with ``torch.load(weights_only=True)``. Models saved with custom classes in
    ``policy_kwargs`` (activation functions, feature extractors) cannot be loaded this way.

    Args:
        path: A ``.zip`` written by ``model.save()``.
        observation_space: The environment's observation space.
        action_space: The environment's action space.

    Returns:
        The loaded model (on CPU); use ``model.predict(obs, deterministic=True)``.

    Raises:
        RolloutError: If the file is not a readable stable-baselines3 zip (one message whether it
            is missing, unreadable or malformed), or no known algorithm can load its weights.
    """
    from vlmrm_core.security import safe_sb3_custom_objects

    path = Path(path)
    unusable = RolloutError(
        f"policy {path.name!r} is neither 'random'/'seeded' nor a readable stable-baselines3 "
        "model zip (missing, not readable, or not a zip written by model.save())."
    )
    try:
        with zipfile.ZipFile(path) as archive:
            data = json.loads(archive.read("data"))
    except (OSError, KeyError, zipfile.BadZipFile, ValueError):
        raise unusable from None
    if not isinstance(data, dict):
        raise unusable
    import stable_baselines3

    _check_saved_spaces(data, observation_space, action_space)
    custom = safe_sb3_custom_objects(data, observation_space, action_space)
    errors: list[str] = []
    for algo in _sb3_algo_order(data):
        cls = getattr(stable_baselines3, algo)
        # The alias (MlpPolicy, ...) names a different class for each algorithm.
        alias = custom.get("policy_class")
        policy_class = cls.policy_aliases.get(alias) if isinstance(alias, str) else None
        if policy_class is None:
            errors.append(f"{algo}: no {alias}")
            continue
        try:
            return cls.load(
                path, device="cpu", custom_objects={**custom, "policy_class": policy_class}
            )
        except Exception as exc:  # wrong algorithm class for this zip: try the next
            errors.append(f"{algo}: {type(exc).__name__}")
    raise RolloutError(
        f"no stable-baselines3 algorithm could load the weights of {path.name!r} "
        f"({'; '.join(errors)}). Policies are loaded weights-only: models saved with custom "
        "classes in policy_kwargs cannot be used here."
    )


def _check_saved_spaces(data: dict[str, Any], observation_space: Any, action_space: Any) -> None:
    """Compare the zip's readable space descriptions with the environment's (no unpickling)."""
    saved_obs = data.get("observation_space")
    if isinstance(saved_obs, dict) and isinstance(saved_obs.get("_shape"), list):
        shape = tuple(saved_obs["_shape"])
        if observation_space.shape is not None and shape != tuple(observation_space.shape):
            raise RolloutError(
                f"the policy expects observations of shape {shape}, but the environment gives "
                f"{tuple(observation_space.shape)}; was it trained on a different environment?"
            )
    saved_act = data.get("action_space")
    if isinstance(saved_act, dict):
        kind = str(saved_act.get(":type:", ""))
        if kind and f".{type(action_space).__name__}'" not in kind:
            raise RolloutError(
                f"the policy's action space ({kind}) does not match the environment's "
                f"{action_space}"
            )


def _check_policy_spaces(model: Any, env: Any, env_id: str) -> None:
    obs_space = getattr(model, "observation_space", None)
    act_space = getattr(model, "action_space", None)
    if obs_space is not None and obs_space.shape != env.observation_space.shape:
        raise RolloutError(
            f"the policy expects observations of shape {obs_space.shape}, but {env_id} gives "
            f"{env.observation_space.shape}; was it trained on a different environment?"
        )
    if act_space is not None and type(act_space) is not type(env.action_space):
        raise RolloutError(
            f"the policy's action space {act_space} does not match {env_id}'s {env.action_space}"
        )


def rollout_env(
    env: Any,
    env_id: str,
    *,
    episodes: int = 1,
    max_steps: int = 100,
    policy: str | Path | Any = "random",
    seed: int | None = 0,
    frame_fn: Callable[[Any], np.ndarray] | None = None,
    policy_label: str | None = None,
    progress: ProgressCallback | None = None,
) -> Iterator[FrameRecord | Rejection]:
    """Roll out a policy in an environment that already exists (the caller closes it).

    Args:
        env: A gymnasium environment created with ``render_mode='rgb_array'``.
        env_id: Id recorded in every FrameRecord.
        episodes: Number of episodes.
        max_steps: Most steps per episode; each episode gives at most ``max_steps + 1`` frames
            (the reset frame plus one per step).
        policy: ``'random'``/``'seeded'``, a path to a stable-baselines3 zip, or an object with
            a ``predict(obs, deterministic=True)`` method (a loaded model).
        seed: Seeds the first reset and the action space; ``None`` for a fresh random rollout.
        frame_fn: Renders a frame from the env; defaults to :func:`render_env_frame`.
        policy_label: What to record as ``extra['policy']``; defaults to ``'random'``, the
            zip path, or the model's class name.
        progress: Optional ``progress(done, total, message)`` callback (total is the upper
            bound ``episodes * (max_steps + 1)``).

    Returns:
        A generator of FrameRecord with ``source='rollout'``.
    """
    if episodes < 1:
        raise InvalidInputError(f"episodes must be at least 1, got {episodes}")
    if max_steps < 0:
        raise InvalidInputError(f"max_steps must be at least 0, got {max_steps}")
    model = None
    if isinstance(policy, str | Path) and str(policy) not in RANDOM_POLICIES:
        model = load_sb3_policy(policy, env.observation_space, env.action_space)
    elif not isinstance(policy, str | Path):
        model = policy
    if model is not None:
        _check_policy_spaces(model, env, env_id)
    if policy_label is None:
        if model is None:
            policy_label = "random"
        elif isinstance(policy, str | Path):
            policy_label = str(policy)
        else:
            policy_label = type(model).__name__
    return _rollout(env, env_id, episodes, max_steps, model, policy_label, seed, frame_fn, progress)


def _rollout(
    env: Any,
    env_id: str,
    episodes: int,
    max_steps: int,
    model: Any,
    policy_name: str,
    seed: int | None,
    frame_fn: Callable[[Any], np.ndarray] | None,
    progress: ProgressCallback | None,
) -> Iterator[FrameRecord | Rejection]:
    render = frame_fn or render_env_frame
    # Seeding the action space makes 'random' reproducible; the env is seeded once, on the first
    # reset, and later resets continue its random stream (gymnasium's convention), so episodes
    # differ from each other but the whole call repeats exactly.
    env.action_space.seed(seed)
    total = episodes * (max_steps + 1)
    done_frames = 0

    def record(episode: int, step: int, obs: Any, **extra: Any) -> FrameRecord:
        state = to_plain_json({"observation": obs, **extra}, other=repr)
        return FrameRecord(
            pixels=render(env),
            source="rollout",
            name=f"{env_id} ep{episode} t{step}",
            env_id=env_id,
            episode=episode,
            step=step,
            state=state,
            extra={"policy": policy_name, "seed": seed},
        )

    for episode in range(episodes):
        obs, _info = env.reset(seed=seed if episode == 0 else None)
        yield record(episode, 0, obs)
        done_frames += 1
        if progress:
            progress(done_frames, total, f"{env_id} episode {episode + 1}/{episodes}")
        for step in range(1, max_steps + 1):
            if model is None:
                action = env.action_space.sample()
            else:
                action, _ = model.predict(obs, deterministic=True)
            obs, reward, terminated, truncated, _info = env.step(action)
            yield record(
                episode,
                step,
                obs,
                action=action,
                reward=float(reward),
                terminated=bool(terminated),
                truncated=bool(truncated),
            )
            done_frames += 1
            if progress:
                progress(done_frames, total, f"{env_id} episode {episode + 1}/{episodes}")
            if terminated or truncated:
                break


def rollout_frames(
    env_id: str,
    episodes: int = 1,
    max_steps: int = 100,
    policy: str | Path = "random",
    seed: int | None = 0,
    env_kwargs: dict[str, Any] | None = None,
    textured: bool = False,
    progress: ProgressCallback | None = None,
) -> Iterator[FrameRecord | Rejection]:
    """Frames from rolling out a policy in a registered gymnasium environment.

    Args:
        env_id: Any registered id whose environment renders ``rgb_array`` frames.
        episodes: Number of episodes.
        max_steps: Most steps per episode; an episode yields its reset frame (``step=0``) plus
            one frame per step, stopping early when it terminates or is truncated.
        policy: ``'random'`` (uniform random actions from an action space seeded with ``seed``),
            ``'seeded'`` (the same thing, named for clarity), or the path of a stable-baselines3
            model zip (PPO, A2C, DQN, SAC, TD3, DDPG), run with deterministic ``predict``.
        seed: Seed for the first reset and the action space: the same call gives the same
            frames. ``None`` gives a different rollout every time.
        env_kwargs: Extra keyword arguments for :func:`vlmrm_core.envs.make.make_env`.
        textured: Draw MountainCar with the realistic renderer (:mod:`.textures`), or Humanoid
            in the textured scene with the paper's camera (:mod:`.humanoid`).
        progress: Optional ``progress(done, total, message)`` callback.

    Returns:
        A generator of FrameRecord with ``source='rollout'``, ``env_id``, ``episode``, ``step``,
        ``state={'observation': [...], 'action', 'reward', 'terminated', 'truncated'}`` and
        ``name=f"{env_id} ep{e} t{t}"``.

    Raises:
        RolloutError: Unknown environment id (with suggestions), no rgb_array rendering,
            ``textured`` for an environment without a textured renderer, or an unusable policy.
    """
    check_env_id(env_id)
    if textured and env_family(env_id) not in TEXTURED_FAMILIES:
        raise RolloutError(
            f"textured rendering exists for MountainCar and Humanoid, not for {env_id}"
        )
    model: Any = None
    label = str(policy)
    if isinstance(policy, str | Path) and label not in RANDOM_POLICIES:
        # Load now, not at the first next(): a wrong path deserves an immediate, clear error.
        # The spaces (which replace the zip's pickled ones) come from a throwaway instance.
        probe = make_env(env_id, render_mode=None, **dict(env_kwargs or {}))
        try:
            model = load_sb3_policy(policy, probe.observation_space, probe.action_space)
        finally:
            probe.close()
        _check_policy_spaces(model, probe, env_id)
    return _rollout_frames(
        env_id,
        episodes,
        max_steps,
        model if model is not None else "random",
        label,
        seed,
        dict(env_kwargs or {}),
        textured,
        progress,
    )


def _rollout_frames(
    env_id: str,
    episodes: int,
    max_steps: int,
    policy: Any,
    policy_label: str,
    seed: int | None,
    env_kwargs: dict[str, Any],
    textured: bool,
    progress: ProgressCallback | None,
) -> Iterator[FrameRecord | Rejection]:
    env = make_env(env_id, textured=textured, **env_kwargs)
    try:
        yield from rollout_env(
            env,
            env_id,
            episodes=episodes,
            max_steps=max_steps,
            policy=policy,
            seed=seed,
            policy_label=policy_label,
            progress=progress,
        )
    finally:
        env.close()
