"""Human labels of frames: append-only history, current labels, queues, consensus and export.

Every labelling act is a new row; a labeler's *current* label for a frame is their latest row
(highest id, which unlike timestamps never ties). Undo deletes the latest row, so the previous
label, if any, becomes current again. Labels are per ``(dataset, frame hash)``: a frame that
appears at several positions of one dataset is labelled once.

Concurrency: each call is one short transaction (``BEGIN IMMEDIATE`` on SQLite, retried on lock
errors), so many threads or processes can label the same dataset at once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

import pandas as pd
from sqlalchemy import Engine, distinct, func, select
from sqlalchemy.orm import Session

from vlmrm_core.security import csv_safe_cell
from vlmrm_core.store._sql import InvalidInputError, NotFoundError, insert_ignore
from vlmrm_core.store.db import session_scope, transact
from vlmrm_core.store.schema import Comparison, Dataset, DatasetFrame, Label, Labeler

EXPORT_FORMATS = ("csv", "jsonl", "parquet")
"""Formats accepted by :func:`export_labels`."""

_LABEL_COLUMNS = ["frame_hash", "labeler", "value", "created_at"]


@dataclass(frozen=True)
class LabelRecord:
    """One label row."""

    id: int
    dataset: str
    frame_hash: str
    labeler: str
    value: float
    created_at: datetime


class LabelProgress(NamedTuple):
    """A labeler's progress through a dataset."""

    yours: int
    """Distinct frames you have labelled."""
    total: int
    """Distinct frames in the dataset."""
    frames_with_k: int
    """Distinct frames with at least ``labels_required`` labelers (you included)."""


def _dataset_row(session: Session, name: str) -> Any:
    row = session.execute(
        select(Dataset.id, Dataset.graded, Dataset.labels_required).where(Dataset.name == name)
    ).first()
    if row is None:
        raise NotFoundError(f"no dataset named {name!r}")
    return row


def _labeler_id(session: Session, name: str, *, create: bool) -> int | None:
    name = name.strip()
    if create:
        # Insert-or-ignore: two threads creating the same labeler must not collide.
        insert_ignore(session, Labeler.__table__, [{"name": name}], ["name"])
    return session.scalar(select(Labeler.id).where(Labeler.name == name))


MACHINE_LABELER_PREFIX = "judge:"
"""Labeller names starting with this are machine labellers (a VLM judge's answers), kept apart
from people's comparisons unless a consumer is told to include them; people may not use it
(:func:`check_person_name`)."""


def is_machine_labeler(name: str) -> bool:
    """True for a machine labeller's name (one starting with :data:`MACHINE_LABELER_PREFIX`)."""
    return str(name).strip().startswith(MACHINE_LABELER_PREFIX)


def check_person_name(name: str) -> str:
    """A person's labeller name (typed, imported or a sign-in email), stripped, refused when it
    is a machine labeller's: their answers would be hidden as a machine's.

    Raises:
        InvalidInputError: the name starts with :data:`MACHINE_LABELER_PREFIX`.
    """
    cleaned = name.strip()
    if is_machine_labeler(cleaned):
        raise InvalidInputError(
            f"{cleaned!r} starts with {MACHINE_LABELER_PREFIX!r}, which is reserved for machine "
            f"labellers: choose a name that does not start with {MACHINE_LABELER_PREFIX!r}."
        )
    return cleaned


def _check_labeler_name(name: str, *, machine: bool = False) -> str:
    """The labeller name, stripped: a person's (:func:`check_person_name`), or with ``machine``
    a machine labeller's (starting with :data:`MACHINE_LABELER_PREFIX`)."""
    cleaned = name.strip()
    if not cleaned:
        raise InvalidInputError("labeler name must not be empty")
    if not machine:
        return check_person_name(cleaned)
    if not is_machine_labeler(cleaned):
        raise InvalidInputError(
            f"{cleaned!r} is not a machine labeller's name: machine labellers' names start with "
            f"{MACHINE_LABELER_PREFIX!r}."
        )
    return cleaned


