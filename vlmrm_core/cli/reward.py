"""``vlmrm reward ...``: reward files in and out of the project.

The reward and model options themselves (``--prompt-set``, ``--reward FILE``, ``--goal``, …)
are defined once in :mod:`vlmrm_core.cli.options` and resolved by
:func:`vlmrm_core.services.reward_resolver.resolve_reward`, the same on every command.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from vlmrm_core.cli.options import (
    add_judge_options,
    add_model_options,
    add_reward_options,
    model_request,
    print_overrides,
    reward_request,
)
from vlmrm_core.enums import RewardKind
from vlmrm_core.terminal import printable

# --------------------------------------------------------------------------- vlmrm reward


def add_reward_commands(sub: Any) -> None:
    """``vlmrm reward export|import|show|list``."""
    p = sub.add_parser("reward", help="reward files: export, import, show, list prompt sets")
    commands = p.add_subparsers(title="reward commands", metavar="COMMAND")

    export = commands.add_parser(
        "export",
        help="write a saved prompt set, prompts given here, or a VLM judge as a reward file",
        description="A reward file holds the model reference and the reward (CLIP prompts, or "
        "a judge's question with --judge MODEL --question Q); load it in any training script "
        "with vlmrm_core.load_reward(path), or train on it with `vlmrm train start --reward`.",
    )
    export.add_argument(
        "prompt_set_name",
        nargs="?",
        metavar="PROMPT_SET_NAME",
        help="a saved prompt set (the same as --prompt-set NAME)",
    )
    add_model_options(export, device=False)
    add_reward_options(export)
    add_judge_options(export)
    export.add_argument("--out", type=Path, required=True, help="reward file to write (.json)")
    export.set_defaults(handler=cmd_reward_export)

    imp = commands.add_parser("import", help="save a reward file as a prompt set")
    imp.add_argument("file", type=Path, metavar="FILE.json")
    imp.add_argument("--name", help="prompt set name (default: the file's stem)")
    imp.add_argument("--overwrite", action="store_true", help="replace a set of that name")
    imp.set_defaults(handler=cmd_reward_import)

    show = commands.add_parser("show", help="print what a reward file defines")
    show.add_argument("file", type=Path, metavar="FILE.json")
    show.add_argument("--json", action="store_true", help="print the validated JSON")
    show.set_defaults(handler=cmd_reward_show)

    listing = commands.add_parser("list", help="list the saved prompt sets")
    listing.set_defaults(handler=cmd_reward_list)
    p.set_defaults(handler=lambda _args: p.print_help() or 2)


def cmd_reward_export(args: argparse.Namespace) -> int:
    from vlmrm_core.cli.judge import export_judge
    from vlmrm_core.cli.options import RenamedOptionError
    from vlmrm_core.reward.file import Provenance, with_checkpoint_hash, write_reward_file
    from vlmrm_core.services.reward_resolver import check_model_ref, resolve_reward

    written = export_judge(args)
    if written is not None:  # --judge: a reward file of source judge
        return written
    if args.prompt_set_name is not None:
        if args.prompt_set is not None:
            raise RenamedOptionError("give the prompt set once: PROMPT_SET_NAME or --prompt-set")
        args.prompt_set = args.prompt_set_name
    resolved = resolve_reward(reward_request(args), model_request(args))
    print_overrides(resolved.overrides)
    model = with_checkpoint_hash(resolved.model)
    check_model_ref(model)  # a file that can never load is refused now, not when it is used
    provenance = None
    if resolved.source.kind == "prompt set":
        provenance = Provenance(extra={"prompt_set": resolved.source.name})
    write_reward_file(args.out, model, resolved.reward, provenance)
    print(f"wrote {args.out} ({printable(model.label)}, {resolved.reward.kind.value} reward)")
    return 0


def cmd_reward_import(args: argparse.Namespace) -> int:
    from vlmrm_core.reward.file import read_reward_file
    from vlmrm_core.store import PromptSet, init_db, save_prompt_set

    content = read_reward_file(args.file)
    name = args.name or args.file.stem
    environment = content.provenance.dataset if content.provenance else None
    stored = save_prompt_set(
        init_db(),
        PromptSet(name=name, model=content.model, reward=content.reward, environment=environment),
        overwrite=args.overwrite,
    )
    print(f"saved prompt set {stored.name!r} ({content.model.label}, {content.reward.kind.value})")
    return 0


def cmd_reward_show(args: argparse.Namespace) -> int:
    from vlmrm_core.reward.file import read_reward_data, read_reward_file

    source, data = read_reward_data(args.file)
    if source.name != "clip":
        if args.json:
            print(json.dumps(data, indent=2, ensure_ascii=False))
        elif source.name == "judge":
            from vlmrm_core.cli.judge import describe_judge_file

            print(describe_judge_file(data))
        else:
            print(f"a {printable(source.name)} reward (--json shows its content)")
        return 0
    content = read_reward_file(args.file)
    if args.json:
        print(json.dumps(content.to_dict(), indent=2, ensure_ascii=False))
        return 0
    print(describe_reward(content))
    return 0


def describe_reward(content: Any) -> str:
    """A reward file as a few human-readable lines (for ``vlmrm reward show``)."""
    model, spec, provenance = content.model, content.reward, content.provenance
    lines = [
        f"model      {model.label} (aspect {model.aspect.value}, resize {model.resize.value}, "
        f"{model.precision.value})",
        f"reward     {spec.kind.value}",
    ]
    if model.sha256:
        lines.append(f"checkpoint sha256 {model.sha256}")
    if spec.kind is RewardKind.ADAPTED:
        lines.append(f"weights    {len(spec.weights)} dimensions, bias {spec.bias:.4g}")
    if spec.goal_prompts:
        lines += [f"goal       {p}" for p in spec.goal_prompts]
    lines += [f"baseline   {p}" for p in spec.baseline_prompts]
    lines += [f"negative   {p}" for p in spec.negatives]
    if spec.kind is RewardKind.REGULARIZED:
        lines.append(f"alpha      {spec.alpha:g}")
    if spec.kind is RewardKind.CONTRASTIVE:
        tau = "1/logit_scale" if spec.tau is None else f"{spec.tau:g}"
        lines += [f"tau        {tau}", f"beta       {spec.beta:g}"]
    if spec.window > 1:
        lines.append(f"window     mean of the last {spec.window} frames of an episode")
    if provenance is not None:
        if provenance.dataset:
            lines.append(f"evaluated  on {provenance.dataset} ({provenance.n_labels} labels)")
        if provenance.epic_distance is not None:
            ci = (
                f" (95% CI {provenance.epic_ci[0]:.3f}–{provenance.epic_ci[1]:.3f})"
                if provenance.epic_ci
                else ""
            )
            lines.append(f"EPIC       {provenance.epic_distance:.4f}{ci}")
    lines.append(f"created    {content.created_at} by vlmrm {content.vlmrm_version}")
    return "\n".join(printable(line) for line in lines)


def cmd_reward_list(args: argparse.Namespace) -> int:
    from vlmrm_core.store import init_db, list_prompt_sets

    sets = list_prompt_sets(init_db())
    if not sets:
        print("no prompt sets yet: save one in the Prompt Lab or `vlmrm reward import FILE`")
        return 0
    for prompt_set in sets:
        goal = prompt_set.reward.goal_prompts[0] if prompt_set.reward.goal_prompts else "—"
        columns = (prompt_set.name, prompt_set.model.label, prompt_set.reward.kind.value, goal)
        # Each column escaped on its own: the tabs between them stay tabs.
        print("\t".join(printable(column) for column in columns))
    return 0
