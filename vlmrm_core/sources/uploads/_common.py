"""What every upload reader shares: the limits, the internal rejection signal, message helpers."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from vlmrm_core.frames import FrameRecord, Rejection

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_DECODE_BYTES",
    "DEFAULT_MAX_FRAME_PIXELS",
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_MAX_VIDEO_FRAMES",
    "Limits",
    "Reject",
    "brief",
    "guarded",
    "human_size",
    "reduction_factor",
]

DEFAULT_MAX_BYTES = 500 * 2**20
"""Largest file accepted; also the cap on the uncompressed bytes read from one ZIP."""
DEFAULT_MAX_PIXELS = 50_000_000
"""Largest width × height accepted, judged from the header before anything is decoded."""
DEFAULT_MAX_FRAME_PIXELS = 4096 * 4096
"""Largest stored frame: bigger images and videos are reduced on load by an integer factor
(CLIP sees 224×224; a labeller's screen a few million pixels)."""
DEFAULT_MAX_DECODE_BYTES = 256 * 2**20
"""Most memory one image may need while it is decoded (before it is reduced); above it the
image is refused, so a server with several uploaders cannot be pushed out of memory."""
DEFAULT_MAX_VIDEO_FRAMES = 300
"""Most frames kept per video or animation."""


@dataclass(frozen=True)
class Limits:
    """The caps one upload is read under (see the ``DEFAULT_*`` constants)."""

    every_k: int = 1
    max_frames: int = DEFAULT_MAX_VIDEO_FRAMES
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_bytes: int = DEFAULT_MAX_BYTES
    max_frame_pixels: int = DEFAULT_MAX_FRAME_PIXELS
    max_decode_bytes: int = DEFAULT_MAX_DECODE_BYTES


class Reject(Exception):
    """Internal: raised where a file or entry must become a Rejection with this reason."""


def human_size(n: int) -> str:
    """Byte count in the largest unit that keeps it at least 1."""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"


def brief(exc: BaseException) -> str:
    """A decoder's error as a short phrase for a rejection reason."""
    # FFmpeg errors carry a clean ``strerror``; their str() adds an errno and '<none>' filename.
    text = getattr(exc, "strerror", None) if type(exc).__module__.startswith("av") else None
    text = (text or str(exc)).strip().rstrip(".") or type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."


def reduction_factor(width: int, height: int, max_frame_pixels: int) -> int:
    """Smallest integer factor that brings width × height to at most ``max_frame_pixels``."""
    factor = 1
    while -(-width // factor) * -(-height // factor) > max_frame_pixels:
        factor += 1
    return factor


def guarded(
    items: Iterator[FrameRecord | Rejection], name: str
) -> Iterator[FrameRecord | Rejection]:
    """Turn a failure inside one file into a Rejection so the rest of the upload carries on."""
    try:
        yield from items
    except Reject as exc:
        yield Rejection(name, str(exc))
    except MemoryError:
        yield Rejection(name, f"{name} needs more memory to decode than is available")
    except Exception as exc:  # hostile input can trip any decoder error; never crash the batch
        yield Rejection(name, f"{name} could not be read ({type(exc).__name__}: {brief(exc)})")