def check_members(session: Session, dataset_id: int, dataset: str, hashes: Sequence[str]) -> None:
    """Raise unless every one of ``hashes`` is a frame of the dataset.

    Raises:
        NotFoundError: the first hash that is not in the dataset.
    """
    found = set(
        session.scalars(
            select(DatasetFrame.frame_hash)
            .distinct()
            .where(DatasetFrame.dataset_id == dataset_id, DatasetFrame.frame_hash.in_(hashes))
        )
    )
    for frame_hash in hashes:
        if frame_hash not in found:
            raise NotFoundError(f"frame {frame_hash} is not in dataset {dataset!r}")


def latest_own_row(
    session: Session,
    model: type[Label] | type[Comparison],
    dataset_id: int,
    labeler_id: int,
    session_id: str | None,
) -> Any:
    """The labeller's newest row of ``model`` (labels or comparisons) in the dataset, locked.

    Undo removes it. With ``session_id`` only a row written by that labelling session counts;
    None (the CLI, a single local user) means any of the labeller's rows.
    """
    mine = (model.dataset_id == dataset_id) & (model.labeler_id == labeler_id)
    if session_id is not None:
        mine = mine & (model.session_id == session_id)
    return session.scalar(
        select(model).where(mine).order_by(model.id.desc()).limit(1).with_for_update()
    )


def first_frame_names(session: Session, dataset_id: int) -> list[tuple[str, str | None, int]]:
    """``(frame hash, name, position)`` of each frame's first membership (lowest position).

    The same pixels may appear more than once in a dataset; the first membership names them.
    """
    first = (
        select(DatasetFrame.frame_hash, func.min(DatasetFrame.position).label("position"))
        .where(DatasetFrame.dataset_id == dataset_id)
        .group_by(DatasetFrame.frame_hash)
        .subquery()
    )
    rows = session.execute(
        select(first.c.frame_hash, DatasetFrame.name, first.c.position).join(
            DatasetFrame,
            (DatasetFrame.dataset_id == dataset_id) & (DatasetFrame.position == first.c.position),
        )
    ).all()
    return [(str(h), n, int(p)) for h, n, p in rows]


def get_or_create_labeler(engine: Engine, name: str) -> int:
    """The id of the labeler called ``name``, created if needed.

    Args:
        engine: store engine.
        name: labeler name (surrounding whitespace is ignored).

    Returns:
        The labeler's id.
    """
    name = _check_labeler_name(name)

    def body(session: Session) -> int:
        labeler_id = _labeler_id(session, name, create=True)
        assert labeler_id is not None
        return labeler_id

    return transact(engine, body)


def _check_value(value: float, graded: bool) -> float:
    v = float(value)
    if not 0.0 <= v <= 1.0:  # also rejects NaN
        raise InvalidInputError(f"label value must be in [0, 1], got {value!r}")
    if not graded and v not in (0.0, 1.0):
        raise InvalidInputError(
            f"this dataset takes only 0 (failure) or 1 (success), got {value!r}; "
            "mark the dataset as graded to allow values in between"
        )
    return v


def add_label(
    engine: Engine,
    dataset: str,
    frame_hash: str,
    labeler: str,
    value: float,
    *,
    session_id: str | None = None,
    graded: bool | None = None,
) -> LabelRecord:
    """Record a label. A later label by the same labeler for the same frame supersedes it.

    Args:
        engine: store engine.
        dataset: dataset name.
        frame_hash: a frame of that dataset.
        labeler: labeler name (created if new).
        value: 1 success, 0 failure, or anything in [0, 1] for graded datasets.
        session_id: The labelling session writing it (the app's Undo removes only labels of
            its own session).
        graded: Which values are accepted (a labelling task's kind); None follows the
            dataset's own setting.

    Returns:
        The new row.
    """
    labeler = _check_labeler_name(labeler)

    def body(session: Session) -> LabelRecord:
        ds = _dataset_row(session, dataset)
        v = _check_value(value, ds.graded if graded is None else graded)
        check_members(session, ds.id, dataset, [frame_hash])
        labeler_id = _labeler_id(session, labeler, create=True)
        assert labeler_id is not None
        row = Label(
            dataset_id=ds.id,
            frame_hash=frame_hash,
            labeler_id=labeler_id,
            value=v,
            session_id=session_id,
        )
        session.add(row)
        session.flush()
        return LabelRecord(row.id, dataset, frame_hash, labeler, row.value, row.created_at)

    return transact(engine, body)


