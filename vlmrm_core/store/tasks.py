"""Labelling tasks: a dataset (or a subset of it) given to assigned labellers.

A task holds the question and instructions labellers see, the label kind (binary, graded, or
pairwise: comparisons of two frames, :mod:`vlmrm_core.store.comparisons`),
the assigned labellers (by email) and an overlap target k. Creating and changing tasks needs the
``admin`` or ``researcher`` role; a labeller only sees the tasks assigned to them.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from vlmrm_core.errors import InvalidInputError, NotFoundError
from vlmrm_core.store.db import session_scope, transact
from vlmrm_core.store.labels import (
    LabelRecord,
    add_label,
    check_person_name,
    current_labels,
    label_history,
    undo_last_label,
)
from vlmrm_core.store.schema import (
    Adjudication,
    Dataset,
    DatasetFrame,
    LabellingTask,
    TaskAssignee,
)
from vlmrm_core.store.users import (
    AccessError,
    check_email,
    get_user,
    require_researcher,
    require_role,
)

__all__ = [
    "TaskInfo",
    "adjudicated_values",
    "add_label_as",
    "assigned_datasets",
    "check_may_label",
    "check_may_label_task",
    "check_task_value",
    "check_typed_name",
    "create_task",
    "delete_dataset_as",
    "delete_task",
    "final_labels",
    "get_task",
    "label_studio_tasks",
    "labeller_stats",
    "set_adjudication",
    "task_queue",
    "list_tasks",
    "record_dataset_creator",
    "select_task_frames",
    "task_frame_count",
    "tasks_for",
    "undo_label_as",
]

MAX_OVERLAP = 100


@dataclass(frozen=True)
class TaskInfo:
    """A labelling task."""

    name: str
    dataset: str
    question: str
    instructions: str
    graded: bool
    overlap: int
    show_state: bool
    frame_hashes: tuple[str, ...] | None
    assignees: tuple[str, ...]
    created_by: str | None
    created_at: datetime
    pairwise: bool = False
    """Labellers compare pairs of the task's frames (``graded`` does not apply)."""

    @property
    def kind(self) -> str:
        """``binary``, ``graded`` or ``pairwise``, as the Tasks page lists it."""
        return "pairwise" if self.pairwise else "graded" if self.graded else "binary"

    @property
    def verified(self) -> bool:
        """Whether the task was created by a signed-in user, so its assignees are verified
        emails; a task created without sign-in (a laptop studio) names typed, unverified names."""
        return self.created_by is not None


def _info(session: Session, row: LabellingTask) -> TaskInfo:
    dataset = session.scalar(select(Dataset.name).where(Dataset.id == row.dataset_id))
    emails = session.scalars(
        select(TaskAssignee.email)
        .where(TaskAssignee.task_id == row.id)
        .order_by(TaskAssignee.email)
    ).all()
    return TaskInfo(
        name=row.name,
        dataset=str(dataset),
        question=row.question,
        instructions=row.instructions,
        graded=row.graded,
        overlap=row.overlap,
        show_state=row.show_state,
        frame_hashes=None if row.frame_hashes is None else tuple(row.frame_hashes),
        assignees=tuple(emails),
        created_by=row.created_by,
        created_at=row.created_at,
        pairwise=bool(row.pairwise),
    )


def check_typed_name(name: str) -> str:
    """A labeller name typed without sign-in, stripped.

    Typed names can't contain ``@``: sign-in names people by email, so a typed name can never
    pass for a signed-in identity.

    Raises:
        InvalidInputError: Empty, over 80 characters, control characters, an ``@``, or a
            machine labeller's prefix (:func:`~vlmrm_core.store.labels.check_person_name`).
    """
    cleaned = (name or "").strip()
    if not cleaned or len(cleaned) > 80:
        raise InvalidInputError(f"{name!r} is not a labeller name: use 1 to 80 characters.")
    if any(unicodedata.category(ch).startswith("C") for ch in cleaned):
        raise InvalidInputError(f"{name!r} contains control characters: type the name again.")
    if "@" in cleaned:
        raise InvalidInputError(
            f"{cleaned!r} looks like an email: without sign-in, assign plain names (e.g. alice); "
            "emails are for signed-in studios."
        )
    return check_person_name(cleaned)


