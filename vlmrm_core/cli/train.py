"""``vlmrm train …``: start, list, cancel, resume and run training jobs from the command line.

Heavy modules (torch, stable-baselines3) are imported inside the handlers so that every other
``vlmrm`` command stays fast.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from vlmrm_core.enums import Precision, RewardBatching, choices
from vlmrm_core.errors import CliError
from vlmrm_core.terminal import printable


class TrainCliError(CliError, ValueError):
    """A user error of a ``vlmrm train`` command: printed as one line, exit status 1."""


def add_train_commands(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``train`` command group to a ``vlmrm`` argparse sub-parser collection.

    Each sub-command sets ``handler`` (called with the parsed arguments, returns an exit status).

    Args:
        subparsers: The object returned by ``ArgumentParser.add_subparsers()``.

    Returns:
        The ``train`` parser.
    """
    train = subparsers.add_parser(
        "train",
        help="train RL agents on CLIP rewards (start, list, cancel, resume, run)",
        description="Training runs execute in background worker processes that survive "
        "the terminal and the app; `vlmrm train list` shows their progress.",
    )
    train.set_defaults(handler=lambda args: _print_help(train))
    sub = train.add_subparsers(title="train commands", metavar="COMMAND")
    _add_start(sub)

    p = sub.add_parser("list", help="one line per run: id, status, steps done/total")
    p.set_defaults(handler=cmd_list)

    p = sub.add_parser("cancel", help="cancel a run (a running one stops after a checkpoint)")
    p.add_argument("run_id", type=int, metavar="ID")
    p.set_defaults(handler=cmd_cancel)

    p = sub.add_parser("resume", help="resume a cancelled, crashed or failed run")
    p.add_argument("run_id", type=int, metavar="ID")
    p.set_defaults(handler=cmd_resume)

    from vlmrm_core.cli.grid import add_sweep_command

    add_sweep_command(sub)

    p = sub.add_parser("run", help="run a queued run's worker in the foreground")
    p.add_argument("run_id", type=int, metavar="ID")
    p.set_defaults(handler=cmd_run)
    return train


def _print_help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _add_start(sub: Any) -> None:
    p = sub.add_parser(
        "start",
        help="queue a training run and start it in the background",
        description="Queue a run and print its id. Give a reward as --prompt-set NAME or "
        "inline with --goal (and --baseline/--alpha). Unset options keep stable-baselines3's "
        "defaults, or the paper's with --paper-defaults.",
    )
    p.add_argument("--env", required=True, help="Gymnasium env id, e.g. CartPole-v1")
    p.add_argument("--algo", required=True, choices=["sac", "dqn", "ppo"])
    p.add_argument("--steps", type=int, required=True, help="total environment steps")
    p.add_argument("--name", help="display name of the run")
    p.add_argument(
        "--paper-defaults",
        action="store_true",
        help="start from the settings of Rocamonde et al. (2023) for this env and algorithm",
    )
    p.add_argument(
        "--no-launch",
        action="store_true",
        help="only queue the run; it starts with `vlmrm train run ID`, when a running run "
        "finishes, or when the app's Train page is opened",
    )

    reward = p.add_argument_group("reward")
    reward.add_argument("--prompt-set", help="name of a saved prompt set")
    reward.add_argument("--alpha", type=float, help="regularisation strength in [0, 1]")
    reward.add_argument("--reward", dest="kind", choices=["regularized", "contrastive"])
    add_config_arguments(p, reward)
    p.set_defaults(handler=cmd_start)


