"""Datasets of frames: the SQL of imports; listing; reading frames back; deletion.

Frames are stored once per pixel hash, as PNG files under ``settings.frames_dir`` or, for LeRobot
imports, as frames of a stored video (see :mod:`vlmrm_core.store.videos`); datasets refer to them
through ``dataset_frames`` rows that carry the per-membership provenance. :func:`load_pixels`,
:func:`iter_pixels`, :func:`stored_image_bytes` and :func:`frame_image_file` read both kinds. Imports (files
and the order of writes) are :mod:`vlmrm_core.store.ingest`; this module holds their SQL
(:func:`stored_frame_hashes`, :func:`add_frames_to_dataset`).

Imports commit in chunks so they never hold the write lock for long; a marker in the dataset's
``meta`` (:data:`IMPORTS_KEY`) records what each unfinished import has committed, so a failed
or killed import is undone (:func:`abandon_import`) and a dataset is not listed before its
first import is complete.

Re-import semantics:
    A *membership* is identified by the frame's pixel hash plus its provenance (source, name,
    env id, episode, step, swept parameter and value). Importing an item whose membership already
    exists in the dataset adds nothing, so re-importing the same files into the same dataset is a
    no-op reported as duplicates. The same pixels with different provenance (a rollout that shows
    identical frames at two steps, or one image uploaded under two names) get one membership each
    but share one stored frame, and therefore share their labels (labels are per frame hash).
    Importing into a different dataset adds memberships and stores no new frames.
"""

from __future__ import annotations

import contextlib
import copy
import io
import os
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import numpy as np
from PIL import Image
from sqlalchemy import (
    ColumnElement,
    Engine,
    Select,
    Table,
    delete,
    distinct,
    func,
    insert,
    or_,
    select,
)
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import flag_modified

from vlmrm_core.settings import Settings, get_settings
from vlmrm_core.store._sql import IN_CHUNK, InvalidInputError, NotFoundError, chunks, insert_ignore
from vlmrm_core.store.db import get_engine, session_scope, transact
from vlmrm_core.store.schema import DATASET_KINDS, Dataset, DatasetFrame, Frame, Label, utcnow
from vlmrm_core.store.videos import (
    VIDEO_DIR,
    StoredVideoFrame,
    VideoFrameReader,
    decode_stored_frame,
    referenced_paths,
    video_frame_locations,
)

_KEY_FIELDS = (
    "frame_hash",
    "source",
    "name",
    "env_id",
    "episode",
    "step",
    "param_name",
    "param_value",
)
"""What identifies a membership: the pixels plus their provenance (see the module docstring)."""
_MembershipKey = tuple[Any, ...]

MEMBERS_PER_COMMIT = 2000
"""Memberships an import commits per write transaction (with the frame rows they bring): small
enough that a labeller's write never waits long behind an import, large enough to stay fast."""

IMPORTS_KEY = "imports_running"
"""Key in ``datasets.meta`` marking unfinished imports (see :func:`begin_import`); not shown in
:attr:`DatasetSummary.meta` and kept by :func:`update_dataset`."""


@dataclass(frozen=True)
class DatasetSummary:
    """A dataset and its counts, as listed in the app."""

    id: int
    name: str
    kind: str
    description: str
    n_frames: int
    """Memberships (the same pixels may appear at several positions)."""
    n_images: int
    """Distinct images (pixel hashes) among the memberships: what labels are counted over."""
    n_labelled: int
    """Distinct frames with at least one label in this dataset."""
    labels_required: int
    graded: bool
    created_at: datetime
    meta: dict[str, Any]
    importing: bool = False
    """An import into it is still running (its counts are not final)."""


@dataclass(frozen=True)
class FrameInfo:
    """One membership of a frame in a dataset, with the frame's size."""

    hash: str
    position: int
    name: str | None
    source: str
    env_id: str | None
    episode: int | None
    step: int | None
    state: dict[str, Any] | None
    param_name: str | None
    param_value: float | None
    width: int
    height: int
    extra: dict[str, Any] | None = None


def frame_relative_path(frame_hash: str) -> str:
    """Where a frame's PNG lives relative to ``frames_dir``: ``hash[:2]/hash.png``."""
    return f"{frame_hash[:2]}/{frame_hash}.png"


