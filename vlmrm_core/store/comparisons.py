"""Pairwise comparisons of frames or clips: append-only history, current answers, undo, export.

A comparison says which of two frames of a dataset is closer to the goal: ``a`` (the first,
shown left), ``b`` (the second) or ``equal``. It may also compare two *clips*
(:class:`Clip`): k consecutive frames of one episode each (both sides of one comparison have the
same k). A clip is stored by the membership (dataset position) of its first frame and its
length; ``frame_a`` / ``frame_b`` hold the clips' first frames, and a row of two frames has
length 1 and no positions. A skipped pair is not stored (as with labels, the
labelling session moves it to the end of its queue). The rules are those of labels
(:mod:`vlmrm_core.store.labels`):

* every answer is a new row; a labeller's *current* answer about a pair is their latest row
  (highest id). The pair is unordered: asking (x, y) after (y, x) replaces the earlier answer,
  whichever side each frame was shown on. Two clips are the same item when they start at the same
  membership and have the same length;
* undo deletes the labeller's latest row (of one labelling session when given), so an earlier
  answer about that pair, if any, becomes current again; nobody else's rows are ever touched;
* each call is one short transaction (``BEGIN IMMEDIATE`` on SQLite, retried on lock errors),
  so many processes can compare at once;
* with sign-in, :func:`add_comparison_as` writes under the signed-in email only, after the
  checks of :func:`vlmrm_core.store.tasks.check_may_label` (and the task's assignment);
* a *machine* labeller (a VLM judge answering the pairwise question) is marked by its name:
  it starts with :data:`MACHINE_LABELER_PREFIX` (``judge:``, see :func:`is_machine_labeler`).
  Its rows are stored like anyone's, but the export leaves them out unless asked to
  (``include_machine``), as every consumer of comparisons does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import Engine, or_, select
from sqlalchemy.orm import Session

from vlmrm_core.security import csv_safe_cell
from vlmrm_core.store._sql import InvalidInputError, NotFoundError
from vlmrm_core.store.db import session_scope, transact
from vlmrm_core.store.labels import (
    MACHINE_LABELER_PREFIX,
    _check_labeler_name,
    _dataset_row,
    _labeler_id,
    check_members,
    first_frame_names,
    is_machine_labeler,
    latest_own_row,
)
from vlmrm_core.store.schema import Comparison, DatasetFrame, Labeler, LabellingTask

__all__ = [
    "CHOICES",
    "COMPARISON_COLUMNS",
    "MACHINE_LABELER_PREFIX",
    "Clip",
    "ComparisonRecord",
    "Item",
    "add_comparison",
    "add_comparison_as",
    "check_choice",
    "clip_frames",
    "item_keys",
    "comparison_history",
    "current_comparisons",
    "export_comparisons",
    "is_machine_labeler",
    "people_only",
    "undo_comparison_as",
    "undo_last_comparison",
]

CHOICES = ("a", "b", "equal")
"""The answers to "which frame is closer to the goal?": the first, the second, or neither."""

COMPARISON_COLUMNS = [
    "id",
    "frame_a",
    "frame_b",
    "labeler",
    "choice",
    "task",
    "created_at",
    "length",
    "position_a",
    "position_b",
]
"""Columns of :func:`comparison_history` and :func:`current_comparisons` (``length`` 1 and no
positions for two frames; for two clips, their length and first memberships)."""

EXPORT_FORMATS = ("csv", "jsonl")
"""Formats accepted by :func:`export_comparisons`."""


def people_only(table: pd.DataFrame) -> pd.DataFrame:
    """The rows of a comparisons table (with a ``labeler`` column) written by people: machine
    labellers' rows (:func:`is_machine_labeler`) left out."""
    if table.empty:
        return table
    machine = table["labeler"].map(is_machine_labeler).astype(bool)
    return table[~machine].reset_index(drop=True)


@dataclass(frozen=True, order=True)
class Clip:
    """k consecutive frames of one episode of a dataset, as one side of a comparison.

    The frames are the membership at ``position`` and the next ``length - 1`` memberships of
    its episode in step order (:func:`clip_frames`).
    """

    position: int
    """The dataset membership (``dataset_frames.position``) of the clip's first frame."""
    length: int
    """How many frames (at least 2; a single frame is compared by its hash)."""

    @property
    def key(self) -> str:
        """The clip's identity as text, e.g. ``clip:17+8`` (first membership 17, 8 frames)."""
        return f"clip:{self.position}+{self.length}"


Item = str | Clip
"""One side of a comparison: a frame (its hash) or a :class:`Clip`."""


