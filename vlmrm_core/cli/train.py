"""``vlmrm train …``: start, list, cancel, resume and run training jobs from the command line.

Heavy modules (torch, stable-baselines3) are imported inside the handlers so that every other
``vlmrm`` command stays fast.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from vlmrm_core.cli.options import add_reward_options, positive_int
from vlmrm_core.cli.run_options import TrainCliError, add_config_arguments, config_from_args
from vlmrm_core.terminal import printable

__all__ = ["TrainCliError", "add_train_commands", "config_from_args", "main"]


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
        description="Queue a run and print its id. Give a reward as --prompt-set NAME, "
        "--reward FILE or inline with --goal (and --baseline/--alpha). Unset options keep "
        "stable-baselines3's defaults, or the paper's with --paper-defaults.",
    )
    p.add_argument("--env", required=True, help="Gymnasium env id, e.g. CartPole-v1")
    p.add_argument("--algo", required=True, choices=["sac", "dqn", "ppo"])
    p.add_argument("--steps", type=positive_int, required=True, help="total environment steps")
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

    add_reward_options(p)
    add_config_arguments(p)
    p.set_defaults(handler=cmd_start)


def cmd_start(args: argparse.Namespace) -> int:
    """Queue a run, launch it, print its id."""
    from vlmrm_core.training.jobs import start_run

    config = config_from_args(args)
    run_id = start_run(config, name=args.name, launch=not args.no_launch)
    print(run_id)
    return 0


LIST_HEADER = f"{'ID':>4}  {'STATUS':<9}  {'STEPS':>9}/{'TOTAL':<9}  {'SWEEP':<9}  ENV ALGO  NAME"
"""The column names of ``vlmrm train list`` (its first line when there are runs)."""


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
    print(LIST_HEADER)
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
