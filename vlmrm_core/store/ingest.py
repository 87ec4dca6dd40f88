"""Storing frames: from a stream of FrameRecords to PNG files and database rows, all or nothing.

An import reads its input in small batches, hashes each frame and writes the PNG of every frame
not stored yet into its own folder of a temporary area (``frames_dir/.incoming/<import>/``),
then inserts the rows in chunks of short transactions
(:func:`~vlmrm_core.store.datasets.add_frames_to_dataset`), and after each commit moves that
chunk's files to their final names (atomic renames on the same file system). So the frames
folder and the database keep one invariant: every frames row has its file and every file a row.

- An import that fails deletes the memberships it committed (the dataset is marked as importing
  until the end, so the partial state is never taken for a complete dataset) and removes its
  temporary folder. Frame rows it committed stay, with their files: harmless.
- An import killed outright (SIGKILL, power loss) leaves its temporary folder and its import
  marker behind. Each import holds an exclusive lock on a file in its folder for as long as it
  runs; the lock goes with the process, however it ends. :func:`sweep_incoming` (run at the
  start of every import, and by ``vlmrm frames gc``) finishes what a dead import left: its
  memberships are deleted, files whose rows were committed are moved in, the rest deleted.
- :func:`collect_garbage` also removes frame files that have no row (left by older versions)
  and reports rows whose file is missing.

Frames from a source that sets :attr:`FrameRecord.video <vlmrm_core.frames.FrameRecord.video>`
(LeRobot) are stored by reference instead (see :mod:`vlmrm_core.store.videos`): the first new
frame of a video stages a copy of the whole file (``<sha256>.mp4``, hashed while copied), the
frame rows name ``videos/<sha256>.mp4`` and their ``pts``, and the video moves in with the first
chunk whose rows refer to it, under the same rules as PNGs; frames already stored (as PNG or as
video) are duplicates as before.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from sqlalchemy import Engine

from vlmrm_core.errors import InvalidInputError
from vlmrm_core.frames import FrameRecord, ProgressCallback, Rejection, pixel_hash
from vlmrm_core.settings import Settings, get_settings
from vlmrm_core.store.datasets import (
    MATERIALISED_DIR,
    abandon_import,
    add_frames_to_dataset,
    check_dataset_kind,
    frame_relative_path,
    get_dataset,
    iter_frame_files,
    running_imports,
    stored_frame_hashes,
)
from vlmrm_core.store.videos import (
    VIDEO_DIR,
    copy_video_hashed,
    referenced_paths,
    video_relative_path,
)

__all__ = [
    "INCOMING_DIR",
    "INGEST_BATCH",
    "GarbageReport",
    "IngestReport",
    "collect_garbage",
    "ingest_frames",
    "sweep_incoming",
]

INGEST_BATCH = 32
"""Frames per batch of an import; two batches of pixels are held in memory at once (one being
hashed while the source produces the next)."""

INCOMING_DIR = ".incoming"
"""Temporary area under ``frames_dir`` where imports write files before their commit."""

_HASH_THREADS = max(1, min(4, os.cpu_count() or 1))
"""Threads hashing a batch's frames at once."""

_LOCK_NAME = ".lock"
_UNLOCKED_GRACE_S = 60.0
"""A folder without a lock file is an import that died before taking its lock, or one taking it
right now; it is swept only once it is older than this."""


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
    """Memberships added to the dataset (see :mod:`vlmrm_core.store.datasets` on re-imports)."""
    rejected: list[Rejection] = field(default_factory=list)
    """Inputs the source could not turn into frames, plus malformed FrameRecords."""


@dataclass
class GarbageReport:
    """What :func:`sweep_incoming` or :func:`collect_garbage` did."""

    moved_in: int = 0
    """Files of committed frames a killed import had not moved yet, now in place."""
    removed_incoming: int = 0
    """Files of uncommitted imports deleted from the temporary area."""
    removed_orphans: int = 0
    """Frame files without a frames row, deleted."""
    missing_files: list[str] = field(default_factory=list)
    """Hashes of frames rows whose file is missing (cannot be repaired without the pixels)."""
    abandoned_memberships: int = 0
    """Memberships committed by killed imports, deleted again."""


def _check_pixels(record: FrameRecord) -> str | None:
    px = record.pixels
    if not isinstance(px, np.ndarray) or px.dtype != np.uint8 or px.ndim != 3 or px.shape[2] != 3:
        shape = getattr(px, "shape", None)
        dtype = getattr(px, "dtype", type(px).__name__)
        return f"not an H×W×3 uint8 RGB image (shape {shape}, dtype {dtype})"
    if px.shape[0] == 0 or px.shape[1] == 0:
        return "empty image (zero width or height)"
    return None


