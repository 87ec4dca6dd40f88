"""VLM judges on the command line: ``vlmrm score --judge``, ``vlmrm reward export --judge``,
and judges in ``vlmrm models``.

The options themselves are defined once in :mod:`vlmrm_core.cli.options`
(:func:`~vlmrm_core.cli.options.add_judge_options`); a judge reward file (``--reward FILE`` of
source ``judge``) is the same judge, saved.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vlmrm_core.cli.options import judge_request, refuse_clip_options, reward_file_path
from vlmrm_core.errors import CliError
from vlmrm_core.terminal import printable

if TYPE_CHECKING:
    from vlmrm_core.judge import JudgeReward
    from vlmrm_core.store import Engine


def judge_from_args(args: argparse.Namespace, *, device: str | None) -> JudgeReward | None:
    """The judge a command's options name: ``--judge MODEL --question Q …``, or ``--reward
    FILE`` of a judge reward file; None for a CLIP reward. Vision features go to the
    persistent feature cache, so re-scoring the same frames runs only the language model.

    Raises:
        CliError: a judge beside CLIP reward options, or a reward file of another source.
        ModelError, AnswerError: the judge cannot be loaded or asked.
    """
    from vlmrm_core.services.judge_scores import load_judge_reward

    batch_size = getattr(args, "batch_size", None)
    request = judge_request(args)
    if request is not None:
        return load_judge_reward(request, device=device, batch_size=batch_size)
    path = reward_file_path(getattr(args, "reward", None))
    if path is None:
        return None
    from vlmrm_core.reward.file import read_reward_data

    source, data = read_reward_data(path)
    if source.name == "clip":
        return None
    refuse_clip_options(args, f"--reward {path} (a {source.name} reward)", allow=("--reward",))
    if source.name != "judge":
        raise CliError(
            f"reward file {path} holds a {source.name!r} reward, which this command cannot "
            "score: load it with vlmrm_core.load_reward in Python"
        )
    from vlmrm_core.judge import JudgeReward, default_feature_cache

    reward = JudgeReward.from_reward_file(
        data,
        path,
        device,
        precision=getattr(args, "precision", None),
        cache=default_feature_cache(),
    )
    if batch_size is not None:
        reward.batch_size = batch_size
    return reward


def score_with_judge(args: argparse.Namespace, engine: Engine, reward: JudgeReward) -> int:
    """``vlmrm score`` with a judge: one CSV row per frame (columns ``frame,reward``)."""
    from vlmrm_core.cli.common import file_items, progress_bar, write_scores_csv
    from vlmrm_core.services.judge_scores import score_dataset, score_items
    from vlmrm_core.store import NotFoundError

    print(f"vlmrm: {printable(reward.description)}", file=sys.stderr)
    names: list[str] = []
    if args.dataset:
        with progress_bar(None, "judging") as progress:
            try:
                scores = score_dataset(engine, args.dataset, reward, progress=progress)
            except NotFoundError:
                raise CliError(
                    f"no dataset named {args.dataset!r}: `vlmrm frames list` shows them"
                ) from None
        names = [f.name or f.hash for f in scores.frames]
        rewards = scores.rewards
    else:
        with progress_bar(None, "judging") as progress:
            rewards = score_items(reward, file_items(args.inputs, names), progress=progress)
    from vlmrm_core.cli.episodes import write_scores

    # CSV, or a .parquet keyed by episode and frame
    write_scores(args, engine, reward, names, rewards, write_csv=write_scores_csv)
    if reward.untrained:
        print(
            "vlmrm: warning: untrained (random) judge weights: these rewards are meaningless",
            file=sys.stderr,
        )
    return 0


def export_judge(args: argparse.Namespace) -> int | None:
    """``vlmrm reward export --judge …``: load the judge (which checks the answers are one
    token each) and write it as a reward file of source ``judge``; None without ``--judge``."""
    from vlmrm_core.reward.file import save_reward
    from vlmrm_core.services.judge_scores import load_judge_reward

    request = judge_request(args)
    if request is None:
        return None
    if getattr(args, "prompt_set_name", None) is not None:
        raise CliError(
            f"--judge and the prompt set {args.prompt_set_name!r} both name the reward: "
            "give one of the two"
        )
    # On the CPU: exporting only needs the tokenizer's answers and the model's identity.
    reward = load_judge_reward(request, device="cpu")
    save_reward(args.out, reward)
    note = " (random weights: rewards are meaningless)" if reward.untrained else ""
    print(
        f"wrote {args.out} (judge {printable(reward.judge.label)}, "
        f"{printable('/'.join(reward.answers))}, {reward.mode.value}){note}"
    )
    return 0


def describe_judge_file(data: dict[str, Any]) -> str:
    """A judge reward file as a few human-readable lines (for ``vlmrm reward show``)."""
    model, judge = data.get("model") or {}, data.get("judge") or {}
    where = model.get("hf_id") or model.get("path")
    revision = f"@{model['revision']}" if model.get("revision") and model.get("hf_id") else ""
    lines = [
        f"judge      {where}{revision} ({model.get('precision', 'auto')})",
        f"question   {judge.get('question')}",
        f"answers    {'/'.join(str(a) for a in judge.get('answers', ('yes', 'no')))}",
        f"mode       {judge.get('mode', 'log-odds')}",
        f"frames     {judge.get('frames', 1)} per question",
    ]
    if model.get("sha256"):
        lines.append(f"folder sha256 {model['sha256']}")
    lines.append(f"created    {data.get('created_at')} by vlmrm {data.get('vlmrm_version')}")
    return "\n".join(printable(line) for line in lines)


def print_cached_judges() -> int:
    """List the judges usable offline (``vlmrm models``); returns how many."""
    from vlmrm_core.judge import list_cached_judges

    judges = list_cached_judges()
    for choice in judges:
        # Three columns like the CLIP lines: model, what it is, where it is.
        print(f"{printable(choice.name)}\tjudge:{choice.model_type}\t{choice.kind}")
    return len(judges)


def download_judge_model(hf_id: str) -> int:
    """``vlmrm models download HF_ID``: fetch a judge's files into the Hugging Face cache."""
    from vlmrm_core.judge import download_judge

    folder = download_judge(hf_id)  # refuses a model that is not image-text-to-text
    print(
        f"judge {printable(hf_id)} is ready (a Hugging Face image-text-to-text model, in {folder})"
    )
    return 0


def is_hub_id(name: str) -> bool:
    """True for ``owner/name`` (a Hugging Face hub id) rather than an open_clip architecture."""
    parts = name.split("/")
    return len(parts) == 2 and all(parts) and not Path(name).exists()
