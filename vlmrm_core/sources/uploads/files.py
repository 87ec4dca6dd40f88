"""The entry points: one uploaded file (:func:`iter_upload`), files and folders on disk
(:func:`iter_paths`).

Only regular files are ever read. A named pipe, socket or device found in a folder (or swapped
in for a file between the listing and the read) is skipped with a Rejection, never opened in a
way that can block, and every read is bounded by the byte cap.
"""

from __future__ import annotations

import io
import os
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from vlmrm_core.errors import InvalidInputError
from vlmrm_core.frames import FrameRecord, ProgressCallback, Rejection
from vlmrm_core.sources.uploads._common import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_DECODE_BYTES,
    DEFAULT_MAX_FRAME_PIXELS,
    DEFAULT_MAX_PIXELS,
    DEFAULT_MAX_VIDEO_FRAMES,
    Limits,
    Reject,
    brief,
    guarded,
    human_size,
)
from vlmrm_core.sources.uploads.archives import zip_frames
from vlmrm_core.sources.uploads.images import image_frames
from vlmrm_core.sources.uploads.sniff import (
    HEAD_BYTES,
    PIL_FORMATS,
    SUPPORTED_EXTENSIONS,
    not_supported_reason,
    sniff_kind,
)
from vlmrm_core.sources.uploads.video import video_frames

__all__ = ["iter_paths", "iter_upload"]

_LIMIT_NAMES = frozenset(
    {
        "every_k",
        "max_video_frames",
        "max_pixels",
        "max_bytes",
        "max_frame_pixels",
        "max_decode_bytes",
    }
)


def iter_upload(
    name: str,
    data: bytes | bytearray | memoryview | BinaryIO,
    *,
    every_k: int = 1,
    max_video_frames: int = DEFAULT_MAX_VIDEO_FRAMES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_frame_pixels: int = DEFAULT_MAX_FRAME_PIXELS,
    max_decode_bytes: int = DEFAULT_MAX_DECODE_BYTES,
    progress: ProgressCallback | None = None,
) -> Iterator[FrameRecord | Rejection]:
    """Turn one uploaded file into frames, one at a time.

    The type is decided from the content. Images (PNG, JPEG, WebP, BMP; any colour mode, 16-bit
    greyscale scaled to 8 bits, transparency composited over white) give one frame named
    ``name``. Animated GIF/PNG/WebP and videos (MP4, WebM, MOV, MKV, AVI via PyAV) give every
    ``every_k``-th frame, at most ``max_video_frames`` of them, named ``name#index`` where index
    counts frames in the source. A ZIP gives the images inside it (folders inside the archive are
    fine, nested archives and videos are not), named by their path inside the archive
    (``entry``, relative to the archive like a folder's files); nothing is written under an
    entry's name.

    Args:
        name: What the user called the file; used in frame names and rejection reasons.
        data: The file's bytes, or a binary file object (read in a streaming fashion when it is
            seekable, so a large video is never held in memory).
        every_k: Keep every k-th frame of videos and animations (k >= 1).
        max_video_frames: Stop after this many kept frames per video or animation.
        max_pixels: Refuse images and videos whose width × height exceeds this, judged from the
            header before decoding.
        max_bytes: Refuse files larger than this; also the cap on the total uncompressed bytes
            read from one ZIP archive.
        max_frame_pixels: Reduce larger images and video frames on load by an integer factor
            (``extra['downscaled_from']`` keeps the original size).
        max_decode_bytes: Refuse an image whose decoding needs more memory than this.
        progress: Optional ``progress(done, total_or_None, message)`` callback.

    Returns:
        A generator of :class:`FrameRecord` (``source='upload'``) and :class:`Rejection` items.

    Raises:
        ValueError: If ``every_k`` or ``max_video_frames`` is below 1.
    """
    if every_k < 1:
        raise InvalidInputError(f"every_k must be at least 1, got {every_k}")
    if max_video_frames < 1:
        raise InvalidInputError(f"max_video_frames must be at least 1, got {max_video_frames}")
    limits = Limits(
        every_k=every_k,
        max_frames=max_video_frames,
        max_pixels=max_pixels,
        max_bytes=max_bytes,
        max_frame_pixels=max_frame_pixels,
        max_decode_bytes=max_decode_bytes,
    )
    return guarded(_iter_upload(name, data, limits, progress, archive_prefix=""), name)


