"""Helpers shared by the command modules: input files, score CSVs and the progress bar.

Kept below every command module (they all may import it; it imports none of them), so the
command modules never import each other's private helpers.
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vlmrm_core.errors import CliError
from vlmrm_core.security import csv_safe_cell

if TYPE_CHECKING:
    from tqdm import tqdm

    from vlmrm_core.frames import ProgressCallback


def file_items(inputs: Sequence[str], names: list[str]) -> Iterator[tuple[str, Any]]:
    """(pixel hash, pixels) of every image and video frame under ``inputs``, appending each
    frame's name to ``names``; a missing path or a file that is not an image is a CliError."""
    from vlmrm_core.frames import Rejection
    from vlmrm_core.sources.uploads import iter_paths

    for path in inputs:
        if not Path(path).exists():
            raise CliError(f"{path}: no such file or folder")
    for item in iter_paths(inputs):
        if isinstance(item, Rejection):
            raise CliError(f"{item.name}: {item.reason}")
        names.append(item.name or "")
        yield item.hash, item.pixels


def write_scores_csv(out: Path | None, names: list[str], rewards: Any, probability: Any) -> None:
    """Scores as CSV (frame, reward[, probability]) to ``out`` (written whole, then renamed)
    or to stdout; names are made safe for spreadsheets."""
    header = ["frame", "reward"] + (["probability"] if probability is not None else [])
    rows = []
    for i, name in enumerate(names):
        row = [csv_safe_cell(name), f"{float(rewards[i]):.8g}"]  # no spreadsheet formulas
        if probability is not None:
            row.append(f"{float(probability[i]):.8g}")
        rows.append(row)
    if out is None:
        writer = csv.writer(sys.stdout)
        writer.writerow(header)
        writer.writerows(rows)
        return
    tmp = out.with_name(out.name + ".partial")
    with tmp.open("w", newline="") as fh:  # written whole, then renamed: no half-written output
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    tmp.replace(out)
    print(f"wrote {len(rows)} rows to {out}", file=sys.stderr)


class progress_bar:  # noqa: N801  (used like a function: `with progress_bar(...)`)
    """A tqdm bar on stderr when it is a terminal; a ProgressCallback for the library."""

    def __init__(self, total: int | None, desc: str) -> None:
        self.total, self.desc = total, desc
        self.bar: tqdm | None = None

    def __enter__(self) -> ProgressCallback:
        from tqdm import tqdm

        bar = self.bar = tqdm(
            total=self.total, desc=self.desc, unit="frame", disable=not sys.stderr.isatty()
        )

        def update(done: int, total: int | None, message: str) -> None:
            if total is not None and bar.total != total:
                bar.total = total
            bar.update(done - bar.n)

        return update

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()
