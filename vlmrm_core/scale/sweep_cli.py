"""``vlmrm train sweep``: start a grid of training runs on Ray Tune or the local queue.

``vlmrm train sweep --env … --algo … --steps N (--prompt-set A --prompt-set B | --goal … --alpha
0 --alpha 0.5) [--seeds K] [--engine local|ray] [--address ADDR] [--gpus-per-trial F]
[--max-concurrent C] [--wait]``, and ``vlmrm train sweep cancel|resume ID``.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from vlmrm_core.errors import CliError

# ``config_from_args`` (vlmrm train start) reads these; the sweep sets the ones it lacks to None.
_START_ARGS = (
    "prompt_set",
    "model",
    "pretrained",
    "model_config",
    "alpha",
    "kind",
    "reward_tau",
    "reward_beta",
    "aspect",
    "reward_device",
    "reward_precision",
    "n_envs",
    "episode_length",
    "textured",
    "seed",
    "checkpoint_every",
    "eval_every",
    "eval_episodes",
    "eval_steps",
    "log_every",
    "learning_rate",
    "batch_size",
    "gamma",
    "tau",
    "learning_starts",
    "train_freq",
    "gradient_steps",
    "buffer_size",
    "goal",
    "baseline",
    "negative",
    "net_arch",
    "ent_coef",
)


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
    p.add_argument("--prompt-set", dest="prompt_sets", action="append", default=[])
    p.add_argument("--reward", dest="reward_files", action="append", default=[], help="reward file")
    p.add_argument("--model")
    p.add_argument("--pretrained")
    p.add_argument("--model-config", help="open_clip config JSON of a custom architecture")
    p.add_argument("--goal", action="append")
    p.add_argument("--baseline", action="append")
    p.add_argument("--alpha", dest="alphas", action="append", type=float, default=[])
    p.add_argument("--seeds", type=int, default=1, help="seeds per grid point (default 1)")
    p.add_argument("--seed", type=int, help="first seed (default 0)")
    p.add_argument("--n-envs", type=int)
    p.add_argument("--checkpoint-every", type=int)
    p.add_argument("--eval-every", type=int)
    p.add_argument("--log-every", type=int)
    p.add_argument("--learning-starts", type=int)
    p.add_argument("--device", dest="reward_device", help="reward model device (cuda/cpu)")
    p.add_argument(
        "--precision", dest="reward_precision", choices=["fp32", "bf16"], help="reward model"
    )
    p.add_argument("--aspect", choices=["squash", "center-crop"])
    p.add_argument("--engine", default="local", choices=["local", "ray"])
    p.add_argument("--address", help="Ray cluster (default: $VLMRM_RAY_ADDRESS, else local)")
    p.add_argument("--gpus-per-trial", type=float, default=None)
    p.add_argument("--cpus-per-trial", type=float, default=1.0)
    p.add_argument("--max-concurrent", type=int, default=None)
    p.add_argument("--wait", action="store_true", help="block until the sweep ends")
    p.set_defaults(handler=cmd_sweep)


def cmd_sweep(args: argparse.Namespace) -> int:
    from vlmrm_core.scale import sweeps

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
    from vlmrm_core.store import init_db
    from vlmrm_core.training.cli import config_from_args

    engine = init_db()
    start = argparse.Namespace(**{n: None for n in _START_ARGS})
    for name, value in vars(args).items():
        if name in _START_ARGS or name in ("env", "algo", "steps", "paper_defaults"):
            setattr(start, name, value)
    base = config_from_args(start)
    points = sweeps.sweep_points(
        base,
        prompt_sets=args.prompt_sets,
        reward_files=args.reward_files,
        alphas=args.alphas,
        seeds=args.seeds,
        engine=engine,
    )
    gpus = args.gpus_per_trial
    if gpus is None:
        gpus = 0.0
    spec = {
        "points": points,
        "gpus_per_trial": gpus,
        "cpus_per_trial": args.cpus_per_trial,
        "max_concurrent": args.max_concurrent,
    }
    address = None
    if args.engine == "ray":
        from vlmrm_core.scale.cluster import configured_address

        address = args.address or configured_address()
    name = args.name or f"{args.env} {args.algo.upper()} sweep ({len(points)} trials)"
    sweep_id = sweeps.start_sweep(
        spec,
        engine_kind=args.engine,
        name=name,
        address=address,
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
    from vlmrm_core.scale import sweeps
    from vlmrm_core.store.sweeps import get_sweep

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