def add_config_arguments(parser: argparse.ArgumentParser, reward: Any) -> None:
    """The run options ``vlmrm train start`` and ``vlmrm train sweep`` share: the reward model
    and prompts (into the ``reward`` argument group), environment, checkpoints, evaluation,
    logging and learning hyperparameters. :func:`config_from_args` reads them.

    Each command adds its own ``--prompt-set``, ``--alpha`` and reward-kind options (one value
    for a run, several for a sweep).
    """
    reward.add_argument("--model", help="open_clip architecture, e.g. ViT-B-32")
    reward.add_argument("--pretrained", help="pretrained tag, checkpoint path, or 'random'")
    reward.add_argument("--model-config", help="open_clip config JSON of a custom architecture")
    reward.add_argument("--goal", action="append", help="goal prompt (repeatable)")
    reward.add_argument("--baseline", action="append", help="baseline prompt (repeatable)")
    reward.add_argument("--negative", action="append", help="negative prompt (contrastive)")
    reward.add_argument("--reward-tau", type=float, help="contrastive temperature")
    reward.add_argument("--reward-beta", type=float, help="contrastive threshold β")
    reward.add_argument("--aspect", choices=["squash", "center-crop"])
    reward.add_argument("--device", dest="reward_device", help="reward model device")
    reward.add_argument(
        "--precision",
        dest="reward_precision",
        choices=choices(Precision),
        help="reward model precision (default auto: bf16, else fp16, on a GPU; fp32 on a CPU); "
        "also for a prompt set or reward file, whatever precision it was saved with",
    )
    reward.add_argument(
        "--reward-batching",
        choices=choices(RewardBatching),
        help="step (default): one reward call per env step; rollout (DQN, SAC): one per "
        "rollout window of train_freq steps × n_envs frames, before the gradient steps",
    )

    env = parser.add_argument_group("environment")
    env.add_argument("--n-envs", type=int)
    env.add_argument("--episode-length", type=int)
    env.add_argument("--textured", action="store_true", default=None)
    env.add_argument("--seed", type=int, help="seed (a sweep's first seed)")

    book = parser.add_argument_group("checkpoints, evaluation, logging")
    book.add_argument("--checkpoint-every", type=int, help="env steps between checkpoints")
    book.add_argument("--eval-every", type=int, help="env steps between evaluations (0: none)")
    book.add_argument("--eval-episodes", type=int)
    book.add_argument("--eval-steps", type=int, help="step limit per evaluation episode")
    book.add_argument("--log-every", type=int, help="env steps between metric rows")

    hp = parser.add_argument_group("learning hyperparameters")
    hp.add_argument("--learning-rate", "--lr", type=float, dest="learning_rate")
    hp.add_argument("--batch-size", type=int)
    hp.add_argument("--gamma", type=float)
    hp.add_argument("--tau", type=float, help="target network Polyak coefficient")
    hp.add_argument("--learning-starts", type=int)
    hp.add_argument("--train-freq", type=int)
    hp.add_argument("--gradient-steps", type=int)
    hp.add_argument("--buffer-size", type=int)
    hp.add_argument("--net-arch", help="hidden layer sizes, e.g. 256,256")
    hp.add_argument("--ent-coef", help="entropy coefficient (a number, or 'auto' for SAC)")


# Plain config fields set from the option of the same name (plus the off-policy hyperparameters).
_CONFIG_ARGS = (
    "prompt_set",
    "model_config",
    "reward_device",
    "reward_batching",
    "n_envs",
    "episode_length",
    "textured",
    "seed",
    "checkpoint_every",
    "eval_every",
    "eval_episodes",
    "eval_steps",
    "log_every",
)


def config_from_args(args: argparse.Namespace) -> Any:
    """The :class:`TrainConfig` described by ``vlmrm train start`` arguments."""
    from vlmrm_core.enums import RewardKind
    from vlmrm_core.reward.spec import RewardSpec
    from vlmrm_core.training.config import OFF_POLICY_PARAMS, TrainConfig, paper_defaults

    if args.paper_defaults:
        config = paper_defaults(args.env, args.algo)
    else:
        config = TrainConfig(env_id=args.env, algo=args.algo)
    if (
        args.model is not None
        and args.pretrained is None
        and args.model != config.model.architecture
    ):
        raise TrainCliError(
            f"--model {args.model} needs --pretrained (a tag, a checkpoint path or 'random')"
        )
    changes: dict[str, Any] = {"total_steps": args.steps}
    for name in (*_CONFIG_ARGS, *OFF_POLICY_PARAMS):
        value = getattr(args, name)
        if value is not None:
            changes[name] = value
    model_changes = {
        key: value
        for key, value in (
            ("architecture", args.model),
            ("pretrained", args.pretrained),
            ("aspect", args.aspect),
            ("precision", args.reward_precision),
        )
        if value is not None
    }
    if model_changes:
        changes["model"] = config.model.replace(**model_changes)
    if args.goal is not None:
        changes["reward"] = RewardSpec(
            goal_prompts=tuple(args.goal),
            baseline_prompts=tuple(args.baseline or ()),
            alpha=0.0 if args.alpha is None else args.alpha,
            kind=RewardKind(args.kind or RewardKind.REGULARIZED),
            negatives=tuple(args.negative or ()),
            tau=args.reward_tau,
            beta=0.5 if args.reward_beta is None else args.reward_beta,
        )
    elif config.reward is not None and (
        args.baseline or args.negative or args.kind or args.alpha is not None
    ):
        # Paper defaults give the prompts; options given here change them.
        reward_changes: dict[str, Any] = {}
        if args.baseline is not None:
            reward_changes["baseline_prompts"] = tuple(args.baseline)
        if args.negative is not None:
            reward_changes["negatives"] = tuple(args.negative)
        if args.kind is not None:
            reward_changes["kind"] = args.kind
        if args.alpha is not None:
            reward_changes["alpha"] = args.alpha
        changes["reward"] = config.reward.replace(**reward_changes)
    if args.prompt_set is not None:
        changes["reward"] = None  # copied from the prompt set when the run is queued
    if args.net_arch is not None:
        try:
            changes["net_arch"] = [int(n) for n in args.net_arch.split(",") if n.strip()]
        except ValueError as exc:
            raise TrainCliError(
                f"--net-arch must look like 256,256; got {args.net_arch!r}"
            ) from exc
    if args.ent_coef is not None:
        changes["ent_coef"] = _number_or_text(args.ent_coef)
    return config.replace(**changes)


