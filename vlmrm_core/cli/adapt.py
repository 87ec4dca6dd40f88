"""``vlmrm labels import`` and ``vlmrm adapt``: bring labels in, fit a reward to them.

``labels import FILE.csv`` stores one label per row (columns ``frame,label``, or the Label page's
CSV export; ``frame`` is the frame's name in the dataset, any unambiguous end of it, or its pixel
hash: see :func:`vlmrm_core.services.frame_csv.resolve_frame_names`). ``adapt`` fits the
adapted reward (:mod:`vlmrm_core.reward.adaptation`) to a dataset's consensus labels, starting from a
prompt set or prompts given here, prints the cross-validated table (zero-shot vs adapted vs
plain probe on held-out episodes) and writes the adapted reward as a reward file.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

from vlmrm_core.cli.options import (
    add_model_options,
    add_reward_options,
    bootstrap_resamples,
    model_request,
    print_overrides,
    reward_request,
)
from vlmrm_core.errors import CliError


def add_adapt_commands(sub: Any) -> None:
    """Register ``labels import`` and ``adapt`` on the ``vlmrm`` sub-parsers."""
    labels = sub.add_parser("labels", help="import human labels from a CSV file")
    lsub = labels.add_subparsers(title="labels commands", metavar="COMMAND")
    imp = lsub.add_parser(
        "import",
        help="store labels from a CSV with columns frame,label, or the Label page's export",
        description="frame: the frame's name in the dataset, or any unambiguous end of it such "
        "as the file name (or its pixel hash); label: 1 success, 0 failure (values in between "
        "for graded datasets). The Label page's CSV export is read as well, each label stored "
        "under its labeller.",
    )
    imp.add_argument("file", type=Path, metavar="FILE.csv")
    imp.add_argument("--dataset", required=True)
    imp.add_argument(
        "--labeler",
        help="whose labels these are (required for a frame,label CSV; with the Label page's "
        "export: import only this labeller's labels)",
    )
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
    add_model_options(p)
    add_reward_options(p)
    p.add_argument("--folds", type=int, default=5, help="cross-validation folds (default 5)")
    p.add_argument(
        "--bootstrap",
        type=bootstrap_resamples,
        default=1000,
        help="bootstrap resamples for CIs (0: no interval; else at least 2)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, required=True, help="reward file to write (.json)")
    p.add_argument(
        "--json",
        action="store_true",
        help="print only one JSON line of results on stdout (the table goes to stderr)",
    )
    from vlmrm_core.cli.prefs import add_preferences_option

    add_preferences_option(p)
    p.set_defaults(handler=cmd_adapt)


# --------------------------------------------------------------------------- labels import


def cmd_labels_import(args: argparse.Namespace) -> int:
    from vlmrm_core.services.frame_csv import read_label_rows, resolve_frame_names
    from vlmrm_core.store import (
        add_label,
        check_person_name,
        dataset_frames,
        get_dataset,
        init_db,
    )

    engine = init_db()
    summary = get_dataset(engine, args.dataset)  # NotFoundError names the dataset
    rows = read_label_rows(args.file)
    labeler = check_person_name(args.labeler) if args.labeler else None
    exported = any(row.labeler is not None for row in rows)
    if exported and labeler is not None:
        rows = [row for row in rows if row.labeler == labeler]
        if not rows:
            raise CliError(
                f"{args.file} has no labels by {labeler!r}; leave out --labeler to import "
                "every labeller's labels"
            )
    elif not exported and labeler is None:
        raise CliError(f"{args.file} does not say whose labels these are: add --labeler NAME")
    # Every value and name is checked before the first is stored: no half-imported file.
    for row in rows:
        if row.labeler is not None:
            check_person_name(row.labeler)
        if not 0.0 <= row.value <= 1.0 or (not summary.graded and row.value not in (0.0, 1.0)):
            allowed = "a value in [0, 1]" if summary.graded else "1 (success) or 0 (failure)"
            raise CliError(
                f"{args.file} line {row.line}: label {row.value:g} is not {allowed}"
                + ("" if summary.graded else "; mark the dataset as graded for values in between")
            )
    known: list[tuple[str, str]] = []
    for f in dataset_frames(engine, args.dataset):
        known.append((f.hash, f.hash))
        if f.name:
            known.append((f.name, f.hash))
    hashes = {h for _, h in known}
    # The export gives each frame's hash: used when the frame is in this dataset, else its name.
    by_name = [row.frame for row in rows if row.frame_hash not in hashes]
    found = resolve_frame_names(
        by_name, known, source=str(args.file), where=f"dataset {args.dataset!r}"
    )
    resolved: list[tuple[str, str, float]] = []
    for row in rows:
        frame_hash = row.frame_hash if row.frame_hash in hashes else found[row.frame]
        resolved.append((frame_hash, row.labeler or labeler or "", row.value))
    repeated = len(resolved) - len({(h, who) for h, who, _ in resolved})
    if repeated:
        raise CliError(
            f"{repeated} row(s) name a frame already named on another row (by name and by hash, "
            "or two names of the same pixels): keep one label per frame"
        )
    for frame_hash, who, value in resolved:
        add_label(engine, args.dataset, frame_hash, who, value)
    people = sorted({who for _, who, _ in resolved})
    print(f"{args.dataset}: stored {len(resolved)} labels by {', '.join(people)}")
    return 0


# --------------------------------------------------------------------------- adapt


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
    from vlmrm_core.services.reward_resolver import resolve_reward
    from vlmrm_core.store import current_labels, dataset_frames, init_db

    if getattr(args, "preferences", None) is not None:
        from vlmrm_core.cli.prefs import cmd_adapt_preferences

        return cmd_adapt_preferences(args)
    if args.folds < 2:
        raise CliError(f"--folds must be at least 2, got {args.folds}")
    engine = init_db()
    resolved = resolve_reward(reward_request(args), model_request(args), engine=engine)
    print_overrides(resolved.overrides)
    ref, spec, start = resolved.model, resolved.reward, resolved.source.description
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

    # With --json, stdout holds only the JSON line; the human-readable table goes to stderr.
    table = sys.stderr if args.json else sys.stdout
    print(
        f"{args.dataset}: {report.n_labels} labelled frames in {report.n_groups} groups, "
        f"{report.folds}-fold cross-validation (held-out episodes), starting from {start}",
        file=table,
    )
    print(f"{'reward':12s} {'EPIC':>7s} {'95% CI':>15s} {'AP':>6s} {'ROC AUC':>8s}", file=table)
    for row in report.table():
        print(
            f"{row['reward']:12s} {_fmt(row['epic_distance']):>7s} "
            f"{_fmt(row['ci_low']) + '–' + _fmt(row['ci_high']):>15s} "
            f"{_fmt(row['average_precision']):>6s} {_fmt(row['roc_auc']):>8s}"
            + (f"  ({row['note']})" if row["note"] else ""),
            file=table,
        )
    if report.curve is not None:
        points = ", ".join(
            f"{n}: {_fmt(e)}"
            for n, e in zip(report.curve.n_labels, report.curve.adapted, strict=True)
        )
        print(f"learning curve (labels: held-out EPIC of the adapted reward): {points}", file=table)
    for note in report.notes:
        print(f"note: {note}", file=table)
    print(f"wrote the adapted reward to {args.out}", file=sys.stderr)
    if clip.untrained:
        print("vlmrm: warning: untrained (random) weights", file=sys.stderr)
    if args.json:
        data = {**report.to_dict(), "out": str(args.out)}
        print(json.dumps(json_numbers(data), allow_nan=False))
    return 0


INFINITE_KEYS = ("lambda", "fold_lambdas")
"""Keys whose infinite λ the report writes as the string ``"inf"`` (JSON has no infinity)."""


def json_numbers(value: Any, key: str | None = None) -> Any:
    """``value`` with every infinite or NaN number as null, so the JSON line is standard JSON
    and a number is never a string (an infinite λ, "the prompt's direction only", is null)."""
    if isinstance(value, dict):
        return {k: json_numbers(v, k) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_numbers(v, key) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if key in INFINITE_KEYS and value == "inf":
        return None
    return value


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"