def create_task(
    engine: Engine,
    name: str,
    dataset: str,
    question: str,
    *,
    actor: str | None,
    instructions: str = "",
    graded: bool = False,
    overlap: int = 1,
    assignees: Sequence[str] = (),
    frame_hashes: Sequence[str] | None = None,
    show_state: bool = False,
    pairwise: bool = False,
) -> TaskInfo:
    """Create a labelling task (admins and researchers only).

    A ``pairwise`` task asks its labellers which of two of its frames is closer to the goal
    (``graded`` is then ignored).

    ``actor`` None is the local user without sign-in (every role, as in
    :func:`~vlmrm_core.store.users.require_researcher`): the assignees are then typed names
    (:func:`check_typed_name`), unverified, and the task has no creator
    (:attr:`TaskInfo.verified` is False). With sign-in they are users' emails.

    Raises:
        AccessError: The actor is unknown or a labeller.
        InvalidInputError: Empty name or question, overlap out of range, frames not in the
            dataset, an assignee who is not a user (with sign-in) or a typed name that is not
            a plain name (without).
        NotFoundError: No such dataset.
    """
    require_researcher(engine, actor)
    name, question = name.strip(), question.strip()
    if not name or not question:
        raise InvalidInputError("A task needs a name and a question for the labellers.")
    if not 1 <= int(overlap) <= MAX_OVERLAP:
        raise InvalidInputError(f"Overlap k must be between 1 and {MAX_OVERLAP}, got {overlap}.")
    if actor is None:
        emails = sorted({check_typed_name(n) for n in assignees})
    else:
        emails = sorted({check_email(e) for e in assignees})
        for email in emails:
            if get_user(engine, email) is None:
                raise InvalidInputError(f"{email} is not a user yet: add them on the Admin page.")

    def body(session: Session) -> TaskInfo:
        ds_id = session.scalar(select(Dataset.id).where(Dataset.name == dataset))
        if ds_id is None:
            raise NotFoundError(f"no dataset named {dataset!r}")
        subset = None
        if frame_hashes is not None:
            subset = list(dict.fromkeys(frame_hashes))
            if not subset:
                raise InvalidInputError(
                    "The task's frame selection is empty: widen it, or give the whole dataset."
                )
            members = set(
                session.scalars(
                    select(DatasetFrame.frame_hash).where(DatasetFrame.dataset_id == ds_id)
                )
            )
            if not set(subset) <= members:
                raise InvalidInputError("Some of the task's frames are not in the dataset.")
        if session.scalar(select(LabellingTask.id).where(LabellingTask.name == name)):
            raise InvalidInputError(f"A task named {name!r} exists already: pick another name.")
        row = LabellingTask(
            name=name,
            dataset_id=ds_id,
            question=question,
            instructions=instructions.strip(),
            graded=bool(graded) and not pairwise,
            overlap=int(overlap),
            show_state=bool(show_state),
            pairwise=bool(pairwise),
            frame_hashes=subset,
            created_by=None if actor is None else check_email(actor),
        )
        session.add(row)
        session.flush()
        session.add_all(TaskAssignee(task_id=row.id, email=e) for e in emails)
        session.flush()
        return _info(session, row)

    return transact(engine, body)


def list_tasks(engine: Engine) -> list[TaskInfo]:
    """Every task, by name."""
    with session_scope(engine) as session:
        rows = session.scalars(select(LabellingTask).order_by(LabellingTask.name)).all()
        return [_info(session, r) for r in rows]


def tasks_for(engine: Engine, email: str, *, verified: bool = True) -> list[TaskInfo]:
    """The tasks assigned to ``email``, by name.

    With ``verified=False``, ``email`` is a name typed without sign-in: the tasks created
    without sign-in that assign it (never a signed-in studio's tasks).
    """
    if not verified:
        name = check_typed_name(email)
        return [t for t in list_tasks(engine) if not t.verified and name in t.assignees]
    email = check_email(email)
    return [t for t in list_tasks(engine) if email in t.assignees]


