"""``vlmrm labels import`` and ``vlmrm adapt``: bring labels in, fit a reward to them.

``labels import FILE.csv`` stores one label per row (columns ``frame,label``; ``frame`` is the
frame name as ``vlmrm score --dataset`` writes it, or its pixel hash). ``adapt`` fits the
adapted reward (:mod:`vlmrm_core.reward.adaptation`) to a dataset's consensus labels, starting from a
prompt set or prompts given here, prints the cross-validated table (zero-shot vs adapted vs
plain probe on held-out episodes) and writes the adapted reward as a reward file.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from vlmrm_core.errors import CliError
from vlmrm_core.services.frame_csv import read_frame_column


def add_adapt_commands(sub: Any) -> None:
    """Register ``labels import`` and ``adapt`` on the ``vlmrm`` sub-parsers."""
    labels = sub.add_parser("labels", help="import human labels from a CSV file")
    lsub = labels.add_subparsers(title="labels commands", metavar="COMMAND")
    imp = lsub.add_parser(
        "import",
        help="store labels from a CSV with columns frame,label",
        description="frame: the frame name as `vlmrm score --dataset` writes it (or its pixel "
        "hash); label: 1 success, 0 failure (values in between for graded datasets).",
    )
    imp.add_argument("file", type=Path, metavar="FILE.csv")
    imp.add_argument("--dataset", required=True)
    imp.add_argument("--labeler", required=True, help="whose labels these are")
    imp.set_defaults(handler=cmd_labels_import)
    labels.set_defaults(handler=lambda _args: labels.print_help() or 2)

    p = sub.add_parser(
        "adapt",
        help="fit a reward to a dataset's labels, starting from a prompt set",
        description="Cross-validated over whole episodes: prints zero-shot vs adapted vs plain "
        "probe EPIC distance, AP and ROC AUC on held-out folds, and writes the adapted reward "
        "(fitted on every label) as a reward file.",
    )
    p.add_argument("--dataset", required=True)
    p.add_argument("--prompt-set", help="start from this saved prompt set")
    p.add_argument("--model", default=None, help="open_clip architecture (with --goal)")
    p.add_argument("--pretrained", default=None, help="open_clip tag, checkpoint or 'random'")
    p.add_argument("--aspect", default="squash", choices=["squash", "center-crop"])
    p.add_argument("--goal", action="append", help="goal prompt (repeatable)")
    p.add_argument("--baseline", action="append", help="baseline prompt (repeatable)")
    p.add_argument("--alpha", type=float, default=None, help="regularisation strength in [0, 1]")
    p.add_argument("--folds", type=int, default=5, help="cross-validation folds (default 5)")
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for CIs")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None, help="cuda or cpu (default: cuda if available)")
    p.add_argument("--out", type=Path, required=True, help="reward file to write (.json)")
    p.add_argument("--json", action="store_true", help="end with one JSON line of results")
    p.set_defaults(handler=cmd_adapt)


# --------------------------------------------------------------------------- labels import


def read_label_csv(path: Path) -> list[tuple[int, str, float]]:
    """Rows ``(line, frame, label)`` of a ``frame,label`` CSV (see :mod:`vlmrm_core.services.frame_csv`)."""
    return read_frame_column(path, "label", meaning="(1 success, 0 failure)")


def cmd_labels_import(args: argparse.Namespace) -> int:
    from vlmrm_core.store import add_label, dataset_frames, get_dataset, init_db

    engine = init_db()
    summary = get_dataset(engine, args.dataset)  # NotFoundError names the dataset
    rows = read_label_csv(args.file)
    # Every value is checked before the first is stored: no half-imported file.
    for line, _frame, value in rows:
        if not 0.0 <= value <= 1.0 or (not summary.graded and value not in (0.0, 1.0)):
            allowed = "a value in [0, 1]" if summary.graded else "1 (success) or 0 (failure)"
            raise CliError(
                f"{args.file} line {line}: label {value:g} is not {allowed}"
                + ("" if summary.graded else "; mark the dataset as graded for values in between")
            )
    by_name: dict[str, set[str]] = {}
    for f in dataset_frames(engine, args.dataset):
        by_name.setdefault(f.hash, set()).add(f.hash)
        if f.name:
            by_name.setdefault(f.name, set()).add(f.hash)
            by_name.setdefault("'" + f.name, set()).add(f.hash)  # as csv_safe_cell writes it
    resolved: list[tuple[str, float]] = []
    unknown: list[str] = []
    for line, frame, value in rows:
        hashes = by_name.get(frame)
        if not hashes:
            unknown.append(frame)
            continue
        if len(hashes) > 1:
            raise CliError(
                f"{args.file} line {line}: {len(hashes)} different frames are named {frame!r}; "
                "use the frame's pixel hash instead"
            )
        resolved.append((next(iter(hashes)), value))
    if unknown:
        shown = ", ".join(repr(f) for f in unknown[:5])
        raise CliError(
            f"{len(unknown)} frame(s) are not in dataset {args.dataset!r}: {shown}"
            f"{' …' if len(unknown) > 5 else ''}; frame names are as `vlmrm score --dataset` "
            "writes them"
        )
    repeated = len(resolved) - len({h for h, _ in resolved})
    if repeated:
        raise CliError(
            f"{repeated} row(s) name a frame already named on another row (by name and by hash, "
            "or two names of the same pixels): keep one label per frame"
        )
    for frame_hash, value in resolved:
        add_label(engine, args.dataset, frame_hash, args.labeler, value)
    print(f"{args.dataset}: stored {len(resolved)} labels by {args.labeler.strip()}")
    return 0


# --------------------------------------------------------------------------- adapt


def _starting_point(engine: Any, args: argparse.Namespace) -> tuple[Any, Any, str]:
    """(ModelRef, RewardSpec, description) of the reward to adapt."""
    from vlmrm_core.reward.spec import ModelRef, RewardSpec

    if args.prompt_set:
        if args.goal or args.baseline or args.alpha is not None or args.model or args.pretrained:
            raise CliError("give either --prompt-set or --model/--pretrained/--goal, not both")
        from vlmrm_core.store.prompt_sets import get_prompt_set

        prompt_set = get_prompt_set(engine, args.prompt_set)
        return prompt_set.model, prompt_set.reward, f"prompt set {args.prompt_set!r}"
    if not args.goal:
        raise CliError("give --prompt-set NAME, or --model, --pretrained and at least one --goal")
    if args.pretrained is None:
        raise CliError("give --pretrained (an open_clip tag, a checkpoint file, or 'random')")
    ref = ModelRef(args.model or "ViT-B-32", args.pretrained, aspect=args.aspect)
    spec = RewardSpec(
        goal_prompts=tuple(args.goal),
        baseline_prompts=tuple(args.baseline or ()),
        alpha=0.0 if args.alpha is None else args.alpha,
    )
    return ref, spec, "the given prompts"


def cmd_adapt(args: argparse.Namespace) -> int:
    import numpy as np

    from vlmrm_core.metrics import check_labels
    from vlmrm_core.reward.adaptation import (
        adaptation_provenance,
        cross_validate_adaptation,
        frame_groups,
    )
    from vlmrm_core.reward.adaptation import adapted_spec as adapted_reward_spec
    from vlmrm_core.reward.file import with_checkpoint_hash, write_reward_file
    from vlmrm_core.reward.model import RewardModel, reward_direction
    from vlmrm_core.services.evaluation import labelled_frames
    from vlmrm_core.services.landscape import embed_hashes, reward_values
    from vlmrm_core.store import current_labels, dataset_frames, init_db

    if args.folds < 2:
        raise CliError(f"--folds must be at least 2, got {args.folds}")
    engine = init_db()
    ref, spec, start = _starting_point(engine, args)
    labelled = labelled_frames(engine, args.dataset)
    check_labels(labelled.labels)
    reward_model = RewardModel.from_ref(ref, spec, device=args.device)
    clip = reward_model.clip
    embeddings = embed_hashes(
        engine, clip, list(labelled.hashes), aspect=ref.aspect, resize=ref.resize
    ).astype(np.float64)
    zero_shot = reward_values(reward_model.score_embeddings(embeddings))
    prior = reward_direction(clip, spec, embeddings)
    groups = frame_groups(list(labelled.hashes), dataset_frames(engine, args.dataset))
    report = cross_validate_adaptation(
        embeddings,
        labelled.labels,
        groups,
        prior,
        zero_shot,
        folds=args.folds,
        n_boot=args.bootstrap,
        seed=args.seed,
    )

    labels_table = current_labels(engine, args.dataset)
    labelers = sorted(set(labels_table["labeler"])) if len(labels_table) else []
    adapted_spec = adapted_reward_spec(spec, report.fit)
    provenance = adaptation_provenance(
        report,
        dataset=args.dataset,
        labelers=labelers,
        hashes=list(labelled.hashes),
        labels=labelled.labels,
        started_from=start,
        starting_reward=spec,
    )
    write_reward_file(args.out, with_checkpoint_hash(ref), adapted_spec, provenance)

    print(
        f"{args.dataset}: {report.n_labels} labelled frames in {report.n_groups} groups, "
        f"{report.folds}-fold cross-validation (held-out episodes), starting from {start}"
    )
    print(f"{'reward':12s} {'EPIC':>7s} {'95% CI':>15s} {'AP':>6s} {'ROC AUC':>8s}")
    for row in report.table():
        print(
            f"{row['reward']:12s} {_fmt(row['epic_distance']):>7s} "
            f"{_fmt(row['ci_low']) + '–' + _fmt(row['ci_high']):>15s} "
            f"{_fmt(row['average_precision']):>6s} {_fmt(row['roc_auc']):>8s}"
            + (f"  ({row['note']})" if row["note"] else "")
        )
    if report.curve is not None:
        points = ", ".join(
            f"{n}: {_fmt(e)}"
            for n, e in zip(report.curve.n_labels, report.curve.adapted, strict=True)
        )
        print(f"learning curve (labels: held-out EPIC of the adapted reward): {points}")
    for note in report.notes:
        print(f"note: {note}")
    print(f"wrote the adapted reward to {args.out}", file=sys.stderr)
    if clip.untrained:
        print("vlmrm: warning: untrained (random) weights", file=sys.stderr)
    if args.json:
        print(json.dumps({**report.to_dict(), "out": str(args.out)}))
    return 0


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"
