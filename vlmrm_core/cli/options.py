"""The model, reward and judge options of every ``vlmrm`` command: one definition, one meaning.

:func:`add_model_options` and :func:`add_reward_options` add them (same names, defaults and
help on ``score``, ``reward export``, ``adapt``, ``embed``, ``train start`` and ``train
sweep``); :func:`model_request` and :func:`reward_request` read them into the plain requests
:func:`vlmrm_core.services.reward_resolver.resolve_reward` resolves. Options left out are None, so the
resolver can tell "not given" (a saved reward's value applies) from a value.

Old spellings (``--reward-kind``, ``--reward-tau``, ``--reward-beta``, and ``--reward KIND``)
fail with one line naming the new one.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vlmrm_core.enums import Aspect, JudgeMode, Precision, Resize, RewardKind, choices
from vlmrm_core.errors import CliError
from vlmrm_core.judge.prompt import DEFAULT_ANSWERS
from vlmrm_core.services.judge_scores import JudgeRequest
from vlmrm_core.services.reward_resolver import ModelRequest, RewardRequest

PROMPT_KINDS = (RewardKind.REGULARIZED.value, RewardKind.CONTRASTIVE.value)
"""Kinds written as prompts on the command line (an adapted reward comes from `vlmrm adapt`)."""

RENAMED_OPTIONS = {
    "--reward-kind": "--kind",
    "--reward-tau": "--tau",
    "--reward-beta": "--beta",
}
"""Old option → its name now (the old one fails with a message naming the new one)."""


class RenamedOptionError(CliError, ValueError):
    """An option spelled the old way; the message names the new spelling."""


class _Renamed(argparse.Action):
    """A hidden old option: using it fails with the new spelling (exit 1, one line)."""

    def __call__(self, parser: Any, namespace: Any, values: Any, option: Any = None) -> None:
        new = RENAMED_OPTIONS[str(option)]
        raise RenamedOptionError(f"{option} is now {new}: write {new} {values}")


def add_model_options(
    parser: argparse.ArgumentParser | Any,
    *,
    device: bool = True,
    device_dest: str = "device",
) -> None:
    """``--model --pretrained --aspect --resize --precision [--device]`` (all default None:
    a saved reward's model applies, else the defaults named in the help)."""
    group = parser.add_argument_group("model (a prompt set or reward file brings its own)")
    group.add_argument("--model", help="open_clip architecture, e.g. ViT-B-32 (with --pretrained)")
    group.add_argument(
        "--pretrained",
        help="open_clip tag (e.g. laion2b_s34b_b79k), a checkpoint file, or 'random' "
        "(untrained: rewards are meaningless). Default: the best model available locally",
    )
    group.add_argument(
        "--aspect",
        choices=choices(Aspect),
        help="squash (default): resize the whole frame to the square input (the paper's "
        "choice); center-crop: shorter side to the input size, then cut the centre square",
    )
    group.add_argument(
        "--resize",
        choices=choices(Resize),
        help="antialias (default): antialiased bicubic on uint8; paper: the official VLM-RM "
        "transform exactly (bicubic on floats without antialiasing, OpenAI mean/std)",
    )
    group.add_argument(
        "--precision",
        choices=choices(Precision),
        help="weights precision; auto: bf16 or fp16 on a GPU, fp32 on a CPU. Default: fp32 "
        "(a saved reward's own; training runs: auto). A runtime choice: it also applies to a "
        "prompt set or reward file",
    )
    if device:
        group.add_argument(
            "--device", dest=device_dest, help="cuda or cpu (default: cuda if available)"
        )


def add_reward_options(parser: argparse.ArgumentParser | Any, *, grid: bool = False) -> None:
    """``--prompt-set --reward --goal --baseline --negative --kind --alpha --beta --tau``.

    Args:
        parser: the command's parser.
        grid: a sweep: ``--prompt-set``, ``--reward`` and ``--alpha`` are repeatable (one trial
            group per value) and land in ``prompt_sets``, ``reward_files`` and ``alphas``.
    """
    group = parser.add_argument_group(
        "reward (one of --prompt-set NAME, --reward FILE or --goal prompts)"
    )
    repeat = " (repeatable: one grid point each)" if grid else ""
    many: dict[str, Any] = {"action": "append", "default": []} if grid else {}
    group.add_argument(
        "--prompt-set",
        dest="prompt_sets" if grid else "prompt_set",
        metavar="NAME",
        help=f"a saved prompt set (its model and reward){repeat}",
        **many,
    )
    group.add_argument(
        "--reward",
        dest="reward_files" if grid else "reward",
        metavar="FILE",
        help=f"a reward file (`vlmrm reward export`, `vlmrm adapt`, the app){repeat}",
        **many,
    )
    group.add_argument("--goal", action="append", help="goal prompt (repeatable)")
    group.add_argument(
        "--baseline", action="append", help="baseline prompt (repeatable; regularized)"
    )
    group.add_argument(
        "--negative", action="append", help="negative prompt (repeatable; contrastive)"
    )
    group.add_argument(
        "--kind",
        choices=PROMPT_KINDS,
        help="reward kind of --goal prompts (default regularized)",
    )
    group.add_argument(
        "--alpha",
        dest="alphas" if grid else "alpha",
        type=float,
        help="regularisation strength in [0, 1] (regularized; default 0, or the saved "
        f"reward's){repeat}",
        **many,
    )
    group.add_argument(
        "--beta",
        type=float,
        help="probability threshold (contrastive; default 0.5, or the saved reward's)",
    )
    group.add_argument(
        "--tau",
        type=float,
        help="softmax temperature (contrastive; default 1/logit_scale, or the saved reward's)",
    )
    group.add_argument(
        "--window",
        type=positive_int,
        metavar="K",
        help="score each frame on the mean embedding of the last K frames of its episode "
        "(default 1: each frame alone, or the saved reward's)",
    )
    for old in RENAMED_OPTIONS:
        group.add_argument(old, action=_Renamed, help=argparse.SUPPRESS)


def add_judge_options(parser: argparse.ArgumentParser | Any) -> None:
    """``--judge --question --answers --mode --frames``: a VLM judge instead of CLIP prompts
    (:func:`judge_request` reads them and refuses CLIP reward options beside ``--judge``)."""
    group = parser.add_argument_group(
        "judge (a VLM asked a yes/no question, instead of CLIP prompts)"
    )
    group.add_argument(
        "--judge",
        metavar="MODEL",
        help="a Hugging Face image-text-to-text model: hub id (e.g. "
        "HuggingFaceTB/SmolVLM-256M-Instruct; `vlmrm models download HF_ID` fetches it) or a "
        "local model folder",
    )
    group.add_argument("--question", help="the yes/no question asked about each frame")
    group.add_argument(
        "--answers",
        metavar="POSITIVE,NEGATIVE",
        help="the two one-token answers, positive first (default yes,no)",
    )
    group.add_argument(
        "--mode",
        choices=choices(JudgeMode),
        help="log-odds (default): log P(positive) - log P(negative); probability: P(positive)",
    )
    group.add_argument(
        "--frames",
        type=positive_int,
        metavar="K",
        help="frames per question: each reward judges a frame with the K-1 before it in its "
        "episode (default 1: each frame alone)",
    )


JUDGE_DETAILS = ("--question", "--answers", "--mode", "--frames")
"""Options that describe a judge (they need ``--judge``)."""

CLIP_REWARD_OPTIONS = {
    "prompt_set": "--prompt-set",
    "prompt_sets": "--prompt-set",
    "reward": "--reward",
    "reward_files": "--reward",
    "goal": "--goal",
    "baseline": "--baseline",
    "negative": "--negative",
    "kind": "--kind",
    "alpha": "--alpha",
    "alphas": "--alpha",
    "beta": "--beta",
    "tau": "--tau",
    "window": "--window",
    "model": "--model",
    "pretrained": "--pretrained",
    "aspect": "--aspect",
    "resize": "--resize",
}
"""Parsed-argument name → option, of the options that describe a CLIP reward or model."""


def clip_options_given(args: argparse.Namespace) -> list[str]:
    """The CLIP reward and model options given on the command line, in a fixed order."""
    given = [
        option
        for name, option in CLIP_REWARD_OPTIONS.items()
        if getattr(args, name, None) not in (None, [], ())
    ]
    return list(dict.fromkeys(given))


def refuse_clip_options(
    args: argparse.Namespace, reward: str, *, allow: Sequence[str] = ()
) -> None:
    """Refuse CLIP reward and model options next to another kind of reward.

    Args:
        args: the parsed arguments.
        reward: what names the reward, for the message (e.g. ``--judge``).
        allow: options that are fine here (e.g. ``--reward`` when the judge comes from it).

    Raises:
        CliError: one line naming the conflicting option and the fix.
    """
    conflicts = [option for option in clip_options_given(args) if option not in allow]
    if conflicts:
        raise CliError(
            f"{reward} and {conflicts[0]} conflict: {conflicts[0]} describes a CLIP reward, and "
            f"a judge is asked a question instead: drop {conflicts[0]}"
        )


def judge_request(args: argparse.Namespace) -> JudgeRequest | None:
    """The judge options of parsed arguments, or None when ``--judge`` is not given.

    Raises:
        CliError: ``--judge`` beside CLIP reward or model options, a judge option without
            ``--judge``, no ``--question``, or ``--answers`` that are not two.
    """
    judge = getattr(args, "judge", None)
    given = {
        "--question": getattr(args, "question", None),
        "--answers": getattr(args, "answers", None),
        "--mode": getattr(args, "mode", None),
        "--frames": getattr(args, "frames", None),
    }
    if judge is None:
        stray = [option for option, value in given.items() if value is not None]
        if stray:
            raise CliError(f"{stray[0]} needs --judge MODEL (the VLM that answers it)")
        return None
    refuse_clip_options(args, f"--judge {judge}")
    question = given["--question"]
    if question is None or not str(question).strip():
        raise CliError(
            "--judge needs --question: a yes/no question about the frames, e.g. --question "
            "'Is the pole balanced upright on the cart? Answer yes or no.'"
        )
    answers: tuple[str, str] = DEFAULT_ANSWERS
    if args.answers is not None:
        parts = [part.strip() for part in str(args.answers).split(",")]
        if len(parts) != 2 or not all(parts):
            raise CliError(
                f"--answers takes two answers separated by a comma, positive first (e.g. "
                f"yes,no), not {args.answers!r}"
            )
        answers = (parts[0], parts[1])
    return JudgeRequest(
        model=str(judge),
        question=str(question),
        answers=answers,
        mode=JudgeMode(args.mode or JudgeMode.LOG_ODDS),
        frames=int(args.frames or 1),
        precision=Precision(getattr(args, "precision", None) or Precision.AUTO),
    )


def positive_int(text: str) -> int:
    """argparse type: a whole number ≥ 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def non_negative_int(text: str) -> int:
    """argparse type: a whole number ≥ 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be at least 0, got {value}")
    return value


def bootstrap_resamples(text: str) -> int:
    """argparse type of ``--bootstrap``: 0 (no interval) or enough resamples for one."""
    from vlmrm_core.metrics.epic import MIN_BOOTSTRAP_RESAMPLES

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value != 0 and value < MIN_BOOTSTRAP_RESAMPLES:
        raise argparse.ArgumentTypeError(
            f"must be 0 (no interval) or at least {MIN_BOOTSTRAP_RESAMPLES}, got {value}"
        )
    return value


def model_request(args: argparse.Namespace) -> ModelRequest:
    """The model options of parsed arguments."""
    return ModelRequest(
        architecture=getattr(args, "model", None),
        pretrained=getattr(args, "pretrained", None),
        aspect=getattr(args, "aspect", None),
        resize=getattr(args, "resize", None),
        precision=getattr(args, "precision", None),
    )


def reward_file_path(value: str | None) -> Path | None:
    """``--reward VALUE`` as a reward file path; a kind name is the old spelling (an error)."""
    if value is None:
        return None
    path = Path(value)
    if value in choices(RewardKind) and not path.exists():
        raise RenamedOptionError(
            f"--reward takes a reward file now; the reward kind is --kind: write --kind {value}"
        )
    return path


def reward_request(
    args: argparse.Namespace,
    *,
    prompt_set: str | None = None,
    reward_file: str | None = None,
    alpha: float | None = None,
) -> RewardRequest:
    """The reward options of parsed arguments (a sweep passes one grid source at a time)."""
    if not hasattr(args, "prompt_sets"):
        prompt_set = getattr(args, "prompt_set", None)
        reward_file = getattr(args, "reward", None)
        alpha = getattr(args, "alpha", None)
    kind = getattr(args, "kind", None)
    return RewardRequest(
        prompt_set=prompt_set,
        reward_file=reward_file_path(reward_file),
        goal=tuple(getattr(args, "goal", None) or ()),
        baseline=tuple(getattr(args, "baseline", None) or ()),
        negatives=tuple(getattr(args, "negative", None) or ()),
        kind=None if kind is None else RewardKind(kind),
        alpha=alpha,
        beta=getattr(args, "beta", None),
        tau=getattr(args, "tau", None),
        window=getattr(args, "window", None),
    )


def grid_sources(args: argparse.Namespace) -> list[dict[str, Any]]:
    """A sweep's reward sources, one keyword set of :func:`reward_request` each (one empty set
    for prompts or defaults)."""
    sources: list[dict[str, Any]] = [
        {"prompt_set": name} for name in dict.fromkeys(args.prompt_sets)
    ]
    sources += [{"reward_file": path} for path in dict.fromkeys(args.reward_files)]
    return sources or [{}]


def print_overrides(overrides: Sequence[str]) -> None:
    """Say on stderr which stored values an option replaced (stdout stays for results)."""
    import sys

    from vlmrm_core.terminal import printable

    for line in overrides:
        print(f"vlmrm: note: {printable(line)}", file=sys.stderr)