def frame_path(frame_hash: str, settings: Settings | None = None) -> Path:
    """Where the PNG of a frame lives: ``frames_dir / hash[:2] / f"{hash}.png"``.

    Args:
        frame_hash: 64-character pixel hash.
        settings: defaults to :func:`get_settings`.

    Returns:
        Absolute path (the file exists only for stored frames).
    """
    settings = settings or get_settings()
    return settings.frames_dir / frame_relative_path(frame_hash)


def _membership_key(values: Mapping[Any, Any]) -> _MembershipKey:
    return tuple(values[f] for f in _KEY_FIELDS)


def _lock_dataset(session: Session, name: str) -> Dataset | None:
    # FOR UPDATE serialises imports/deletes of one dataset on PostgreSQL; SQLite ignores it and
    # relies on BEGIN IMMEDIATE instead.
    return session.scalar(select(Dataset).where(Dataset.name == name).with_for_update())


def stored_frame_hashes(engine: Engine, hashes: Iterable[str]) -> set[str]:
    """Which of ``hashes`` have a frames row (a short read transaction).

    Args:
        engine: store engine.
        hashes: pixel hashes.

    Returns:
        The subset that is stored.
    """
    wanted = sorted(set(hashes))
    found: set[str] = set()
    if not wanted:
        return found
    with session_scope(engine) as session:
        for part in chunks(wanted):
            found.update(session.scalars(select(Frame.hash).where(Frame.hash.in_(part))))
    return found


def iter_frame_files(engine: Engine, batch_size: int = 1000) -> Iterator[list[tuple[str, str]]]:
    """Every stored frame as ``(hash, path relative to frames_dir)``, in batches by hash."""
    last = ""
    while True:
        with session_scope(engine) as session:
            part = [
                (h, p)
                for h, p in session.execute(
                    select(Frame.hash, Frame.path)
                    .where(Frame.hash > last)
                    .order_by(Frame.hash)
                    .limit(batch_size)
                )
            ]
        if not part:
            return
        yield part
        last = part[-1][0]


def iter_frame_hashes(engine: Engine, batch_size: int = 1000) -> Iterator[list[str]]:
    """Every stored frame hash, in batches, each read in its own short transaction."""
    for part in iter_frame_files(engine, batch_size):
        yield [frame_hash for frame_hash, _ in part]


def check_dataset_kind(kind: str) -> None:
    """Raise :class:`InvalidInputError` unless ``kind`` is a dataset kind."""
    if kind not in DATASET_KINDS:
        raise InvalidInputError(f"dataset kind must be one of {DATASET_KINDS}, got {kind!r}")


def add_frames_to_dataset(
    engine: Engine,
    dataset_name: str,
    kind: str,
    frames: Sequence[Mapping[str, Any]],
    members: Sequence[Mapping[str, Any]],
    *,
    create: bool = True,
    import_id: str | None = None,
    staged: bool = False,
    on_commit: Callable[[list[str]], None] | None = None,
) -> int:
    """Insert frame rows and memberships in short transactions, all or nothing in the end.

    The SQL half of an import (:func:`vlmrm_core.store.ingest.ingest_frames` writes the files).
    Memberships are committed :data:`MEMBERS_PER_COMMIT` at a time, each chunk together with the
    rows of the frames it is the first to use, so no write lock is held for long (a labeller
    saving a label waits for one chunk at most, not for the whole import). Until the last chunk
    is committed the dataset is marked as importing (see :func:`begin_import`); if any chunk
    fails, the memberships already committed are deleted again (:func:`abandon_import`) and
    the error is re-raised. Frames already stored are skipped; memberships already in the
    dataset (same pixels and provenance, see the module docstring) are not added again.

    Args:
        engine: store engine.
        dataset_name: dataset to add to (created if missing and ``create``).
        kind: kind of a newly created dataset; a different kind turns an existing one 'mixed'.
        frames: ``frames`` rows: ``hash``, ``path``, ``width``, ``height``.
        members: membership rows in input order: ``frame_hash`` and the provenance columns.
        create: if False, a missing dataset raises :class:`NotFoundError`.
        import_id: names this import in the dataset's import marker; a new one by default.
        staged: the import has a staging folder named ``import_id`` (lets
            :func:`vlmrm_core.store.ingest.sweep_incoming` recognise a killed import).
        on_commit: called after each chunk commits with the hashes of the frame rows it
            inserted (the ingest moves their files in there, so every frame row has its file).

    Returns:
        The number of memberships added.
    """
    check_dataset_kind(kind)
    import_id = import_id or uuid.uuid4().hex
    frame_rows = {row["hash"]: row for row in frames}
    begin_import(engine, dataset_name, kind, import_id, create=create, staged=staged)
    try:
        added = 0
        for start in range(0, len(members), MEMBERS_PER_COMMIT):
            part = members[start : start + MEMBERS_PER_COMMIT]
            # Each new frame row goes with the first chunk that refers to it.
            new_rows = [
                frame_rows.pop(m["frame_hash"]) for m in part if m["frame_hash"] in frame_rows
            ]
            added += add_import_chunk(engine, dataset_name, import_id, new_rows, part)
            if on_commit is not None:
                on_commit([row["hash"] for row in new_rows])
        if frame_rows:  # frame rows no membership refers to
            rest = list(frame_rows.values())
            add_import_chunk(engine, dataset_name, import_id, rest, [])
            if on_commit is not None:
                on_commit([row["hash"] for row in rest])
        finish_import(engine, dataset_name, kind, import_id)
    except BaseException:
        with contextlib.suppress(Exception):  # the sweep retries what cannot be undone now
            abandon_import(engine, dataset_name, import_id)
        raise
    return added


