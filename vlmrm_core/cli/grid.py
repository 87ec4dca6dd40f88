"""``vlmrm train sweep``: start a grid of training runs on Ray Tune or the local queue.

``vlmrm train sweep --env … --algo … --steps N (--prompt-set A --prompt-set B | --goal … --alpha
0 --alpha 0.5) [--seeds K] [--engine local|ray] [--address ADDR] [--gpus-per-trial F]
[--max-concurrent C] [--wait]``, ``vlmrm train sweep cancel|resume ID``, and
``vlmrm train sweep show ID [--json]`` (status, trials and ranking of arms, as the Train page's
sweep view shows them).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from vlmrm_core.cli.options import add_reward_options, positive_int, print_overrides
from vlmrm_core.cli.run_options import add_config_arguments
from vlmrm_core.errors import CliError


def add_sweep_command(sub: Any) -> None:
    """Register ``vlmrm train sweep`` on the ``train`` sub-parsers."""
    p = sub.add_parser(
        "sweep",
        help="run a grid (prompt set × α × seed) of training runs, on Ray or the local queue",
        description="Start a sweep and print its id; `vlmrm train sweep cancel ID` / "
        "`resume ID` control it, `vlmrm train sweep show ID` summarizes its trials and ranking.",
    )
    p.add_argument(
        "action", nargs="*", metavar="cancel|resume|show ID", help="control or show a sweep"
    )
    p.add_argument("--json", action="store_true", help="with `show`: print one JSON object")
    p.add_argument("--env", help="Gymnasium env id, e.g. CartPole-v1")
    p.add_argument("--algo", choices=["sac", "dqn", "ppo"])
    p.add_argument("--steps", type=positive_int, help="environment steps per trial")
    p.add_argument("--name", help="display name of the sweep")
    p.add_argument("--paper-defaults", action="store_true")
    add_reward_options(p, grid=True)
    p.add_argument("--seeds", type=positive_int, default=1, help="seeds per grid point (default 1)")
    add_config_arguments(p)
    ray = p.add_argument_group("engine")
    ray.add_argument("--engine", default="local", choices=["local", "ray"])
    ray.add_argument("--address", help="Ray cluster (default: $VLMRM_RAY_ADDRESS, else local)")
    ray.add_argument("--gpus-per-trial", type=float, default=None)
    ray.add_argument("--cpus-per-trial", type=float, default=1.0)
    ray.add_argument("--max-concurrent", type=positive_int, default=None)
    p.add_argument("--wait", action="store_true", help="block until the sweep ends")
    p.set_defaults(handler=cmd_sweep)


def cmd_sweep(args: argparse.Namespace) -> int:
    from vlmrm_core.scale.grid_trials import drive_ray_sweep
    from vlmrm_core.training import grids as sweeps

    if args.json and (not args.action or args.action[0] != "show"):
        raise CliError("--json goes with `vlmrm train sweep show ID`")
    if args.action:
        if len(args.action) != 2 or args.action[0] not in ("cancel", "resume", "show"):
            raise CliError("use `vlmrm train sweep cancel ID`, `resume ID` or `show ID [--json]`")
        try:
            sweep_id = int(args.action[1])
        except ValueError:
            raise CliError(f"sweep id must be a number, got {args.action[1]!r}") from None
        if args.action[0] == "show":
            return _show(sweep_id, as_json=args.json)
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
    from vlmrm_core.cli.run_options import (
        base_config_from_args,
        fitted_rollout,
        non_clip_reward_files,
        run_rewards,
        with_resolved_reward,
    )
    from vlmrm_core.store import init_db
    from vlmrm_core.training.config import with_reward_file

    engine = init_db()
    base = base_config_from_args(args)
    rewards = []
    # Reward files of other sources (VLM judges) are trial groups as they are; the CLIP
    # sources go through the resolver (overrides, α values).
    others = non_clip_reward_files(args, list(dict.fromkeys(args.reward_files)))
    args.reward_files = [p for p in args.reward_files if Path(p) not in others]
    if not others or args.prompt_sets or args.reward_files or args.goal:
        resolved_rewards = run_rewards(args, base)
        print_overrides(list(dict.fromkeys(n for r in resolved_rewards for n in r.overrides)))
        for resolved in resolved_rewards:
            config = fitted_rollout(with_resolved_reward(base, resolved)).replace(prompt_set=None)
            rewards.append((_group(resolved.source), config))
    for path in others:
        rewards.append((path.stem, fitted_rollout(with_reward_file(base, path))))
    address = None
    if args.engine == "ray":
        from vlmrm_core.scale.cluster import configured_address

        address = args.address or configured_address()
    sweep_id = sweeps.launch_sweep(
        base,
        engine_kind=args.engine,
        rewards=rewards,
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
        status = drive_ray_sweep(sweep_id, engine=engine)
    else:
        status = sweeps.wait_for_sweep(sweep_id, engine=engine)
    return _final(sweep_id, status)


def _group(source: Any) -> str:
    """A trial group's name: the prompt set's, the reward file's stem, or ``inline``."""
    if source.kind == "prompt set":
        return str(source.name)
    if source.kind == "reward file":
        return Path(source.name).stem
    return "inline"


