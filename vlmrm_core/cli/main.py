"""The ``vlmrm`` command line: score frames, measure EPIC, manage frames, models and training.

Every user error prints one line to stderr (``vlmrm: error: …``) and exits with status 1;
argparse usage errors exit with status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vlmrm_core.cli.common import file_items, progress_bar, write_scores_csv
from vlmrm_core.cli.options import (
    add_judge_options,
    add_model_options,
    add_reward_options,
    bootstrap_resamples,
    model_request,
    positive_int,
    print_overrides,
    reward_request,
)
from vlmrm_core.cli.reward import add_reward_commands
from vlmrm_core.errors import CliError, is_user_error
from vlmrm_core.services.frame_csv import read_frame_column
from vlmrm_core.terminal import printable

if TYPE_CHECKING:
    from vlmrm_core.frames import ProgressCallback
    from vlmrm_core.store import Engine
    from vlmrm_core.store.ingest import IngestReport


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``vlmrm`` console script."""
    from vlmrm_core.headless import use_headless_rendering

    use_headless_rendering()  # the CLI renders rollouts and sweeps off-screen
    parser = build_parser()
    try:
        args = parser.parse_args(argv)  # an old option spelling fails here, as one line
    except Exception as exc:
        if not is_user_error(exc):
            raise
        print(f"vlmrm: error: {printable(str(exc))}", file=sys.stderr)
        return 1
    if not hasattr(args, "handler"):
        parser.print_help()
        return 2
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("default")
            result = args.handler(args)
        return int(result or 0)
    except KeyboardInterrupt:
        print("vlmrm: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a VlmrmError (or a file error) is one line; a bug a traceback
        if not is_user_error(exc):
            raise
        print(f"vlmrm: error: {printable(str(exc))}", file=sys.stderr)
        return 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vlmrm", description="Rewards from sentences: CLIP reward models for RL."
    )
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    _add_score(sub)
    _add_epic(sub)
    _add_models(sub)
    _add_frames(sub)
    add_reward_commands(sub)
    from vlmrm_core.cli.adapt import add_adapt_commands

    add_adapt_commands(sub)
    from vlmrm_core.cli.prefs import add_prefs_commands

    add_prefs_commands(sub)
    from vlmrm_core.cli.embed import add_embed_command

    add_embed_command(sub)
    try:
        from vlmrm_core.cli.train import add_train_commands
    except ImportError:  # training is optional for the rest of the CLI
        pass
    else:
        add_train_commands(sub)
    return parser


# --------------------------------------------------------------------------- score


def _add_score(sub: Any) -> None:
    p = sub.add_parser(
        "score",
        help="rewards (CLIP prompts or a VLM judge) for images, folders, videos or a dataset",
        description="Write one CSV row per frame (columns frame,reward[,probability]). The "
        "reward is CLIP prompts (--goal, --prompt-set, --reward FILE) or a VLM judge asked a "
        "question (--judge MODEL --question Q, or a judge --reward FILE).",
    )
    p.add_argument("inputs", nargs="*", metavar="INPUT", help="image files, folders, videos")
    p.add_argument("--dataset", help="score a stored dataset instead of files")
    add_model_options(p)
    p.add_argument("--batch-size", type=positive_int, default=32, help="frames per forward pass")
    add_reward_options(p)
    add_judge_options(p)
    p.add_argument(
        "--out",
        type=Path,
        help="CSV file to write (default: standard output); with --dataset, a .parquet file "
        "gets the rewards keyed by (episode_index, frame_index), with the reward's identity",
    )
    p.set_defaults(handler=cmd_score)


