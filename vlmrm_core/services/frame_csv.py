"""CSV files of one number per frame (``frame,reward`` or ``frame,label``), read strictly, and
the frame names in them.

A UTF-8 byte-order mark is accepted; bytes that are not UTF-8, a missing column, a value that is
not a finite number and a frame listed twice are errors naming the line, so nothing is resolved
silently. Labels come in two
formats, both read by :func:`read_label_rows`: ``frame,label`` and the Label page's export.
Frame names are matched to frames by :func:`resolve_frame_names` (``vlmrm labels import`` and
``vlmrm epic``), which accepts any name that is unambiguous (a unique file name or end of a
path) and, when it refuses one, shows what the names look like.
"""

from __future__ import annotations

import codecs
import csv
import io
import math
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from vlmrm_core.errors import CliError
from vlmrm_core.security import FORMULA_PREFIXES


@contextmanager
def csv_rows(path: Path) -> Iterator[tuple[list[str], Iterator[tuple[int, dict[str, str]]]]]:
    """Open a CSV for strict reading: its column names (spaces stripped) and its rows, each with
    its line in the file (the header is line 1). A UTF-8 byte-order mark is accepted.

    Raises:
        CliError: no such file, bytes that are not UTF-8 (naming their line), or a line the
            csv module cannot parse (e.g. a NUL byte).
    """
    if not path.is_file():
        raise CliError(f"{path}: no such file")
    reader = csv.DictReader(io.StringIO(_utf8_text(path), newline=""))
    try:
        fields = [f.strip() for f in reader.fieldnames or []]
        reader.fieldnames = fields
        yield fields, enumerate(reader, start=2)
    except csv.Error as exc:  # raised while the caller iterates the rows
        raise CliError(
            f"{path} line {reader.line_num}: {exc}; is it a CSV file with one row per line?"
        ) from None


def _utf8_text(path: Path) -> str:
    """The file decoded as UTF-8 (a byte-order mark dropped); whole, so that a bad byte is
    reported with its line rather than wherever a read buffer happened to end.

    Raises:
        CliError: bytes that are not UTF-8, naming the first one's line.
    """
    data = path.read_bytes()
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise CliError(
            f"{path} line {line}: byte 0x{data[exc.start]:02x} is not UTF-8 text; save it as "
            "UTF-8 (in a spreadsheet: CSV UTF-8)"
        ) from None


def csv_number(path: Path, line: int, row: dict[str, str], column: str, hint: str = "") -> float:
    """The finite number in ``column`` of a CSV row.

    Raises:
        CliError: the cell is empty, not a number, or NaN or infinite (naming the line;
            ``hint`` is appended).
    """
    cell = row.get(column)
    try:
        value = float(cell or "")
    except ValueError:
        raise CliError(f"{path} line {line}: {column} {cell!r} is not a number{hint}") from None
    if not math.isfinite(value):
        raise CliError(
            f"{path} line {line}: {column} {cell!r} is not a finite number{hint}; write a "
            "number or leave the frame out"
        )
    return value


def read_frame_column(
    path: Path, column: str, *, meaning: str = ""
) -> list[tuple[int, str, float]]:
    """Rows ``(line, frame, value)`` of a CSV with columns ``frame`` and ``column``.

    Args:
        path: the CSV file.
        column: the value column, e.g. ``reward`` or ``label``.
        meaning: a hint added to the "not a number" message, e.g. ``"(1 success, 0 failure)"``.

    Raises:
        CliError: a missing file or column, an empty frame, a value that is not a number, a
            frame listed twice, or no rows at all.
    """
    rows: list[tuple[int, str, float]] = []
    seen: dict[str, int] = {}
    with csv_rows(path) as (fields, lines):
        if "frame" not in fields or column not in fields:
            raise CliError(
                f"{path} needs columns 'frame' and '{column}' (found: {', '.join(fields) or 'none'})"
            )
        for line, row in lines:
            frame = (row.get("frame") or "").strip()
            if not frame:
                raise CliError(f"{path} line {line}: the frame column is empty")
            value = csv_number(path, line, row, column, f" {meaning}" if meaning else "")
            if frame in seen:
                raise CliError(
                    f"{path} lists frame {frame!r} twice (lines {seen[frame]} and {line}): "
                    f"keep one {column} per frame"
                )
            seen[frame] = line
            rows.append((line, frame, value))
    if not rows:
        raise CliError(f"{path} has no {column} rows")
    return rows


