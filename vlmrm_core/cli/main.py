"""The ``vlmrm`` command line: score frames, measure EPIC, manage frames, models and training.

Every user error prints one line to stderr (``vlmrm: error: …``) and exits with status 1;
argparse usage errors exit with status 2.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vlmrm_core.cli.reward import (
    add_reward_arguments,
    add_reward_commands,
    reward_file_arg,
    reward_spec_from_args,
)
from vlmrm_core.errors import CliError, is_user_error
from vlmrm_core.security import csv_safe_cell
from vlmrm_core.services.frame_csv import read_frame_column
from vlmrm_core.terminal import printable

if TYPE_CHECKING:
    from tqdm import tqdm

    from vlmrm_core.frames import ProgressCallback
    from vlmrm_core.store import Engine
    from vlmrm_core.store.ingest import IngestReport


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``vlmrm`` console script."""
    from vlmrm_core.headless import use_headless_rendering

    use_headless_rendering()  # the CLI renders rollouts and sweeps off-screen
    parser = build_parser()
    args = parser.parse_args(argv)
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


def _add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="ViT-B-32", help="open_clip architecture (default ViT-B-32)")
    p.add_argument(
        "--pretrained",
        default=None,
        help="open_clip tag (e.g. laion2b_s34b_b79k), a checkpoint file, or 'random' "
        "(untrained: rewards are meaningless). Default: the best model available locally.",
    )
    p.add_argument("--device", default=None, help="cuda or cpu (default: cuda if available)")
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    p.add_argument(
        "--aspect",
        default="squash",
        choices=["squash", "center-crop"],
        help="squash: resize the whole frame to the square input (the paper's choice); "
        "center-crop: shorter side to the input size, then cut the centre square",
    )
    p.add_argument(
        "--resize",
        default="antialias",
        choices=["antialias", "paper"],
        help="antialias: antialiased bicubic on uint8 (default); paper: the official VLM-RM "
        "transform exactly (bicubic on floats without antialiasing, OpenAI mean/std): use it "
        "with --aspect squash to reproduce the paper's figures",
    )
    p.add_argument("--batch-size", type=_positive_int, default=32, help="frames per forward pass")