def cmd_score(args: argparse.Namespace) -> int:
    from vlmrm_core.clip.embedding import embed_frames
    from vlmrm_core.reward.model import RewardModel, score_embeddings
    from vlmrm_core.services.reward_resolver import resolve_reward
    from vlmrm_core.store import init_db
    from vlmrm_core.store.embedding_cache import EmbeddingCache

    if bool(args.inputs) == bool(args.dataset):
        raise CliError("give either INPUT files/folders or --dataset NAME (one of the two)")
    from vlmrm_core.cli.episodes import check_score_output, write_scores

    check_score_output(args.out, args.dataset)  # a .parquet needs --dataset: refused up front
    engine = init_db()
    from vlmrm_core.cli.judge import judge_from_args, score_with_judge

    judge = judge_from_args(args, device=args.device)
    if judge is not None:  # a VLM judge (--judge, or a judge reward file) instead of CLIP
        return score_with_judge(args, engine, judge)
    resolved = resolve_reward(reward_request(args), model_request(args), engine=engine)
    print_overrides(resolved.overrides)
    ref, spec = resolved.model, resolved.reward
    reward_model = RewardModel.from_ref(ref, spec, device=args.device)
    clip = reward_model.clip
    aspect, resize = ref.aspect.value, ref.resize.value
    cache = EmbeddingCache.for_model(engine, clip, aspect, resize)
    names: list[str] = []
    frames: list[Any] = []  # the dataset's frames, for a reward that looks at time
    if args.dataset:
        items, total = _dataset_items(engine, args.dataset, names, frames)
    else:
        items, total = file_items(args.inputs, names), None
    with progress_bar(total, "embedding") as progress:
        embeddings = embed_frames(
            clip,
            items,
            cache=cache,
            aspect=aspect,
            resize=resize,
            batch_size=args.batch_size,
            total=total,
            progress=progress,
        )
    scores = score_embeddings(clip, embeddings, spec)
    rewards, probability = scores.rewards, scores.probability
    if spec.window > 1 and args.dataset:
        # A windowed reward scores each frame with the frames before it in its episode, as
        # training and the app's Evaluate page do.
        from vlmrm_core.services.episodes import clip_scores_over_time

        rewards = clip_scores_over_time(clip, frames, embeddings, spec).rewards
        probability = None  # a probability of the window mean is not a frame's probability
    write_scores(
        args, engine, reward_model, names, rewards, probability, write_csv=write_scores_csv
    )
    if clip.untrained:
        print(
            "vlmrm: warning: untrained (random) weights: these rewards are meaningless",
            file=sys.stderr,
        )
    return 0


def _dataset_items(
    engine: Any, dataset: str, names: list[str], frames_out: list[Any] | None = None
) -> tuple[Iterator, int]:
    """The dataset's frames to embed and their number; ``names`` (and ``frames_out``, their
    :class:`~vlmrm_core.store.FrameInfo`) get one entry per frame, in the same order."""
    from vlmrm_core.store import NotFoundError, dataset_frames, get_dataset, load_pixels

    try:
        get_dataset(engine, dataset)
    except NotFoundError:
        raise CliError(f"no dataset named {dataset!r}: `vlmrm frames list` shows them") from None
    frames = dataset_frames(engine, dataset)
    names.extend(f.name or f.hash for f in frames)
    if frames_out is not None:
        frames_out.extend(frames)
    items = ((f.hash, (lambda h=f.hash: load_pixels(h))) for f in frames)
    return items, len(frames)


# --------------------------------------------------------------------------- epic


def _add_epic(sub: Any) -> None:
    p = sub.add_parser(
        "epic",
        help="EPIC distance between a rewards CSV and a labels CSV",
        description="Joins rewards (frame,reward) and labels (frame,label) on the frame column.",
    )
    p.add_argument("--rewards", type=Path, required=True, help="CSV with columns frame,reward")
    p.add_argument(
        "--labels",
        type=Path,
        required=True,
        help="CSV with columns frame,label, or the Label page's CSV export (labels averaged)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument(
        "--bootstrap",
        type=bootstrap_resamples,
        default=1000,
        help="bootstrap resamples for the CI (0: no interval; else at least 2)",
    )
    p.add_argument("--seed", type=int, default=0)
    from vlmrm_core.cli.episodes import add_voc_options

    add_voc_options(p)  # --dataset --demonstrations --reversed --reversed-rewards: VOC
    p.set_defaults(handler=cmd_epic)