LABEL_EXPORT_COLUMNS = ("frame_hash", "frame_name", "labeler", "value")
"""Columns that mark the Label page's CSV export (one row per labeller and frame)."""


@dataclass(frozen=True)
class LabelRow:
    """One label read from a CSV: a ``frame,label`` file or the Label page's export."""

    line: int
    """Line of the file (the header is line 1), for messages."""
    frame: str
    """The frame as the file names it: its name, or its pixel hash."""
    value: float
    frame_hash: str | None = None
    """The pixel hash, where the file gives it (the export does)."""
    labeler: str | None = None
    """Whose label it is, where the file says (the export does)."""


def read_label_rows(path: Path) -> list[LabelRow]:
    """The labels of a CSV, whichever of the two label formats it is in.

    A file with the columns of :data:`LABEL_EXPORT_COLUMNS` is the Label page's export: one row
    per labeller and frame, with the frame's hash and name (its spreadsheet-safety apostrophe
    removed). Any other file is read as ``frame,label`` (:func:`read_frame_column`).

    Raises:
        CliError: a missing file or column, a value that is not a number, an empty frame, a
            frame listed twice (``frame,label``) or a labeller listed twice for one frame.
    """
    with csv_rows(path) as (fields, lines):
        if not set(LABEL_EXPORT_COLUMNS) <= set(fields):
            return [
                LabelRow(line, frame, value)
                for line, frame, value in read_frame_column(
                    path, "label", meaning="(1 success, 0 failure)"
                )
            ]
        rows: list[LabelRow] = []
        seen: dict[tuple[str, str], int] = {}
        for line, row in lines:
            frame_hash = (row.get("frame_hash") or "").strip()
            labeler = _unquote_cell((row.get("labeler") or "").strip())
            if not frame_hash:
                raise CliError(f"{path} line {line}: the frame_hash column is empty")
            value = csv_number(path, line, row, "value")
            if (frame_hash, labeler) in seen:
                raise CliError(
                    f"{path} lists labeller {labeler!r} twice for frame {frame_hash[:12]}… "
                    f"(lines {seen[frame_hash, labeler]} and {line}): keep one label each"
                )
            seen[frame_hash, labeler] = line
            name = _unquote_cell((row.get("frame_name") or "").strip())
            rows.append(LabelRow(line, name or frame_hash, value, frame_hash, labeler or None))
    if not rows:
        raise CliError(f"{path} has no label rows")
    return rows


def consensus_by_frame(rows: Sequence[LabelRow]) -> dict[str, float]:
    """Frame → label: the mean of its labellers' labels (the Evaluate page's rule).

    Keyed by the frame as the file names it (its name, or its hash when it has none).
    """
    per_frame: dict[str, list[float]] = {}
    for row in rows:
        per_frame.setdefault(row.frame, []).append(row.value)
    return {frame: sum(values) / len(values) for frame, values in per_frame.items()}


def _unquote_cell(text: str) -> str:
    """Undo :func:`~vlmrm_core.security.csv_safe_cell`: ``'=x`` was written for ``=x``."""
    if text.startswith("'") and text[1:].startswith(FORMULA_PREFIXES):
        return text[1:]
    return text


# --------------------------------------------------------------------------- frame names


class FrameNameError(CliError):
    """A frame name in a file matches no frame, or several; the message shows the expected names."""


@dataclass
class NameMatch:
    """What :func:`match_frame_names` found for each wanted name."""

    found: dict[str, str] = field(default_factory=dict)
    """Wanted name → key of the one frame it names."""
    unknown: list[str] = field(default_factory=list)
    """Wanted names that match no frame."""
    ambiguous: dict[str, list[str]] = field(default_factory=dict)
    """Wanted name → the (sorted) names of the frames it could mean."""


def _normalise(name: str) -> str:
    name = name.strip().replace("\\", "/")
    while name.startswith("./"):
        name = name[2:]
    return name