def _stream_size(fp: BinaryIO) -> int | None:
    try:
        if not fp.seekable():
            return None
        here = fp.tell()
        end = fp.seek(0, os.SEEK_END)
        fp.seek(here)
        return end - here
    except (OSError, AttributeError, ValueError):
        return None


def _iter_upload(
    name: str,
    data: bytes | bytearray | memoryview | BinaryIO,
    limits: Limits,
    progress: ProgressCallback | None,
    *,
    archive_prefix: str,
) -> Iterator[FrameRecord | Rejection]:
    if isinstance(data, bytes | bytearray | memoryview):
        size = len(data)
        fp: BinaryIO = io.BytesIO(data)
    else:
        fp = data
        streamed = _stream_size(fp)
        if streamed is None:
            # Not seekable (a pipe): read it, but never more than one byte past the cap.
            buffered = fp.read(limits.max_bytes + 1)
            streamed = len(buffered)
            fp = io.BytesIO(buffered)
        size = streamed
    if size > limits.max_bytes:
        raise Reject(
            f"{name} is {human_size(size)}, over the {human_size(limits.max_bytes)} upload cap"
        )
    start = fp.tell()
    head = fp.read(HEAD_BYTES)
    fp.seek(start)
    kind = sniff_kind(head)
    if kind in PIL_FORMATS:
        yield from image_frames(fp, name, kind, limits, extra=None, progress=progress)
    elif kind == "zip":
        yield from zip_frames(fp, name, limits, progress=progress, frame_prefix=archive_prefix)
    elif kind == "video":
        yield from video_frames(fp, name, limits, progress=progress)
    else:
        raise Reject(not_supported_reason(name, kind))


def _not_regular_reason(name: str, mode: int) -> str:
    what = (
        "a named pipe (FIFO)"
        if stat.S_ISFIFO(mode)
        else "a socket"
        if stat.S_ISSOCK(mode)
        else "a device"
        if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
        else "not a regular file"
    )
    return f"{name} is {what}, not a regular file; skipped it"


def _walk_folder(folder: Path) -> list[tuple[Path, int, bool]]:
    """Files under ``folder`` except hidden ones: ``(path, st_mode, supported extension)``."""
    found: list[tuple[Path, int, bool]] = []
    # Symlinked folders are not followed, so a link loop cannot make the walk endless.
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for file in sorted(files):
            if file.startswith("."):
                continue
            path = Path(root) / file
            try:
                mode = path.stat().st_mode  # follows symlinks: a link to a file is fine
            except OSError:
                mode = 0
            found.append((path, mode, Path(file).suffix.lower() in SUPPORTED_EXTENSIONS))
    return found


def _skipped_reason(name: str, path: Path, mode: int) -> str:
    """Why a file found in a folder, without a supported extension, was not imported.

    Worded like the reasons for a ZIP's entries that are not images; the first bytes of a
    regular file say what it looks like (a PNG saved as ``.dat`` is named as such).
    """
    what = "not an image, video or .zip file by its extension"
    if stat.S_ISREG(mode):
        try:
            with _open_regular(path) as handle:
                kind = sniff_kind(handle.read(HEAD_BYTES))
        except (OSError, Reject):
            kind = "unknown"
        if kind in PIL_FORMATS or kind in ("zip", "video"):
            what = f"a {kind} file without a {kind} extension; rename it to import it"
    return f"{name} is {what}; skipped it"