def assigned_datasets(engine: Engine, email: str) -> list[str]:
    """Names of the datasets of the tasks assigned to ``email`` (what a labeller may see)."""
    return sorted({t.dataset for t in tasks_for(engine, email)})


def delete_task(engine: Engine, name: str, *, actor: str | None) -> None:
    """Delete a task (admins and researchers; ``actor`` None: the local user without sign-in);
    its labels stay with the dataset."""
    require_researcher(engine, actor)

    def body(session: Session) -> None:
        row = session.scalar(select(LabellingTask).where(LabellingTask.name == name))
        if row is None:
            raise NotFoundError(f"no task named {name!r}")
        session.delete(row)

    transact(engine, body)


def check_may_label(engine: Engine, actor: str, dataset: str) -> None:
    """Raise unless ``actor`` may label ``dataset``.

    Admins and researchers may label any dataset; a labeller only the datasets of their tasks.

    Raises:
        AccessError: Unknown actor, or a labeller without a task on this dataset.
    """
    user = require_role(engine, actor)
    if user.role == "labeller" and dataset not in assigned_datasets(engine, user.email):
        raise AccessError(
            "This dataset is not in any of your labelling tasks; ask a researcher to assign you."
        )


def check_may_label_task(
    engine: Engine, actor: str, dataset: str, task: str | None
) -> TaskInfo | None:
    """Raise unless ``actor`` may label ``dataset`` within ``task`` (when given).

    The checks every signed-in write (a label, a comparison) makes before it writes.

    Returns:
        The task, or None without one.

    Raises:
        AccessError: See :func:`check_may_label`; or a labeller not assigned to ``task``.
        InvalidInputError: A task on another dataset.
        NotFoundError: No such task.
    """
    user = require_role(engine, actor)
    check_may_label(engine, actor, dataset)
    if task is None:
        return None
    info = get_task(engine, task)
    if info.dataset != dataset:
        raise InvalidInputError(f"Task {task!r} labels dataset {info.dataset!r}, not {dataset!r}.")
    if user.role == "labeller" and user.email not in info.assignees:
        raise AccessError(f"You are not assigned to task {task!r}; ask a researcher.")
    return info


def add_label_as(
    engine: Engine,
    actor: str,
    dataset: str,
    frame_hash: str,
    value: float,
    *,
    session_id: str | None = None,
    task: str | None = None,
) -> LabelRecord:
    """Write a label under the signed-in identity (never anyone else's name).

    With ``task``, the task's kind decides the accepted values (binary: 0 or 1; graded: any
    value in [0, 1]), whatever the dataset's own setting, and a labeller must be assigned to it.

    Raises:
        AccessError: See :func:`check_may_label`; or a labeller not assigned to ``task``.
        InvalidInputError: A value the task's kind does not accept, or a task on another dataset.
        NotFoundError: No such task.
    """
    graded = None
    info = check_may_label_task(engine, actor, dataset, task)
    if info is not None:
        check_task_value(info, value)
        graded = info.graded
    return add_label(
        engine,
        dataset,
        frame_hash,
        check_email(actor),
        value,
        session_id=session_id,
        graded=graded,
    )


def check_task_value(task: TaskInfo, value: float) -> float:
    """The label value as a float, if the task's kind accepts it.

    Raises:
        InvalidInputError: Outside [0, 1] (or NaN), or not 0 / 1 for a binary task.
    """
    v = float(value)
    if not 0.0 <= v <= 1.0:
        raise InvalidInputError(f"A label must be in [0, 1], got {value!r}.")
    if not task.graded and v not in (0.0, 1.0):
        raise InvalidInputError(
            f"Task {task.name!r} takes success (1) or failure (0) only, got {value!r}; "
            "a researcher can create a graded task for values in between."
        )
    return v


def undo_label_as(
    engine: Engine, actor: str, dataset: str, *, session_id: str
) -> LabelRecord | None:
    """Remove the actor's latest label written in ``session_id`` (nobody else's, ever).

    Raises:
        AccessError: See :func:`check_may_label`.
    """
    check_may_label(engine, actor, dataset)
    return undo_last_label(engine, dataset, check_email(actor), session_id=session_id)