def undo_last_label(
    engine: Engine, dataset: str, labeler: str, *, session_id: str | None = None
) -> LabelRecord | None:
    """Delete the labeler's most recent label row in the dataset.

    Args:
        engine: store engine.
        dataset: dataset name.
        labeler: labeler name.
        session_id: Only a label written by this labelling session (by this labeler) is
            removed; None (the CLI, a single local user) means any of the labeler's labels.

    Returns:
        The removed row, or None if the labeler has no labels there.
    """

    def body(session: Session) -> LabelRecord | None:
        ds = _dataset_row(session, dataset)
        labeler_id = _labeler_id(session, labeler, create=False)
        if labeler_id is None:
            return None
        row = latest_own_row(session, Label, ds.id, labeler_id, session_id)
        if row is None:
            return None
        record = LabelRecord(row.id, dataset, row.frame_hash, labeler, row.value, row.created_at)
        session.delete(row)
        return record

    return transact(engine, body)


def _queue_key(dataset: str, seed: int, frame_hash: str) -> str:
    # A keyed hash per frame gives a shuffled order that is reproducible and stable: removing
    # frames (because they got labelled) never reorders the rest.
    return hashlib.sha256(f"{dataset}\x00{seed}\x00{frame_hash}".encode()).hexdigest()


def label_queue(engine: Engine, dataset: str, labeler: str, seed: int = 0) -> list[str]:
    """Frames the labeler still has to label, in a reproducible shuffled order.

    Frames the labeler has labelled are left out, and so are frames that already have current
    labels from at least ``labels_required`` other labelers.

    Args:
        engine: store engine.
        dataset: dataset name.
        labeler: labeler name (need not exist yet).
        seed: picks another shuffle; the order depends only on dataset name, seed and hash.

    Returns:
        Distinct frame hashes.
    """
    with session_scope(engine) as session:
        ds = _dataset_row(session, dataset)
        labeler_id = _labeler_id(session, labeler, create=False)
        members = set(
            session.scalars(
                select(DatasetFrame.frame_hash).distinct().where(DatasetFrame.dataset_id == ds.id)
            )
        )
        mine: set[str] = set()
        if labeler_id is not None:
            mine = set(
                session.scalars(
                    select(Label.frame_hash)
                    .distinct()
                    .where(Label.dataset_id == ds.id, Label.labeler_id == labeler_id)
                )
            )
        others = select(Label.frame_hash).where(Label.dataset_id == ds.id)
        if labeler_id is not None:
            others = others.where(Label.labeler_id != labeler_id)
        full = set(
            session.scalars(
                others.group_by(Label.frame_hash).having(
                    func.count(distinct(Label.labeler_id)) >= ds.labels_required
                )
            )
        )
    todo = members - mine - full
    return sorted(todo, key=lambda h: _queue_key(dataset, seed, h))


def _labels_frame(rows: Sequence[Any], columns: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame([tuple(r) for r in rows], columns=columns)
    frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True)
    frame["value"] = frame["value"].astype(float)
    return frame


def current_labels(engine: Engine, dataset: str) -> pd.DataFrame:
    """Each labeler's current (latest) label per frame.

    Args:
        engine: store engine.
        dataset: dataset name.

    Returns:
        DataFrame with columns frame_hash, labeler, value, created_at (UTC), sorted by frame
        hash then labeler.
    """
    with session_scope(engine) as session:
        ds = _dataset_row(session, dataset)
        latest = (
            select(func.max(Label.id))
            .where(Label.dataset_id == ds.id)
            .group_by(Label.frame_hash, Label.labeler_id)
        )
        rows = session.execute(
            select(Label.frame_hash, Labeler.name, Label.value, Label.created_at)
            .join(Labeler, Labeler.id == Label.labeler_id)
            .where(Label.id.in_(latest))
            .order_by(Label.frame_hash, Labeler.name)
        ).all()
    return _labels_frame(rows, _LABEL_COLUMNS)