def _running_imports(dataset: Dataset) -> dict[str, dict[str, Any]]:
    """A fresh copy of the dataset's import marker: import id → entry."""
    return copy.deepcopy(dict((dataset.meta or {}).get(IMPORTS_KEY) or {}))


def _set_running_imports(dataset: Dataset, imports: Mapping[str, Any]) -> None:
    meta = dict(dataset.meta or {})
    if imports:
        meta[IMPORTS_KEY] = dict(imports)
    else:
        meta.pop(IMPORTS_KEY, None)
    dataset.meta = meta
    flag_modified(dataset, "meta")


def begin_import(
    engine: Engine,
    dataset_name: str,
    kind: str,
    import_id: str,
    *,
    create: bool = True,
    staged: bool = False,
) -> None:
    """Mark a dataset as importing (creating it if missing and ``create``), in one transaction.

    The marker lives in the dataset's ``meta`` under :data:`IMPORTS_KEY` (hidden from
    :class:`DatasetSummary`) and records the positions each chunk committed, so a failed or
    killed import can be undone. A dataset this import created is left out of
    :func:`list_datasets` until the import finishes.

    Raises:
        NotFoundError: no such dataset and not ``create``.
    """
    check_dataset_kind(kind)

    def body(session: Session) -> None:
        existed = session.scalar(select(Dataset.id).where(Dataset.name == dataset_name))
        if existed is None and create:
            insert_ignore(
                session,
                Dataset.__table__,
                [{"name": dataset_name, "kind": kind, "meta": {}, "description": ""}],
                ["name"],
            )
        dataset = _lock_dataset(session, dataset_name)
        if dataset is None:
            raise NotFoundError(f"no dataset named {dataset_name!r}")
        imports = _running_imports(dataset)
        imports[import_id] = {"created": existed is None, "staged": staged, "ranges": []}
        _set_running_imports(dataset, imports)

    transact(engine, body)


def add_import_chunk(
    engine: Engine,
    dataset_name: str,
    import_id: str,
    frames: Sequence[Mapping[str, Any]],
    members: Sequence[Mapping[str, Any]],
) -> int:
    """Commit one chunk of an import begun with :func:`begin_import`, in one short transaction.

    Duplicates are looked up among the dataset's memberships of this chunk's hashes only (which
    include the chunks this import committed before), so a chunk costs the same however large
    the dataset is.

    Returns:
        Memberships added.

    Raises:
        NotFoundError: the dataset was deleted, or the import abandoned, meanwhile.
    """
    now = utcnow()

    def body(session: Session) -> int:
        dataset = _lock_dataset(session, dataset_name)
        imports = None if dataset is None else _running_imports(dataset)
        if dataset is None or imports is None or import_id not in imports:
            raise NotFoundError(
                f"dataset {dataset_name!r} was deleted while frames were imported into it"
            )
        for part in chunks(list(frames)):
            # ON CONFLICT DO NOTHING: a concurrent import may store the same pixels.
            insert_ignore(
                session, Frame.__table__, [{"created_at": now, **r} for r in part], ["hash"]
            )
        start, added = _insert_members(session, dataset.id, members)
        if added:
            imports[import_id]["ranges"].append([start, start + added])
            _set_running_imports(dataset, imports)
        return added

    return transact(engine, body)


