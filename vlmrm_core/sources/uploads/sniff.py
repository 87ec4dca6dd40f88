"""Deciding what a file is from its first bytes, never from its extension alone."""

from __future__ import annotations

__all__ = [
    "ARCHIVE_EXTENSIONS",
    "HEAD_BYTES",
    "IMAGE_EXTENSIONS",
    "PIL_FORMATS",
    "SUPPORTED_EXTENSIONS",
    "SUPPORTED_HINT",
    "VIDEO_EXTENSIONS",
    "not_supported_reason",
    "sniff_kind",
]

SUPPORTED_HINT = "upload PNG, JPEG, WebP, BMP, GIF, a ZIP of images, or MP4/WebM video"

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif"})
VIDEO_EXTENSIONS = frozenset({".mp4", ".m4v", ".webm", ".mov", ".mkv", ".avi"})
ARCHIVE_EXTENSIONS = frozenset({".zip"})
SUPPORTED_EXTENSIONS = IMAGE_EXTENSIONS | VIDEO_EXTENSIONS | ARCHIVE_EXTENSIONS
"""Extensions :func:`iter_paths` picks up when it walks a folder (content still decides the type)."""

HEAD_BYTES = 64
"""How many bytes of a file :func:`sniff_kind` needs to decide what it is."""

PIL_FORMATS = {"png": "PNG", "jpeg": "JPEG", "gif": "GIF", "webp": "WEBP", "bmp": "BMP"}
"""Image kinds read with Pillow, and Pillow's name for each."""

_VIDEO_ISO_BOXES = frozenset({b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip", b"pnot"})
# ISO-BMFF brands that are still images, not videos (HEIC/AVIF photos from phones).
_STILL_IMAGE_BRANDS = frozenset(
    {b"heic", b"heix", b"heim", b"heis", b"mif1", b"msf1", b"avif", b"avis"}
)


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


def not_supported_reason(name: str, kind: str) -> str:
    what = {
        "empty": "is empty",
        "text": "is not an image (looks like text)",
        "pdf": "is a PDF document, not an image",
        "tiff": "is a TIFF image, which is not supported",
        "heic": "is a HEIC/AVIF image, which is not supported (convert it to JPEG or PNG)",
        "unknown": "is not a supported image, archive or video",
    }[kind]
    return f"{name} {what}; {SUPPORTED_HINT}"
