"""A training run's evaluation datasets and their labels (for the success rate over training).

Each evaluation stores its frames as a ``training-eval`` dataset named ``run-<id>-eval-<step>``
(``-<n>`` appended when a resumed run evaluates at a step again); these functions find them and
read their consensus labels, one row per labelled frame with its episode.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pandas as pd
from sqlalchemy import Engine

from vlmrm_core.store.datasets import dataset_frames, list_datasets
from vlmrm_core.store.labels import consensus_labels

__all__ = ["RunEvalDataset", "parse_eval_name", "run_eval_datasets", "run_eval_labels"]

TRAINING_EVAL_KIND = "training-eval"
_NAME = re.compile(r"^run-(?P<run>\d+)-eval-(?P<step>\d+)(?:-(?P<again>\d+))?$")


@dataclass(frozen=True)
class RunEvalDataset:
    """One evaluation of a run, as a dataset."""

    name: str
    step: int
    """Training step the evaluation ran at."""
    n_frames: int
    n_labelled: int


def parse_eval_name(name: str) -> tuple[int, int] | None:
    """``(run id, step)`` of an evaluation dataset name such as ``run-3-eval-2000`` (or None)."""
    match = _NAME.match(name)
    return None if match is None else (int(match["run"]), int(match["step"]))


def run_eval_datasets(engine: Engine, run_id: int) -> list[RunEvalDataset]:
    """The evaluation datasets of a run, by step (a repeated step: its latest dataset only).

    Args:
        engine: store engine.
        run_id: the training run.

    Returns:
        One entry per evaluation step, in step order.
    """
    latest: dict[int, tuple[int, RunEvalDataset]] = {}
    for d in list_datasets(engine):
        if str(d.kind) != TRAINING_EVAL_KIND:
            continue
        match = _NAME.match(d.name)
        if match is None or int(match["run"]) != run_id:
            continue
        step, again = int(match["step"]), int(match["again"] or 1)
        if step not in latest or latest[step][0] < again:
            latest[step] = (again, RunEvalDataset(d.name, step, d.n_frames, d.n_labelled))
    return [latest[s][1] for s in sorted(latest)]


def run_eval_labels(engine: Engine, run_id: int) -> pd.DataFrame:
    """Consensus labels of a run's evaluation frames.

    Args:
        engine: store engine.
        run_id: the training run.

    Returns:
        Columns ``dataset``, ``step``, ``frame_hash``, ``episode`` (of the frame's first
        membership; None when unknown) and ``label`` (mean of the labelers' current labels).
    """
    rows = []
    for d in run_eval_datasets(engine, run_id):
        if d.n_labelled == 0:
            continue
        consensus = consensus_labels(engine, d.name)
        episode_of: dict[str, int | None] = {}
        for frame in dataset_frames(engine, d.name):
            episode_of.setdefault(frame.hash, frame.episode)
        for frame_hash, label in consensus.items():
            key = str(frame_hash)
            rows.append((d.name, d.step, key, episode_of.get(key), float(label)))
    return pd.DataFrame(rows, columns=["dataset", "step", "frame_hash", "episode", "label"])
