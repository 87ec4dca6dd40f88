"""Frames from files the user uploads: images, GIFs, ZIP archives of images, and videos.

Every upload is treated as hostile:

- :mod:`.sniff`: the file type is decided from its first bytes, never from the extension alone.
- :mod:`.images`: opened lazily with Pillow (header only), so the size is checked against a pixel
  cap before anything is decoded; decoded within a memory budget and reduced on load to the
  stored-frame size.
- :mod:`.archives`: ZIP archives are read entry by entry with a cap on the uncompressed bytes;
  nothing is extracted, so entry names such as ``../evil.png`` are only display names.
- :mod:`.video`: videos are decoded as a stream, one frame held at a time.
- :mod:`.files`: the entry points; only regular files are read from disk (never a FIFO).

Anything that cannot become a frame is reported as a :class:`~vlmrm_core.frames.Rejection`
with a one-sentence reason, and the rest of the upload carries on.
"""

from vlmrm_core.sources.uploads._common import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_DECODE_BYTES,
    DEFAULT_MAX_FRAME_PIXELS,
    DEFAULT_MAX_PIXELS,
    DEFAULT_MAX_VIDEO_FRAMES,
)
from vlmrm_core.sources.uploads.files import iter_paths, iter_upload
from vlmrm_core.sources.uploads.sniff import (
    ARCHIVE_EXTENSIONS,
    IMAGE_EXTENSIONS,
    SUPPORTED_EXTENSIONS,
    SUPPORTED_HINT,
    VIDEO_EXTENSIONS,
    sniff_kind,
)

__all__ = [
    "ARCHIVE_EXTENSIONS",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_DECODE_BYTES",
    "DEFAULT_MAX_FRAME_PIXELS",
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_MAX_VIDEO_FRAMES",
    "IMAGE_EXTENSIONS",
    "SUPPORTED_EXTENSIONS",
    "SUPPORTED_HINT",
    "VIDEO_EXTENSIONS",
    "iter_paths",
    "iter_upload",
    "sniff_kind",
]