class _Staging:
    """One import's folder in the temporary area, locked for the life of the import."""

    def __init__(self, frames_dir: Path) -> None:
        self.frames_dir = frames_dir
        self.folder = frames_dir / INCOMING_DIR / f"{os.getpid()}-{uuid.uuid4().hex}"
        self.folder.mkdir(parents=True)
        self._lock = os.open(self.folder / _LOCK_NAME, os.O_CREAT | os.O_RDWR, 0o600)
        fcntl.flock(self._lock, fcntl.LOCK_EX)
        self.files: dict[str, Path] = {}
        """Staged PNG by frame hash."""
        self.committed: set[str] = set()
        """Staged frames whose rows are committed but whose file could not be moved in."""
        self.video_of: dict[str, str] = {}
        """Video-backed new frames: frame hash → SHA-256 of their video."""
        self.videos: dict[str, Path] = {}
        """Staged videos not moved in yet, by SHA-256."""
        self._video_sha: dict[Path, str] = {}
        """Source video files staged by this import → their SHA-256."""

    def write(self, frame_hash: str, pixels: np.ndarray) -> None:
        # Written under a name the sweep ignores, then renamed: a staged ``.png`` is complete.
        path = self.folder / f"{frame_hash}.png"
        part = self.folder / f".{frame_hash}.part"
        Image.fromarray(pixels, mode="RGB").save(part, format="PNG", compress_level=3)
        os.replace(part, path)
        self.files[frame_hash] = path

    def stage_video(self, source: Path) -> str:
        """Stage a copy of a source video (once per file); returns its SHA-256."""
        sha = self._video_sha.get(source)
        if sha is None:
            sha, staged = copy_video_hashed(source, self.folder)
            self._video_sha[source] = sha
            self.videos[sha] = staged
        return sha

    @property
    def import_id(self) -> str:
        """The import's name in the dataset's import marker: its folder's name."""
        return self.folder.name

    def move_in(self, hashes: Iterable[str]) -> None:
        """Move the staged files of these frames to their final names (after their rows were
        committed)."""
        for frame_hash in hashes:
            self.committed.add(frame_hash)
            sha = self.video_of.get(frame_hash)
            if sha is None:
                final = self.frames_dir / frame_relative_path(frame_hash)
                final.parent.mkdir(parents=True, exist_ok=True)
                os.replace(self.files[frame_hash], final)
                del self.files[frame_hash]
            elif sha in self.videos:  # the first committed frame of this video
                final = self.frames_dir / video_relative_path(sha)
                final.parent.mkdir(parents=True, exist_ok=True)
                # Replaces an identical copy if one is there: content-addressed.
                os.replace(self.videos[sha], final)
                del self.videos[sha]
            self.committed.discard(frame_hash)

    def close(self) -> None:
        """Remove the folder (unless files of committed rows are still in it) and unlock.

        Files of committed rows left by a failed move are kept for :func:`sweep_incoming`, which
        moves them in: deleting them would leave rows without files.
        """
        if not self.committed:
            shutil.rmtree(self.folder, ignore_errors=True)
        os.close(self._lock)


