"""The run options ``vlmrm train start`` and ``vlmrm train sweep`` share, and how they become a
:class:`~vlmrm_core.training.config.TrainConfig`.

Both commands import this module (neither imports the other's), so there is one definition of
every run option and no import cycle between :mod:`vlmrm_core.cli.train` and
:mod:`vlmrm_core.cli.grid`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vlmrm_core.cli.options import (
    add_model_options,
    grid_sources,
    model_request,
    non_negative_int,
    positive_int,
    print_overrides,
    refuse_clip_options,
    reward_file_path,
    reward_request,
)
from vlmrm_core.enums import RewardBatching, choices
from vlmrm_core.errors import CliError


class TrainCliError(CliError, ValueError):
    """A user error of a ``vlmrm train`` command: printed as one line, exit status 1."""


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """The run options ``vlmrm train start`` and ``vlmrm train sweep`` share: the reward model
    (:func:`~vlmrm_core.cli.options.add_model_options`, as on every command), environment,
    checkpoints, evaluation, logging and learning hyperparameters. :func:`config_from_args`
    reads them.

    Each command adds the reward options itself (one source for a run, several for a sweep).
    """
    add_model_options(parser, device_dest="reward_device")
    model = parser.add_argument_group("reward model in training")
    model.add_argument("--model-config", help="open_clip config JSON of a custom architecture")
    model.add_argument(
        "--reward-batching",
        choices=choices(RewardBatching),
        help="step (default): one reward call per env step; rollout (DQN, SAC): one per "
        "rollout window of train_freq steps × n_envs frames, before the gradient steps",
    )
    model.add_argument(
        "--progress-shaping",
        action="store_true",
        default=None,
        help="train on the reward's progress γ·R(s') − R(s) (potential-based shaping, γ = the "
        "algorithm's --gamma), for any reward",
    )

    env = parser.add_argument_group("environment")
    env.add_argument("--n-envs", type=positive_int)
    env.add_argument("--episode-length", type=positive_int)
    env.add_argument("--textured", action="store_true", default=None)
    env.add_argument("--seed", type=int, help="seed (a sweep's first seed)")

    book = parser.add_argument_group("checkpoints, evaluation, logging")
    # Counts are checked here, so a mistake names its option (the config checks them again).
    book.add_argument("--checkpoint-every", type=positive_int, help="env steps between checkpoints")
    book.add_argument(
        "--eval-every", type=non_negative_int, help="env steps between evaluations (0: none)"
    )
    book.add_argument("--eval-episodes", type=positive_int)
    book.add_argument("--eval-steps", type=positive_int, help="step limit per evaluation episode")
    book.add_argument("--log-every", type=positive_int, help="env steps between metric rows")

    hp = parser.add_argument_group("learning hyperparameters")
    hp.add_argument("--learning-rate", "--lr", type=float, dest="learning_rate")
    hp.add_argument("--batch-size", type=positive_int)
    hp.add_argument("--gamma", type=float)
    hp.add_argument(
        "--target-tau",
        type=float,
        dest="target_tau",
        help="target network Polyak coefficient (off-policy; --tau is the reward's temperature)",
    )
    hp.add_argument("--learning-starts", type=non_negative_int)
    hp.add_argument("--train-freq", type=positive_int)
    hp.add_argument("--gradient-steps", type=int, help="per update (-1: as many as env steps)")
    hp.add_argument("--buffer-size", type=positive_int)
    hp.add_argument(
        "--n-steps",
        type=positive_int,
        help="PPO: steps per env between updates (default: SB3's 2048, lowered to fit --steps)",
    )
    hp.add_argument("--net-arch", help="hidden layer sizes, e.g. 256,256")
    hp.add_argument("--ent-coef", help="entropy coefficient (a number, or 'auto' for SAC)")


# Plain config fields set from the option of the same name.
_CONFIG_ARGS = (
    "model_config",
    "reward_device",
    "reward_batching",
    "progress_shaping",
    "n_envs",
    "episode_length",
    "textured",
    "seed",
    "checkpoint_every",
    "eval_every",
    "eval_episodes",
    "eval_steps",
    "log_every",
    "n_steps",
)


def config_from_args(args: argparse.Namespace) -> Any:
    """The :class:`TrainConfig` described by ``vlmrm train start`` arguments, its reward
    resolved (:func:`run_rewards`) and PPO's rollout fitted to the run's steps."""
    from vlmrm_core.training.config import with_reward_file

    config = base_config_from_args(args)
    path = reward_file_path(getattr(args, "reward", None))
    if path is not None and path in non_clip_reward_files(args, [path]):
        return fitted_rollout(with_reward_file(config, path))  # e.g. a VLM judge's file
    (resolved,) = run_rewards(args, config)
    print_overrides(resolved.overrides)
    config = with_resolved_reward(config, resolved)
    return fitted_rollout(config)


def non_clip_reward_files(args: argparse.Namespace, paths: Sequence[str | Path]) -> list[Path]:
    """The reward files among ``paths`` whose source is not ``clip`` (e.g. a VLM judge's):
    they train as they are, so the CLIP reward options cannot apply to them.

    Raises:
        RewardFileError: a file that cannot be read.
        CliError: such a file beside CLIP prompt or model options (a sweep may mix them with
            prompt sets and CLIP files, but not with ``--alpha``).
    """
    from vlmrm_core.reward.file import read_reward_data

    found = []
    for given in paths:
        path = reward_file_path(str(given))  # an old `--reward KIND` fails here, naming --kind
        assert path is not None
        source, _ = read_reward_data(path)
        if source.name == "clip":
            continue
        described = f"--reward {path} (a {source.name} reward)"
        if not hasattr(args, "prompt_sets"):  # one run: this file is its only reward
            refuse_clip_options(args, described, allow=("--reward",))
        elif args.alphas:  # a sweep: other sources are other trial groups, but α is CLIP's
            raise CliError(
                f"{described} and --alpha conflict: --alpha sweeps CLIP regularized rewards; "
                "sweep this reward in a sweep of its own, without --alpha"
            )
        found.append(path)
    return found


def base_config_from_args(args: argparse.Namespace) -> Any:
    """Every field of the run but its reward: the algorithm, environment and bookkeeping
    options over stable-baselines3's defaults (or the paper's with ``--paper-defaults``)."""
    from vlmrm_core.training.config import OFF_POLICY_PARAMS, TrainConfig, paper_defaults

    if args.paper_defaults:
        config = paper_defaults(args.env, args.algo)
    else:
        config = TrainConfig(env_id=args.env, algo=args.algo)
    changes: dict[str, Any] = {"total_steps": args.steps}
    hyperparameters = [name for name in OFF_POLICY_PARAMS if name != "tau"]
    for name in (*_CONFIG_ARGS, *hyperparameters):
        value = getattr(args, name)
        if value is not None:
            changes[name] = value
    if args.target_tau is not None:
        changes["tau"] = args.target_tau
    if args.net_arch is not None:
        try:
            changes["net_arch"] = [int(n) for n in args.net_arch.split(",") if n.strip()]
        except ValueError as exc:
            raise TrainCliError(
                f"--net-arch must look like 256,256; got {args.net_arch!r}"
            ) from exc
    if args.ent_coef is not None:
        changes["ent_coef"] = _number_or_text(args.ent_coef)
    if args.precision is not None:
        # Training precision is a runtime choice (auto by default), whatever the reward's source.
        changes["model"] = config.model.replace(precision=args.precision)
    return config.replace(**changes)


def run_rewards(args: argparse.Namespace, config: Any) -> list[Any]:
    """The run's reward(s), by the rule every command follows
    (:func:`vlmrm_core.services.reward_resolver.resolve_reward`): one for ``train start``, one per grid
    source and α for ``train sweep``. ``--paper-defaults`` prompts apply when no source is
    given; prompts without ``--pretrained`` use the run's default model."""
    from vlmrm_core.services.reward_resolver import ResolveError, resolve_reward, with_alphas

    fallback = None
    if config.reward is not None:
        fallback = (config.reward, f"the paper's prompts for {config.env_id}")
    request = model_request(args)
    resolved: list[Any] = []
    try:
        if not hasattr(args, "prompt_sets"):
            return [
                resolve_reward(
                    reward_request(args),
                    request,
                    fallback=fallback,
                    default_model=config.model,
                )
            ]
        for source in grid_sources(args):
            one = resolve_reward(
                reward_request(args, **source),
                request,
                fallback=fallback,
                default_model=config.model,
            )
            resolved += with_alphas(one, args.alphas)
    except ResolveError as exc:
        if exc.option == "--tau":  # --tau was the Polyak coefficient here before
            raise TrainCliError(
                f"{exc} (the target network's Polyak coefficient is --target-tau)"
            ) from None
        raise
    return resolved


def with_resolved_reward(config: Any, resolved: Any) -> Any:
    """``config`` training on a resolved reward, in the run's own precision (see
    :func:`vlmrm_core.training.config.with_reward`); a prompt set's name is kept for the record."""
    from vlmrm_core.training.config import with_reward

    config = with_reward(config, resolved.model, resolved.reward)
    prompt_set = resolved.source.name if resolved.source.kind == "prompt set" else None
    return config.replace(prompt_set=prompt_set)


def fitted_rollout(config: Any) -> Any:
    """PPO's rollout fitted to the run's steps (see
    :func:`vlmrm_core.training.config.fit_ppo_rollout`), saying so on stderr."""
    from vlmrm_core.training.config import fit_ppo_rollout

    config, note = fit_ppo_rollout(config)
    if note:
        print(f"vlmrm: note: {note}", file=sys.stderr)
    return config


def _number_or_text(value: str) -> float | str:
    try:
        return float(value)
    except ValueError:
        return value