def label_history(engine: Engine, dataset: str, labeler: str | None = None) -> pd.DataFrame:
    """Every label row of a dataset, superseded ones included, oldest first.

    Args:
        engine: store engine.
        dataset: dataset name.
        labeler: only this labeler's rows; None for everyone's.

    Returns:
        DataFrame with columns id, frame_hash, labeler, value, created_at (UTC).
    """
    with session_scope(engine) as session:
        ds = _dataset_row(session, dataset)
        query = (
            select(Label.id, Label.frame_hash, Labeler.name, Label.value, Label.created_at)
            .join(Labeler, Labeler.id == Label.labeler_id)
            .where(Label.dataset_id == ds.id)
            .order_by(Label.id)
        )
        if labeler is not None:
            query = query.where(Labeler.name == labeler)
        rows = session.execute(query).all()
    return _labels_frame(rows, ["id", *_LABEL_COLUMNS])


def consensus_labels(engine: Engine, dataset: str) -> pd.Series:
    """The mean of the current labels of each labelled frame.

    Args:
        engine: store engine.
        dataset: dataset name.

    Returns:
        Float Series named ``consensus`` indexed by frame hash (labelled frames only).
    """
    current = current_labels(engine, dataset)
    series = current.groupby("frame_hash")["value"].mean().astype(float)
    series.name = "consensus"
    return series


def export_labels(engine: Engine, dataset: str, path: str | Path, fmt: str = "csv") -> Path:
    """Write the current labels, with each frame's dataset name and position, to a file.

    Args:
        engine: store engine.
        dataset: dataset name.
        path: output file (its folder is created).
        fmt: ``'csv'``, ``'jsonl'`` or ``'parquet'``.

    Returns:
        The path written. Columns: dataset, frame_hash, frame_name, position, labeler, value,
        created_at (ISO 8601 UTC in CSV and JSONL).
    """
    if fmt not in EXPORT_FORMATS:
        raise InvalidInputError(f"export format must be one of {EXPORT_FORMATS}, got {fmt!r}")
    current = current_labels(engine, dataset)
    with session_scope(engine) as session:
        names = first_frame_names(session, _dataset_row(session, dataset).id)
    info = pd.DataFrame(names, columns=["frame_hash", "frame_name", "position"])
    table = current.merge(info, on="frame_hash", how="left")
    table.insert(0, "dataset", dataset)
    table = table[
        ["dataset", "frame_hash", "frame_name", "position", "labeler", "value", "created_at"]
    ]
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "parquet":
        table.to_parquet(out, index=False)
        return out
    table = table.assign(created_at=table["created_at"].map(lambda t: t.isoformat()))
    if fmt == "csv":
        # Text cells starting with = + - @ would run as spreadsheet formulas: neutralised.
        text_columns = ["dataset", "frame_name", "labeler"]
        table = table.assign(**{c: table[c].map(csv_safe_cell) for c in text_columns})
        table.to_csv(out, index=False)
    else:
        table.to_json(out, orient="records", lines=True, force_ascii=False)
    return out


def label_progress(engine: Engine, dataset: str, labeler: str) -> LabelProgress:
    """How far a labeler (and everyone) has got through a dataset.

    Args:
        engine: store engine.
        dataset: dataset name.
        labeler: labeler name (need not exist yet).

    Returns:
        ``(yours, total, frames_with_k)``.
    """
    with session_scope(engine) as session:
        ds = _dataset_row(session, dataset)
        labeler_id = _labeler_id(session, labeler, create=False)
        total = session.scalar(
            select(func.count(distinct(DatasetFrame.frame_hash))).where(
                DatasetFrame.dataset_id == ds.id
            )
        )
        yours = 0
        if labeler_id is not None:
            yours = (
                session.scalar(
                    select(func.count(distinct(Label.frame_hash))).where(
                        Label.dataset_id == ds.id, Label.labeler_id == labeler_id
                    )
                )
                or 0
            )
        per_frame = (
            select(Label.frame_hash)
            .where(Label.dataset_id == ds.id)
            .group_by(Label.frame_hash)
            .having(func.count(distinct(Label.labeler_id)) >= ds.labels_required)
            .subquery()
        )
        with_k = session.scalar(select(func.count()).select_from(per_frame))
    return LabelProgress(int(yours or 0), int(total or 0), int(with_k or 0))