def item_keys(table: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Each row's two sides as text keys: a frame's hash, or a clip's :attr:`Clip.key`.

    Two rows compare the same items exactly when their keys are equal, so these are what
    "the same pair" means for current answers, agreement and a session's queue.
    """
    if "length" not in table.columns:
        return table["frame_a"].astype(str), table["frame_b"].astype(str)
    clip = table["length"].fillna(1).astype("int64") > 1

    def side(frame: str, position: str) -> pd.Series:
        keys = (
            "clip:"
            + table[position].astype("Int64").astype(str)
            + "+"
            + table["length"].astype("Int64").astype(str)
        )
        return table[frame].astype(str).where(~clip, keys)

    return side("frame_a", "position_a"), side("frame_b", "position_b")


@dataclass(frozen=True)
class ComparisonRecord:
    """One comparison row."""

    id: int
    dataset: str
    frame_a: str
    frame_b: str
    labeler: str
    choice: str
    task: str | None
    created_at: datetime
    length: int = 1
    """1: two frames; k > 1: two clips of k frames starting at ``position_a`` / ``position_b``."""
    position_a: int | None = None
    position_b: int | None = None

    @property
    def items(self) -> tuple[str, str] | tuple[Clip, Clip]:
        """The two sides compared: frame hashes, or :class:`Clip` s."""
        if self.length > 1 and self.position_a is not None and self.position_b is not None:
            return Clip(self.position_a, self.length), Clip(self.position_b, self.length)
        return self.frame_a, self.frame_b


def _clip_members(session: Session, dataset_id: int, dataset: str, clip: Clip) -> list[str]:
    """The frame hashes of a clip in time order.

    Raises:
        InvalidInputError: a length under 2, a first frame in no episode, or a clip that runs
            past its episode's end.
        NotFoundError: no membership at the clip's position.
    """
    if clip.length < 2:
        raise InvalidInputError(f"a clip has at least 2 frames, got {clip.length}")
    first = session.get(DatasetFrame, (dataset_id, clip.position))
    if first is None:
        raise NotFoundError(f"dataset {dataset!r} has no frame at position {clip.position}")
    if first.episode is None or first.step is None:
        raise InvalidInputError(
            f"the frame at position {clip.position} of dataset {dataset!r} is in no episode: "
            "clips are made of an episode's frames"
        )
    later = or_(
        DatasetFrame.step > first.step,
        (DatasetFrame.step == first.step) & (DatasetFrame.position >= first.position),
    )
    hashes = list(
        session.scalars(
            select(DatasetFrame.frame_hash)
            .where(
                DatasetFrame.dataset_id == dataset_id,
                DatasetFrame.episode == first.episode,
                DatasetFrame.step.is_not(None),
                later,
            )
            .order_by(DatasetFrame.step, DatasetFrame.position)
            .limit(clip.length)
        )
    )
    if len(hashes) < clip.length:
        raise InvalidInputError(
            f"a clip of {clip.length} frames from step {first.step} runs past the end of "
            f"episode {first.episode} ({len(hashes)} frames left): start earlier or use "
            "shorter clips"
        )
    return hashes


def clip_frames(engine: Engine, dataset: str, clips: Sequence[Clip]) -> dict[Clip, list[str]]:
    """The frame hashes of each clip, in time order.

    Raises:
        InvalidInputError: see :class:`Clip` (a clip not within one episode).
        NotFoundError: no such dataset, or no membership at a clip's position.
    """
    with session_scope(engine) as session:
        ds = _dataset_row(session, dataset)
        return {clip: _clip_members(session, ds.id, dataset, clip) for clip in dict.fromkeys(clips)}


def check_choice(choice: str) -> str:
    """The answer in its stored spelling (``a``, ``b`` or ``equal``; case and spaces ignored).

    Raises:
        InvalidInputError: anything else.
    """
    cleaned = str(choice).strip().lower()
    if cleaned not in CHOICES:
        raise InvalidInputError(f"a comparison's answer must be a, b or equal, got {choice!r}")
    return cleaned


def add_comparison(
    engine: Engine,
    dataset: str,
    frame_a: Item,
    frame_b: Item,
    labeler: str,
    choice: str,
    *,
    session_id: str | None = None,
    task: str | None = None,
    machine: bool = False,
) -> ComparisonRecord:
    """Record which of two frames (or two clips) is closer to the goal. A later answer by the
    same labeller about the same (unordered) pair supersedes it.

    Args:
        engine: store engine.
        dataset: dataset name.
        frame_a: the first frame (shown left), a frame of the dataset; or the first
            :class:`Clip`.
        frame_b: the second frame (shown right), another frame of the dataset; or another clip
            of the same length.
        labeler: labeller name (created if new).
        choice: ``a``, ``b`` or ``equal``.
        session_id: the labelling session writing it (Undo removes only its own rows).
        task: the labelling task the pair was asked in (its name), if any.
        machine: ``labeler`` is a machine labeller (a judge), whose name must start with
            :data:`MACHINE_LABELER_PREFIX`; a person's name (the default) must not.

    Returns:
        The new row.

    Raises:
        InvalidInputError: an unknown answer, an empty labeller name, a person's name with the
            machine prefix (or a machine's without it), the same frame (or clip) twice, a frame
            against a clip, clips of different lengths, or a clip not within one episode.
        NotFoundError: no such dataset, task, or a frame (or clip start) not in the dataset.
    """
    labeler = _check_labeler_name(labeler, machine=machine)
    answer = check_choice(choice)
    if frame_a == frame_b:
        raise InvalidInputError("a comparison needs two different frames, got the same one twice")
    clips = isinstance(frame_a, Clip), isinstance(frame_b, Clip)
    if clips[0] != clips[1]:
        raise InvalidInputError("a comparison is of two frames or of two clips, not one of each")
    length, position_a, position_b = 1, None, None
    if isinstance(frame_a, Clip) and isinstance(frame_b, Clip):
        if frame_a.length != frame_b.length:
            raise InvalidInputError(
                f"two clips compared must have as many frames: {frame_a.length} and "
                f"{frame_b.length}"
            )
        length, position_a, position_b = frame_a.length, frame_a.position, frame_b.position

    def body(session: Session) -> ComparisonRecord:
        ds = _dataset_row(session, dataset)
        if isinstance(frame_a, Clip) and isinstance(frame_b, Clip):
            hash_a = _clip_members(session, ds.id, dataset, frame_a)[0]
            hash_b = _clip_members(session, ds.id, dataset, frame_b)[0]
        else:
            hash_a, hash_b = str(frame_a), str(frame_b)
            check_members(session, ds.id, dataset, [hash_a, hash_b])
        task_id = None
        if task is not None:
            task_id = session.scalar(select(LabellingTask.id).where(LabellingTask.name == task))
            if task_id is None:
                raise NotFoundError(f"no task named {task!r}")
        labeler_id = _labeler_id(session, labeler, create=True)
        assert labeler_id is not None
        row = Comparison(
            dataset_id=ds.id,
            frame_a=hash_a,
            frame_b=hash_b,
            labeler_id=labeler_id,
            choice=answer,
            session_id=session_id,
            task_id=task_id,
            length=length,
            position_a=position_a,
            position_b=position_b,
        )
        session.add(row)
        session.flush()
        return ComparisonRecord(
            row.id, dataset, hash_a, hash_b, labeler, answer, task, row.created_at,
            length, position_a, position_b,
        )  # fmt: skip

    return transact(engine, body)


def undo_last_comparison(
    engine: Engine, dataset: str, labeler: str, *, session_id: str | None = None
) -> ComparisonRecord | None:
    """Delete the labeller's most recent comparison in the dataset.

    Args:
        engine: store engine.
        dataset: dataset name.
        labeler: labeller name.
        session_id: only a row written by this labelling session (by this labeller) is removed;
            None (the CLI, a single local user) means any of the labeller's rows.

    Returns:
        The removed row, or None if there was nothing to undo.
    """

    def body(session: Session) -> ComparisonRecord | None:
        ds = _dataset_row(session, dataset)
        labeler_id = _labeler_id(session, labeler, create=False)
        if labeler_id is None:
            return None
        row = latest_own_row(session, Comparison, ds.id, labeler_id, session_id)
        if row is None:
            return None
        task = None
        if row.task_id is not None:
            task = session.scalar(select(LabellingTask.name).where(LabellingTask.id == row.task_id))
        record = ComparisonRecord(
            row.id,
            dataset,
            row.frame_a,
            row.frame_b,
            labeler.strip(),
            row.choice,
            task,
            row.created_at,
            row.length,
            row.position_a,
            row.position_b,
        )
        session.delete(row)
        return record

    return transact(engine, body)


def _history_rows(engine: Engine, dataset: str, labeler: str | None) -> list[Any]:
    with session_scope(engine) as session:
        ds = _dataset_row(session, dataset)
        query = (
            select(
                Comparison.id,
                Comparison.frame_a,
                Comparison.frame_b,
                Labeler.name,
                Comparison.choice,
                LabellingTask.name,
                Comparison.created_at,
                Comparison.length,
                Comparison.position_a,
                Comparison.position_b,
            )
            .join(Labeler, Labeler.id == Comparison.labeler_id)
            .outerjoin(LabellingTask, LabellingTask.id == Comparison.task_id)
            .where(Comparison.dataset_id == ds.id)
            .order_by(Comparison.id)
        )
        if labeler is not None:
            query = query.where(Labeler.name == labeler.strip())
        return list(session.execute(query).all())


def _frame(rows: Sequence[Any]) -> pd.DataFrame:
    table = pd.DataFrame([tuple(r) for r in rows], columns=COMPARISON_COLUMNS)
    table["id"] = table["id"].astype("int64")
    table["created_at"] = pd.to_datetime(table["created_at"], utc=True)
    table["length"] = table["length"].astype("int64")
    for side in ("position_a", "position_b"):
        table[side] = table[side].astype("Int64")  # None for a frame
    return table


def comparison_history(engine: Engine, dataset: str, labeler: str | None = None) -> pd.DataFrame:
    """Every comparison row of a dataset, superseded ones included, oldest first.

    Args:
        engine: store engine.
        dataset: dataset name.
        labeler: only this labeller's rows; None for everyone's.

    Returns:
        DataFrame with the columns :data:`COMPARISON_COLUMNS` (``task``: the task's name or
        None; ``created_at`` in UTC).
    """
    return _frame(_history_rows(engine, dataset, labeler))


def current_comparisons(engine: Engine, dataset: str) -> pd.DataFrame:
    """Each labeller's current (latest) answer about each pair of frames (or of clips).

    The pair is unordered: the latest row about {x, y} counts, whichever frame was shown first
    (two sides are the same when their :func:`item_keys` are). Rows keep the frames in the
    order they were shown in that latest row.

    Returns:
        DataFrame with the columns :data:`COMPARISON_COLUMNS`, oldest first.
    """
    history = comparison_history(engine, dataset)
    if history.empty:
        return history
    key_a, key_b = item_keys(history)
    keyed = history.assign(
        _low=key_a.where(key_a <= key_b, key_b), _high=key_a.where(key_a > key_b, key_b)
    )
    latest = keyed.drop_duplicates(["labeler", "_low", "_high"], keep="last")
    return latest.drop(columns=["_low", "_high"]).reset_index(drop=True)


def _frame_names(engine: Engine, dataset: str) -> dict[str, str | None]:
    """Frame hash → the name of its first membership (lowest position) in the dataset."""
    with session_scope(engine) as session:
        rows = first_frame_names(session, _dataset_row(session, dataset).id)
    return {frame_hash: name for frame_hash, name, _ in rows}


def export_comparisons(
    engine: Engine,
    dataset: str,
    path: str | Path,
    fmt: str = "csv",
    *,
    include_machine: bool = False,
) -> Path:
    """Write the current comparisons, with the frames' names, to a CSV or JSONL file.

    Args:
        engine: store engine.
        dataset: dataset name.
        path: output file (its folder is created).
        fmt: ``'csv'`` or ``'jsonl'``.
        include_machine: also write machine labellers' comparisons (default: people's only).

    Returns:
        The path written. Columns: dataset, frame_a, frame_b (hashes), name_a, name_b, labeler,
        choice, task, created_at (ISO 8601 UTC), and for clips (:data:`CLIP_EXPORT_COLUMNS`)
        length (1 for two frames), episode_a, step_a, episode_b, step_b (where each clip
        starts; empty for frames). ``vlmrm prefs import`` reads the CSV back (its frame_a,
        frame_b, choice and clip columns).
    """
    if fmt not in EXPORT_FORMATS:
        raise InvalidInputError(f"export format must be one of {EXPORT_FORMATS}, got {fmt!r}")
    table = comparison_table(engine, dataset, include_machine=include_machine)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "csv":
        # Text cells starting with = + - @ would run as spreadsheet formulas: neutralised.
        text_columns = ["dataset", "name_a", "name_b", "labeler", "task"]
        table = table.assign(**{c: table[c].map(_csv_cell) for c in text_columns})
        table.to_csv(out, index=False)
    else:
        table.to_json(out, orient="records", lines=True, force_ascii=False)
    return out


def comparison_table(
    engine: Engine, dataset: str, *, include_machine: bool = False
) -> pd.DataFrame:
    """The current comparisons as :func:`export_comparisons` writes them (timestamps as text);
    people's only unless ``include_machine``."""
    current = current_comparisons(engine, dataset)
    if not include_machine:
        current = people_only(current)
    names = _frame_names(engine, dataset)
    starts = _clip_starts(engine, dataset, current)
    table = pd.DataFrame(
        {
            "dataset": dataset,
            "frame_a": current["frame_a"],
            "frame_b": current["frame_b"],
            "name_a": current["frame_a"].map(names),
            "name_b": current["frame_b"].map(names),
            "labeler": current["labeler"],
            "choice": current["choice"],
            "task": current["task"],
            "created_at": current["created_at"].map(lambda t: t.isoformat()),
            "length": current["length"],
            **starts,
        },
        columns=[
            "dataset",
            "frame_a",
            "frame_b",
            "name_a",
            "name_b",
            "labeler",
            "choice",
            "task",
            "created_at",
            *CLIP_EXPORT_COLUMNS,
        ],
    )
    return table


CLIP_EXPORT_COLUMNS = ("length", "episode_a", "step_a", "episode_b", "step_b")
"""The export's clip columns: frames per side (1: two frames) and where each clip starts."""


def _clip_starts(engine: Engine, dataset: str, current: pd.DataFrame) -> dict[str, pd.Series]:
    """episode_a, step_a, episode_b, step_b of each row's clips (missing for frames)."""
    positions = {int(p) for side in ("position_a", "position_b") for p in current[side].dropna()}
    where: dict[int, tuple[int | None, int | None]] = {}
    if positions:
        with session_scope(engine) as session:
            ds = _dataset_row(session, dataset)
            rows = session.execute(
                select(DatasetFrame.position, DatasetFrame.episode, DatasetFrame.step).where(
                    DatasetFrame.dataset_id == ds.id, DatasetFrame.position.in_(positions)
                )
            ).all()
        where = {int(p): (e, s) for p, e, s in rows}
    out = {}
    for side in ("a", "b"):
        found = [
            where.get(int(p), (None, None)) if pd.notna(p) else (None, None)
            for p in current[f"position_{side}"]
        ]
        out[f"episode_{side}"] = pd.Series(
            [e for e, _ in found], dtype="Int64", index=current.index
        )
        out[f"step_{side}"] = pd.Series([s for _, s in found], dtype="Int64", index=current.index)
    return out


def _csv_cell(value: Any) -> Any:
    return (
        value
        if value is None or (isinstance(value, float) and pd.isna(value))
        else (csv_safe_cell(str(value)))
    )


# ----------------------------------------------------------------------------- signed in


def add_comparison_as(
    engine: Engine,
    actor: str,
    dataset: str,
    frame_a: Item,
    frame_b: Item,
    choice: str,
    *,
    session_id: str | None = None,
    task: str | None = None,
) -> ComparisonRecord:
    """Write a comparison (of two frames or two :class:`Clip` s) under the signed-in identity
    (never anyone else's name).

    With ``task``, the pair must be on the task's dataset (and among its frames when the task
    covers a subset: every frame of a clip), and a labeller must be assigned to it.

    Raises:
        AccessError: see :func:`vlmrm_core.store.tasks.check_may_label`; or a labeller not
            assigned to ``task``.
        InvalidInputError: a task on another dataset, or frames outside the task's subset.
        NotFoundError: no such task.
    """
    from vlmrm_core.store.tasks import check_may_label_task
    from vlmrm_core.store.users import check_email

    info = check_may_label_task(engine, actor, dataset, task)
    subset = None if info is None else info.frame_hashes
    shown = {frame_a, frame_b}
    if isinstance(frame_a, Clip) and isinstance(frame_b, Clip) and subset is not None:
        found = clip_frames(engine, dataset, [frame_a, frame_b])
        shown = {h for hashes in found.values() for h in hashes}
    if subset is not None and not shown <= set(subset):
        raise InvalidInputError(f"These frames are not among the frames of task {task!r}.")
    return add_comparison(
        engine,
        dataset,
        frame_a,
        frame_b,
        check_email(actor),
        choice,
        session_id=session_id,
        task=task,
    )


def undo_comparison_as(
    engine: Engine, actor: str, dataset: str, *, session_id: str
) -> ComparisonRecord | None:
    """Remove the actor's latest comparison written in ``session_id`` (nobody else's, ever).

    Raises:
        AccessError: see :func:`vlmrm_core.store.tasks.check_may_label`.
    """
    from vlmrm_core.store.tasks import check_may_label
    from vlmrm_core.store.users import check_email

    check_may_label(engine, actor, dataset)
    return undo_last_comparison(engine, dataset, check_email(actor), session_id=session_id)