def _number_or_text(value: str) -> float | str:
    try:
        return float(value)
    except ValueError:
        return value


def cmd_start(args: argparse.Namespace) -> int:
    """Queue a run, launch it, print its id."""
    from vlmrm_core.training.jobs import start_run

    config = config_from_args(args)
    run_id = start_run(config, name=args.name, launch=not args.no_launch)
    print(run_id)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    """Print one line per run (after marking runs whose worker died as crashed), ending with the
    machine its worker ran on, when one was recorded.

    Queued runs are not launched here: listing must not start a run queued with --no-launch.
    """
    from vlmrm_core.store import init_db
    from vlmrm_core.training.jobs import list_runs_view, reconcile_runs

    engine = init_db()
    reconcile_runs(engine, launch=False)
    runs = list_runs_view(engine)
    if not runs:
        print("no training runs", file=sys.stderr)
        return 0
    from vlmrm_core.store.sweeps import run_sweep_ids

    sweep_of = run_sweep_ids(engine)
    for run in runs:
        extra = " (cancelling)" if run.cancel_requested and run.status == "running" else ""
        sweep = f"sweep {sweep_of[run.id]}" if run.id in sweep_of else "-"
        # Last, as it varies in length: the machine to look at when a run crashed elsewhere.
        host = f"  on {printable(run.host)}" if run.host else ""
        # Names and ids come from users (the app, the store): shown, never obeyed as escapes.
        print(
            f"{run.id:>4}  {run.status:<9}  {run.steps_done:>9}/{run.total_steps:<9}  "
            f"{sweep:<9}  {printable(run.env_id)} {printable(run.algo)}  "
            f"{printable(run.name)}{extra}{host}"
        )
    return 0


def _not_found(exc: KeyError) -> TrainCliError:
    return TrainCliError(str(exc))


def cmd_cancel(args: argparse.Namespace) -> int:
    """Cancel a run."""
    from vlmrm_core.store import NotFoundError
    from vlmrm_core.training.jobs import cancel_run

    try:
        status = cancel_run(args.run_id)
    except NotFoundError as exc:
        raise _not_found(exc) from exc
    if status == "running":
        print(f"run {args.run_id}: cancellation requested; it stops after a checkpoint")
    else:
        print(f"run {args.run_id}: {status}")
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    """Queue a run again."""
    from vlmrm_core.store import NotFoundError
    from vlmrm_core.training.jobs import resume_run

    try:
        resume_run(args.run_id)
    except NotFoundError as exc:
        raise _not_found(exc) from exc
    print(f"run {args.run_id}: queued to resume from its last checkpoint")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """Run a worker in the foreground."""
    from vlmrm_core.store import NotFoundError
    from vlmrm_core.training.worker import run_worker

    try:
        status = run_worker(args.run_id)
    except NotFoundError as exc:
        raise _not_found(exc) from exc
    if status == "failed":
        print(f"vlmrm: error: run {args.run_id} failed (see its log)", file=sys.stderr)
        return 1
    if status == "lost":
        print(f"vlmrm: error: run {args.run_id} was taken over by another worker", file=sys.stderr)
        return 1
    print(f"run {args.run_id}: {status}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point (``python -m vlmrm_core.cli.train train …``), for tests."""
    parser = argparse.ArgumentParser(prog="vlmrm")
    add_train_commands(parser.add_subparsers())
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except (ValueError, OSError) as exc:
        print(f"vlmrm: error: {printable(str(exc))}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
