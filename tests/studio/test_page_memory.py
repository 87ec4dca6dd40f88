"""What the studio remembers when the user moves between pages (the multipage app under AppTest):
the labeller's name, the dataset in use, and Prompt Lab's overlay and prompt-set name."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from tests.studio._pages import STUDIO
from vlmrm_core.frames import FrameRecord
from vlmrm_core.store import ingest_frames, init_db, list_datasets

LABEL, FRAMES, LAB = "views/label/page.py", "views/frames/page.py", "views/prompt_lab/page.py"


@pytest.fixture
def app(data_dir: Path, tiny_checkpoint: Path) -> AppTest:
    """The whole app with two datasets and the tiny model offered first."""
    models = data_dir / "models"
    models.mkdir()
    shutil.copy(tiny_checkpoint, models / tiny_checkpoint.name)
    for offset, name in ((0, "older"), (100, "newer")):
        records = [
            FrameRecord(
                pixels=np.full((12, 16, 3), offset + 30 * i, np.uint8),
                source="upload",
                name=f"{name}{i}.png",
            )
            for i in range(3)
        ]
        ingest_frames(init_db(), name, records)
    at = AppTest.from_file(str(STUDIO / "streamlit_app.py"), default_timeout=240)
    at.session_state["demo_checked"] = True  # no demo datasets: only the two above
    return at


def _ok(at: AppTest) -> AppTest:
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_label_opens_on_the_dataset_in_use_and_keeps_the_name(app: AppTest) -> None:
    other = [d.name for d in list_datasets(init_db())][1]  # not the pickers' first entry
    _ok(app.run())
    _ok(app.switch_page(LAB).run())
    _ok(app.selectbox(key="lab-dataset").select(other).run())

    _ok(app.switch_page(LABEL).run())
    assert app.selectbox(key="label-dataset").value == other  # not the newest
    _ok(app.text_input(key="label-name").input("alice").run())

    _ok(app.switch_page(FRAMES).run())
    assert app.selectbox(key="frames-dataset").value == other
    _ok(app.switch_page(LABEL).run())
    assert any("alice" in m.value for m in app.markdown), [m.value for m in app.markdown]
    assert "1/3" not in " ".join(p.proto.text for p in app.get("progress"))
    assert any("Yours: 0/3" in p.proto.text for p in app.get("progress"))
    app.button(key="label-change-name").click().run()
    assert app.text_input(key="label-name").value == "alice"  # the box comes back, filled


def test_prompt_lab_keeps_the_overlay_and_the_prompt_set_name(app: AppTest) -> None:
    _ok(app.run())
    _ok(app.switch_page(LAB).run())
    _ok(app.text_area(key="lab-goal").input("a bright square").run())
    _ok(app.multiselect(key="lab-alphas").set_value([0.0, 1.0]).run())
    _ok(app.text_input(key="lab-save-name").input("my set").run())

    _ok(app.switch_page(LABEL).run())
    _ok(app.switch_page(LAB).run())
    assert app.multiselect(key="lab-alphas").value == [0.0, 1.0]
    assert app.text_input(key="lab-save-name").value == "my set"