def _resume(sweep_id: int, args: argparse.Namespace) -> int:
    from vlmrm_core.scale.grid_trials import drive_ray_sweep
    from vlmrm_core.store.sweeps import get_sweep
    from vlmrm_core.training import grids as sweeps

    ray_wait = args.wait and get_sweep(_engine(), sweep_id).engine == "ray"
    sweeps.resume_sweep(sweep_id, detach=not ray_wait)
    print(f"sweep {sweep_id}: resumed")
    if not args.wait:
        return 0
    status = drive_ray_sweep(sweep_id) if ray_wait else sweeps.wait_for_sweep(sweep_id)
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


def _show(sweep_id: int, *, as_json: bool) -> int:
    """Print a sweep's status, its trials and the ranking of its arms by final ground-truth
    return: the Train page's sweep view as text (tab-separated, header rows) or one JSON object.
    """
    import json

    from vlmrm_core.plain_json import to_plain_json
    from vlmrm_core.store import get_run, run_metrics
    from vlmrm_core.store.sweeps import get_sweep, sweep_run_ids
    from vlmrm_core.terminal import printable
    from vlmrm_core.training.grid_stats import (
        CLIP_RETURN,
        GT_RETURN,
        TrialInfo,
        ranking,
        trial_infos,
    )
    from vlmrm_core.training.jobs import reconcile_runs

    engine = _engine()
    # As `vlmrm train list`: dead workers show as crashed and ended local sweeps as ended.
    reconcile_runs(engine, launch=False)
    sweep = get_sweep(engine, sweep_id)
    runs = [get_run(engine, r) for r in sweep_run_ids(engine, sweep_id)]
    trials = trial_infos(list(runs))  # grid_stats takes list[object]
    metrics = {r.id: run_metrics(engine, r.id) for r in runs}

    def final(trial: TrialInfo, column: str) -> float | None:
        # A one-trial ranking is that trial's final value (the page's definition of "final").
        table = ranking([trial], metrics, column)
        return None if table.empty else float(table["final_mean"].iloc[0])

    rows: list[dict[str, Any]] = [
        {
            "run": run.id,
            "name": run.name,
            "group": trial.group,
            "alpha": trial.alpha,
            "seed": trial.seed,
            "status": run.status,
            "steps_done": run.steps_done,
            "total_steps": run.total_steps,
            "final_clip_return": final(trial, CLIP_RETURN),
            "final_gt_return": final(trial, GT_RETURN),
        }
        for run, trial in zip(runs, trials, strict=True)
    ]
    ranked = ranking(trials, metrics, GT_RETURN).to_dict(orient="records")
    if as_json:
        summary = {
            "id": sweep.id,
            "name": sweep.name,
            "status": sweep.status,
            "engine": sweep.engine,
            "error": sweep.error,
            "trials": rows,
            "ranking": ranked,
        }
        print(json.dumps(to_plain_json(summary, non_finite="null"), allow_nan=False))
        return 0

    def number(value: float | None) -> str:
        return "-" if value is None else f"{value:g}"

    print(f"sweep {sweep.id}\t{printable(sweep.name)}\t{sweep.status}\t{sweep.engine} engine")
    if sweep.error:
        print(f"error: {printable(sweep.error)}")
    if not rows:
        print("no trial has started yet")
        return 0
    print("run\tstatus\tsteps\tgroup\talpha\tseed\tclip_return\tgt_return\tname")
    for row in rows:
        print(
            f"{row['run']}\t{row['status']}\t{row['steps_done']}/{row['total_steps']}\t"
            f"{printable(row['group'])}\t{row['alpha']:g}\t{row['seed']}\t"
            f"{number(row['final_clip_return'])}\t{number(row['final_gt_return'])}\t"
            f"{printable(row['name'])}"
        )
    if not ranked:
        print("\nno ground-truth return recorded yet: no ranking")
        return 0
    print("\nranking by final ground-truth return (mean over seeds)")
    print("rank\tarm\tfinal_mean\tfinal_std\tseeds")
    for rank, arm in enumerate(ranked, start=1):
        print(
            f"{rank}\t{printable(arm['arm'])}\t{number(arm['final_mean'])}\t"
            f"{number(arm['final_std'])}\t{arm['seeds']}"
        )
    return 0