def _positive_int(text: str) -> int:
    """argparse type: a whole number ≥ 1 (a clear usage error otherwise)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _add_score(sub: Any) -> None:
    p = sub.add_parser(
        "score",
        help="CLIP rewards for images, folders, videos or a stored dataset",
        description="Write one CSV row per frame (columns frame,reward[,probability]).",
    )
    p.add_argument("inputs", nargs="*", metavar="INPUT", help="image files, folders, videos")
    p.add_argument("--dataset", help="score a stored dataset instead of files")
    _add_model_args(p)
    add_reward_arguments(p)
    p.add_argument("--out", type=Path, help="CSV file to write (default: standard output)")
    p.set_defaults(handler=cmd_score)


def cmd_score(args: argparse.Namespace) -> int:
    from vlmrm_core.clip.embedding import embed_frames
    from vlmrm_core.reward.file import load_reward
    from vlmrm_core.reward.model import score_embeddings
    from vlmrm_core.store import init_db
    from vlmrm_core.store.embedding_cache import EmbeddingCache

    if bool(args.inputs) == bool(args.dataset):
        raise CliError("give either INPUT files/folders or --dataset NAME (one of the two)")
    spec = reward_spec_from_args(args)
    reward_file = reward_file_arg(args)
    if reward_file is not None:
        # The file fixes model, aspect and resampling; --device/--precision still apply.
        reward_model = load_reward(reward_file, device=args.device)
        clip, spec = reward_model.clip, reward_model.spec
        args.aspect, args.resize = reward_model.aspect.value, reward_model.resize.value
    else:
        clip = _load_cli_model(args)
    engine = init_db()
    cache = EmbeddingCache.for_model(engine, clip, args.aspect, args.resize)
    names: list[str] = []
    if args.dataset:
        items, total = _dataset_items(engine, args.dataset, names)
    else:
        items, total = _file_items(args.inputs, names), None
    with _progress_bar(total, "embedding") as progress:
        embeddings = embed_frames(
            clip,
            items,
            cache=cache,
            aspect=args.aspect,
            resize=args.resize,
            batch_size=args.batch_size,
            total=total,
            progress=progress,
        )
    scores = score_embeddings(clip, embeddings, spec)
    _write_scores(args.out, names, scores.rewards, scores.probability)
    if clip.untrained:
        print(
            "vlmrm: warning: untrained (random) weights: these rewards are meaningless",
            file=sys.stderr,
        )
    return 0


def _load_cli_model(args: argparse.Namespace) -> Any:
    from vlmrm_core.clip.models import NO_WEIGHTS_HELP, default_model_choice, load_model
    from vlmrm_core.settings import get_settings

    pretrained = args.pretrained
    if pretrained is None:
        choice = default_model_choice()
        if choice is None:
            help_text = NO_WEIGHTS_HELP.format(models_dir=get_settings().models_dir)
            raise CliError(
                "no --pretrained given and "
                + help_text[0].lower()
                + help_text[1:]
                + " Pass --pretrained random to try it anyway."
            )
        args.model, pretrained = choice.name, choice.pretrained
    return load_model(args.model, pretrained, device=args.device, precision=args.precision)


def _file_items(inputs: Sequence[str], names: list[str]) -> Iterator[tuple[str, Any]]:
    from vlmrm_core.frames import Rejection
    from vlmrm_core.sources.uploads import iter_paths

    for path in inputs:
        if not Path(path).exists():
            raise CliError(f"{path}: no such file or folder")
    for item in iter_paths(inputs):
        if isinstance(item, Rejection):
            raise CliError(f"{item.name}: {item.reason}")
        names.append(item.name or "")
        yield item.hash, item.pixels


def _dataset_items(engine: Any, dataset: str, names: list[str]) -> tuple[Iterator, int]:
    from vlmrm_core.store import NotFoundError, dataset_frames, get_dataset, load_pixels

    try:
        get_dataset(engine, dataset)
    except NotFoundError:
        raise CliError(f"no dataset named {dataset!r}: `vlmrm frames list` shows them") from None
    frames = dataset_frames(engine, dataset)
    names.extend(f.name or f.hash for f in frames)
    items = ((f.hash, (lambda h=f.hash: load_pixels(h))) for f in frames)
    return items, len(frames)


def _write_scores(out: Path | None, names: list[str], rewards: Any, probability: Any) -> None:
    header = ["frame", "reward"] + (["probability"] if probability is not None else [])
    rows = []
    for i, name in enumerate(names):
        row = [csv_safe_cell(name), f"{float(rewards[i]):.8g}"]  # no spreadsheet formulas
        if probability is not None:
            row.append(f"{float(probability[i]):.8g}")
        rows.append(row)
    if out is None:
        writer = csv.writer(sys.stdout)
        writer.writerow(header)
        writer.writerows(rows)
        return
    tmp = out.with_name(out.name + ".partial")
    with tmp.open("w", newline="") as fh:  # written whole, then renamed: no half-written output
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    tmp.replace(out)
    print(f"wrote {len(rows)} rows to {out}", file=sys.stderr)


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
        type=_non_negative_int,
        default=1000,
        help="bootstrap resamples for the CI (0: no interval)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(handler=cmd_epic)


def _non_negative_int(text: str) -> int:
    """argparse type: a whole number ≥ 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def cmd_epic(args: argparse.Namespace) -> int:
    import numpy as np

    from vlmrm_core.metrics import SUCCESS_THRESHOLD, reward_metrics

    rewards = _read_column_csv(args.rewards, "reward")
    labels = _read_label_export(args.labels)
    if labels is None:
        labels = _read_column_csv(args.labels, "label")
    common = [frame for frame in rewards if frame in labels]
    if len(common) < 2:
        raise CliError(
            f"only {len(common)} frame(s) appear in both {args.rewards} and {args.labels}: "
            "the 'frame' columns must name the same frames"
        )
    r = np.array([rewards[f] for f in common], dtype=np.float64)
    y = np.array([labels[f] for f in common], dtype=np.float64)
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
    if args.json:
        print(json.dumps(report))
        return 0
    if metrics.epic_distance is None:
        print(f"EPIC distance: none (n={metrics.n}): {metrics.note}")
    elif metrics.ci_low is None or metrics.ci_high is None:
        print(f"EPIC distance {metrics.epic_distance:.4f} (no CI: --bootstrap 0, n={metrics.n})")
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
    return 0


LABEL_EXPORT_COLUMNS = ("frame_hash", "frame_name", "labeler", "value")
"""Columns that mark the Label page's CSV export (one row per labeller and frame)."""


