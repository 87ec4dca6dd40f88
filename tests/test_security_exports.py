"""Exports that leave the studio: CSV formula injection, and the Label page's CSV as `vlmrm epic`
input."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from vlmrm_core.cli.main import main
from vlmrm_core.frames import FrameRecord, pixel_hash
from vlmrm_core.services.labeling import export_bytes
from vlmrm_core.store import add_label, ingest_frames, init_db

FORMULA = '=cmd|" /C calc"!A0'


def _dataset(names: list[str]) -> list[str]:
    records = [
        FrameRecord(np.full((8, 10, 3), 20 * i, np.uint8), "upload", name)
        for i, name in enumerate(names)
    ]
    ingest_frames(init_db(), "d", records)
    return [pixel_hash(r.pixels) for r in records]


def test_label_csv_export_neutralises_formulas(data_dir: Path) -> None:
    hashes = _dataset(["+SUM(A1)", "@x", "plain"])
    for h in hashes:
        add_label(init_db(), "d", h, FORMULA, 1.0)
    add_label(init_db(), "d", hashes[2], "-1+2", 0.0)
    rows = list(csv.DictReader(export_bytes(init_db(), "d", "csv").decode().splitlines()))
    cells = [row[c] for row in rows for c in ("labeler", "frame_name", "dataset")]
    assert not [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r")]
    assert {row["labeler"] for row in rows} == {"'" + FORMULA, "'-1+2"}
    assert {row["frame_name"] for row in rows} == {"'+SUM(A1)", "'@x", "plain"}
    assert {row["value"] for row in rows} == {"1.0", "0.0"}  # numbers stay numbers


def test_epic_accepts_the_label_page_export(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    names = [f"f{i}.png" for i in range(6)]
    hashes = _dataset(names)
    truth = [1.0, 1.0, 1.0, 0.0, 0.0, 0.0]
    for h, y in zip(hashes, truth, strict=True):
        add_label(init_db(), "d", h, "ann", y)
        add_label(init_db(), "d", h, "ben", y)
    add_label(init_db(), "d", hashes[0], "cat", 0.0)  # one dissenter: mean 2/3 for frame 0
    export = tmp_path / "labels-d.csv"
    export.write_bytes(export_bytes(init_db(), "d", "csv"))
    rewards = tmp_path / "rewards.csv"
    rewards.write_text(
        "frame,reward\n"
        + "".join(f"{n},{r}\n" for n, r in zip(names, [3, 2, 1, -1, -2, -3], strict=True))
    )
    capsys.readouterr()
    code = main(
        ["epic", "--rewards", str(rewards), "--labels", str(export), "--json", "--bootstrap", "0"]
    )
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    labels = np.array([2 / 3, 1, 1, 0, 0, 0])
    rho = np.corrcoef([3, 2, 1, -1, -2, -3], labels)[0, 1]
    assert report["n"] == 6
    assert report["epic_distance"] == pytest.approx(np.sqrt((1 - rho) / 2), abs=1e-9)