class _Importer:
    """One running import.

    Phase 1 (:meth:`read_batch`) consumes the input: it hashes frames, looks up which are stored
    already (short read transactions), stages PNG files for new ones and keeps only the rows to
    insert. Phase 2 commits the rows in chunks of short write transactions. No write lock is held
    while the input is read, so a slow source (decoding a long video, rendering a sweep) does not block
    labellers or training workers writing to the same database.
    """

    def __init__(
        self,
        engine: Engine,
        staging: _Staging,
        report: IngestReport,
        progress: ProgressCallback | None,
        hasher: ThreadPoolExecutor,
    ) -> None:
        self.engine = engine
        self.hasher = hasher
        self.staging = staging
        self.report = report
        self.progress = progress
        self.new_frames: dict[str, dict[str, Any]] = {}
        """Frame rows to insert, by hash (pixels are not kept)."""
        self.members: list[dict[str, Any]] = []
        """Membership rows in input order, without dataset id and position yet."""
        self.done = 0

    def _tick(self, message: str) -> None:
        self.done += 1
        if self.progress is not None:
            self.progress(self.done, None, message)

    def start_hashing(self, batch: Sequence[FrameRecord | Rejection]) -> list[Future[str]]:
        """Hash a batch's valid frames in the background (SHA-256 releases the GIL on large
        buffers, so this overlaps with the source decoding the next batch)."""
        return [
            self.hasher.submit(pixel_hash, item.pixels)
            for item in batch
            if not isinstance(item, Rejection) and _check_pixels(item) is None
        ]

    def read_batch(
        self, batch: Sequence[FrameRecord | Rejection], hashing: list[Future[str]]
    ) -> None:
        hashed: list[tuple[FrameRecord, str] | Rejection] = []
        hashes = (future.result() for future in hashing)
        for item in batch:
            if isinstance(item, Rejection):
                hashed.append(item)
                continue
            problem = _check_pixels(item)
            if problem is not None:
                hashed.append(Rejection(name=item.name or "(unnamed frame)", reason=problem))
            else:
                hashed.append((item, next(hashes)))
        wanted = {e[1] for e in hashed if isinstance(e, tuple) and e[1] not in self.new_frames}
        stored = stored_frame_hashes(self.engine, wanted)
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
                height, width = record.pixels.shape[:2]
                if record.video is None:
                    self.staging.write(h, record.pixels)
                    path, pts = frame_relative_path(h), None
                else:
                    sha = self.staging.stage_video(record.video.path)
                    self.staging.video_of[h] = sha
                    path, pts = video_relative_path(sha), record.video.pts
                self.new_frames[h] = {
                    "hash": h,
                    "path": path,
                    "width": width,
                    "height": height,
                    "video_pts": pts,
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

    The input is consumed in small batches (never more than two batches of :data:`INGEST_BATCH` frames of
    pixels in memory); PNG files (or, for frames that name their video, a copy of the video) are
    staged only for new hashes as the input is read; the rows
    are inserted at the end in chunks of short transactions, each chunk's files moving to their
    final names after it commits. If anything fails, including an exception raised by ``items``
    itself, the memberships committed so far are deleted and the staged files removed; if the
    process is killed, the next import (or ``vlmrm frames gc``) does so (see the module
    docstring).

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
    check_dataset_kind(kind)
    if not dataset_name.strip():
        raise InvalidInputError("dataset name must not be empty")
    if not create:
        get_dataset(engine, dataset_name)  # fail before consuming the input
    settings = settings or get_settings()
    sweep_incoming(engine, settings)
    report = IngestReport(dataset=dataset_name)
    staging = _Staging(settings.frames_dir)
    hasher = ThreadPoolExecutor(max_workers=_HASH_THREADS, thread_name_prefix="ingest-hash")
    try:
        importer = _Importer(engine, staging, report, progress, hasher)
        batch: list[FrameRecord | Rejection] = []
        previous: tuple[list[FrameRecord | Rejection], list[Future[str]]] | None = None
        for item in items:
            batch.append(item)
            if len(batch) >= INGEST_BATCH:
                if previous is not None:
                    importer.read_batch(*previous)
                previous = (batch, importer.start_hashing(batch))
                batch = []
        if previous is not None:
            importer.read_batch(*previous)
        importer.read_batch(batch, importer.start_hashing(batch))
        batch = []
        previous = None
        report.added = add_frames_to_dataset(
            engine,
            dataset_name,
            kind,
            list(importer.new_frames.values()),
            importer.members,
            create=create,
            import_id=staging.import_id,
            staged=True,
            on_commit=staging.move_in,
        )
    finally:
        hasher.shutdown(wait=True)
        staging.close()
    return report


def _locked_by_a_live_import(folder: Path) -> bool:
    lock = folder / _LOCK_NAME
    try:
        fd = os.open(lock, os.O_RDWR)
    except FileNotFoundError:
        try:
            age = time.time() - folder.stat().st_mtime
        except FileNotFoundError:
            return True  # gone meanwhile: its import finished
        return age < _UNLOCKED_GRACE_S
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing also releases a lock we took
    return False


def _move_in_or_remove(
    staged: dict[str, Path], keep: set[str], settings: Settings, report: GarbageReport
) -> None:
    """Move each staged file (by its final path relative to ``frames_dir``) that a committed row
    needs into place, unless it is there already; delete the others."""
    for relative, path in staged.items():
        final = settings.frames_dir / relative
        if relative in keep and not final.exists():
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, final)
            report.moved_in += 1
        else:
            path.unlink(missing_ok=True)
            report.removed_incoming += 1


