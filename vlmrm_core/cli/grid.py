"""``vlmrm train sweep``: start a grid of training runs on Ray Tune or the local queue.

``vlmrm train sweep --env … --algo … --steps N (--prompt-set A --prompt-set B | --goal … --alpha
0 --alpha 0.5) [--seeds K] [--engine local|ray] [--address ADDR] [--gpus-per-trial F]
[--max-concurrent C] [--wait]``, and ``vlmrm train sweep cancel|resume ID``.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from vlmrm_core.cli.train import add_config_arguments
from vlmrm_core.errors import CliError


def add_sweep_command(sub: Any) -> None:
    """Register ``vlmrm train sweep`` on the ``train`` sub-parsers."""
    p = sub.add_parser(
        "sweep",
        help="run a grid (prompt set × α × seed) of training runs, on Ray or the local queue",
        description="Start a sweep and print its id; `vlmrm train sweep cancel ID` / "
        "`resume ID` control it, `vlmrm train list` shows its trials.",
    )
    p.add_argument("action", nargs="*", metavar="cancel|resume ID", help="control a sweep")
    p.add_argument("--env", help="Gymnasium env id, e.g. CartPole-v1")
    p.add_argument("--algo", choices=["sac", "dqn", "ppo"])
    p.add_argument("--steps", type=int, help="environment steps per trial")
    p.add_argument("--name", help="display name of the sweep")
    p.add_argument("--paper-defaults", action="store_true")
    grid = p.add_argument_group("grid (prompt set or reward file × α × seed)")
    grid.add_argument("--prompt-set", dest="prompt_sets", action="append", default=[])
    grid.add_argument(
        "--reward", dest="reward_files", action="append", default=[], help="reward file"
    )
    grid.add_argument("--alpha", dest="alphas", action="append", type=float, default=[])
    grid.add_argument("--seeds", type=int, default=1, help="seeds per grid point (default 1)")
    reward = p.add_argument_group("reward")
    reward.add_argument("--reward-kind", dest="kind", choices=["regularized", "contrastive"])
    add_config_arguments(p, reward)
    ray = p.add_argument_group("engine")
    ray.add_argument("--engine", default="local", choices=["local", "ray"])
    ray.add_argument("--address", help="Ray cluster (default: $VLMRM_RAY_ADDRESS, else local)")
    ray.add_argument("--gpus-per-trial", type=float, default=None)
    ray.add_argument("--cpus-per-trial", type=float, default=1.0)
    ray.add_argument("--max-concurrent", type=int, default=None)
    p.add_argument("--wait", action="store_true", help="block until the sweep ends")
    p.set_defaults(handler=cmd_sweep)


def cmd_sweep(args: argparse.Namespace) -> int:
    from vlmrm_core.training import grids as sweeps

    if args.action:
        if len(args.action) != 2 or args.action[0] not in ("cancel", "resume"):
            raise CliError("use `vlmrm train sweep cancel ID` or `vlmrm train sweep resume ID`")
        try:
            sweep_id = int(args.action[1])
        except ValueError:
            raise CliError(f"sweep id must be a number, got {args.action[1]!r}") from None
        if args.action[0] == "cancel":
            runs = sweeps.cancel_sweep(sweep_id)
            print(
                f"sweep {sweep_id}: cancelled ({len(runs)} running trials stop after a checkpoint)"
            )
            return 0
        return _resume(sweep_id, args)
    missing = [f"--{n}" for n in ("env", "algo", "steps") if getattr(args, n) is None]
    if missing:
        raise CliError(f"a sweep needs {', '.join(missing)}")
    if args.engine == "local" and args.address:
        raise CliError("--address needs --engine ray")
    from vlmrm_core.cli.train import config_from_args
    from vlmrm_core.store import init_db

    engine = init_db()
    # the grid's prompt sets and α values are applied per trial by launch_sweep
    base = config_from_args(argparse.Namespace(**vars(args), prompt_set=None, alpha=None))
    address = None
    if args.engine == "ray":
        from vlmrm_core.scale.cluster import configured_address

        address = args.address or configured_address()
    sweep_id = sweeps.launch_sweep(
        base,
        engine_kind=args.engine,
        prompt_sets=args.prompt_sets,
        reward_files=args.reward_files,
        alphas=args.alphas,
        seeds=args.seeds,
        name=args.name,
        address=address,
        gpus_per_trial=args.gpus_per_trial or 0.0,
        cpus_per_trial=args.cpus_per_trial,
        max_concurrent=args.max_concurrent,
        engine=engine,
        detach=not (args.wait and args.engine == "ray"),
    )
    print(sweep_id)
    sys.stdout.flush()
    if not args.wait:
        return 0
    if args.engine == "ray":
        status = sweeps.drive_ray_sweep(sweep_id, engine=engine)
    else:
        status = sweeps.wait_for_sweep(sweep_id, engine=engine)
    return _final(sweep_id, status)


def _resume(sweep_id: int, args: argparse.Namespace) -> int:
    from vlmrm_core.store.sweeps import get_sweep
    from vlmrm_core.training import grids as sweeps

    ray_wait = args.wait and get_sweep(_engine(), sweep_id).engine == "ray"
    sweeps.resume_sweep(sweep_id, detach=not ray_wait)
    print(f"sweep {sweep_id}: resumed")
    if not args.wait:
        return 0
    status = sweeps.drive_ray_sweep(sweep_id) if ray_wait else sweeps.wait_for_sweep(sweep_id)
    return _final(sweep_id, status)


def _engine() -> Any:
    from vlmrm_core.store import init_db

    return init_db()


def _final(sweep_id: int, status: str) -> int:
    print(f"sweep {sweep_id}: {status}")
    if status != "finished":
        print(f"vlmrm: error: sweep {sweep_id} {status}", file=sys.stderr)
        return 1
    return 0