def _tails(name: str) -> list[str]:
    """``a/b/c.png`` → ``a/b/c.png``, ``b/c.png``, ``c.png`` (ends on ``/`` boundaries)."""
    parts = name.split("/")
    return ["/".join(parts[i:]) for i in range(len(parts)) if parts[i]]


def match_frame_names(wanted: Iterable[str], frames: Iterable[tuple[str, str]]) -> NameMatch:
    """Find the frame each wanted name means, tolerating how a path was typed.

    A wanted name means the frame with exactly that name; failing that, the frames whose name
    ends with it (``f0.png`` or ``run1/f0.png`` for ``shots/run1/f0.png``) or whose name it ends
    with (``/data/shots/f0.png`` for ``f0.png``: a name written by an older version, or by
    ``vlmrm score`` on a folder), on whole path components. It is found only if that gives
    one frame; several make it ambiguous. A spreadsheet-safety apostrophe (``'=x``) is ignored.

    Args:
        wanted: names as a file gives them.
        frames: ``(name, key)`` for every known frame name (and pixel hash, if those may be
            used); the key identifies the frame (its hash), and several names may share one.

    Returns:
        The found, unknown and ambiguous names.
    """
    exact: dict[str, set[str]] = {}
    for name, key in frames:
        exact.setdefault(_normalise(name), set()).add(key)
    by_tail: dict[str, set[str]] = {}
    for name in exact:
        for tail in _tails(name):
            by_tail.setdefault(tail, set()).add(name)
    match = NameMatch()
    for original in wanted:
        name = _normalise(_unquote_cell(original.strip()))
        if name in exact:
            candidates = {name}
        else:
            candidates = set(by_tail.get(name, ())) | {t for t in _tails(name) if t in exact}
        keys = {key for c in candidates for key in exact[c]}
        if len(keys) == 1:
            match.found[original] = keys.pop()
        elif keys:
            match.ambiguous[original] = sorted(candidates)
        else:
            match.unknown.append(original)
    return match


def _is_hash(name: str) -> bool:
    return len(name) == 64 and all(c in "0123456789abcdef" for c in name)


def name_examples(names: Iterable[str], n: int = 3, *, hide_hashes: bool = True) -> str:
    """A few names quoted for a message: ``'a.png', 'b.png', …`` (pixel hashes left out)."""
    listed = sorted({name for name in names if not (hide_hashes and _is_hash(name))})
    shown = ", ".join(repr(name) for name in listed[:n])
    return shown + (", …" if len(listed) > n else "") if shown else "(no named frames)"


def resolve_frame_names(
    wanted: Sequence[str], frames: Sequence[tuple[str, str]], *, source: str, where: str
) -> dict[str, str]:
    """Each wanted name's frame key (:func:`match_frame_names`), or one error for the misses.

    Args:
        wanted: names as ``source`` gives them.
        frames: ``(name or hash, frame key)`` pairs of the known frames.
        source: the file the names come from, for the message.
        where: what the frames belong to, e.g. ``"dataset 'd'"``.

    Raises:
        FrameNameError: some names match no frame or several; the message shows examples of
            the names that would match.
    """
    match = match_frame_names(wanted, frames)
    check_matched(match, [name for name, _ in frames], source=source, where=where)
    return match.found


def check_matched(
    match: NameMatch,
    known: Iterable[str],
    *,
    source: str,
    where: str,
    allow_unknown: bool = False,
) -> None:
    """Refuse a :class:`NameMatch` with an ambiguous or (unless allowed) unknown name, showing
    the expected names.

    Raises:
        FrameNameError: naming the first ambiguous name and its candidates, or the unknown
            names with examples of the ``known`` names.
    """
    if match.ambiguous:
        name, candidates = next(iter(match.ambiguous.items()))
        raise FrameNameError(
            f"{source}: frame {name!r} could mean several frames of {where} (named "
            f"{name_examples(candidates)}); write more of its name, or its pixel hash"
        )
    if match.unknown and not allow_unknown:
        raise FrameNameError(
            f"{source}: {len(match.unknown)} frame(s) are not in {where}: "
            f"{name_examples(match.unknown, hide_hashes=False)}; its frames are named like {name_examples(known)} "
            "(a unique end of a name, such as the file name, is enough, or the pixel hash)"
        )
