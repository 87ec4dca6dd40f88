"""Episodes on the command line: LeRobot imports, reversed copies, rewards parquet files, VOC.

* ``vlmrm frames import-lerobot DIR --dataset NAME [--camera KEY] [--episodes A:B]`` imports
  one camera of a LeRobot dataset (v2.1 or v3.0) and prints its tasks as suggested goal prompts.
* ``vlmrm frames reverse DATASET --out NAME [--demonstrations]`` stores time-reversed copies of
  a dataset's successful episodes (ReWiND's failure data).
* ``vlmrm score --dataset D --out rewards.parquet`` writes the rewards keyed by
  ``(episode_index, frame_index)`` with the reward's identity and provenance
  (:mod:`vlmrm_core.services.reward_export`).
* ``vlmrm epic ... --dataset D --json`` adds ``voc``: the value-order correlation of the rewards
  over ``D``'s episodes, and ``voc_gap`` against a reversed copy (``--reversed NAME``, or the
  newest ``vlmrm frames reverse`` copy of ``D``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from vlmrm_core.errors import CliError
from vlmrm_core.terminal import printable

if TYPE_CHECKING:
    from vlmrm_core.frames import ProgressCallback
    from vlmrm_core.metrics.progress import VocGap, VocResult
    from vlmrm_core.reward.base import Reward
    from vlmrm_core.store import Engine, FrameInfo
    from vlmrm_core.store.ingest import IngestReport

ImportRunner = Callable[[Callable[["Engine", "ProgressCallback"], "IngestReport"]], int]
"""Runs one importer with the CLI's progress bar and prints its report; the exit status."""

PARQUET_SUFFIX = ".parquet"
"""``vlmrm score --out`` writes a rewards parquet (keyed by episode and frame) for this suffix."""


# --------------------------------------------------------------------------- frames commands


def add_frames_episode_commands(fsub: Any, run_import: ImportRunner) -> None:
    """``frames import-lerobot`` and ``frames reverse`` on the ``frames`` command's subparsers.

    Args:
        fsub: The ``frames`` command's subparsers.
        run_import: How the CLI runs an importer (progress bar, report): ``vlmrm frames
            import``'s, passed in so that this module does not import the main CLI module.
    """
    lr = fsub.add_parser(
        "import-lerobot",
        help="import one camera of a LeRobot dataset (v2.1 or v3.0) as episodes",
        description="Frames keep their episode_index and frame_index; the dataset's tasks "
        "(meta/tasks) are printed as suggested goal prompts.",
    )
    lr.add_argument("path", metavar="DIR", help="the LeRobot dataset folder (with meta/info.json)")
    lr.add_argument("--dataset", required=True, help="name of the dataset to import into")
    lr.add_argument("--camera", metavar="KEY", help="video feature key (default: the first)")
    lr.add_argument(
        "--episodes",
        metavar="A:B",
        help="episode indices A … B-1 (like a Python slice; A: or a single A too; default all)",
    )
    lr.set_defaults(handler=partial(cmd_frames_import_lerobot, run_import=run_import))

    rev = fsub.add_parser(
        "reverse",
        help="store time-reversed copies of a dataset's successful episodes (failure data)",
        description="Each copied episode plays backwards (ReWiND). Episodes count as "
        "successful when their last labelled frame is a success, or all of them with "
        "--demonstrations. `vlmrm epic --dataset DATASET` then reports the VOC gap between "
        "the forward and the reversed episodes.",
    )
    rev.add_argument("dataset", metavar="DATASET", help="the dataset whose episodes to reverse")
    rev.add_argument("--out", required=True, metavar="NAME", help="name of the new dataset")
    rev.add_argument(
        "--demonstrations",
        action="store_true",
        help="every episode is a successful demonstration (no labels needed)",
    )
    rev.set_defaults(handler=cmd_frames_reverse)