def sweep_incoming(engine: Engine, settings: Settings | None = None) -> GarbageReport:
    """Finish what killed imports left in the temporary area; live imports are not touched.

    First the memberships a killed import committed are deleted again (its import marker names
    its folder, see :func:`~vlmrm_core.store.datasets.abandon_import`), so the import stays all
    or nothing. Then a staged file whose frame has a row (committed before the kill) is moved to
    its final name if that is missing; every other staged file is deleted, then its folder. A
    staged video counts as committed when some frames row refers to its final name.

    Args:
        engine: store engine.
        settings: where frame files live; defaults to :func:`get_settings`.

    Returns:
        How many files were moved in and how many deleted.
    """
    settings = settings or get_settings()
    report = GarbageReport()
    incoming = settings.frames_dir / INCOMING_DIR
    for dataset_name, import_id, entry in running_imports(engine):
        folder = incoming / import_id
        # Only staged imports can be recognised as dead: their folder is gone or unlocked.
        if entry.get("staged") and (not folder.is_dir() or not _locked_by_a_live_import(folder)):
            report.abandoned_memberships += abandon_import(engine, dataset_name, import_id)
    if not incoming.is_dir():
        return report
    for folder in sorted(p for p in incoming.iterdir() if p.is_dir()):
        if _locked_by_a_live_import(folder):
            continue
        pngs = {frame_relative_path(p.stem): p for p in folder.glob("*.png")}
        committed = stored_frame_hashes(engine, (Path(r).stem for r in pngs))
        _move_in_or_remove(pngs, {r for r in pngs if Path(r).stem in committed}, settings, report)
        videos = {video_relative_path(p.stem): p for p in folder.glob("*.mp4")}
        _move_in_or_remove(videos, referenced_paths(engine, videos), settings, report)
        shutil.rmtree(folder, ignore_errors=True)
    return report


def _frame_files(frames_dir: Path) -> Iterator[Path]:
    """Files in the shard folders (``ab/…``): frame PNGs and temporary files of old versions."""
    if not frames_dir.is_dir():
        return
    for shard in sorted(frames_dir.iterdir()):
        if shard.is_dir() and shard.name not in (INCOMING_DIR, VIDEO_DIR, MATERIALISED_DIR):
            yield from sorted(p for p in shard.iterdir() if p.is_file())


def _collect_videos(engine: Engine, frames_dir: Path, report: GarbageReport) -> None:
    """Delete stored videos no frame refers to, stray temporary files among them, and PNGs made
    of video-backed frames that are gone."""
    folder = frames_dir / VIDEO_DIR
    files = sorted(p for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []
    videos = {f"{VIDEO_DIR}/{p.name}": p for p in files if p.suffix == ".mp4"}
    referenced = referenced_paths(engine, videos)
    for relative, path in videos.items():
        if relative not in referenced:
            path.unlink(missing_ok=True)
            report.removed_orphans += 1
    materialised = frames_dir / MATERIALISED_DIR
    pngs = {p.stem: p for p in materialised.glob("*/*.png")} if materialised.is_dir() else {}
    stored = stored_frame_hashes(engine, pngs)
    for frame_hash, path in pngs.items():
        if frame_hash not in stored:
            path.unlink(missing_ok=True)
            report.removed_orphans += 1


def collect_garbage(engine: Engine, settings: Settings | None = None) -> GarbageReport:
    """Restore the invariant between the frames folder and the database.

    Sweeps the temporary area (:func:`sweep_incoming`), deletes frame files that have no frames
    row (and stray temporary files), stored videos no frame refers to, and lists rows whose file
    (PNG or video) is missing. Files are listed
    before their rows are read, so a file an import moves in meanwhile (after its commit) is
    never mistaken for an orphan.

    Args:
        engine: store engine.
        settings: where frame files live; defaults to :func:`get_settings`.

    Returns:
        What was moved, deleted and found missing.
    """
    settings = settings or get_settings()
    report = sweep_incoming(engine, settings)
    files = list(_frame_files(settings.frames_dir))
    pngs = {p.stem: p for p in files if p.suffix == ".png" and not p.name.startswith(".")}
    for path in files:
        stray = pngs.get(path.stem) != path
        if stray and time.time() - path.stat().st_mtime > _UNLOCKED_GRACE_S:
            path.unlink(missing_ok=True)  # a temporary file an old version left
            report.removed_orphans += 1
    stored = stored_frame_hashes(engine, pngs)
    for frame_hash, path in pngs.items():
        if frame_hash not in stored:
            path.unlink(missing_ok=True)
            report.removed_orphans += 1
    _collect_videos(engine, settings.frames_dir, report)
    checked: dict[str, bool] = {}  # a video is shared by many frames: stat it once
    for part in iter_frame_files(engine):
        for frame_hash, relative in part:
            exists = checked.get(relative)
            if exists is None:
                exists = (settings.frames_dir / relative).exists()
                if relative.startswith(f"{VIDEO_DIR}/"):
                    checked[relative] = exists
            if not exists:
                report.missing_files.append(frame_hash)
    with contextlib.suppress(OSError):
        (settings.frames_dir / INCOMING_DIR).rmdir()  # only if empty
    return report
