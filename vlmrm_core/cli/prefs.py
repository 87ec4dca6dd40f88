"""``vlmrm prefs import|export`` and ``vlmrm adapt --preferences``: pairwise comparisons.

``prefs import FILE.csv --dataset D --labeler NAME`` stores one comparison per row (columns
``frame_a,frame_b,choice``; ``choice`` is ``a``, ``b`` or ``equal``; frames named as for ``vlmrm
labels import``; optional ``length`` > 1 compares two clips of that many consecutive frames of
an episode starting at the two frames, placed by ``episode_a,step_a,episode_b,step_b`` when
given). ``prefs export --dataset D --out FILE [--format csv|jsonl|trl]`` writes the
current comparisons, or TRL's prompt / chosen / rejected layout. ``adapt --preferences`` fits the
Bradley–Terry reward (:mod:`vlmrm_core.reward.adaptation`) to the dataset's comparisons instead
of its labels. ``prefs judge --dataset D --judge MODEL`` has a VLM judge answer the pairwise
question and stores its answers under a machine labeller (``judge:…``); export and adapt leave
machine labellers out unless given ``--include-machine``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from vlmrm_core.errors import CliError
from vlmrm_core.plain_json import to_plain_json


def add_prefs_commands(sub: Any) -> None:
    """Register ``prefs import`` and ``prefs export`` on the ``vlmrm`` sub-parsers."""
    from vlmrm_core.enums import Precision, choices
    from vlmrm_core.services.preferences import (
        DEFAULT_JUDGE_MARGIN,
        EXPORT_FORMATS,
        JUDGE_PAIR_QUESTION,
        JUDGE_TIES,
    )

    prefs = sub.add_parser("prefs", help="import or export pairwise comparisons of frames")
    psub = prefs.add_subparsers(title="prefs commands", metavar="COMMAND")
    imp = psub.add_parser(
        "import",
        help="store comparisons from a CSV with columns frame_a,frame_b,choice",
        description="frame_a, frame_b: frames named as `vlmrm score --dataset` writes them (a "
        "unique end of a name, or the pixel hash); choice: a (frame_a is closer to the goal), "
        "b, or equal. Clips (optional columns): length, the frames per side (empty or 1: two "
        "frames; k >= 2: two clips of k consecutive frames of an episode, starting at frame_a "
        "and frame_b, compared by the sum of their frames' rewards); episode_a, step_a, "
        "episode_b, step_b: where each clip starts, when its first frame's pixels occur more "
        "than once (`prefs export` writes them).",
    )
    imp.add_argument("file", type=Path, metavar="FILE.csv")
    imp.add_argument("--dataset", required=True)
    imp.add_argument("--labeler", required=True, help="whose comparisons these are")
    imp.set_defaults(handler=cmd_prefs_import)

    exp = psub.add_parser(
        "export",
        help="write a dataset's current comparisons",
        description="csv / jsonl: one row per labeller and pair (dataset, frame_a, frame_b, "
        "name_a, name_b, labeler, choice, task, created_at, and length, episode_a, step_a, "
        "episode_b, step_b for clips: frame_a/frame_b are then the clips' first frames); "
        "trl: JSONL rows with prompt, chosen and rejected (the frames' PNG files), as TRL's "
        "preference datasets (equal answers and clips left out).",
    )
    exp.add_argument("--dataset", required=True)
    exp.add_argument("--out", type=Path, required=True, help="file to write")
    exp.add_argument("--format", choices=EXPORT_FORMATS, default=None, help="default: by suffix")
    exp.add_argument("--prompt", default=None, help="the prompt of trl rows (the task question)")
    _add_include_machine(exp)
    exp.set_defaults(handler=cmd_prefs_export)

    jud = psub.add_parser(
        "judge",
        help="have a VLM judge answer the pairwise question, stored as a machine labeller",
        description="Each pair is asked in both orders (two images, answers 1 or 2) and the two "
        "log-odds averaged, which cancels the judge's preference for a position; a pair whose "
        "|log-odds| is below --margin is left unanswered (or stored as equal with --ties "
        "equal). The pairs asked: every pair people compared, then --pairs random ones. The "
        "answers are stored under the labeller judge:<model>#<hash>, kept out of people's "
        "comparisons (export and adapt take --include-machine); the agreement with people is "
        "printed when they compared some of the same pairs.",
    )
    jud.add_argument("--dataset", required=True)
    jud.add_argument(
        "--judge",
        required=True,
        metavar="MODEL",
        help="a Hugging Face image-text-to-text model: hub id or local model folder",
    )
    jud.add_argument(
        "--question",
        default=JUDGE_PAIR_QUESTION,
        help=f"the pairwise question (default: {JUDGE_PAIR_QUESTION!r})",
    )
    jud.add_argument(
        "--pairs", type=int, default=50, metavar="N", help="random pairs to ask (default 50)"
    )
    jud.add_argument(
        "--margin",
        type=float,
        default=DEFAULT_JUDGE_MARGIN,
        help=f"log-odds below which the judge is undecided (default {DEFAULT_JUDGE_MARGIN})",
    )
    jud.add_argument("--ties", choices=JUDGE_TIES, default="skip", help="undecided pairs")
    jud.add_argument("--seed", type=int, default=0, help="seed of the random pairs")
    jud.add_argument("--device", default=None, help="torch device (default: cuda if available)")
    jud.add_argument("--precision", choices=choices(Precision), default=Precision.AUTO.value)
    jud.set_defaults(handler=cmd_prefs_judge)
    prefs.set_defaults(handler=lambda _args: prefs.print_help() or 2)


def _add_include_machine(parser: Any) -> None:
    parser.add_argument(
        "--include-machine",
        action="store_true",
        help="also use machine labellers' comparisons (a judge's, `vlmrm prefs judge`)",
    )


def add_preferences_option(parser: argparse.ArgumentParser) -> None:
    """``--preferences [LABELERS]`` and ``--include-machine`` of ``vlmrm adapt``."""
    parser.add_argument(
        "--preferences",
        nargs="?",
        const="",
        default=None,
        metavar="LABELERS",
        help="fit a Bradley–Terry reward to the dataset's pairwise comparisons instead of its "
        "labels (every person's, or those of the comma-separated labellers given)",
    )
    _add_include_machine(parser)


def cmd_prefs_import(args: argparse.Namespace) -> int:
    from vlmrm_core.services.labeling import check_labeler_name
    from vlmrm_core.services.preferences import import_preferences
    from vlmrm_core.store import init_db

    labeler = check_labeler_name(args.labeler)
    engine = init_db()
    n = import_preferences(engine, args.dataset, args.file, labeler)
    print(f"{args.dataset}: stored {n} comparisons by {labeler}")
    return 0


def _export_format(out: Path, fmt: str | None) -> str:
    if fmt is not None:
        return fmt
    suffix = out.suffix.lower().lstrip(".")
    if suffix in ("csv", "jsonl"):
        return suffix
    raise CliError(f"can't tell the format of {out.name!r}: add --format csv, jsonl or trl")


def cmd_prefs_export(args: argparse.Namespace) -> int:
    from vlmrm_core.services.preferences import export_preferences
    from vlmrm_core.store import get_dataset, init_db

    engine = init_db()
    get_dataset(engine, args.dataset)  # NotFoundError names the dataset
    fmt = _export_format(args.out, args.format)
    path = export_preferences(
        engine,
        args.dataset,
        args.out,
        fmt,
        prompt=args.prompt,
        include_machine=args.include_machine,
    )
    print(f"wrote {args.dataset}'s comparisons to {path} ({fmt})")
    return 0


def cmd_prefs_judge(args: argparse.Namespace) -> int:
    """``vlmrm prefs judge``: pre-fill a dataset's comparisons with a VLM judge's answers."""
    from vlmrm_core.cli.common import progress_bar
    from vlmrm_core.judge import JudgeReward, default_feature_cache, load_judge
    from vlmrm_core.services.preferences import (
        JUDGE_PAIR_ANSWERS,
        candidate_pairs,
        judge_agreement,
        judge_preferences,
    )
    from vlmrm_core.store import get_dataset, init_db
    from vlmrm_core.store.comparisons import current_comparisons, people_only
    from vlmrm_core.terminal import printable

    if args.pairs < 0:
        raise CliError(f"--pairs must be 0 or more, got {args.pairs}")
    if not args.margin >= 0:
        raise CliError(f"--margin must be 0 or more (log-odds), got {args.margin}")
    engine = init_db()
    get_dataset(engine, args.dataset)  # NotFoundError names the dataset
    people = people_only(current_comparisons(engine, args.dataset))
    # People's pairs first, so the judge's agreement with them can be measured.
    pairs = list(zip(people["frame_a"], people["frame_b"], strict=True))
    pairs += candidate_pairs(engine, args.dataset, args.pairs, seed=args.seed)
    seen: set[tuple[str, str]] = set()
    unique = []
    for a, b in pairs:
        key = (a, b) if a <= b else (b, a)
        if key not in seen:
            seen.add(key)
            unique.append((a, b))
    model = load_judge(args.judge, device=args.device, precision=args.precision)
    reward = JudgeReward(
        model, args.question, JUDGE_PAIR_ANSWERS, frames=2, cache=default_feature_cache()
    )
    print(f"vlmrm: {printable(reward.description)}", file=sys.stderr)
    with progress_bar(len(unique), "judging pairs") as progress:
        result = judge_preferences(
            engine,
            args.dataset,
            reward,
            unique,
            question=args.question,
            margin=args.margin,
            ties=args.ties,
            progress=progress,
        )
    undecided = sum(p.choice is None for p in result.pairs)
    print(
        f"{args.dataset}: judged {len(result.pairs)} pairs in both orders "
        f"({result.n_already} answered before), stored {result.n_stored} comparisons by "
        f"{printable(result.labeler)}, {undecided} undecided (|log-odds| < {result.margin:g})"
    )
    if people.empty:
        print("no comparisons by people yet: nothing to measure the judge's agreement against")
        return 0
    report = judge_agreement(engine, args.dataset, result.labeler)
    if report.n_pairs == 0:
        print("the judge and people answered no pair in common")
        return 0
    print(
        f"agreement with people on {report.n_pairs} pairs ({report.n_answers} answers): "
        f"{_fmt(report.percent_agreement)} agree, Krippendorff's alpha {_fmt(report.alpha)} "
        f"({report.alpha_note})"
    )
    for person, agreement in report.per_person.items():
        print(
            f"  {printable(person)}: {_fmt(agreement.percent_agreement)} agree on "
            f"{agreement.n_shared} pairs, alpha {_fmt(agreement.alpha)}"
        )
    return 0


def _accuracy_json(accuracy: Any) -> dict[str, Any]:
    return {
        "pair_accuracy": accuracy.accuracy,
        "ci_low": accuracy.ci_low,
        "ci_high": accuracy.ci_high,
        "n_pairs": accuracy.n_pairs,
        "n_equal": accuracy.n_equal,
    }


def cmd_adapt_preferences(args: argparse.Namespace) -> int:
    """``vlmrm adapt --preferences``: the Bradley–Terry reward of the dataset's comparisons.

    With ``--json`` the last stdout line is one JSON object: ``zero_shot`` and ``adapted`` (and
    ``probe``) with ``pair_accuracy``, ``ci_low``, ``ci_high`` (held out), ``n_pairs`` (all
    comparisons), ``n_held_out``, ``folds``, ``lambda`` (null: infinite), ``out``.
    """
    from vlmrm_core.cli.options import model_request, print_overrides, reward_request
    from vlmrm_core.reward.file import with_checkpoint_hash, write_reward_file
    from vlmrm_core.services.preferences import fit_preference_reward
    from vlmrm_core.services.reward_resolver import resolve_reward
    from vlmrm_core.store import init_db

    if args.folds < 2:
        raise CliError(f"--folds must be at least 2, got {args.folds}")
    labelers = [n.strip() for n in args.preferences.split(",") if n.strip()] or None
    engine = init_db()
    resolved = resolve_reward(reward_request(args), model_request(args), engine=engine)
    print_overrides(resolved.overrides)
    ref, spec, start = resolved.model, resolved.reward, resolved.source.description
    fit = fit_preference_reward(
        engine,
        args.dataset,
        ref,
        spec,
        started_from=start,
        labelers=labelers,
        include_machine=bool(getattr(args, "include_machine", False)),
        device=args.device,
        folds=args.folds,
        n_boot=args.bootstrap,
        seed=args.seed,
    )
    write_reward_file(args.out, with_checkpoint_hash(ref), fit.spec, fit.provenance)
    report = fit.report
    table = sys.stderr if args.json else sys.stdout
    print(
        f"{args.dataset}: {report.n_pairs} comparisons of {len(fit.data.hashes)} frames, "
        f"{report.n_held_out} held out over {report.folds} folds of frame groups, starting "
        f"from {start}",
        file=table,
    )
    print(f"{'reward':12s} {'pair acc.':>9s} {'95% CI':>15s} {'pairs':>6s}", file=table)
    for name, acc in (
        ("zero-shot", report.zero_shot),
        ("adapted", report.adapted),
        ("plain probe", report.probe),
    ):
        print(
            f"{name:12s} {_fmt(acc.accuracy):>9s} "
            f"{_fmt(acc.ci_low) + '–' + _fmt(acc.ci_high):>15s} {acc.n_pairs:>6d}",
            file=table,
        )
    for note in report.notes:
        print(f"note: {note}", file=table)
    print(f"wrote the Bradley–Terry reward to {args.out}", file=sys.stderr)
    if args.json:
        data = {
            "n_pairs": report.n_pairs,
            "n_held_out": report.n_held_out,
            "folds": report.folds,
            "zero_shot": _accuracy_json(report.zero_shot),
            "adapted": _accuracy_json(report.adapted),
            "probe": _accuracy_json(report.probe),
            "lambda": report.fit.lam,
            "prior_scale": report.fit.scale,
            "labelers": list(fit.data.labelers),
            "notes": list(report.notes),
            "out": str(args.out),
        }
        # Standard JSON: an infinite λ (the prompt's direction only) or a missing value is null.
        print(json.dumps(to_plain_json(data, non_finite="null"), allow_nan=False))
    return 0


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"
