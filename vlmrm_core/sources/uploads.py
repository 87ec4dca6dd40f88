"""Frames from files the user uploads: images, GIFs, ZIP archives of images, and videos.

Every upload is treated as hostile. The file type is decided from its first bytes (never from
the extension alone), image dimensions are read from the header and checked against a pixel cap
before anything is decoded, ZIP archives are read entry by entry in memory with a cap on the total
number of uncompressed bytes (nothing is ever extracted to disk, so entry names such as
``../evil.png`` are only ever display names), and videos are decoded as a stream so that only one
frame is held at a time. Anything that cannot become a frame is reported as a
:class:`~vlmrm_core.frames.Rejection` with a one-sentence reason, and the rest of the upload carries on.
"""

from __future__ import annotations

import io
import os
import struct
import warnings
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps

from vlmrm_core.frames import FrameRecord, ProgressCallback, Rejection

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_MAX_VIDEO_FRAMES",
    "SUPPORTED_EXTENSIONS",
    "SUPPORTED_HINT",
    "iter_paths",
    "iter_upload",
    "sniff_kind",
]

DEFAULT_MAX_BYTES = 500 * 2**20
DEFAULT_MAX_PIXELS = 50_000_000
DEFAULT_MAX_VIDEO_FRAMES = 300

SUPPORTED_HINT = "upload PNG, JPEG, WebP, BMP, GIF, a ZIP of images, or MP4/WebM video"

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif"})
VIDEO_EXTENSIONS = frozenset({".mp4", ".m4v", ".webm", ".mov", ".mkv", ".avi"})
ARCHIVE_EXTENSIONS = frozenset({".zip"})
SUPPORTED_EXTENSIONS = IMAGE_EXTENSIONS | VIDEO_EXTENSIONS | ARCHIVE_EXTENSIONS
"""Extensions :func:`iter_paths` picks up when it walks a folder (content still decides the type)."""

# How many bytes of a file we look at to decide what it is.
_HEAD = 64
# A ZIP whose central directory lists more entries than this is refused outright: parsing and
# iterating millions of (possibly empty) entries is itself a denial of service.
_MAX_ZIP_ENTRIES = 100_000
# JPEG dimensions live in the SOF segment, normally within the first few KB (after EXIF);
# give up looking after this many segments rather than walk a crafted file forever.
_MAX_JPEG_SEGMENTS = 256

