"""``vlmrm reward ...``: reward files in and out of the project, and the reward options every
command shares (``--goal``, ``--baseline``, ``--alpha``, ``--reward``, ``--negative``, ...).

``--reward`` takes a reward kind (``regularized``, ``contrastive``) or the path of a reward file,
so ``vlmrm score --reward cartpole.json shots/`` and ``vlmrm score --reward contrastive ...``
both read naturally.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from vlmrm_core.enums import Aspect, Precision, Resize, RewardKind, choices
from vlmrm_core.errors import VlmrmError
from vlmrm_core.terminal import printable

TYPED_KINDS = (RewardKind.REGULARIZED.value, RewardKind.CONTRASTIVE.value)
"""Kinds written as prompts on the command line (an adapted reward comes from `vlmrm adapt`)."""


class RewardCliError(VlmrmError, ValueError):
    """Reward options that do not fit together; the message says what to change."""


def add_reward_arguments(p: argparse.ArgumentParser) -> None:
    """The reward options: prompts and parameters, or ``--reward FILE.json``."""
    group = p.add_argument_group("reward (prompts, or --reward FILE.json)")
    group.add_argument("--goal", action="append", help="goal prompt (repeatable)")
    group.add_argument("--baseline", action="append", help="baseline prompt (repeatable)")
    group.add_argument("--alpha", type=float, help="regularisation strength in [0, 1] (default 0)")
    group.add_argument(
        "--reward",
        metavar="KIND|FILE",
        help=f"reward kind ({', '.join(TYPED_KINDS)}; default regularized) or a reward file "
        "exported from the studio (then no prompt options)",
    )
    group.add_argument("--negative", action="append", help="negative prompt (contrastive)")
    group.add_argument("--tau", type=float, help="temperature (default 1/logit_scale)")
    group.add_argument("--beta", type=float, help="probability threshold (contrastive, 0.5)")


def add_model_ref_arguments(p: argparse.ArgumentParser, *, default_model: str | None) -> None:
    """``--model/--pretrained/--aspect/--resize/--precision``."""
    p.add_argument("--model", default=default_model, help="open_clip architecture, e.g. ViT-B-32")
    p.add_argument(
        "--pretrained",
        help="open_clip tag (e.g. laion2b_s34b_b79k), a checkpoint file, or 'random'",
    )
    p.add_argument("--aspect", default=Aspect.SQUASH.value, choices=choices(Aspect))
    p.add_argument("--resize", default=Resize.ANTIALIAS.value, choices=choices(Resize))
    p.add_argument("--precision", default=Precision.FP32.value, choices=choices(Precision))


def reward_file_arg(args: argparse.Namespace) -> Path | None:
    """The reward file named by ``--reward``, or None when it names a kind (or is unset)."""
    value = getattr(args, "reward", None)
    if value is None or value in choices(RewardKind):
        return None
    path = Path(value)
    if path.suffix.lower() != ".json" and not path.exists():
        raise RewardCliError(
            f"--reward {value!r} is neither a reward kind ({', '.join(TYPED_KINDS)}) nor a "
            "reward file (.json)"
        )
    return path


def reward_spec_from_args(args: argparse.Namespace, *, required: bool = True) -> Any:
    """The :class:`RewardSpec` the prompt options describe (None if no --goal and not required).

    Raises:
        RewardCliError: prompt options together with a reward file, or no goal prompt.
        SpecError: invalid values (the message names them).
    """
    from vlmrm_core.reward.spec import RewardSpec

    prompt_options = [
        name
        for name in ("goal", "baseline", "negative", "alpha", "tau", "beta")
        if getattr(args, name, None) is not None
    ]
    if reward_file_arg(args) is not None:
        if prompt_options:
            raise RewardCliError(
                f"--reward FILE already defines the reward: drop --{prompt_options[0]}"
            )
        return None
    if not args.goal:
        if required:
            raise RewardCliError("give at least one --goal prompt, or --reward FILE.json")
        return None
    if args.reward == RewardKind.ADAPTED:
        raise RewardCliError("an adapted reward is fitted to labels: use `vlmrm adapt`")
    return RewardSpec(
        goal_prompts=tuple(args.goal),
        baseline_prompts=tuple(args.baseline or ()),
        alpha=0.0 if args.alpha is None else args.alpha,
        kind=args.reward or RewardKind.REGULARIZED,
        negatives=tuple(args.negative or ()),
        tau=args.tau,
        beta=0.5 if args.beta is None else args.beta,
    )


def model_ref_from_args(args: argparse.Namespace) -> Any:
    """The :class:`ModelRef` of ``--model/--pretrained/...`` (checkpoints with their SHA-256)."""
    from vlmrm_core.reward.file import with_checkpoint_hash
    from vlmrm_core.reward.spec import ModelRef

    if args.pretrained is None:
        raise RewardCliError(
            "give --pretrained: an open_clip tag (e.g. laion2b_s34b_b79k), a checkpoint file, "
            "or 'random' for untrained weights"
        )
    ref = ModelRef(
        args.model,
        args.pretrained,
        aspect=args.aspect,
        precision=args.precision,
        resize=args.resize,
    )
    return with_checkpoint_hash(ref)


# --------------------------------------------------------------------------- vlmrm reward


def add_reward_commands(sub: Any) -> None:
    """``vlmrm reward export|import|show|list``."""
    p = sub.add_parser("reward", help="reward files: export, import, show, list prompt sets")
    commands = p.add_subparsers(title="reward commands", metavar="COMMAND")

    export = commands.add_parser(
        "export",
        help="write a saved prompt set (or prompts given here) as a reward file",
        description="A reward file holds the model reference and the reward; load it in any "
        "training script with vlmrm_core.load_reward(path).",
    )
    export.add_argument("prompt_set", nargs="?", metavar="PROMPT_SET_NAME")
    add_model_ref_arguments(export, default_model="ViT-B-32")
    add_reward_arguments(export)
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
    from vlmrm_core.reward.file import Provenance, with_checkpoint_hash, write_reward_file
    from vlmrm_core.store import get_prompt_set, init_db

    if args.prompt_set is not None:
        given = [n for n in ("goal", "baseline", "negative", "alpha") if getattr(args, n)]
        if given or args.pretrained is not None:
            raise RewardCliError(
                "a prompt set already defines the model and reward: give either "
                "PROMPT_SET_NAME or --pretrained/--goal options, not both"
            )
        saved = get_prompt_set(init_db(), args.prompt_set)
        model, spec = with_checkpoint_hash(saved.model), saved.reward
        provenance = Provenance(extra={"prompt_set": saved.name})
    else:
        if reward_file_arg(args) is not None:
            raise RewardCliError("--reward names a kind here (regularized or contrastive)")
        model, spec = model_ref_from_args(args), reward_spec_from_args(args)
        provenance = None
    write_reward_file(args.out, model, spec, provenance)
    print(f"wrote {args.out} ({model.label}, {spec.kind.value} reward)")
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
    from vlmrm_core.reward.file import read_reward_file

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
        line = (
            f"{prompt_set.name}\t{prompt_set.model.label}\t{prompt_set.reward.kind.value}\t{goal}"
        )
        print(printable(line))
    return 0