def finish_import(engine: Engine, dataset_name: str, kind: str, import_id: str) -> None:
    """Clear this import's marker (the dataset is complete again); a new kind makes it 'mixed'.

    Raises:
        NotFoundError: the dataset was deleted, or the import abandoned, meanwhile.
    """

    def body(session: Session) -> None:
        dataset = _lock_dataset(session, dataset_name)
        imports = None if dataset is None else _running_imports(dataset)
        if dataset is None or imports is None or imports.pop(import_id, None) is None:
            raise NotFoundError(
                f"dataset {dataset_name!r} was deleted while frames were imported into it"
            )
        _set_running_imports(dataset, imports)
        if dataset.kind != kind:
            dataset.kind = "mixed"

    transact(engine, body)


def abandon_import(engine: Engine, dataset_name: str, import_id: str) -> int:
    """Undo an unfinished import: delete the memberships it committed, then its marker.

    Memberships are deleted one committed chunk per transaction (as they were added), so undoing
    a large import does not block other writers either. A dataset the import created is deleted
    when nothing else is in it. Frame rows it stored stay (with their files) until the dataset
    that uses them, if any, is deleted; they are harmless. Safe to call again after a failure.

    Returns:
        How many memberships were deleted.
    """
    removed = 0
    while True:

        def body(session: Session) -> tuple[int, bool]:
            dataset = _lock_dataset(session, dataset_name)
            imports = None if dataset is None else _running_imports(dataset)
            if dataset is None or imports is None or import_id not in imports:
                return 0, True
            entry = imports[import_id]
            if entry["ranges"]:
                first, end = entry["ranges"].pop()
                result = session.execute(
                    delete(DatasetFrame).where(
                        DatasetFrame.dataset_id == dataset.id,
                        DatasetFrame.position >= first,
                        DatasetFrame.position < end,
                    )
                )
                _set_running_imports(dataset, imports)
                return int(result.rowcount or 0), False  # type: ignore[attr-defined]
            del imports[import_id]
            _set_running_imports(dataset, imports)
            if entry.get("created") and not imports:
                in_use = session.scalar(
                    select(func.count()).where(DatasetFrame.dataset_id == dataset.id)
                ) or session.scalar(select(func.count()).where(Label.dataset_id == dataset.id))
                if not in_use:
                    session.delete(dataset)
            return 0, True

        deleted, done = transact(engine, body)
        removed += deleted
        if done:
            return removed


def running_imports(engine: Engine) -> list[tuple[str, str, dict[str, Any]]]:
    """Every unfinished import: ``(dataset name, import id, marker entry)``.

    :func:`vlmrm_core.store.ingest.sweep_incoming` undoes those whose process died.
    """
    found: list[tuple[str, str, dict[str, Any]]] = []
    with session_scope(engine) as session:
        for name, meta in session.execute(select(Dataset.name, Dataset.meta)):
            for import_id, entry in ((meta or {}).get(IMPORTS_KEY) or {}).items():
                found.append((name, import_id, dict(entry)))
    return found