_VIDEO_ISO_BOXES = frozenset({b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip", b"pnot"})
# ISO-BMFF brands that are still images, not videos (HEIC/AVIF photos from phones).
_STILL_IMAGE_BRANDS = frozenset(
    {b"heic", b"heix", b"heim", b"heis", b"mif1", b"msf1", b"avif", b"avis"}
)
_JUNK_PREFIXES = ("__MACOSX/",)


class _Reject(Exception):
    """Internal: raised where a file or entry must become a Rejection with this reason."""


def sniff_kind(head: bytes) -> str:
    """Classify a file from its first bytes.

    Args:
        head: The first bytes of the file (64 are enough).

    Returns:
        One of ``'png'``, ``'jpeg'``, ``'gif'``, ``'webp'``, ``'bmp'``, ``'zip'``, ``'video'``,
        ``'empty'``, ``'text'``, ``'pdf'``, ``'tiff'``, ``'heic'`` or ``'unknown'``.
    """
    if not head:
        return "empty"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "video"
    if head[:2] == b"BM" and len(head) >= 26:
        return "bmp"
    # Local file header, or the end-of-central-directory record of an archive with no entries.
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return "zip"
    if head[:4] == b"\x1a\x45\xdf\xa3":  # EBML: Matroska / WebM
        return "video"
    if head[4:8] in _VIDEO_ISO_BOXES:
        if head[4:8] == b"ftyp" and head[8:12] in _STILL_IMAGE_BRANDS:
            return "heic"
        return "video"
    if head[:4] == b"%PDF":
        return "pdf"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    if _looks_like_text(head):
        return "text"
    return "unknown"


def _looks_like_text(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut off at the end of the sample is still text.
        if exc.start < len(head) - 4:
            return False
    printable = sum(32 <= b < 127 or b in (9, 10, 13) or b >= 128 for b in head)
    return printable >= 0.95 * len(head)


def _not_supported_reason(name: str, kind: str) -> str:
    what = {
        "empty": "is empty",
        "text": "is not an image (looks like text)",
        "pdf": "is a PDF document, not an image",
        "tiff": "is a TIFF image, which is not supported",
        "heic": "is a HEIC/AVIF image, which is not supported (convert it to JPEG or PNG)",
        "unknown": "is not a supported image, archive or video",
    }[kind]
    return f"{name} {what}; {SUPPORTED_HINT}"


def _human_size(n: int) -> str:
    """Byte count in the largest unit that keeps it at least 1."""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"


# --------------------------------------------------------------------------------------------
# Header dimensions (read before any decoding, so a decompression bomb is refused cheaply)
# --------------------------------------------------------------------------------------------


def _read_exact(fp: BinaryIO, n: int) -> bytes:
    data = fp.read(n)
    if len(data) < n:
        raise EOFError
    return data


def _jpeg_dimensions(fp: BinaryIO) -> tuple[int, int] | None:
    if _read_exact(fp, 2) != b"\xff\xd8":
        return None
    for _ in range(_MAX_JPEG_SEGMENTS):
        byte = _read_exact(fp, 1)
        while byte != b"\xff":  # tolerate garbage between segments, as decoders do
            byte = _read_exact(fp, 1)
        marker = _read_exact(fp, 1)[0]
        while marker == 0xFF:  # fill bytes
            marker = _read_exact(fp, 1)[0]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # markers without a length
            continue
        if marker == 0xD9:  # end of image before any frame header
            return None
        length = struct.unpack(">H", _read_exact(fp, 2))[0]
        if length < 2:
            return None
        # SOF0..SOF15 carry the frame size; C4 (DHT), C8 (JPG) and CC (DAC) share the range.
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            _precision, height, width = struct.unpack(">BHH", _read_exact(fp, 5))
            return width, height
        fp.seek(length - 2, os.SEEK_CUR)
    return None


def _header_dimensions(fp: BinaryIO, kind: str) -> tuple[int, int] | None:
    """Width and height from the file header, or None where the header cannot be parsed.

    The stream position is restored afterwards.
    """
    start = fp.tell()
    try:
        if kind == "jpeg":
            return _jpeg_dimensions(fp)
        head = fp.read(32)
        if kind == "png" and head[12:16] == b"IHDR":
            return struct.unpack(">II", head[16:24])
        if kind == "gif":
            return struct.unpack("<HH", head[6:10])
        if kind == "bmp":
            dib_size = struct.unpack("<I", head[14:18])[0]
            if dib_size == 12:  # OS/2 BITMAPCOREHEADER
                return struct.unpack("<HH", head[18:22])
            width, height = struct.unpack("<ii", head[18:26])
            return abs(width), abs(height)  # negative height means top-down rows
        if kind == "webp":
            chunk = head[12:16]
            if chunk == b"VP8 ":
                width, height = struct.unpack("<HH", head[26:30])
                return width & 0x3FFF, height & 0x3FFF
            if chunk == b"VP8L":
                bits = struct.unpack("<I", head[21:25])[0]
                return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
            if chunk == b"VP8X":
                width = int.from_bytes(head[24:27], "little") + 1
                height = int.from_bytes(head[27:30], "little") + 1
                return width, height
        return None
    except (EOFError, struct.error, OSError):
        return None
    finally:
        fp.seek(start)


def _check_pixels(name: str, width: int, height: int, max_pixels: int) -> None:
    if width * height > max_pixels:
        raise _Reject(
            f"{name} is {width}×{height} = {width * height:,} pixels, over the "
            f"{max_pixels:,}-pixel cap (possible decompression bomb); downscale it first"
        )
    if width <= 0 or height <= 0:
        raise _Reject(f"{name} declares an empty {width}×{height} image")


# --------------------------------------------------------------------------------------------
# Images
# --------------------------------------------------------------------------------------------


def _to_rgb(im: Image.Image) -> np.ndarray:
    """Any Pillow mode -> H×W×3 uint8, compositing transparency over white."""
    mode = im.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        # 16-bit greyscale: scale the full range down instead of clipping at 255 (which is what
        # a plain convert('L') does, turning most of the image white).
        grey = np.asarray(im, dtype=np.float64)
        peak = 65535.0 if mode.startswith("I;16") or grey.max(initial=0) > 255 else 255.0
        grey = np.clip(grey / peak * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if mode == "F":
        grey = np.asarray(im, dtype=np.float64)
        scale = 255.0 if grey.max(initial=0) <= 1.0 else 1.0
        grey = np.clip(grey * scale + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    has_alpha = mode in ("RGBA", "LA", "PA", "La", "RGBa") or (
        mode in ("P", "L", "RGB") and "transparency" in im.info
    )
    if has_alpha:
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        im = Image.alpha_composite(white, rgba)
    rgb = im.convert("RGB") if im.mode != "RGB" else im
    return np.array(rgb, dtype=np.uint8)


def _image_frames(
    fp: BinaryIO,
    name: str,
    kind: str,
    *,
    every_k: int,
    max_frames: int,
    max_pixels: int,
    extra: dict | None,
    progress: ProgressCallback | None,
) -> Iterator[FrameRecord | Rejection]:
    dims = _header_dimensions(fp, kind)
    if dims is not None:
        _check_pixels(name, dims[0], dims[1], max_pixels)
    im = _open_image(fp, name, kind, max_pixels)
    with im:
        _check_pixels(name, im.width, im.height, max_pixels)
        n_frames = getattr(im, "n_frames", 1) if getattr(im, "is_animated", False) else 1
        if n_frames <= 1:
            yield FrameRecord(
                pixels=_decode(im, name), source="upload", name=name, extra=dict(extra or {})
            )
            if progress:
                progress(1, 1, name)
            return
        wanted = min(-(-n_frames // every_k), max_frames)
        indices = range(0, n_frames, every_k)[:max_frames]
        for produced, index in enumerate(indices, start=1):
            frame_name = f"{name}#{index}"
            try:
                im.seek(index)
                _check_pixels(frame_name, im.width, im.height, max_pixels)
                pixels = _decode(im, frame_name)
            except _Reject as exc:
                yield Rejection(frame_name, str(exc))
                return
            except (EOFError, OSError, ValueError) as exc:
                yield Rejection(frame_name, f"{frame_name} could not be decoded ({_brief(exc)})")
                return
            yield FrameRecord(
                pixels=pixels,
                source="upload",
                name=frame_name,
                extra={**(extra or {}), "frame_index": index},
            )
            if progress:
                progress(produced, wanted, frame_name)


def _open_image(fp: BinaryIO, name: str, kind: str, max_pixels: int) -> Image.Image:
    """Open lazily (header only) and turn Pillow's failures into one-sentence reasons."""
    # The warnings filter is set only around this call, never across a ``yield``: the filter
    # is process-global state and a suspended generator would leave it changed for everyone.
    with warnings.catch_warnings():
        # Our own pixel cap governs; Pillow's warning would only be noise. Its hard error (at
        # twice its own limit) is still caught below as a backstop for headers we did not parse.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            return Image.open(fp, formats=[_PIL_FORMAT[kind]])
        except Image.DecompressionBombError:
            raise _Reject(
                f"{name} is too large to decode safely (Pillow's decompression-bomb guard); "
                f"the cap is {max_pixels:,} pixels"
            ) from None
        except Image.UnidentifiedImageError:
            # Pillow's message names the Python file object, which means nothing to a user.
            raise _Reject(
                f"{name} starts like a {kind.upper()} image but is truncated or corrupt; "
                "re-export the file"
            ) from None
        except (SyntaxError, struct.error, EOFError, OSError) as exc:
            raise _Reject(
                f"{name} looks like {kind.upper()} but could not be read ({_brief(exc)}); "
                "re-export the file"
            ) from None


_PIL_FORMAT = {"png": "PNG", "jpeg": "JPEG", "gif": "GIF", "webp": "WEBP", "bmp": "BMP"}


def _decode(im: Image.Image, name: str) -> np.ndarray:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            if im.format == "JPEG":
                # Phone photos store their rotation in EXIF; show them the way the user sees them.
                im = ImageOps.exif_transpose(im)
            im.load()
            return _to_rgb(im)
    except Image.DecompressionBombError:
        raise _Reject(f"{name} is too large to decode safely") from None
    except (OSError, SyntaxError, ValueError, struct.error, EOFError) as exc:
        if "truncated" in str(exc).lower():
            raise _Reject(
                f"{name} is truncated ({_brief(exc)}); upload the complete file"
            ) from None
        raise _Reject(f"{name} is corrupt and could not be decoded ({_brief(exc)})") from None


def _brief(exc: BaseException) -> str:
    # FFmpeg errors carry a clean ``strerror``; their str() adds an errno and '<none>' filename.
    text = getattr(exc, "strerror", None) if type(exc).__module__.startswith("av") else None
    text = (text or str(exc)).strip().rstrip(".") or type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."


# --------------------------------------------------------------------------------------------
# Videos
# --------------------------------------------------------------------------------------------


def _video_frames(
    fp: BinaryIO,
    name: str,
    *,
    every_k: int,
    max_frames: int,
    max_pixels: int,
    progress: ProgressCallback | None,
) -> Iterator[FrameRecord | Rejection]:
    import av  # imported lazily: PyAV loads FFmpeg, which image-only uploads never need

    try:
        container = av.open(fp, mode="r")
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise _Reject(
            f"{name} is not a readable video, perhaps truncated or corrupt ({_brief(exc)}); "
            "upload a complete MP4, WebM, MOV or MKV file"
        ) from None
    with container:
        if not container.streams.video:
            raise _Reject(f"{name} has no video stream; {SUPPORTED_HINT}")
        stream = container.streams.video[0]
        width, height = stream.codec_context.width, stream.codec_context.height
        if width and height:
            _check_pixels(name, width, height, max_pixels)
        declared = stream.frames or 0
        total = min(-(-declared // every_k), max_frames) if declared else None
        index = 0
        produced = 0
        try:
            # decode() yields frames one at a time in presentation order, so memory stays at
            # one frame however long the video is.
            for frame in container.decode(stream):
                if index % every_k == 0:
                    if frame.width * frame.height > max_pixels:
                        _check_pixels(f"{name}#{index}", frame.width, frame.height, max_pixels)
                    pixels = frame.to_ndarray(format="rgb24")
                    frame_name = f"{name}#{index}"
                    produced += 1
                    yield FrameRecord(
                        pixels=np.ascontiguousarray(pixels, dtype=np.uint8),
                        source="upload",
                        name=frame_name,
                        extra={
                            "frame_index": index,
                            "time": float(frame.time) if frame.time is not None else None,
                        },
                    )
                    if progress:
                        progress(produced, total, frame_name)
                    if produced >= max_frames:
                        return
                index += 1
        except (av.FFmpegError, OSError, ValueError) as exc:
            if produced == 0:
                raise _Reject(f"{name} has no decodable video frames ({_brief(exc)})") from None
            yield Rejection(
                f"{name}#{index}",
                f"decoding {name} stopped at frame {index} ({_brief(exc)}); "
                f"the {produced} frames before it were kept",
            )
            return
        if produced == 0:
            raise _Reject(f"{name} has no decodable video frames")


# --------------------------------------------------------------------------------------------
# ZIP archives
# --------------------------------------------------------------------------------------------


def _zip_frames(
    fp: BinaryIO,
    name: str,
    *,
    every_k: int,
    max_frames: int,
    max_pixels: int,
    max_bytes: int,
    progress: ProgressCallback | None,
) -> Iterator[FrameRecord | Rejection]:
    try:
        archive = zipfile.ZipFile(fp)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
        raise _Reject(f"{name} is not a readable ZIP archive ({_brief(exc)})") from None
    with archive:
        infos = archive.infolist()
        if len(infos) > _MAX_ZIP_ENTRIES:
            raise _Reject(
                f"{name} lists {len(infos):,} entries, over the {_MAX_ZIP_ENTRIES:,}-entry cap"
            )
        # Entry names are display names only: they are sorted for a stable order and never
        # joined onto any filesystem path.
        entries = sorted(
            (
                info
                for info in infos
                if not info.is_dir()
                and not info.filename.startswith(_JUNK_PREFIXES)
                and not os.path.basename(info.filename.rstrip("/")).startswith("._")
                and os.path.basename(info.filename) != ".DS_Store"
            ),
            key=lambda info: info.filename,
        )
        budget = max_bytes  # uncompressed bytes we are still willing to read (zip-bomb guard)
        n_frames = 0
        total = len(entries)
        for position, info in enumerate(entries, start=1):
            entry_name = f"{name}/{info.filename}"
            if progress:
                progress(position - 1, total, entry_name)
            if info.flag_bits & 0x1:
                yield Rejection(entry_name, f"{entry_name} is encrypted; upload it unencrypted")
                continue
            if info.file_size > budget:
                yield Rejection(
                    name,
                    f"{name} expands to more than the {_human_size(max_bytes)} cap on uncompressed "
                    f"data (possible zip bomb); stopped before {info.filename}",
                )
                break
            try:
                with archive.open(info) as member:
                    head = member.read(_HEAD)
                    kind = sniff_kind(head)
                    if kind not in _PIL_FORMAT:
                        reason = _zip_entry_reason(entry_name, kind)
                        budget -= len(head)
                        yield Rejection(entry_name, reason)
                        continue
                    # Read at most one byte past the budget: the declared size can lie, but the
                    # number of bytes the decompressor hands us cannot.
                    rest = member.read(budget - len(head) + 1)
            except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, ValueError) as exc:
                yield Rejection(entry_name, f"{entry_name} could not be read ({_brief(exc)})")
                continue
            data = head + rest
            if len(data) > budget:
                yield Rejection(
                    name,
                    f"{name} expands to more than the {_human_size(max_bytes)} cap on uncompressed "
                    f"data (possible zip bomb); stopped at {info.filename}",
                )
                break
            budget -= len(data)
            for item in _guarded(
                _image_frames(
                    io.BytesIO(data),
                    entry_name,
                    kind,
                    every_k=every_k,
                    max_frames=max_frames,
                    max_pixels=max_pixels,
                    extra={"archive": name, "entry": info.filename},
                    progress=None,
                ),
                entry_name,
            ):
                if isinstance(item, FrameRecord):
                    n_frames += 1
                yield item
            del data
        if progress:
            progress(total, total, name)
        if n_frames == 0:
            yield Rejection(
                name,
                f"{name} contains no images; put PNG, JPEG, WebP, BMP or GIF files in the archive",
            )


def _zip_entry_reason(entry_name: str, kind: str) -> str:
    if kind == "zip":
        return f"{entry_name} is a ZIP inside a ZIP; nested archives are not supported"
    if kind == "video":
        return f"{entry_name} is a video inside a ZIP; upload videos directly, not in an archive"
    return _not_supported_reason(entry_name, kind).replace(SUPPORTED_HINT, "skipped it")


# --------------------------------------------------------------------------------------------
# Public entry points
# --------------------------------------------------------------------------------------------


def _guarded(
    items: Iterator[FrameRecord | Rejection], name: str
) -> Iterator[FrameRecord | Rejection]:
    """Turn a failure inside one file into a Rejection so the rest of the upload carries on."""
    try:
        yield from items
    except _Reject as exc:
        yield Rejection(name, str(exc))
    except MemoryError:
        yield Rejection(name, f"{name} needs more memory to decode than is available")
    except Exception as exc:  # hostile input can trip any decoder error; never crash the batch
        yield Rejection(name, f"{name} could not be read ({type(exc).__name__}: {_brief(exc)})")


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


def iter_upload(
    name: str,
    data: bytes | bytearray | memoryview | BinaryIO,
    *,
    every_k: int = 1,
    max_video_frames: int = DEFAULT_MAX_VIDEO_FRAMES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_bytes: int = DEFAULT_MAX_BYTES,
    progress: ProgressCallback | None = None,
) -> Iterator[FrameRecord | Rejection]:
    """Turn one uploaded file into frames, one at a time.

    The type is decided from the content. Images (PNG, JPEG, WebP, BMP; any colour mode, 16-bit
    greyscale scaled to 8 bits, transparency composited over white) give one frame named
    ``name``. Animated GIF/PNG/WebP and videos (MP4, WebM, MOV, MKV, AVI via PyAV) give every
    ``every_k``-th frame, at most ``max_video_frames`` of them, named ``name#index`` where index
    counts frames in the source. A ZIP gives the images inside it (folders inside the archive are
    fine, nested archives and videos are not), named ``name/entry``; nothing is written to disk.

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
        progress: Optional ``progress(done, total_or_None, message)`` callback.

    Returns:
        A generator of :class:`FrameRecord` (``source='upload'``) and :class:`Rejection` items.

    Raises:
        ValueError: If ``every_k`` or ``max_video_frames`` is below 1.
    """
    if every_k < 1:
        raise ValueError(f"every_k must be at least 1, got {every_k}")
    if max_video_frames < 1:
        raise ValueError(f"max_video_frames must be at least 1, got {max_video_frames}")
    return _guarded(
        _iter_upload(name, data, every_k, max_video_frames, max_pixels, max_bytes, progress),
        name,
    )


def _iter_upload(
    name: str,
    data: bytes | bytearray | memoryview | BinaryIO,
    every_k: int,
    max_frames: int,
    max_pixels: int,
    max_bytes: int,
    progress: ProgressCallback | None,
) -> Iterator[FrameRecord | Rejection]:
    if isinstance(data, bytes | bytearray | memoryview):
        size: int | None = len(data)
        fp: BinaryIO = io.BytesIO(data)
    else:
        fp = data
        size = _stream_size(fp)
        if size is None:
            # Not seekable (a pipe): read it, but never more than one byte past the cap.
            buffered = fp.read(max_bytes + 1)
            size = len(buffered)
            fp = io.BytesIO(buffered)
    if size > max_bytes:
        raise _Reject(
            f"{name} is {_human_size(size)}, over the {_human_size(max_bytes)} upload cap"
        )
    start = fp.tell()
    head = fp.read(_HEAD)
    fp.seek(start)
    kind = sniff_kind(head)
    if kind in _PIL_FORMAT:
        yield from _image_frames(
            fp,
            name,
            kind,
            every_k=every_k,
            max_frames=max_frames,
            max_pixels=max_pixels,
            extra=None,
            progress=progress,
        )
    elif kind == "zip":
        yield from _zip_frames(
            fp,
            name,
            every_k=every_k,
            max_frames=max_frames,
            max_pixels=max_pixels,
            max_bytes=max_bytes,
            progress=progress,
        )
    elif kind == "video":
        yield from _video_frames(
            fp,
            name,
            every_k=every_k,
            max_frames=max_frames,
            max_pixels=max_pixels,
            progress=progress,
        )
    else:
        raise _Reject(_not_supported_reason(name, kind))


def _walk_folder(folder: Path) -> list[Path]:
    found: list[Path] = []
    # Symlinked folders are not followed, so a link loop cannot make the walk endless.
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for file in sorted(files):
            if not file.startswith(".") and Path(file).suffix.lower() in SUPPORTED_EXTENSIONS:
                found.append(Path(root) / file)
    return found


def iter_paths(
    paths: Iterable[str | Path],
    *,
    progress: ProgressCallback | None = None,
    **kwargs: int,
) -> Iterator[FrameRecord | Rejection]:
    """Frames from files and folders on disk, for the command line.

    Files are read whatever their extension (the content decides). Folders are walked
    recursively in sorted order, picking files with an image, video or ``.zip`` extension and
    skipping hidden files. A file's frames are named with the path exactly as the user gave it
    (``shots/a.png``, ``clip.mp4#12``); a file found inside a folder is named by joining the
    folder as given with its path relative to that folder.

    Args:
        paths: Files and folders.
        progress: Optional ``progress(done, total_or_None, message)``; counts files when there
            is more than one, otherwise passes through the single file's own progress.
        **kwargs: ``every_k``, ``max_video_frames``, ``max_pixels``, ``max_bytes`` as for
            :func:`iter_upload`.

    Returns:
        A generator of :class:`FrameRecord` and :class:`Rejection` items.
    """
    unknown = set(kwargs) - {"every_k", "max_video_frames", "max_pixels", "max_bytes"}
    if unknown:
        raise TypeError(f"iter_paths() got unexpected keyword arguments: {sorted(unknown)}")
    return _iter_paths(list(paths), progress, kwargs)


def _iter_paths(
    paths: list[str | Path], progress: ProgressCallback | None, kwargs: dict[str, int]
) -> Iterator[FrameRecord | Rejection]:
    # Resolve the list of files first (cheap: names only) so progress can show a total.
    jobs: list[tuple[str, Path | None]] = []
    for given in paths:
        given_str = os.fspath(given)
        path = Path(given_str)
        if path.is_dir():
            for file in _walk_folder(path):
                jobs.append((os.path.join(given_str, os.fspath(file.relative_to(path))), file))
        elif path.is_file():
            jobs.append((given_str, path))
        else:
            jobs.append((given_str, None))
    single = len(jobs) == 1
    for done, (name, file) in enumerate(jobs):
        if progress and not single:
            progress(done, len(jobs), name)
        if file is None:
            yield Rejection(name, f"{name} does not exist or is not a regular file")
            continue
        try:
            handle = file.open("rb")
        except OSError as exc:
            yield Rejection(name, f"{name} could not be opened ({_brief(exc)})")
            continue
        with handle:
            yield from iter_upload(name, handle, progress=progress if single else None, **kwargs)
    if progress and not single:
        progress(len(jobs), len(jobs), "done")
