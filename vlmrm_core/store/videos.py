"""Video-backed frames: frames whose pixels the store keeps as one frame of a stored video.

Encoding every decoded frame of a LeRobot dataset as a PNG costs far more than decoding it, so a
LeRobot import stores each MP4 it reads once, content-addressed
(``frames_dir/videos/<sha256 of the file>.mp4``), and per new frame a ``frames`` row whose
``path`` names that file and whose ``video_pts`` says which frame of its first video stream it
is. Frame identity stays the hash of the decoded pixels
(:func:`~vlmrm_core.frames.pixel_hash`), so a frame stored as a PNG before stays one, and the
same pixels are never stored twice in either form.

Reading decodes on demand, with the same conversion the LeRobot reader used
(``to_ndarray(format="rgb24")`` of PyAV), and checks the hash of what it decoded: a video that is
missing or decodes to other pixels raises a one-line :class:`~vlmrm_core.errors.VlmrmError`
naming the frame and the fix. :class:`VideoFrameReader` keeps one container open and decodes
forward from where it stopped when the next frames asked for come later in the same file (the
case when a dataset is read in order); otherwise it seeks to the keyframe at or before the frame
and decodes forward from there.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Engine, select

from vlmrm_core.errors import VlmrmError
from vlmrm_core.frames import pixel_hash
from vlmrm_core.store._sql import chunks
from vlmrm_core.store.db import session_scope
from vlmrm_core.store.schema import Frame

__all__ = [
    "VIDEO_DIR",
    "FramePixelsMismatchError",
    "MissingFrameVideoError",
    "StoredVideoFrame",
    "VideoFrameReader",
    "copy_video_hashed",
    "decode_stored_frame",
    "referenced_paths",
    "video_frame_locations",
    "video_relative_path",
]

VIDEO_DIR = "videos"
"""Folder under ``frames_dir`` holding the stored videos of video-backed frames."""

FORWARD_DECODE_LIMIT_S = 2.0
"""Decode forward from the last frame read instead of seeking when the next frame asked for is at
most this far ahead (typical keyframe intervals are shorter, so seeking would not save work)."""

_COPY_CHUNK = 1 << 20


class MissingFrameVideoError(VlmrmError, FileNotFoundError):
    """A video-backed frame whose stored video file is gone."""


class FramePixelsMismatchError(VlmrmError, ValueError):
    """A stored video that does not decode to the pixels a frame was stored with."""


@dataclass(frozen=True)
class StoredVideoFrame:
    """Where a video-backed frame's pixels are: a stored video and a presentation timestamp."""

    hash: str
    path: str
    """Relative to ``frames_dir``: ``videos/<sha256>.mp4``."""
    pts: int


def video_relative_path(file_sha256: str) -> str:
    """Where a stored video lives relative to ``frames_dir``: ``videos/<sha256>.mp4``."""
    return f"{VIDEO_DIR}/{file_sha256}.mp4"


def copy_video_hashed(source: Path, folder: Path) -> tuple[str, Path]:
    """Copy a video into ``folder`` as ``<sha256>.mp4``, hashing it while it is copied.

    The copy is written under a dot-name first and renamed when complete, so a ``*.mp4`` in a
    staging folder is always whole.

    Returns:
        The file's SHA-256 (hex) and the path of the copy.
    """
    digest = hashlib.sha256()
    part = folder / f".video-{os.getpid()}-{threading.get_ident()}.part"
    with source.open("rb") as src, part.open("wb") as dst:
        while block := src.read(_COPY_CHUNK):
            digest.update(block)
            dst.write(block)
    sha = digest.hexdigest()
    final = folder / f"{sha}.mp4"
    os.replace(part, final)
    return sha, final


def video_frame_locations(engine: Engine, hashes: Iterable[str]) -> dict[str, StoredVideoFrame]:
    """The video-backed frames among ``hashes`` (PNG-backed and unknown ones are left out)."""
    wanted = sorted(set(hashes))
    found: dict[str, StoredVideoFrame] = {}
    with session_scope(engine) as session:
        for part in chunks(wanted):
            rows = session.execute(
                select(Frame.hash, Frame.path, Frame.video_pts).where(
                    Frame.hash.in_(part), Frame.video_pts.is_not(None)
                )
            )
            for h, path, pts in rows:
                if pts is not None:  # filtered in SQL; narrows the type
                    found[h] = StoredVideoFrame(h, path, int(pts))
    return found


def referenced_paths(engine: Engine, paths: Iterable[str]) -> set[str]:
    """Which of these ``frames.path`` values some frames row still refers to."""
    wanted = sorted(set(paths))
    found: set[str] = set()
    with session_scope(engine) as session:
        for part in chunks(wanted):
            found.update(session.scalars(select(Frame.path).distinct().where(Frame.path.in_(part))))
    return found


