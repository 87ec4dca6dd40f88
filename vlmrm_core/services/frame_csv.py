"""CSV files of one number per frame (``frame,reward`` or ``frame,label``), read strictly.

A UTF-8 byte-order mark is accepted; a missing column, a value that is not a number and a frame
listed twice are errors naming the line, so nothing is resolved silently.
"""

from __future__ import annotations

import csv
from pathlib import Path

from vlmrm_core.errors import CliError


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
    if not path.is_file():
        raise CliError(f"{path}: no such file")
    rows: list[tuple[int, str, float]] = []
    seen: dict[str, int] = {}
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        fields = [f.strip() for f in reader.fieldnames or []]
        reader.fieldnames = fields
        if "frame" not in fields or column not in fields:
            raise CliError(
                f"{path} needs columns 'frame' and '{column}' (found: {', '.join(fields) or 'none'})"
            )
        for line, row in enumerate(reader, start=2):
            frame = (row.get("frame") or "").strip()
            if not frame:
                raise CliError(f"{path} line {line}: the frame column is empty")
            try:
                value = float(row.get(column) or "")
            except ValueError:
                hint = f" {meaning}" if meaning else ""
                raise CliError(
                    f"{path} line {line}: {column} {row.get(column)!r} is not a number{hint}"
                ) from None
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