def _insert_members(
    session: Session, dataset_id: int, members: Sequence[Mapping[str, Any]]
) -> tuple[int, int]:
    """Insert the memberships not in the dataset yet; returns (first position, how many)."""
    max_pos = session.scalar(
        select(func.max(DatasetFrame.position)).where(DatasetFrame.dataset_id == dataset_id)
    )
    start = 0 if max_pos is None else max_pos + 1
    keys: set[_MembershipKey] = set()
    # Existing memberships are read by hash *and* name: a sweep that meets the same pixels at
    # many values has many memberships per hash, and reading them all for every chunk made a
    # 100k-frame import of 1,000 distinct images quadratic (30 s of 38). A membership equal to
    # one of the part's has both its hash and its name among the part's.
    for part in chunks(members, IN_CHUNK // 2):
        names = {m["name"] for m in part}
        same_name: ColumnElement[bool] = DatasetFrame.name.in_(
            sorted(n for n in names if n is not None)
        )
        if None in names:
            same_name = or_(same_name, DatasetFrame.name.is_(None))
        existing = session.execute(
            select(*(getattr(DatasetFrame, f) for f in _KEY_FIELDS)).where(
                DatasetFrame.dataset_id == dataset_id,
                DatasetFrame.frame_hash.in_(sorted({m["frame_hash"] for m in part})),
                same_name,
            )
        )
        keys.update(_membership_key(row._mapping) for row in existing)
    rows: list[dict[str, Any]] = []
    for member in members:
        key = _membership_key(member)
        if key in keys:
            continue
        keys.add(key)
        rows.append({**member, "dataset_id": dataset_id, "position": start + len(rows)})
    for part in chunks(rows):
        # Core's insert, not the ORM's: no per-row bookkeeping (100k rows: 4.4 s → 2 s)
        session.execute(insert(cast(Table, DatasetFrame.__table__)), list(part))
    return start, len(rows)


def _summary_query() -> Select[Any]:
    n_frames = (
        select(func.count())
        .where(DatasetFrame.dataset_id == Dataset.id)
        .correlate(Dataset)
        .scalar_subquery()
    )
    n_images = (
        select(func.count(distinct(DatasetFrame.frame_hash)))
        .where(DatasetFrame.dataset_id == Dataset.id)
        .correlate(Dataset)
        .scalar_subquery()
    )
    n_labelled = (
        select(func.count(distinct(Label.frame_hash)))
        .where(Label.dataset_id == Dataset.id)
        .correlate(Dataset)
        .scalar_subquery()
    )
    return select(Dataset, n_frames, n_images, n_labelled)


def _summary(row: Any) -> DatasetSummary:
    ds, n_frames, n_images, n_labelled = row
    return DatasetSummary(
        id=ds.id,
        name=ds.name,
        kind=ds.kind,
        description=ds.description,
        n_frames=int(n_frames or 0),
        n_images=int(n_images or 0),
        n_labelled=int(n_labelled or 0),
        labels_required=ds.labels_required,
        graded=ds.graded,
        created_at=ds.created_at,
        meta={k: v for k, v in (ds.meta or {}).items() if k != IMPORTS_KEY},
        importing=bool((ds.meta or {}).get(IMPORTS_KEY)),
    )


def _being_created(ds: Dataset) -> bool:
    """Whether an unfinished import created this dataset (so it is not complete yet)."""
    imports = (ds.meta or {}).get(IMPORTS_KEY) or {}
    return any(entry.get("created") for entry in imports.values())


def list_datasets(engine: Engine, *, include_importing: bool = False) -> list[DatasetSummary]:
    """All datasets, oldest first, with frame and labelled-frame counts.

    A dataset whose first import is still running is left out (it would look complete with
    only part of its frames); one that already existed stays listed with ``importing`` set.

    Args:
        engine: store engine.
        include_importing: also list datasets whose first import is still running.

    Returns:
        One summary per dataset.
    """
    with session_scope(engine) as session:
        rows = session.execute(_summary_query().order_by(Dataset.id)).all()
        return [_summary(r) for r in rows if include_importing or not _being_created(r[0])]


def get_dataset(engine: Engine, name: str) -> DatasetSummary:
    """One dataset by name.

    Args:
        engine: store engine.
        name: dataset name.

    Returns:
        Its summary.

    Raises:
        NotFoundError: no such dataset.
    """
    with session_scope(engine) as session:
        row = session.execute(_summary_query().where(Dataset.name == name)).first()
        if row is None:
            raise NotFoundError(f"no dataset named {name!r}")
        return _summary(row)


def update_dataset(
    engine: Engine,
    name: str,
    *,
    description: str | None = None,
    labels_required: int | None = None,
    graded: bool | None = None,
    meta: dict[str, Any] | None = None,
) -> DatasetSummary:
    """Change a dataset's description or labelling policy (None leaves a field as it is).

    Args:
        engine: store engine.
        name: dataset name.
        description: free text.
        labels_required: k ≥ 1; frames with k current labels from others leave labelling queues.
        graded: allow label values anywhere in [0, 1] instead of only 0 and 1.
        meta: replaces the JSON metadata.

    Returns:
        The updated summary.
    """
    if labels_required is not None and labels_required < 1:
        raise InvalidInputError(f"labels_required must be at least 1, got {labels_required}")

    def body(session: Session) -> None:
        ds = _lock_dataset(session, name)
        if ds is None:
            raise NotFoundError(f"no dataset named {name!r}")
        if description is not None:
            ds.description = description
        if labels_required is not None:
            ds.labels_required = labels_required
        if graded is not None:
            ds.graded = graded
        if meta is not None:
            running = (ds.meta or {}).get(IMPORTS_KEY)  # owned by running imports: keep it
            new_meta = {k: v for k, v in meta.items() if k != IMPORTS_KEY}
            if running:
                new_meta[IMPORTS_KEY] = running
            ds.meta = new_meta

    transact(engine, body)
    return get_dataset(engine, name)


def delete_dataset(engine: Engine, name: str, settings: Settings | None = None) -> int:
    """Delete a dataset, its memberships and labels, and the frames no other dataset uses.

    Frame files are removed only after the transaction commits (a failed delete keeps them); a
    stored video goes once no frame refers to it any more (another dataset may share its frames).
    Cached embeddings stay: they are keyed by pixel hash and cheap to keep.

    Args:
        engine: store engine.
        name: dataset name.
        settings: where frame files live; defaults to :func:`get_settings`.

    Returns:
        How many frames (and files) were deleted.

    Raises:
        NotFoundError: no such dataset.
    """
    settings = settings or get_settings()

    def body(session: Session) -> list[tuple[str, str]]:
        ds = _lock_dataset(session, name)
        if ds is None:
            raise NotFoundError(f"no dataset named {name!r}")
        hashes = sorted(
            session.scalars(
                select(DatasetFrame.frame_hash).distinct().where(DatasetFrame.dataset_id == ds.id)
            ).all()
        )
        session.execute(delete(Label).where(Label.dataset_id == ds.id))
        session.execute(delete(DatasetFrame).where(DatasetFrame.dataset_id == ds.id))
        orphans: list[tuple[str, str]] = []
        for part in chunks(hashes):
            still_member = set(
                session.scalars(
                    select(DatasetFrame.frame_hash)
                    .distinct()
                    .where(DatasetFrame.frame_hash.in_(part))
                )
            )
            still_labelled = set(
                session.scalars(
                    select(Label.frame_hash).distinct().where(Label.frame_hash.in_(part))
                )
            )
            unused = [h for h in part if h not in still_member and h not in still_labelled]
            if unused:
                rows = session.execute(select(Frame.hash, Frame.path).where(Frame.hash.in_(unused)))
                orphans.extend((h, path) for h, path in rows)
                session.execute(delete(Frame).where(Frame.hash.in_(unused)))
        session.delete(ds)
        return orphans

    orphans = transact(engine, body)
    videos = set()
    for h, path in orphans:
        if _is_video_path(path):
            videos.add(path)
            materialised_png_path(h, settings).unlink(missing_ok=True)
        else:
            frame_path(h, settings).unlink(missing_ok=True)
    for path in videos - referenced_paths(engine, videos):
        (settings.frames_dir / path).unlink(missing_ok=True)
    return len(orphans)


def _dataset_id(session: Session, name: str) -> int:
    ds_id = session.scalar(select(Dataset.id).where(Dataset.name == name))
    if ds_id is None:
        raise NotFoundError(f"no dataset named {name!r}")
    return ds_id


def frame_info_from_member(member: DatasetFrame, width: int, height: int) -> FrameInfo:
    """A FrameInfo from a membership row and its frame's size."""
    return FrameInfo(
        hash=member.frame_hash,
        position=member.position,
        name=member.name,
        source=member.source,
        env_id=member.env_id,
        episode=member.episode,
        step=member.step,
        state=member.state,
        param_name=member.param_name,
        param_value=member.param_value,
        width=width,
        height=height,
        extra=member.extra,
    )


def _members_query(dataset_id: int) -> Select[DatasetFrame, int, int]:
    return (
        select(DatasetFrame, Frame.width, Frame.height)
        .join(Frame, Frame.hash == DatasetFrame.frame_hash)
        .where(DatasetFrame.dataset_id == dataset_id)
        .order_by(DatasetFrame.position)
    )


def dataset_frames(
    engine: Engine, name: str, offset: int = 0, limit: int | None = None
) -> list[FrameInfo]:
    """The frames of a dataset in order, one entry per membership.

    Args:
        engine: store engine.
        name: dataset name.
        offset: skip this many memberships (by position order).
        limit: return at most this many; None for all.

    Returns:
        Membership provenance and frame size, ordered by position.
    """
    with session_scope(engine) as session:
        query = _members_query(_dataset_id(session, name)).offset(offset)
        if limit is not None:
            query = query.limit(limit)
        return [frame_info_from_member(m, w, h) for m, w, h in session.execute(query)]


def frames_by_hash(engine: Engine, name: str, hashes: Iterable[str]) -> dict[str, FrameInfo]:
    """The first membership (lowest position) in a dataset of each of the given frames.

    :func:`dataset_frames` lists a dataset by position; the Label page needs a few frames by
    hash, which this looks up without reading the whole dataset.

    Args:
        engine: store engine.
        name: dataset name.
        hashes: frame hashes; those not in the dataset are left out of the result.

    Returns:
        Frame hash → FrameInfo.

    Raises:
        NotFoundError: no such dataset.
    """
    wanted = sorted(set(hashes))
    found: dict[str, FrameInfo] = {}
    with session_scope(engine) as session:
        ds_id = _dataset_id(session, name)
        for part in chunks(wanted):
            first = (
                select(DatasetFrame.frame_hash, func.min(DatasetFrame.position).label("position"))
                .where(DatasetFrame.dataset_id == ds_id, DatasetFrame.frame_hash.in_(part))
                .group_by(DatasetFrame.frame_hash)
                .subquery()
            )
            rows = session.execute(
                select(DatasetFrame, Frame.width, Frame.height)
                .join(
                    first,
                    (DatasetFrame.frame_hash == first.c.frame_hash)
                    & (DatasetFrame.position == first.c.position),
                )
                .join(Frame, Frame.hash == DatasetFrame.frame_hash)
                .where(DatasetFrame.dataset_id == ds_id)
            )
            for member, width, height in rows:
                found[member.frame_hash] = frame_info_from_member(member, width, height)
    return found


def count_frames(engine: Engine, name: str, *, distinct_frames: bool = False) -> int:
    """How many memberships (or distinct frames) a dataset has.

    Args:
        engine: store engine.
        name: dataset name.
        distinct_frames: count distinct pixel hashes instead of memberships.

    Returns:
        The count.
    """
    with session_scope(engine) as session:
        ds_id = _dataset_id(session, name)
        what = func.count(distinct(DatasetFrame.frame_hash)) if distinct_frames else func.count()
        return int(session.scalar(select(what).where(DatasetFrame.dataset_id == ds_id)) or 0)


MATERIALISED_DIR = ".png-of-videos"
"""Folder under ``frames_dir`` for PNGs made on demand of video-backed frames
(:func:`frame_image_file`); deleted with their frame, and swept by garbage collection."""


def _is_video_path(path: str) -> bool:
    return path.startswith(f"{VIDEO_DIR}/")


def materialised_png_path(frame_hash: str, settings: Settings | None = None) -> Path:
    """Where :func:`frame_image_file` puts the PNG of a video-backed frame."""
    settings = settings or get_settings()
    return settings.frames_dir / MATERIALISED_DIR / frame_relative_path(frame_hash)


def _video_location(
    frame_hash: str, settings: Settings, engine: Engine | None
) -> StoredVideoFrame | None:
    engine = engine or get_engine(settings.database_url)
    return video_frame_locations(engine, [frame_hash]).get(frame_hash)


def _read_png(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), dtype=np.uint8)