def record_dataset_creator(engine: Engine, dataset: str, email: str | None) -> None:
    """Note who created ``dataset`` (kept when already set; nothing without sign-in)."""
    if email is None:
        return
    email = check_email(email)

    def body(session: Session) -> None:
        row = session.scalar(select(Dataset).where(Dataset.name == dataset))
        if row is not None and row.created_by is None:
            row.created_by = email

    transact(engine, body)


def delete_dataset_as(engine: Engine, actor: str | None, dataset: str) -> int:
    """Delete a dataset; with sign-in (``actor`` set) only an admin may.

    Returns:
        What :func:`vlmrm_core.store.delete_dataset` returns (frames removed).

    Raises:
        AccessError: A signed-in actor who is not an admin.
    """
    from vlmrm_core.store.datasets import delete_dataset

    if actor is not None:
        require_role(engine, actor, "admin")
    return delete_dataset(engine, dataset)


# ----------------------------------------------------------------------------- queues


def get_task(engine: Engine, name: str) -> TaskInfo:
    """One task by name.

    Raises:
        NotFoundError: No such task.
    """
    with session_scope(engine) as session:
        row = session.scalar(select(LabellingTask).where(LabellingTask.name == name))
        if row is None:
            raise NotFoundError(f"no task named {name!r}")
        return _info(session, row)


def _task_frames(engine: Engine, task: TaskInfo) -> list[str]:
    with session_scope(engine) as session:
        ds_id = session.scalar(select(Dataset.id).where(Dataset.name == task.dataset))
        hashes = session.scalars(
            select(DatasetFrame.frame_hash)
            .where(DatasetFrame.dataset_id == ds_id)
            .order_by(DatasetFrame.position)
        ).all()
    hashes = list(dict.fromkeys(hashes))
    if task.frame_hashes is not None:
        wanted = set(task.frame_hashes)
        hashes = [h for h in hashes if h in wanted]
    return hashes


def task_frame_count(engine: Engine, task_name: str) -> int:
    """How many distinct frames (images) the task covers."""
    return len(_task_frames(engine, get_task(engine, task_name)))


def select_task_frames(
    engine: Engine,
    dataset: str,
    *,
    positions: tuple[int, int] | None = None,
    param_range: tuple[float, float] | None = None,
    unlabelled_only: bool = False,
) -> list[str]:
    """The frames of ``dataset`` a task should cover, in dataset order (distinct hashes).

    Every given condition must hold (a frame stored under several positions counts when one
    of its memberships matches):

    Args:
        engine: Store engine.
        dataset: Dataset name.
        positions: ``(first, last)`` positions in the dataset, both included.
        param_range: ``(low, high)`` of the sweep parameter, both included; frames without a
            sweep parameter are left out.
        unlabelled_only: Only frames nobody has labelled yet.

    Raises:
        NotFoundError: No such dataset.
        InvalidInputError: A range whose start is after its end.
    """
    from vlmrm_core.store.datasets import dataset_frames

    for bounds, what in ((positions, "frame range"), (param_range, "parameter range")):
        if bounds is not None and bounds[0] > bounds[1]:
            raise InvalidInputError(
                f"The {what} starts after it ends ({bounds[0]} > {bounds[1]}): swap them."
            )
    labelled: set[str] = set()
    if unlabelled_only:
        labelled = set(current_labels(engine, dataset)["frame_hash"])
    chosen: list[str] = []
    for frame in dataset_frames(engine, dataset):
        if positions is not None and not positions[0] <= frame.position <= positions[1]:
            continue
        if param_range is not None and (
            frame.param_value is None or not param_range[0] <= frame.param_value <= param_range[1]
        ):
            continue
        if frame.hash in labelled:
            continue
        chosen.append(frame.hash)
    return list(dict.fromkeys(chosen))