def _read_label_export(path: Path) -> dict[str, float] | None:
    """The Label page's CSV export as frame -> consensus label, or None for another CSV.

    Each frame's label is the mean of its labellers' current labels (the Evaluate page's rule),
    keyed by frame name, or by hash for unnamed frames (what ``vlmrm score --dataset`` writes).
    """
    if not path.is_file():
        return None
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        if not set(LABEL_EXPORT_COLUMNS) <= set(reader.fieldnames or []):
            return None
        per_frame: dict[str, list[float]] = {}
        names: dict[str, str] = {}
        for line, row in enumerate(reader, start=2):
            try:
                value = float(row["value"])
            except (TypeError, ValueError):
                raise CliError(
                    f"{path} line {line}: value {row['value']!r} is not a number"
                ) from None
            per_frame.setdefault(row["frame_hash"], []).append(value)
            names[row["frame_hash"]] = row["frame_name"] or row["frame_hash"]
    return {names[h]: sum(values) / len(values) for h, values in per_frame.items()}


def _read_column_csv(path: Path, column: str) -> dict[str, float]:
    return {frame: value for _, frame, value in read_frame_column(path, column)}


# --------------------------------------------------------------------------- models


def _add_models(sub: Any) -> None:
    p = sub.add_parser("models", help="list CLIP models usable offline; download weights")
    p.add_argument("--all", action="store_true", help="list every open_clip architecture and tag")
    p.set_defaults(handler=cmd_models)
    msub = p.add_subparsers(metavar="ACTION")
    d = msub.add_parser("download", help="download hub weights into the local cache (network)")
    d.add_argument("name")
    d.add_argument("tag")
    d.set_defaults(handler=cmd_models_download)


def cmd_models(args: argparse.Namespace) -> int:
    from vlmrm_core.clip.models import NO_WEIGHTS_HELP, discover_models, open_clip
    from vlmrm_core.settings import get_settings

    if args.all:
        for name, tag in open_clip.list_pretrained():
            print(f"{name}\t{tag}")
        return 0
    choices = discover_models()
    if not choices:
        print(NO_WEIGHTS_HELP.format(models_dir=get_settings().models_dir))
        return 0
    for choice in choices:
        print(f"{choice.name}\t{choice.pretrained}\t{choice.kind}")
    return 0


def cmd_models_download(args: argparse.Namespace) -> int:
    from vlmrm_core.clip.models import load_model

    clip = load_model(args.name, args.tag, device="cpu")
    print(f"{clip.identity} is ready")
    return 0


# --------------------------------------------------------------------------- frames


def _add_frames(sub: Any) -> None:
    p = sub.add_parser("frames", help="create and list frame datasets")
    fsub = p.add_subparsers(metavar="ACTION")

    imp = fsub.add_parser("import", help="import images, folders, ZIPs and videos")
    imp.add_argument("paths", nargs="+", metavar="PATH")
    imp.add_argument("--dataset", required=True)
    imp.add_argument("--every", type=int, default=1, help="keep every k-th video frame")
    imp.add_argument("--max-video-frames", type=int, default=300)
    imp.set_defaults(handler=cmd_frames_import)

    roll = fsub.add_parser("rollout", help="record frames from a gymnasium environment")
    roll.add_argument("env_id")
    roll.add_argument("--episodes", type=int, default=1)
    roll.add_argument("--steps", type=int, default=100)
    roll.add_argument("--dataset", required=True)
    roll.add_argument(
        "--policy", default="random", help="'random' or a saved stable-baselines3 model (.zip)"
    )
    roll.add_argument("--seed", type=int, default=0)
    roll.add_argument("--textured", action="store_true", help="textured renderer where available")
    roll.set_defaults(handler=cmd_frames_rollout)

    sweep = fsub.add_parser("sweep", help="render a state sweep (the paper's Fig. 2)")
    sweep.add_argument("kind", choices=["cartpole", "mountaincar"])
    sweep.add_argument("--points", type=int, default=50)
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
    with _progress_bar(None, "importing") as progress:
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


# --------------------------------------------------------------------------- helpers


class _progress_bar:
    """A tqdm bar on stderr when it is a terminal; a ProgressCallback for the library."""

    def __init__(self, total: int | None, desc: str) -> None:
        self.total, self.desc = total, desc
        self.bar: tqdm | None = None

    def __enter__(self) -> ProgressCallback:
        from tqdm import tqdm

        bar = self.bar = tqdm(
            total=self.total, desc=self.desc, unit="frame", disable=not sys.stderr.isatty()
        )

        def update(done: int, total: int | None, message: str) -> None:
            if total is not None and bar.total != total:
                bar.total = total
            bar.update(done - bar.n)

        return update

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()


if __name__ == "__main__":
    sys.exit(main())