def cmd_frames_import_lerobot(args: argparse.Namespace, *, run_import: ImportRunner) -> int:
    from vlmrm_core.services.dataset_import import check_dataset_name, import_lerobot
    from vlmrm_core.sources.lerobot import parse_episode_range, read_lerobot_dataset

    name = check_dataset_name(args.dataset)
    root = Path(args.path).expanduser()
    if not root.is_dir():
        raise CliError(f"{args.path}: no such folder; give the LeRobot dataset's folder")
    # Read and checked before anything is decoded: a bad range or camera imports nothing.
    info = read_lerobot_dataset(root)
    episodes = parse_episode_range(args.episodes, list(info.episodes))
    camera = args.camera or info.cameras[0]
    status = run_import(
        lambda engine, progress: import_lerobot(
            engine, root, name, camera=args.camera, episodes=episodes, progress=progress
        )
    )
    frames = sum(info.episodes[e].length for e in episodes)
    print(
        f"{len(episodes)} episode(s) ({_ranges(episodes)}), {frames} frames of camera "
        f"{printable(camera)}"
    )
    tasks = [task.strip() for task in dict.fromkeys(info.tasks) if task.strip()]
    if tasks:
        print("suggested goal prompts (meta/tasks):")
        for task in tasks:
            print(f"  {printable(task)}")
    return status


def _ranges(indices: Sequence[int]) -> str:
    """``0-2, 5`` for [0, 1, 2, 5]."""
    parts: list[str] = []
    start = prev = None
    for i in sorted(indices):
        if start is None:
            start = prev = i
        elif prev is not None and i == prev + 1:
            prev = i
        else:
            parts.append(f"{start}" if start == prev else f"{start}-{prev}")
            start = prev = i
    if start is not None:
        parts.append(f"{start}" if start == prev else f"{start}-{prev}")
    return ", ".join(parts)


def cmd_frames_reverse(args: argparse.Namespace) -> int:
    from vlmrm_core.services.episodes import make_reversed_copies
    from vlmrm_core.store import init_db

    engine = init_db()
    _require_dataset(engine, args.dataset)
    added = make_reversed_copies(engine, args.dataset, args.out, demonstrations=args.demonstrations)
    print(
        f"{printable(args.out)}: {added} frames, time-reversed copies of episodes of "
        f"{printable(args.dataset)}"
    )
    return 0


def _require_dataset(engine: Engine, name: str) -> None:
    from vlmrm_core.store import NotFoundError, get_dataset

    try:
        get_dataset(engine, name)
    except NotFoundError:
        raise CliError(f"no dataset named {name!r}: `vlmrm frames list` shows them") from None


# --------------------------------------------------------------------------- score --out


def wants_parquet(out: Path | None) -> bool:
    """Whether ``vlmrm score --out`` names a rewards parquet."""
    return out is not None and out.suffix.lower() == PARQUET_SUFFIX


def check_score_output(out: Path | None, dataset: str | None) -> None:
    """Refuse, before any scoring, an output that cannot be written.

    Raises:
        CliError: A parquet output for files (it is keyed by episode and frame, which only
            stored datasets have), or an output folder that does not exist.
    """
    if out is None:
        return
    if wants_parquet(out) and not dataset:
        raise CliError(
            f"{out}: a rewards parquet is keyed by episode and frame, which only a stored "
            "dataset has: give --dataset NAME, or write a .csv"
        )
    if not out.expanduser().parent.is_dir():
        raise CliError(f"{out}: the folder {out.parent} does not exist")


def write_scores(
    args: argparse.Namespace,
    engine: Engine,
    reward: Reward,
    names: Sequence[str],
    rewards: Any,
    probability: Any = None,
    *,
    write_csv: Callable[[Path | None, list[str], Any, Any], None],
) -> None:
    """``vlmrm score``'s output, for any reward: a rewards parquet for ``--out X.parquet``
    (with ``--dataset``), else the CSV that ``write_csv`` writes (``frame,reward[,probability]``).
    """
    if wants_parquet(args.out):
        write_score_parquet(args.out, engine, args.dataset, reward, rewards)
    else:
        write_csv(args.out, list(names), rewards, probability)


def write_score_parquet(
    out: Path, engine: Engine, dataset: str, reward: Reward, rewards: Any
) -> None:
    """Write ``vlmrm score --dataset D --out rewards.parquet``: the rewards keyed by episode and
    frame, with the reward's identity and where the frames came from."""
    from vlmrm_core.services.reward_export import write_dataset_rewards
    from vlmrm_core.store import dataset_frames, get_dataset

    info = get_dataset(engine, dataset)
    provenance: dict[str, Any] = {"dataset": dataset}
    if isinstance(info.meta, Mapping) and isinstance(info.meta.get("lerobot"), Mapping):
        provenance["lerobot"] = dict(info.meta["lerobot"])
    path = write_dataset_rewards(
        out, dataset_frames(engine, dataset), rewards, reward, provenance=provenance
    )
    print(f"wrote {len(np.asarray(rewards).reshape(-1))} rewards to {path}", file=sys.stderr)