def _open_regular(path: Path) -> BinaryIO:
    """Open a file for reading only if it is a regular file; never blocks on a FIFO.

    ``O_NONBLOCK`` makes opening a FIFO return at once instead of waiting for a writer; the
    type is then checked on the open descriptor (a file swapped for a FIFO after the folder
    was listed is caught too). For regular files the flag changes nothing.

    Raises:
        Reject: Not a regular file.
        OSError: The file cannot be opened.
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise Reject(_not_regular_reason(os.fspath(path), mode))
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def iter_paths(
    paths: Iterable[str | Path],
    *,
    progress: ProgressCallback | None = None,
    **kwargs: int,
) -> Iterator[FrameRecord | Rejection]:
    """Frames from files and folders on disk, for the command line.

    Files are read whatever their extension (the content decides). Folders are walked
    recursively in sorted order, picking files with an image, video or ``.zip`` extension and
    skipping hidden files. Anything that is not a regular file (a named pipe, socket, device)
    is skipped with a Rejection, and so is every other file of a folder that was not read
    (hidden files aside). Frames are named relative to what was imported, however its path was
    typed: a file given directly by its name (``a.png``, ``clip.mp4#12``), a file found in a
    folder by its path inside that folder (``sub/a.png``), an image in a ZIP by its path inside
    the archive (``entry.png`` for a ZIP given directly, ``sub/shots.zip/entry.png`` for one
    found in a folder).

    Args:
        paths: Files and folders.
        progress: Optional ``progress(done, total_or_None, message)``; counts files when there
            is more than one, otherwise passes through the single file's own progress.
        **kwargs: The limits of :func:`iter_upload` (``every_k``, ``max_video_frames``,
            ``max_pixels``, ``max_bytes``, ``max_frame_pixels``, ``max_decode_bytes``).

    Returns:
        A generator of :class:`FrameRecord` and :class:`Rejection` items.
    """
    unknown = set(kwargs) - _LIMIT_NAMES
    if unknown:
        raise TypeError(f"iter_paths() got unexpected keyword arguments: {sorted(unknown)}")
    return _iter_paths(list(paths), progress, kwargs)


def _iter_paths(
    paths: list[str | Path], progress: ProgressCallback | None, kwargs: dict[str, int]
) -> Iterator[FrameRecord | Rejection]:
    limits = Limits(
        every_k=kwargs.get("every_k", 1),
        max_frames=kwargs.get("max_video_frames", DEFAULT_MAX_VIDEO_FRAMES),
        max_pixels=kwargs.get("max_pixels", DEFAULT_MAX_PIXELS),
        max_bytes=kwargs.get("max_bytes", DEFAULT_MAX_BYTES),
        max_frame_pixels=kwargs.get("max_frame_pixels", DEFAULT_MAX_FRAME_PIXELS),
        max_decode_bytes=kwargs.get("max_decode_bytes", DEFAULT_MAX_DECODE_BYTES),
    )
    if limits.every_k < 1:
        raise InvalidInputError(f"every_k must be at least 1, got {limits.every_k}")
    if limits.max_frames < 1:
        raise InvalidInputError(f"max_video_frames must be at least 1, got {limits.max_frames}")
    # Resolve the list of files first (cheap: names and types only) so progress shows a total.
    # Each job: (frame name, path or None if unreadable, st_mode, read it, name prefix of a ZIP's
    # images: empty for a ZIP imported itself, its own name for one found in a folder).
    jobs: list[tuple[str, Path | None, int, bool, str]] = []
    for given in paths:
        given_str = os.fspath(given)
        path = Path(given_str)
        if path.is_dir():
            for file, mode, supported in _walk_folder(path):
                name = file.relative_to(path).as_posix()
                jobs.append((name, file, mode, supported, f"{name}/"))
        else:
            try:
                mode = path.stat().st_mode
            except OSError:
                jobs.append((given_str, None, 0, True, ""))
            else:
                jobs.append((path.name or given_str, path, mode, True, ""))
    single = len(jobs) == 1
    for done, (name, found, mode, supported, archive_prefix) in enumerate(jobs):
        if progress and not single:
            progress(done, len(jobs), name)
        if found is None:
            yield Rejection(name, f"{name} does not exist or cannot be read")
            continue
        if not supported:
            yield Rejection(name, _skipped_reason(name, found, mode))
            continue
        if not stat.S_ISREG(mode):
            yield Rejection(name, _not_regular_reason(name, mode))
            continue
        try:
            handle = _open_regular(found)
        except Reject as exc:
            yield Rejection(name, str(exc))
            continue
        except OSError as exc:
            yield Rejection(name, f"{name} could not be opened ({brief(exc)})")
            continue
        with handle:
            items = _iter_upload(
                name,
                handle,
                limits,
                progress if single else None,
                archive_prefix=archive_prefix,
            )
            yield from guarded(items, name)
    if progress and not single:
        progress(len(jobs), len(jobs), "done")