def _encode_png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode="RGB").save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def load_pixels(
    frame_hash: str, settings: Settings | None = None, engine: Engine | None = None
) -> np.ndarray:
    """Read a stored frame back, from its PNG or by decoding its stored video.

    Args:
        frame_hash: pixel hash.
        settings: where frame files live; defaults to :func:`get_settings`.
        engine: the store a video-backed frame is looked up in; defaults to the engine of
            ``settings.database_url``.

    Returns:
        H×W×3 uint8 RGB array, identical to what was imported.

    Raises:
        FileNotFoundError: no such frame, or its PNG is missing (a video-backed frame whose video
            is missing raises :class:`~vlmrm_core.store.videos.MissingFrameVideoError`, one).
        FramePixelsMismatchError: its video decodes to other pixels.
    """
    settings = settings or get_settings()
    path = frame_path(frame_hash, settings)
    try:
        return _read_png(path)  # the common case: no database round trip
    except FileNotFoundError:
        pass
    # Only a store that holds videos can have video-backed frames: skip the database otherwise.
    has_videos = (settings.frames_dir / VIDEO_DIR).is_dir()
    stored = _video_location(frame_hash, settings, engine) if has_videos else None
    if stored is None:
        raise FileNotFoundError(f"frame {frame_hash} has no image file at {path}")
    return decode_stored_frame(stored, settings.frames_dir)


