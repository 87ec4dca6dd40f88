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
from typing import Any


class CliError(Exception):
    """A user-facing error: printed as one line, exit status 1."""


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``vlmrm`` console script."""
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
    except Exception as exc:  # every failure reaches the user as one clear line
        from vlmrm_core.errors import is_user_error

        if not is_user_error(exc):
            raise
        print(f"vlmrm: error: {exc}", file=sys.stderr)
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
    try:
        from vlmrm_core.training.cli import add_train_commands
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
    p.add_argument("--aspect", default="squash", choices=["squash", "center-crop"])
    p.add_argument("--batch-size", type=int, default=32)


def _add_score(sub: Any) -> None:
    p = sub.add_parser(
        "score",
        help="CLIP rewards for images, folders, videos or a stored dataset",
        description="Write one CSV row per frame (columns frame,reward[,probability]).",
    )
    p.add_argument("inputs", nargs="*", metavar="INPUT", help="image files, folders, videos")
    p.add_argument("--dataset", help="score a stored dataset instead of files")
    _add_model_args(p)
    p.add_argument("--goal", action="append", required=True, help="goal prompt (repeatable)")
    p.add_argument("--baseline", action="append", default=[], help="baseline prompt (repeatable)")
    p.add_argument("--alpha", type=float, default=0.0, help="regularisation strength in [0, 1]")
    p.add_argument("--reward", default="regularized", choices=["regularized", "contrastive"])
    p.add_argument("--negative", action="append", default=[], help="negative prompt (contrastive)")
    p.add_argument("--tau", type=float, default=None, help="temperature (default 1/logit_scale)")
    p.add_argument("--beta", type=float, default=0.5, help="probability threshold (contrastive)")
    p.add_argument("--out", type=Path, help="CSV file to write (default: standard output)")
    p.set_defaults(handler=cmd_score)


def cmd_score(args: argparse.Namespace) -> int:
    from vlmrm_core.embedding import embed_frames
    from vlmrm_core.embedding_cache import EmbeddingCache
    from vlmrm_core.reward_model import RewardSpec, score_embeddings
    from vlmrm_core.store import init_db

    if bool(args.inputs) == bool(args.dataset):
        raise CliError("give either INPUT files/folders or --dataset NAME (one of the two)")
    spec = RewardSpec(
        goal_prompts=tuple(args.goal),
        baseline_prompts=tuple(args.baseline),
        alpha=args.alpha,
        kind=args.reward,
        negatives=tuple(args.negative),
        tau=args.tau,
        beta=args.beta,
    )
    clip = _load_cli_model(args)
    engine = init_db()
    cache = EmbeddingCache.for_model(engine, clip, args.aspect)
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
    from vlmrm_core.models import NO_WEIGHTS_HELP, default_model_choice, load_model
    from vlmrm_core.settings import get_settings

    pretrained = args.pretrained
    if pretrained is None:
        choice = default_model_choice()
        if choice is None:
            raise CliError(
                "no --pretrained given and "
                + NO_WEIGHTS_HELP.format(models_dir=get_settings().models_dir)[3:]
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
        row = [name, f"{float(rewards[i]):.8g}"]
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
    p.add_argument("--labels", type=Path, required=True, help="CSV with columns frame,label")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for the CI")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(handler=cmd_epic)


def cmd_epic(args: argparse.Namespace) -> int:
    import numpy as np

    from vlmrm_core.metrics import evaluate_epic
    from vlmrm_core.metrics.classification import average_precision, roc_auc

    rewards = _read_column_csv(args.rewards, "reward")
    labels = _read_column_csv(args.labels, "label")
    common = [frame for frame in rewards if frame in labels]
    if len(common) < 2:
        raise CliError(
            f"only {len(common)} frame(s) appear in both {args.rewards} and {args.labels}: "
            "the 'frame' columns must name the same frames"
        )
    r = np.array([rewards[f] for f in common], dtype=np.float64)
    y = np.array([labels[f] for f in common], dtype=np.float64)
    result = evaluate_epic(r, y, n_boot=args.bootstrap, seed=args.seed)
    report: dict[str, Any] = {
        "epic_distance": result.epic_distance,
        "n": result.n,
        "ci_low": result.ci_low,
        "ci_high": result.ci_high,
        "average_precision": None,
        "roc_auc": None,
        "unmatched_rewards": len(rewards) - len(common),
        "unmatched_labels": len(labels) - len(common),
    }
    binary = set(np.unique(y)) == {0.0, 1.0}
    if binary:
        report["average_precision"] = average_precision(r, y)
        report["roc_auc"] = roc_auc(r, y)
    if args.json:
        print(json.dumps(report))
    else:
        print(
            f"EPIC distance {result.epic_distance:.4f} "
            f"(95% CI {result.ci_low:.4f}–{result.ci_high:.4f}, n={result.n})"
        )
        if binary:
            print(
                f"average precision {report['average_precision']:.4f}, "
                f"ROC AUC {report['roc_auc']:.4f}"
            )
    return 0


def _read_column_csv(path: Path, column: str) -> dict[str, float]:
    if not path.is_file():
        raise CliError(f"{path}: no such file")
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        fields = reader.fieldnames or []
        if "frame" not in fields or column not in fields:
            raise CliError(
                f"{path} needs columns 'frame' and '{column}' (found: {', '.join(fields) or 'none'})"
            )
        values: dict[str, float] = {}
        for line, row in enumerate(reader, start=2):
            try:
                values[row["frame"]] = float(row[column])
            except (TypeError, ValueError):
                raise CliError(
                    f"{path} line {line}: {column} {row[column]!r} is not a number"
                ) from None
    return values


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
    import open_clip

    from vlmrm_core.models import NO_WEIGHTS_HELP, discover_models
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
    from vlmrm_core.models import load_model

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


def _run_import(run: Callable[[Any], Any]) -> int:
    """Run one of ``vlmrm_core.dataset_import``'s importers with a progress bar; print its report."""
    from vlmrm_core.store import init_db

    engine = init_db()
    with _progress_bar(None, "importing") as progress:
        report = run(engine, progress)
    print(
        f"{report.dataset}: {report.imported} imported, {report.duplicates} duplicates, "
        f"{len(report.rejected)} rejected"
    )
    for rejection in report.rejected:
        print(f"  rejected {rejection.name}: {rejection.reason}", file=sys.stderr)
    return 0


