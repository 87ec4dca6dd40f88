"""``vlmrm frames``: what the import prints, and ``vlmrm frames gc``."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vlmrm_core.cli.main import main


def test_control_characters_in_zip_entry_names_are_not_printed_raw(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    png = io.BytesIO()
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(png, "PNG")
    archive = tmp_path / "shots.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("ok.png", png.getvalue())
        zf.writestr("\x1b[2J\x1b[31mevil\x07.txt", b"not an image at all, just some text here")
    assert main(["frames", "import", str(archive), "--dataset", "d"]) == 0
    out, err = capsys.readouterr()
    assert "1 imported" in out and "1 rejected" in out
    assert "\x1b" not in err and "\x07" not in err
    assert "\\x1b[2J\\x1b[31mevil\\x07.txt" in err


def test_frames_gc_on_a_clean_store(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["frames", "gc"]) == 0
    assert "0 frame files without a row removed" in capsys.readouterr().out