def task_queue(engine: Engine, task_name: str, labeler: str, seed: int = 0) -> list[str]:
    """The frames of a task left for ``labeler``, next first.

    A frame leaves every queue once it has ``overlap`` (k) current labels, and the labeller's own
    labelled frames are left out. With k ≥ 2, frames others already labelled come first (most
    labels first), so agreement builds up early; ties are shuffled with ``seed``.
    """
    import numpy as np

    task = get_task(engine, task_name)
    frames = _task_frames(engine, task)
    current = current_labels(engine, task.dataset)
    counts = current.groupby("frame_hash")["labeler"].nunique().to_dict()
    mine = set(current.loc[current["labeler"] == labeler, "frame_hash"])
    left = [h for h in frames if h not in mine and counts.get(h, 0) < task.overlap]
    order = np.random.default_rng(seed).permutation(len(left))
    shuffled = [left[i] for i in order]
    if task.overlap >= 2:
        shuffled.sort(key=lambda h: -counts.get(h, 0))  # stable: keeps the shuffle within ties
    return shuffled


# ----------------------------------------------------------------------------- review


def set_adjudication(
    engine: Engine, dataset: str, frame_hash: str, value: float, *, actor: str | None
) -> None:
    """Record the final label of a frame (admins and researchers; ``actor`` None: the local
    user without sign-in); replaces an earlier one.

    The raw labels stay untouched: the adjudicated value is kept apart.

    Raises:
        AccessError: The actor is unknown or a labeller.
        InvalidInputError: A value outside [0, 1].
        NotFoundError: No such dataset or frame in it.
    """
    require_researcher(engine, actor)
    adjudicator = None if actor is None else check_email(actor)
    v = float(value)
    if not 0.0 <= v <= 1.0:
        raise InvalidInputError(f"an adjudicated label must be in [0, 1], got {value!r}")

    def body(session: Session) -> None:
        ds_id = session.scalar(select(Dataset.id).where(Dataset.name == dataset))
        if ds_id is None:
            raise NotFoundError(f"no dataset named {dataset!r}")
        member = session.scalar(
            select(DatasetFrame.position)
            .where(DatasetFrame.dataset_id == ds_id, DatasetFrame.frame_hash == frame_hash)
            .limit(1)
        )
        if member is None:
            raise NotFoundError(f"frame {frame_hash} is not in dataset {dataset!r}")
        row = session.get(Adjudication, (ds_id, frame_hash))
        if row is None:
            session.add(
                Adjudication(
                    dataset_id=ds_id, frame_hash=frame_hash, value=v, adjudicator=adjudicator
                )
            )
        else:
            row.value, row.adjudicator = v, adjudicator

    transact(engine, body)


def final_labels(engine: Engine, dataset: str) -> pd.DataFrame:
    """One label per labelled frame: the adjudicated one where there is one, else the majority.

    The majority of binary labels is the most frequent value (a tie gives 0.5); graded labels
    take the median.

    Returns:
        DataFrame with columns frame_hash, value, source (``'adjudicated'`` or ``'majority'``),
        n_labels, sorted by frame hash.
    """
    current = current_labels(engine, dataset)
    rows: dict[str, tuple[float, str, int]] = {}
    for frame_hash, group in current.groupby("frame_hash"):
        values = group["value"].to_numpy(dtype=float)
        rows[str(frame_hash)] = (float(pd.Series(values).median()), "majority", len(values))
    with session_scope(engine) as session:
        ds_id = session.scalar(select(Dataset.id).where(Dataset.name == dataset))
        adjudicated = session.execute(
            select(Adjudication.frame_hash, Adjudication.value).where(
                Adjudication.dataset_id == ds_id
            )
        ).all()
    for frame_hash, value in adjudicated:
        n = rows.get(frame_hash, (0.0, "", 0))[2]
        rows[frame_hash] = (float(value), "adjudicated", n)
    table = pd.DataFrame(
        [(h, v, s, n) for h, (v, s, n) in sorted(rows.items())],
        columns=["frame_hash", "value", "source", "n_labels"],
    )
    return table