def cmd_epic(args: argparse.Namespace) -> int:
    import numpy as np

    from vlmrm_core.metrics import SUCCESS_THRESHOLD, reward_metrics
    from vlmrm_core.services.frame_csv import (
        check_matched,
        consensus_by_frame,
        match_frame_names,
        name_examples,
        read_label_rows,
    )

    rewards = _read_column_csv(args.rewards, "reward")
    label_rows = read_label_rows(args.labels)
    labels = consensus_by_frame(label_rows)
    # Names are matched like `labels import` does: a name that ends the other file's name
    # unambiguously is the same frame (so `f0.png` finds `shots/f0.png`), as is a pixel hash.
    known = [(row.frame, row.frame) for row in label_rows]
    known += [(row.frame_hash, row.frame) for row in label_rows if row.frame_hash]
    match = match_frame_names(rewards, known)
    # Unmatched frames are only counted (unmatched_rewards); an ambiguous name is refused.
    check_matched(
        match, labels, source=str(args.rewards), where=str(args.labels), allow_unknown=True
    )
    twice: dict[str, str] = {}
    for frame, label_frame in match.found.items():
        if label_frame in twice:
            raise CliError(
                f"{args.rewards}: frames {twice[label_frame]!r} and {frame!r} both match "
                f"{label_frame!r} of {args.labels}; write more of their names"
            )
        twice[label_frame] = frame
    common = list(match.found)
    if len(common) < 2:
        raise CliError(
            f"only {len(common)} frame(s) appear in both {args.rewards} and {args.labels}: "
            f"the rewards name frames like {name_examples(rewards)}, the labels like "
            f"{name_examples(labels)}"
        )
    r = np.array([rewards[f] for f in common], dtype=np.float64)
    y = np.array([labels[match.found[f]] for f in common], dtype=np.float64)
    # The same rule as the app's Evaluate page: AP and ROC AUC count a label ≥ 0.5 as a success.
    metrics = reward_metrics(r, y, n_boot=args.bootstrap, seed=args.seed)
    success_rule = f"label >= {SUCCESS_THRESHOLD:g} counts as success"
    report: dict[str, Any] = {
        "epic_distance": metrics.epic_distance,
        "n": metrics.n,
        "ci_low": metrics.ci_low,
        "ci_high": metrics.ci_high,
        "average_precision": metrics.average_precision,
        "roc_auc": metrics.roc_auc,
        "success_rule": success_rule,
        "unmatched_rewards": len(rewards) - len(common),
        "unmatched_labels": len(labels) - len(common),
        "notes": metrics.note,
    }
    from vlmrm_core.cli.episodes import print_voc, voc_report

    label_of = {frame: labels[match.found[frame]] for frame in common}
    report.update(voc_report(args, rewards, label_of))
    if args.json:
        print(json.dumps(report))
        return 0
    if metrics.epic_distance is None:
        print(f"EPIC distance: none (n={metrics.n}): {metrics.note}")
    elif metrics.ci_low is None or metrics.ci_high is None:
        why = "--bootstrap 0" if args.bootstrap == 0 else _interval_note(metrics.note)
        print(f"EPIC distance {metrics.epic_distance:.4f} (no CI: {why}, n={metrics.n})")
    else:
        print(
            f"EPIC distance {metrics.epic_distance:.4f} "
            f"(95% CI {metrics.ci_low:.4f}–{metrics.ci_high:.4f}, n={metrics.n})"
        )
    if metrics.average_precision is not None and metrics.roc_auc is not None:
        print(
            f"average precision {metrics.average_precision:.4f}, "
            f"ROC AUC {metrics.roc_auc:.4f} ({success_rule})"
        )
    else:
        print(f"average precision and ROC AUC: none ({success_rule}; {metrics.note})")
    print_voc(report)
    return 0


def _interval_note(note: str) -> str:
    """The reason for a missing interval among :func:`~vlmrm_core.metrics.reward_metrics`'
    notes (they are joined by "; ", the interval's first, as ``no interval: REASON``)."""
    start = note.find(_NO_INTERVAL)
    if start < 0:
        return note or "the bootstrap gave no interval"
    reason = note[start + len(_NO_INTERVAL) :]
    end = reason.find(_NO_AP)
    return reason[:end] if end >= 0 else reason