def stored_image_bytes(
    frame_hash: str, settings: Settings | None = None, engine: Engine | None = None
) -> bytes:
    """A stored frame as image file bytes: its PNG as stored, or a PNG encoded now of a
    video-backed frame. Raises as :func:`load_pixels`."""
    settings = settings or get_settings()
    try:
        return frame_path(frame_hash, settings).read_bytes()
    except FileNotFoundError:
        pass
    return _encode_png(load_pixels(frame_hash, settings, engine))


def frame_image_file(
    frame_hash: str, settings: Settings | None = None, engine: Engine | None = None
) -> Path:
    """A PNG file of a stored frame, for tools that want a path (TRL export).

    The frame's own PNG; for a video-backed frame, a PNG made once under
    :data:`MATERIALISED_DIR` and kept until the frame is deleted. Raises as :func:`load_pixels`.
    """
    settings = settings or get_settings()
    path = frame_path(frame_hash, settings)
    if path.exists():
        return path
    target = materialised_png_path(frame_hash, settings)
    if target.exists():
        return target
    data = _encode_png(load_pixels(frame_hash, settings, engine))
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(f".{target.name}.{uuid.uuid4().hex}.part")
    part.write_bytes(data)
    os.replace(part, target)  # whole or absent, even with two writers at once
    return target