# --------------------------------------------------------------------------- epic: VOC


def add_voc_options(parser: Any) -> None:
    """``--dataset --demonstrations --reversed --reversed-rewards`` of ``vlmrm epic``."""
    group = parser.add_argument_group(
        "progress (VOC: rank correlation of reward and time within each episode)"
    )
    group.add_argument(
        "--dataset",
        metavar="NAME",
        help="the stored dataset the rewards score (`vlmrm score --dataset NAME`): when its "
        "frames form episodes, the output gains voc (mean, CI, n_episodes)",
    )
    group.add_argument(
        "--demonstrations",
        action="store_true",
        help="every episode is a successful demonstration (default: the episodes whose last "
        "labelled frame is a success)",
    )
    group.add_argument(
        "--reversed",
        metavar="NAME",
        help="a reversed copy of --dataset (`vlmrm frames reverse`) for voc_gap (default: the "
        "newest reversed copy of it, if any)",
    )
    group.add_argument(
        "--reversed-rewards",
        type=Path,
        metavar="CSV",
        help="rewards of the reversed copy (`vlmrm score --dataset COPY`); default: the "
        "--rewards of the same frames, which is right for rewards of single frames",
    )


def voc_report(
    args: argparse.Namespace,
    rewards: Mapping[str, float],
    labels: Mapping[str, float],
) -> dict[str, Any]:
    """The ``voc`` (and ``voc_gap``) entries of ``vlmrm epic``'s report; empty without
    ``--dataset`` or when the dataset's frames form no episodes.

    Args:
        args: The epic command's arguments.
        rewards: Reward per frame name of the rewards CSV.
        labels: Label per frame name of the rewards CSV (the names matched to the labels file).
    """
    if not args.dataset:
        for option in ("reversed", "reversed_rewards"):
            if getattr(args, option):
                flag = "--" + option.replace("_", "-")
                raise CliError(f"{flag} needs --dataset: name the dataset the rewards score")
        return {}
    from vlmrm_core.services.episodes import dataset_voc_gap, episode_frames
    from vlmrm_core.store import dataset_frames, init_db

    engine = init_db()
    _require_dataset(engine, args.dataset)
    frames = dataset_frames(engine, args.dataset)
    if episode_frames(frames).rows.size == 0:
        return {}  # uploads, sweeps: no episodes, no VOC
    values = _frame_rewards(frames, rewards, str(args.rewards))
    by_hash = _labels_by_hash(engine, args.dataset, frames, labels)
    forward = _voc(frames, values, by_hash, args)
    report: dict[str, Any] = {"voc": voc_json(forward)}
    copy = args.reversed or newest_reversed_copy(engine, args.dataset)
    if copy is None or forward.n_episodes == 0:
        return report
    _require_dataset(engine, copy)
    copied = dataset_frames(engine, copy)
    copy_values = None
    if args.reversed_rewards is not None:
        from vlmrm_core.services.frame_csv import read_frame_column

        copy_rewards = {f: v for _, f, v in read_frame_column(args.reversed_rewards, "reward")}
        copy_values = _frame_rewards(copied, copy_rewards, str(args.reversed_rewards))
    report["voc_gap"] = voc_gap_json(
        dataset_voc_gap(
            forward, frames, values, copied, copy_values, n_boot=args.bootstrap, seed=args.seed
        ),
        copy,
    )
    # A rewards CSV does not say whether its reward looks at time, so say where the copy's
    # rewards came from: reusing the forward ones is wrong for a windowed reward.
    report["voc_gap"]["reversed_rewards"] = (
        str(args.reversed_rewards) if args.reversed_rewards is not None else REUSED_FORWARD
    )
    return report


REUSED_FORWARD = "forward"
"""``voc_gap.reversed_rewards`` when the copy's frames took the forward frames' rewards."""
REUSED_FORWARD_NOTE = (
    "the reversed copy took the forward frames' rewards, which is right for a reward of single "
    "frames only: for a windowed reward or a judge of several frames, score the copy (`vlmrm "
    "score --dataset COPY`) and give --reversed-rewards"
)