_NO_INTERVAL = "no interval: "
_NO_AP = "; no AP/ROC AUC: "


def _read_column_csv(path: Path, column: str) -> dict[str, float]:
    return {frame: value for _, frame, value in read_frame_column(path, column)}


# --------------------------------------------------------------------------- models


def _add_models(sub: Any) -> None:
    p = sub.add_parser(
        "models", help="list CLIP models and VLM judges usable offline; download weights"
    )
    p.add_argument("--all", action="store_true", help="list every open_clip architecture and tag")
    p.set_defaults(handler=cmd_models)
    msub = p.add_subparsers(metavar="ACTION")
    d = msub.add_parser(
        "download",
        help="download weights into the local cache (network): a CLIP model as ARCHITECTURE "
        "TAG (e.g. ViT-B-32 laion2b_s34b_b79k), a VLM judge as its Hugging Face id (e.g. "
        "HuggingFaceTB/SmolVLM-256M-Instruct)",
    )
    d.add_argument("name", metavar="NAME", help="open_clip architecture, or a judge's HF id")
    d.add_argument("tag", nargs="?", metavar="TAG", help="open_clip tag (CLIP models only)")
    d.set_defaults(handler=cmd_models_download)


def cmd_models(args: argparse.Namespace) -> int:
    from vlmrm_core.cli.judge import print_cached_judges
    from vlmrm_core.clip.models import NO_WEIGHTS_HELP, discover_models, open_clip
    from vlmrm_core.settings import get_settings

    if args.all:
        for name, tag in open_clip.list_pretrained():
            print(f"{name}\t{tag}")
        return 0
    choices = discover_models()
    if not choices:
        print(NO_WEIGHTS_HELP.format(models_dir=get_settings().models_dir))
    for choice in choices:
        print(f"{choice.name}\t{choice.pretrained}\t{choice.kind}")
    if not print_cached_judges():
        print(
            "no VLM judges cached: `vlmrm models download HuggingFaceTB/SmolVLM-256M-Instruct` "
            "fetches one (or put a model folder in the models dir)"
        )
    return 0


def cmd_models_download(args: argparse.Namespace) -> int:
    from vlmrm_core.cli.judge import download_judge_model, is_hub_id
    from vlmrm_core.clip.models import load_model

    if args.tag is None:
        if not is_hub_id(args.name):
            raise CliError(
                f"{args.name!r} is neither a Hugging Face judge id (owner/name) nor given with "
                "an open_clip tag: write `vlmrm models download ARCHITECTURE TAG` for CLIP, "
                "or `vlmrm models download OWNER/NAME` for a judge"
            )
        return download_judge_model(args.name)
    clip = load_model(args.name, args.tag, device="cpu")
    print(f"CLIP model {clip.identity} is ready")
    return 0


# --------------------------------------------------------------------------- frames


def _add_frames(sub: Any) -> None:
    p = sub.add_parser("frames", help="create and list frame datasets")
    fsub = p.add_subparsers(metavar="ACTION")
    from vlmrm_core.cli.episodes import add_frames_episode_commands

    add_frames_episode_commands(fsub, _run_import)  # import-lerobot, reverse

    imp = fsub.add_parser("import", help="import images, folders, ZIPs and videos")
    imp.add_argument("paths", nargs="+", metavar="PATH")
    imp.add_argument("--dataset", required=True)
    imp.add_argument("--every", type=positive_int, default=1, help="keep every k-th video frame")
    imp.add_argument("--max-video-frames", type=positive_int, default=300)
    imp.set_defaults(handler=cmd_frames_import)

    roll = fsub.add_parser("rollout", help="record frames from a gymnasium environment")
    roll.add_argument("env_id")
    roll.add_argument("--episodes", type=positive_int, default=1)
    roll.add_argument("--steps", type=positive_int, default=100, help="steps per episode")
    roll.add_argument("--dataset", required=True)
    roll.add_argument(
        "--policy", default="random", help="'random' or a saved stable-baselines3 model (.zip)"
    )
    roll.add_argument("--seed", type=int, default=0)
    roll.add_argument("--textured", action="store_true", help="textured renderer where available")
    roll.set_defaults(handler=cmd_frames_rollout)

    sweep = fsub.add_parser("sweep", help="render a state sweep (the paper's Fig. 2)")
    sweep.add_argument("kind", choices=["cartpole", "mountaincar"])
    sweep.add_argument("--points", type=positive_int, default=50)
    sweep.add_argument("--textured", action="store_true", help="MountainCar: textured renderer")
    sweep.add_argument("--dataset", required=True)
    sweep.set_defaults(handler=cmd_frames_sweep)

    lst = fsub.add_parser("list", help="list datasets")
    lst.set_defaults(handler=cmd_frames_list)

    gc = fsub.add_parser(
        "gc",
        help="clean up after killed imports: every frame row has its file, every file a row",
    )
    gc.set_defaults(handler=cmd_frames_gc)