def cmd_frames_import(args: argparse.Namespace) -> int:
    from vlmrm_core.dataset_import import check_dataset_name
    from vlmrm_core.sources.uploads import iter_paths
    from vlmrm_core.store import ingest_frames

    name = check_dataset_name(args.dataset)
    for path in args.paths:
        if not Path(path).exists():
            raise CliError(f"{path}: no such file or folder")
    items = iter_paths(args.paths, every_k=args.every, max_video_frames=args.max_video_frames)
    return _run_import(lambda db, progress: ingest_frames(db, name, items, progress=progress))


def cmd_frames_rollout(args: argparse.Namespace) -> int:
    from vlmrm_core.dataset_import import import_rollout

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
    from vlmrm_core.dataset_import import import_sweep

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
        print(f"{d.name}\t{d.kind}\t{d.n_frames} frames\t{d.n_labelled} labelled")
    return 0


# --------------------------------------------------------------------------- helpers


class _progress_bar:
    """A tqdm bar on stderr when it is a terminal; a ProgressCallback for the library."""

    def __init__(self, total: int | None, desc: str) -> None:
        self.total, self.desc, self.bar = total, desc, None

    def __enter__(self) -> Callable[[int, int | None, str], None]:
        from tqdm import tqdm

        self.bar = tqdm(
            total=self.total, desc=self.desc, unit="frame", disable=not sys.stderr.isatty()
        )

        def update(done: int, total: int | None, message: str) -> None:
            if total is not None and self.bar.total != total:
                self.bar.total = total
            self.bar.update(done - self.bar.n)

        return update

    def __exit__(self, *exc: object) -> None:
        self.bar.close()


if __name__ == "__main__":
    sys.exit(main())