def labeller_stats(engine: Engine, dataset: str, max_gap_s: float = 600.0) -> pd.DataFrame:
    """Per labeller: labels, median seconds per label and agreement with the final labels.

    Seconds per label are the gaps between a labeller's consecutive labels, gaps over
    ``max_gap_s`` (breaks) left out. Agreement is the share of their labels on the same side of
    0.5 as the frame's final label (:func:`final_labels`), counted only on frames whose final
    label others had a say in: frames with labels from two or more labellers, or adjudicated
    ones. A frame's own single label trivially equals its final label, so it would only inflate
    the share; an unresolved tie (final label 0.5) counts as a disagreement for everyone on it,
    so two labellers who disagree on a frame never both show full agreement.

    Returns:
        DataFrame with columns labeler, labels, median_seconds, compared (frames the agreement
        counts) and agreement (NaN when ``compared`` is 0).
    """
    import numpy as np

    history = label_history(engine, dataset)
    current = current_labels(engine, dataset)
    final = final_labels(engine, dataset).set_index("frame_hash")
    out = []
    for labeler, group in current.groupby("labeler"):
        times = history.loc[history["labeler"] == labeler, "created_at"].sort_values()
        gaps = times.diff().dt.total_seconds().dropna().to_numpy()
        gaps = gaps[gaps <= max_gap_s]
        matched = []
        for frame_hash, value in zip(group["frame_hash"], group["value"], strict=True):
            if frame_hash not in final.index:
                continue
            row = final.loc[frame_hash]
            if row["source"] != "adjudicated" and row["n_labels"] < 2:
                continue  # only this labeller's label: nothing to agree with
            final_value = float(row["value"])
            matched.append(final_value != 0.5 and (value >= 0.5) == (final_value >= 0.5))
        out.append(
            (
                str(labeler),
                len(group),
                float(np.median(gaps)) if len(gaps) else float("nan"),
                len(matched),
                float(np.mean(matched)) if matched else float("nan"),
            )
        )
    return pd.DataFrame(
        out, columns=["labeler", "labels", "median_seconds", "compared", "agreement"]
    )


def label_studio_tasks(engine: Engine, dataset: str) -> list[dict[str, Any]]:
    """The dataset's current labels in Label Studio's JSON import format.

    One task per labelled frame (``data.image`` is the frame's file name under the frames
    folder); one annotation per labeller, a ``choices`` result (Success / Failure) for binary
    labels or a ``number`` result for graded ones.
    """
    current = current_labels(engine, dataset)
    with session_scope(engine) as session:
        ds = session.scalar(select(Dataset).where(Dataset.name == dataset))
        if ds is None:
            raise NotFoundError(f"no dataset named {dataset!r}")
        graded = ds.graded
        names = dict(
            session.execute(
                select(DatasetFrame.frame_hash, DatasetFrame.name).where(
                    DatasetFrame.dataset_id == ds.id
                )
            ).all()
        )
    tasks = []
    for i, (frame_hash, group) in enumerate(current.groupby("frame_hash"), start=1):
        annotations = []
        for labeler, value, created in zip(
            group["labeler"], group["value"], group["created_at"], strict=True
        ):
            if graded or float(value) not in (0.0, 1.0):  # a graded task on a binary dataset
                result = {"type": "number", "value": {"number": float(value)}}
            else:
                choice = "Success" if float(value) >= 0.5 else "Failure"
                result = {"type": "choices", "value": {"choices": [choice]}}
            result.update({"from_name": "label", "to_name": "image"})
            annotations.append(
                {
                    "completed_by": {"email": str(labeler)},
                    "created_at": pd.Timestamp(created).isoformat(),
                    "result": [result],
                }
            )
        tasks.append(
            {
                "id": i,
                "data": {
                    "image": f"{frame_hash}.png",
                    "frame_hash": str(frame_hash),
                    "frame_name": names.get(str(frame_hash)),
                    "dataset": dataset,
                },
                "annotations": annotations,
            }
        )
    return tasks


def adjudicated_values(engine: Engine, dataset: str) -> dict[str, float]:
    """Frame hash -> adjudicated label of the dataset's adjudicated frames."""
    with session_scope(engine) as session:
        ds_id = session.scalar(select(Dataset.id).where(Dataset.name == dataset))
        rows = session.execute(
            select(Adjudication.frame_hash, Adjudication.value).where(
                Adjudication.dataset_id == ds_id
            )
        ).all()
    return {str(h): float(v) for h, v in rows}
