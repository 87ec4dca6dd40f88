"""ZIP archives of images, read entry by entry with a cap on the uncompressed bytes.

Nothing is ever extracted under an entry's name: entry names such as ``../evil.png`` are only
display names. Entry data is read through the decompressor up to the remaining byte budget (the
declared sizes can lie) into a spooled temporary file, so a large entry costs disk (in the data
directory), not memory.
"""

from __future__ import annotations

import io
import os
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, BinaryIO, cast

from vlmrm_core.frames import FrameRecord, ProgressCallback, Rejection
from vlmrm_core.sources.uploads._common import Limits, Reject, brief, guarded, human_size
from vlmrm_core.sources.uploads.images import image_frames
from vlmrm_core.sources.uploads.sniff import (
    HEAD_BYTES,
    PIL_FORMATS,
    SUPPORTED_HINT,
    not_supported_reason,
    sniff_kind,
)

__all__ = ["zip_frames"]

# A ZIP whose central directory lists more entries than this is refused outright: parsing and
# iterating millions of (possibly empty) entries is itself a denial of service.
_MAX_ZIP_ENTRIES = 100_000
_JUNK_PREFIXES = ("__MACOSX/",)
_IN_MEMORY = 16 * 2**20
"""Entries up to this many bytes stay in memory; larger ones spill to a temporary file."""
_CHUNK = 2**20


def _spool_dir() -> Path:
    """Where large entries spill: the imports' temporary area inside the data directory.

    Like the frames an import stages, never the system's temporary folder: that may be a small
    RAM disk, and the deployment sized (and cleans) the data directory for uploads.
    """
    from vlmrm_core.settings import get_settings
    from vlmrm_core.store.ingest import INCOMING_DIR

    folder = get_settings().frames_dir / INCOMING_DIR
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _spool(head: bytes, member: IO[bytes], limit: int) -> IO[bytes]:
    """``head`` plus at most ``limit`` more bytes of ``member``: in memory up to ``_IN_MEMORY``
    bytes, past that in a temporary file in :func:`_spool_dir`.

    The file has no name (or one removed when it is closed), so nothing is left behind, whatever
    happens to the import; the folder is only created for an entry that needs it.
    """
    out: IO[bytes] = io.BytesIO()
    out.write(head)
    size = len(head)
    while limit > 0:
        chunk = member.read(min(_CHUNK, limit))
        if not chunk:
            break
        size += len(chunk)
        if size > _IN_MEMORY and isinstance(out, io.BytesIO):
            spilled = tempfile.TemporaryFile(prefix=".vlmrm-zip-entry-", dir=_spool_dir())  # noqa: SIM115
            spilled.write(out.getbuffer())
            out = spilled
        out.write(chunk)
        limit -= len(chunk)
    out.seek(0)
    return out


def zip_frames(
    fp: BinaryIO,
    name: str,
    limits: Limits,
    *,
    progress: ProgressCallback | None,
    frame_prefix: str = "",
) -> Iterator[FrameRecord | Rejection]:
    """The images inside a ZIP archive, entry by entry.

    Frames are named ``frame_prefix + entry``: by their path inside the archive when the archive
    is what was imported (an empty prefix), like the files of an imported folder. Rejections
    name the entry as ``name/entry`` so the user can tell which archive it came from.
    """
    max_bytes = limits.max_bytes
    try:
        archive = zipfile.ZipFile(fp)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
        raise Reject(f"{name} is not a readable ZIP archive ({brief(exc)})") from None
    with archive:
        infos = archive.infolist()
        if len(infos) > _MAX_ZIP_ENTRIES:
            raise Reject(
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
                    f"{name} expands to more than the {human_size(max_bytes)} cap on uncompressed "
                    f"data (possible zip bomb); stopped before {info.filename}",
                )
                break
            try:
                with archive.open(info) as member:
                    head = member.read(HEAD_BYTES)
                    kind = sniff_kind(head)
                    if kind not in PIL_FORMATS:
                        reason = zip_entry_reason(entry_name, kind)
                        budget -= len(head)
                        yield Rejection(entry_name, reason)
                        continue
                    # Read at most one byte past the budget: the declared size can lie, but the
                    # number of bytes the decompressor hands us cannot. Large entries spill from
                    # memory to a temporary file, so the budget is disk, not RAM.
                    data = _spool(head, member, budget - len(head) + 1)
            except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, ValueError) as exc:
                yield Rejection(entry_name, f"{entry_name} could not be read ({brief(exc)})")
                continue
            size = data.seek(0, io.SEEK_END)
            data.seek(0)
            if size > budget:
                data.close()
                yield Rejection(
                    name,
                    f"{name} expands to more than the {human_size(max_bytes)} cap on uncompressed "
                    f"data (possible zip bomb); stopped at {info.filename}",
                )
                break
            budget -= size
            with data:
                for item in guarded(
                    image_frames(
                        cast(BinaryIO, data),
                        frame_prefix + info.filename,
                        kind,
                        limits,
                        extra={"archive": name, "entry": info.filename},
                        progress=None,
                    ),
                    entry_name,
                ):
                    if isinstance(item, FrameRecord):
                        n_frames += 1
                    yield item
        if progress:
            progress(total, total, name)
        if n_frames == 0:
            yield Rejection(
                name,
                f"{name} contains no images; put PNG, JPEG, WebP, BMP or GIF files in the archive",
            )


def zip_entry_reason(entry_name: str, kind: str) -> str:
    if kind == "zip":
        return f"{entry_name} is a ZIP inside a ZIP; nested archives are not supported"
    if kind == "video":
        return f"{entry_name} is a video inside a ZIP; upload videos directly, not in an archive"
    return not_supported_reason(entry_name, kind).replace(SUPPORTED_HINT, "skipped it")
