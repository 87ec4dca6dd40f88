"""Datasets of frames: atomic, streaming ingest; listing; reading frames back; deletion.

Frames are stored once per pixel hash, as PNG files under ``settings.frames_dir``; datasets refer
to them through ``dataset_frames`` rows that carry the per-membership provenance.

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

import os
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from sqlalchemy import Engine, Select, delete, distinct, func, insert, select
from sqlalchemy.orm import Session

from vlmrm_core.frames import FrameRecord, ProgressCallback, Rejection, pixel_hash
from vlmrm_core.settings import Settings, get_settings
from vlmrm_core.store._sql import NotFoundError, chunks, insert_ignore
from vlmrm_core.store.db import session_scope, transact
from vlmrm_core.store.schema import DATASET_KINDS, Dataset, DatasetFrame, Frame, Label, utcnow

INGEST_BATCH = 32
"""Frames whose pixels are held in memory at once during an import."""

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


@dataclass
class IngestReport:
    """What an import did."""

    dataset: str
    """Name of the dataset imported into."""
    imported: int = 0
    """New frames stored (pixels not in the store before this import)."""
    duplicates: int = 0
    """Frames whose pixels were already stored, or repeated earlier in the same input."""
    added: int = 0
    """Memberships added to the dataset (see the module docstring for re-import rules)."""
    rejected: list[Rejection] = field(default_factory=list)
    """Inputs the source could not turn into frames, plus malformed FrameRecords."""


@dataclass(frozen=True)
class DatasetSummary:
    """A dataset and its counts, as listed in the app."""

    id: int
    name: str
    kind: str
    description: str
    n_frames: int
    """Memberships (the same pixels may appear at several positions)."""
    n_labelled: int
    """Distinct frames with at least one label in this dataset."""
    labels_required: int
    graded: bool
    created_at: datetime
    meta: dict[str, Any]


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


def frame_path(frame_hash: str, settings: Settings | None = None) -> Path:
    """Where the PNG of a frame lives: ``frames_dir / hash[:2] / f"{hash}.png"``.

    Args:
        frame_hash: 64-character pixel hash.
        settings: defaults to :func:`get_settings`.

    Returns:
        Absolute path (the file exists only for stored frames).
    """
    settings = settings or get_settings()
    return settings.frames_dir / _relative_path(frame_hash)


def _relative_path(frame_hash: str) -> str:
    return f"{frame_hash[:2]}/{frame_hash}.png"


def _write_png(path: Path, pixels: np.ndarray) -> None:
    # Write beside the target and rename, so a crash never leaves a truncated PNG at the final
    # path (the final name is what "this frame's file exists" means to everyone else).
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    try:
        Image.fromarray(pixels, mode="RGB").save(tmp, format="PNG", compress_level=3)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _check_pixels(record: FrameRecord) -> str | None:
    px = record.pixels
    if not isinstance(px, np.ndarray) or px.dtype != np.uint8 or px.ndim != 3 or px.shape[2] != 3:
        shape = getattr(px, "shape", None)
        dtype = getattr(px, "dtype", type(px).__name__)
        return f"not an H×W×3 uint8 RGB image (shape {shape}, dtype {dtype})"
    if px.shape[0] == 0 or px.shape[1] == 0:
        return "empty image (zero width or height)"
    return None


def _membership_key(values: Mapping[str, Any]) -> _MembershipKey:
    return tuple(values[f] for f in _KEY_FIELDS)


def _lock_dataset(session: Session, name: str) -> Dataset | None:
    # FOR UPDATE serialises imports/deletes of one dataset on PostgreSQL; SQLite ignores it and
    # relies on BEGIN IMMEDIATE instead.
    return session.scalar(select(Dataset).where(Dataset.name == name).with_for_update())


class _Importer:
    """One running import.

    Phase 1 (:meth:`read_batch`) consumes the input: it hashes frames, looks up which are stored
    already (short read transactions), writes PNG files for new ones and keeps only the rows to
    insert. Phase 2 (:meth:`commit`) inserts all rows in one short write transaction. No write lock
    is held while the input is read, so a slow source (decoding a long video, rendering a sweep)
    does not block labellers or training workers writing to the same SQLite file.
    """

    def __init__(
        self,
        engine: Engine,
        frames_dir: Path,
        report: IngestReport,
        progress: ProgressCallback | None,
    ) -> None:
        self.engine = engine
        self.frames_dir = frames_dir
        self.report = report
        self.progress = progress
        self.created_files: list[Path] = []
        self.new_frames: dict[str, dict[str, Any]] = {}
        """Frame rows to insert, by hash (pixels are not kept)."""
        self.members: list[dict[str, Any]] = []
        """Membership rows in input order, without dataset id and position yet."""
        self.done = 0

    def _tick(self, message: str) -> None:
        self.done += 1
        if self.progress is not None:
            self.progress(self.done, None, message)

    def read_batch(self, batch: Sequence[FrameRecord | Rejection]) -> None:
        hashed: list[tuple[FrameRecord, str] | Rejection] = []
        for item in batch:
            if isinstance(item, Rejection):
                hashed.append(item)
                continue
            problem = _check_pixels(item)
            if problem is not None:
                hashed.append(Rejection(name=item.name or "(unnamed frame)", reason=problem))
            else:
                hashed.append((item, pixel_hash(item.pixels)))
        wanted = {e[1] for e in hashed if isinstance(e, tuple) and e[1] not in self.new_frames}
        stored: set[str] = set()
        if wanted:
            with session_scope(self.engine) as session:
                stored = set(session.scalars(select(Frame.hash).where(Frame.hash.in_(wanted))))
        for entry in hashed:
            if isinstance(entry, Rejection):
                self.report.rejected.append(entry)
                self._tick(f"rejected {entry.name}: {entry.reason}")
                continue
            record, h = entry
            if h in stored or h in self.new_frames:
                self.report.duplicates += 1
                status = "duplicate"
            else:
                path = self.frames_dir / _relative_path(h)
                if not path.exists():
                    _write_png(path, record.pixels)
                    self.created_files.append(path)
                height, width = record.pixels.shape[:2]
                self.new_frames[h] = {
                    "hash": h,
                    "path": _relative_path(h),
                    "width": width,
                    "height": height,
                    "created_at": utcnow(),
                }
                self.report.imported += 1
                status = "new"
            self.members.append(
                {
                    "frame_hash": h,
                    "source": record.source,
                    "name": record.name,
                    "env_id": record.env_id,
                    "episode": record.episode,
                    "step": record.step,
                    "state": record.state,
                    "param_name": record.param_name,
                    "param_value": record.param_value,
                    "extra": record.extra or None,
                }
            )
            self._tick(f"{record.name or h[:12]}: {status}")

    def commit(self, dataset_name: str, kind: str, create: bool) -> int:
        """Insert the collected rows; returns the number of memberships added."""
        created = set(self.created_files)

        def body(session: Session) -> int:
            if create:
                insert_ignore(
                    session,
                    Dataset.__table__,
                    [{"name": dataset_name, "kind": kind, "meta": {}, "description": ""}],
                    ["name"],
                )
            dataset = _lock_dataset(session, dataset_name)
            if dataset is None:
                raise NotFoundError(f"no dataset named {dataset_name!r}")
            if dataset.kind != kind:
                dataset.kind = "mixed"
                session.flush()
            self._insert_frames(session, created)
            return self._insert_members(session, dataset.id)

        return transact(self.engine, body)

    def _insert_frames(self, session: Session, created: set[Path]) -> None:
        hashes = list(self.new_frames)
        for part in chunks(hashes):
            present = set(session.scalars(select(Frame.hash).where(Frame.hash.in_(part))))
            rows = [self.new_frames[h] for h in part if h not in present]
            for row in rows:
                # A file we found instead of writing belonged to another import that has not
                # committed; if that import failed and removed it, the frame must not be stored.
                path = self.frames_dir / row["path"]
                if path not in created and not path.exists():
                    raise RuntimeError(
                        f"the image file of frame {row['hash']} disappeared during the import "
                        "(a concurrent import failed); nothing was imported, please retry"
                    )
            # ON CONFLICT DO NOTHING: a concurrent import (PostgreSQL) may store the same pixels.
            insert_ignore(session, Frame.__table__, rows, ["hash"])

    def _insert_members(self, session: Session, dataset_id: int) -> int:
        max_pos = session.scalar(
            select(func.max(DatasetFrame.position)).where(DatasetFrame.dataset_id == dataset_id)
        )
        position = 0 if max_pos is None else max_pos + 1
        existing = session.execute(
            select(*(getattr(DatasetFrame, f) for f in _KEY_FIELDS)).where(
                DatasetFrame.dataset_id == dataset_id
            )
        )
        keys = {_membership_key(row._mapping) for row in existing}
        rows: list[dict[str, Any]] = []
        for member in self.members:
            key = _membership_key(member)
            if key in keys:
                continue
            keys.add(key)
            rows.append({**member, "dataset_id": dataset_id, "position": position})
            position += 1
        for part in chunks(rows):
            session.execute(insert(DatasetFrame), list(part))
        return len(rows)


def ingest_frames(
    engine: Engine,
    dataset_name: str,
    items: Iterable[FrameRecord | Rejection],
    *,
    kind: str = "upload",
    settings: Settings | None = None,
    progress: ProgressCallback | None = None,
    create: bool = True,
) -> IngestReport:
    """Store frames and add them to a dataset, all or nothing.

    The input is consumed in small batches (never more than ``INGEST_BATCH`` frames of pixels in
    memory); PNG files are written only for new hashes as the input is read, and all rows are
    inserted at the end in one transaction. If anything fails, including an exception raised by
    ``items`` itself, the files this import created are deleted and no row is written, so the
    database and the frames folder are left as they were.

    Args:
        engine: from :func:`~vlmrm_core.store.db.init_db`.
        dataset_name: dataset to add to (created if missing and ``create``).
        items: frames and rejections, typically a source generator.
        kind: kind of a newly created dataset; importing a different kind into an existing
            dataset turns it into ``'mixed'``.
        settings: where frame files go; defaults to :func:`get_settings`.
        progress: called as ``progress(done, None, message)`` after each item.
        create: if False, a missing dataset raises :class:`NotFoundError`.

    Returns:
        Counts of new frames, duplicates, added memberships, and the rejections.
    """
    if kind not in DATASET_KINDS:
        raise ValueError(f"dataset kind must be one of {DATASET_KINDS}, got {kind!r}")
    if not dataset_name.strip():
        raise ValueError("dataset name must not be empty")
    if not create:
        get_dataset(engine, dataset_name)  # fail before consuming the input
    settings = settings or get_settings()
    report = IngestReport(dataset=dataset_name)
    importer = _Importer(engine, settings.frames_dir, report, progress)
    try:
        batch: list[FrameRecord | Rejection] = []
        for item in items:
            batch.append(item)
            if len(batch) >= INGEST_BATCH:
                importer.read_batch(batch)
                batch = []
        importer.read_batch(batch)
        batch = []
        report.added = importer.commit(dataset_name, kind, create)
    except BaseException:
        for path in importer.created_files:
            path.unlink(missing_ok=True)
        raise
    return report


def _summary_query() -> Select[Any]:
    n_frames = (
        select(func.count())
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
    return select(Dataset, n_frames, n_labelled)


def _summary(row: Any) -> DatasetSummary:
    ds, n_frames, n_labelled = row
    return DatasetSummary(
        id=ds.id,
        name=ds.name,
        kind=ds.kind,
        description=ds.description,
        n_frames=int(n_frames or 0),
        n_labelled=int(n_labelled or 0),
        labels_required=ds.labels_required,
        graded=ds.graded,
        created_at=ds.created_at,
        meta=dict(ds.meta or {}),
    )


def list_datasets(engine: Engine) -> list[DatasetSummary]:
    """All datasets, oldest first, with frame and labelled-frame counts.

    Args:
        engine: store engine.

    Returns:
        One summary per dataset.
    """
    with session_scope(engine) as session:
        rows = session.execute(_summary_query().order_by(Dataset.id)).all()
        return [_summary(r) for r in rows]


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
        raise ValueError(f"labels_required must be at least 1, got {labels_required}")

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
            ds.meta = dict(meta)

    transact(engine, body)
    return get_dataset(engine, name)


def delete_dataset(engine: Engine, name: str, settings: Settings | None = None) -> int:
    """Delete a dataset, its memberships and labels, and the frames no other dataset uses.

    Frame files are removed only after the transaction commits (a failed delete keeps them).
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

    def body(session: Session) -> list[str]:
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
        orphans: list[str] = []
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
                session.execute(delete(Frame).where(Frame.hash.in_(unused)))
            orphans.extend(unused)
        session.delete(ds)
        return orphans

    orphans = transact(engine, body)
    for h in orphans:
        frame_path(h, settings).unlink(missing_ok=True)
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