def _run_import(run: Callable[[Engine, ProgressCallback], IngestReport]) -> int:
    """Run one of ``vlmrm_core.services.dataset_import``'s importers with a progress bar; print its report."""
    from vlmrm_core.store import init_db

    engine = init_db()
    with progress_bar(None, "importing") as progress:
        report = run(engine, progress)
    print(
        f"{printable(report.dataset)}: {report.imported} imported, "
        f"{report.duplicates} duplicates, {len(report.rejected)} rejected"
    )
    for rejection in report.rejected:
        print(
            f"  rejected {printable(rejection.name)}: {printable(rejection.reason)}",
            file=sys.stderr,
        )
    return 0


def cmd_frames_import(args: argparse.Namespace) -> int:
    from vlmrm_core.services.dataset_import import check_dataset_name
    from vlmrm_core.sources.uploads import iter_paths
    from vlmrm_core.store.ingest import ingest_frames

    name = check_dataset_name(args.dataset)
    for path in args.paths:
        if not Path(path).exists():
            raise CliError(f"{path}: no such file or folder")
    items = iter_paths(args.paths, every_k=args.every, max_video_frames=args.max_video_frames)
    return _run_import(lambda db, progress: ingest_frames(db, name, items, progress=progress))


def cmd_frames_rollout(args: argparse.Namespace) -> int:
    from vlmrm_core.services.dataset_import import import_rollout

    return _run_import(
        lambda db, progress: import_rollout(
            db,
            args.dataset,
            args.env_id,
            episodes=args.episodes,
            steps=args.steps,
            policy=args.policy,
            seed=args.seed,
            textured=args.textured,
            progress=progress,
        )
    )


def cmd_frames_sweep(args: argparse.Namespace) -> int:
    from vlmrm_core.services.dataset_import import import_sweep

    return _run_import(
        lambda db, progress: import_sweep(
            db,
            args.dataset,
            args.kind,
            points=args.points,
            textured=args.textured,
            progress=progress,
        )
    )


def cmd_frames_list(args: argparse.Namespace) -> int:
    from vlmrm_core.store import init_db, list_datasets

    datasets = list_datasets(init_db())
    if not datasets:
        print("no datasets yet: `vlmrm frames sweep cartpole --dataset demo` makes one")
    for d in datasets:
        print(f"{printable(d.name)}\t{d.kind}\t{d.n_frames} frames\t{d.n_labelled} labelled")
    return 0


def cmd_frames_gc(args: argparse.Namespace) -> int:
    from vlmrm_core.store import init_db
    from vlmrm_core.store.ingest import collect_garbage

    report = collect_garbage(init_db())
    print(
        f"{report.moved_in} files of committed frames moved in, "
        f"{report.removed_incoming} files of unfinished imports removed, "
        f"{report.removed_orphans} frame files without a row removed"
    )
    if report.missing_files:
        print(
            f"{len(report.missing_files)} stored frames have no image file "
            f"(e.g. {report.missing_files[0]}); re-import them or delete their datasets",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