def _load_batch(
    engine: Engine, hashes: Sequence[str], settings: Settings, reader: VideoFrameReader
) -> list[np.ndarray]:
    """Pixels of a batch of frames, decoding video-backed ones per video in ``pts`` order."""
    videos = video_frame_locations(engine, hashes)
    pixels: dict[str, np.ndarray] = {}
    by_video: dict[str, list[StoredVideoFrame]] = {}
    for stored in videos.values():
        by_video.setdefault(stored.path, []).append(stored)
    for group in by_video.values():  # files in order of first use, each read forward
        group.sort(key=lambda v: v.pts)
        for stored, px in zip(group, reader.read(group), strict=True):
            pixels[stored.hash] = px
    for h in hashes:
        if h not in pixels:
            pixels[h] = load_pixels(h, settings, engine)
    return [pixels[h] for h in hashes]


def iter_pixels(
    engine: Engine, name: str, batch_size: int = 64, settings: Settings | None = None
) -> Iterator[tuple[list[FrameInfo], list[np.ndarray]]]:
    """Stream a dataset's frames with their pixels, in position order.

    Each batch is read in its own short transaction (no read transaction is held open while the
    caller works on a batch). Video-backed frames are decoded sequentially per video: a dataset
    read in order is decoded forward once, with no seeking.

    Args:
        engine: store engine.
        name: dataset name.
        batch_size: memberships per batch.
        settings: where frame files live; defaults to :func:`get_settings`.

    Yields:
        ``(infos, pixels)`` with equal lengths.
    """
    if batch_size < 1:
        raise InvalidInputError(f"batch_size must be a positive integer, got {batch_size}")
    with session_scope(engine) as session:
        ds_id = _dataset_id(session, name)
    settings = settings or get_settings()
    reader = VideoFrameReader(settings.frames_dir)
    last = -1
    try:
        while True:
            with session_scope(engine) as session:
                query = _members_query(ds_id).where(DatasetFrame.position > last).limit(batch_size)
                infos = [frame_info_from_member(m, w, h) for m, w, h in session.execute(query)]
            if not infos:
                return
            last = infos[-1].position
            yield infos, _load_batch(engine, [info.hash for info in infos], settings, reader)
    finally:
        reader.close()