def _members_query(dataset_id: int) -> Select[Any]:
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


def load_pixels(frame_hash: str, settings: Settings | None = None) -> np.ndarray:
    """Read a stored frame back.

    Args:
        frame_hash: pixel hash.
        settings: where frame files live; defaults to :func:`get_settings`.

    Returns:
        H×W×3 uint8 RGB array, identical to what was imported.
    """
    path = frame_path(frame_hash, settings)
    if not path.exists():
        raise FileNotFoundError(f"frame {frame_hash} has no image file at {path}")
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), dtype=np.uint8)


def iter_pixels(
    engine: Engine, name: str, batch_size: int = 64, settings: Settings | None = None
) -> Iterator[tuple[list[FrameInfo], list[np.ndarray]]]:
    """Stream a dataset's frames with their pixels, in position order.

    Each batch is read in its own short transaction (no read transaction is held open while the
    caller works on a batch).

    Args:
        engine: store engine.
        name: dataset name.
        batch_size: memberships per batch.
        settings: where frame files live; defaults to :func:`get_settings`.

    Yields:
        ``(infos, pixels)`` with equal lengths.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be positive")
    with session_scope(engine) as session:
        ds_id = _dataset_id(session, name)
    last = -1
    while True:
        with session_scope(engine) as session:
            query = _members_query(ds_id).where(DatasetFrame.position > last).limit(batch_size)
            infos = [frame_info_from_member(m, w, h) for m, w, h in session.execute(query)]
        if not infos:
            return
        last = infos[-1].position
        yield infos, [load_pixels(info.hash, settings) for info in infos]