def _frame_rewards(
    frames: Sequence[FrameInfo], rewards: Mapping[str, float], source: str
) -> np.ndarray:
    """Per dataset frame, its reward in the CSV (by name as `vlmrm score` writes it, or by
    pixel hash); NaN for frames the CSV lacks (left out of the VOC)."""
    values = np.full(len(frames), np.nan)
    for i, frame in enumerate(frames):
        for key in (frame.name or frame.hash, frame.hash):
            if key in rewards:
                values[i] = rewards[key]
                break
    if np.isnan(values).all():
        raise CliError(
            f"no frame of the dataset has a reward in {source}: score it with "
            "`vlmrm score --dataset NAME --out rewards.csv`"
        )
    return values


def _labels_by_hash(
    engine: Engine, dataset: str, frames: Sequence[FrameInfo], labels: Mapping[str, float]
) -> dict[str, float]:
    """The dataset's stored labels, with those of the labels file over them."""
    from vlmrm_core.store import consensus_labels

    by_hash = {str(k): float(v) for k, v in consensus_labels(engine, dataset).items()}
    for frame in frames:
        for key in (frame.name or frame.hash, frame.hash):
            if key in labels:
                by_hash[frame.hash] = float(labels[key])
                break
    return by_hash


def _voc(
    frames: Sequence[FrameInfo],
    values: np.ndarray,
    labels: Mapping[str, float],
    args: argparse.Namespace,
) -> VocResult:
    from vlmrm_core.services.episodes import dataset_voc

    known = [i for i in range(len(frames)) if not np.isnan(values[i])]
    return dataset_voc(
        [frames[i] for i in known],
        values[known],
        labels=labels,
        demonstrations=args.demonstrations,
        n_boot=args.bootstrap,
        seed=args.seed,
    )


def newest_reversed_copy(engine: Engine, dataset: str) -> str | None:
    """The newest dataset made by ``vlmrm frames reverse`` from ``dataset``; None if none."""
    from vlmrm_core.services.episodes import reversed_copies

    copies = reversed_copies(engine, dataset)
    return copies[-1] if copies else None


def voc_json(result: VocResult) -> dict[str, Any]:
    """``{"mean", "ci_low", "ci_high", "n_episodes", "note"}`` of a VOC."""
    return {
        "mean": result.voc,
        "ci_low": result.ci_low,
        "ci_high": result.ci_high,
        "n_episodes": result.n_episodes,
        "note": result.note,
    }


def voc_gap_json(gap: VocGap, copy: str) -> dict[str, Any]:
    """The gap between forward and reversed VOC, with its interval over paired episodes."""
    return {
        "gap": gap.gap,
        "ci_low": gap.ci_low,
        "ci_high": gap.ci_high,
        "n_pairs": gap.n_pairs,
        "reversed_dataset": copy,
        "reversed_voc": voc_json(gap.reversed),
    }


def print_voc(report: Mapping[str, Any]) -> None:
    """The human-readable lines of ``voc`` and ``voc_gap``."""
    voc = report.get("voc")
    if voc is None:
        return
    if voc["mean"] is None:
        print(f"VOC: none ({voc['note']})")
    elif voc["ci_low"] is None:
        print(f"VOC {voc['mean']:.4f} (no CI, {voc['n_episodes']} episodes)")
    else:
        print(
            f"VOC {voc['mean']:.4f} (95% CI {voc['ci_low']:.4f}–{voc['ci_high']:.4f}, "
            f"{voc['n_episodes']} episodes)"
        )
    gap = report.get("voc_gap")
    if gap is not None and gap["gap"] is not None:
        interval = (
            "" if gap["ci_low"] is None else f", 95% CI {gap['ci_low']:.4f}–{gap['ci_high']:.4f}"
        )
        print(
            f"VOC gap forward − reversed ({printable(gap['reversed_dataset'])}): "
            f"{gap['gap']:.4f}{interval}, {gap['n_pairs']} episode pairs"
        )
        if gap.get("reversed_rewards") == REUSED_FORWARD:
            print(f"  ({REUSED_FORWARD_NOTE})")