class VideoFrameReader:
    """Decodes frames of stored videos by presentation timestamp, one open container at a time.

    Not thread-safe: give each thread its own, or hold a lock (see :func:`decode_stored_frame`).
    """

    def __init__(self, frames_dir: Path) -> None:
        self.frames_dir = frames_dir
        self._path: str | None = None
        self._container: Any = None
        self._stream: Any = None
        self._frames: Iterator[Any] | None = None
        self._last_pts: int | None = None
        self._time_base = Fraction(1)
        self._file_id: tuple[int, int, int] | None = None
        """(inode, size, mtime) of the open file: a file replaced since it was opened is
        reopened, so the hash check sees what is on disk now, not the old file's frames."""

    def close(self) -> None:
        """Close the open container, if any."""
        if self._container is not None:
            self._container.close()
        self._path = self._container = self._stream = self._frames = self._last_pts = None
        self._file_id = None

    def _open(self, stored: StoredVideoFrame) -> None:
        import av

        file = self.frames_dir / stored.path
        try:
            stat = file.stat()
        except OSError:
            stat = None
        file_id = None if stat is None else (stat.st_ino, stat.st_size, stat.st_mtime_ns)
        if self._path == stored.path and file_id is not None and file_id == self._file_id:
            return
        self.close()
        if file_id is None or not file.is_file():
            raise MissingFrameVideoError(
                f"frame {stored.hash[:12]} is stored in {stored.path}, which is missing; run "
                "`vlmrm frames gc` to list the damaged frames and re-import their dataset."
            )
        try:
            container = av.open(str(file), mode="r")
        except (av.FFmpegError, OSError) as exc:
            raise FramePixelsMismatchError(
                f"frame {stored.hash[:12]}: {stored.path} is not a readable video ({exc}); "
                "re-import its dataset."
            ) from None
        if not container.streams.video:
            container.close()
            raise FramePixelsMismatchError(
                f"frame {stored.hash[:12]}: {stored.path} has no video stream; re-import its "
                "dataset."
            )
        self._stream = container.streams.video[0]
        self._stream.thread_type = "AUTO"  # as the LeRobot reader decodes: same pixels
        self._time_base = self._stream.time_base or Fraction(1)
        self._container, self._path, self._file_id = container, stored.path, file_id

    def _position_for(self, first_pts: int) -> None:
        """Seek unless the frame is a short way ahead of the last one decoded."""
        ahead = None if self._last_pts is None else first_pts - self._last_pts
        if (
            self._frames is not None
            and ahead is not None
            and ahead > 0
            and ahead * self._time_base <= FORWARD_DECODE_LIMIT_S
        ):
            return
        # Seeks to the keyframe at or before the frame (the container may be anywhere).
        self._container.seek(first_pts, stream=self._stream)
        self._frames = iter(self._container.decode(self._stream))
        self._last_pts = None

    def read(self, wanted: Sequence[StoredVideoFrame], *, verify: bool = True) -> list[np.ndarray]:
        """Decode frames of one stored video, given in ascending ``pts`` order.

        Args:
            wanted: frames of the same video, sorted by ``pts`` (duplicates allowed).
            verify: check each decoded frame's pixel hash against its stored hash.

        Returns:
            Their H×W×3 uint8 RGB pixels, in the same order.

        Raises:
            MissingFrameVideoError: the video file is gone.
            FramePixelsMismatchError: the video does not hold these frames.
        """
        import av

        if not wanted:
            return []
        self._open(wanted[0])
        self._position_for(wanted[0].pts)
        assert self._frames is not None
        out: list[np.ndarray] = []
        j = 0
        last: tuple[int, np.ndarray] | None = None
        try:
            while j < len(wanted):
                target = wanted[j]
                if last is not None and last[0] == target.pts:
                    out.append(last[1])  # the same frame asked for twice
                    j += 1
                    continue
                frame = next(self._frames, None)
                if frame is None:
                    self._frames = None
                    raise self._mismatch(target, "the video ends before it")
                if frame.pts is None:
                    continue
                self._last_pts = int(frame.pts)
                if frame.pts < target.pts:
                    continue  # the run-up from the keyframe, or frames between those wanted
                if frame.pts > target.pts:
                    self._frames = None  # the decoder is past it: seek next time
                    raise self._mismatch(target, f"no frame has pts {target.pts}")
                pixels = np.ascontiguousarray(frame.to_ndarray(format="rgb24"), dtype=np.uint8)
                if verify and pixel_hash(pixels) != target.hash:
                    raise self._mismatch(target, "it decodes to other pixels")
                last = (target.pts, pixels)
                out.append(pixels)
                j += 1
        except av.FFmpegError as exc:
            self.close()
            raise self._mismatch(wanted[j], f"decoding failed ({exc})") from None
        return out

    @staticmethod
    def _mismatch(stored: StoredVideoFrame, what: str) -> FramePixelsMismatchError:
        return FramePixelsMismatchError(
            f"frame {stored.hash[:12]} cannot be read from {stored.path}: {what}; the video was "
            "altered or damaged (delete and re-import its dataset)."
        )


_CACHED_FRAMES = 16
"""Decoded frames kept for repeated single-frame reads (a page redrawing its thumbnails)."""

_shared_lock = threading.Lock()
_shared_readers: dict[Path, VideoFrameReader] = {}
_recent: OrderedDict[tuple[Path, str], np.ndarray] = OrderedDict()
"""Recently decoded frames by (frames_dir, hash)."""


def decode_stored_frame(stored: StoredVideoFrame, frames_dir: Path) -> np.ndarray:
    """One video-backed frame's pixels (random access), through a process-wide reader.

    Frames asked for one after another in video order are decoded forward without seeking; the
    last few decoded are kept, so a page that draws the same thumbnails again does not decode.
    """
    with _shared_lock:
        key = (frames_dir, stored.hash)
        cached = _recent.get(key)
        if cached is not None:
            _recent.move_to_end(key)
            return cached.copy()
        reader = _shared_readers.get(frames_dir)
        if reader is None:
            reader = _shared_readers[frames_dir] = VideoFrameReader(frames_dir)
        try:
            (pixels,) = reader.read([stored])
        except VlmrmError:
            reader.close()
            raise
        _recent[key] = pixels
        while len(_recent) > _CACHED_FRAMES:
            _recent.popitem(last=False)
        return pixels.copy()
