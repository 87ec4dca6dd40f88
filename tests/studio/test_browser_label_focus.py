"""The Label page's name box in a real browser: after Enter the keyboard labels, it does not
type into the name (no script of ours moves the focus)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tests.studio._browser import wait_idle
from tests.studio.test_browser_e2e import goto_page, make_pngs, page, server  # noqa: F401
from vlmrm_core.frames import FrameRecord
from vlmrm_core.store import current_labels, ingest_frames, init_db

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_keys_after_entering_the_name_label_instead_of_typing(page, server, tmp_path):  # noqa: F811
    records = [
        FrameRecord(np.asarray(Image.open(path).convert("RGB")), "upload", path.name)
        for path in make_pngs(tmp_path)
    ]
    ingest_frames(init_db(server.database_url), "focus", records)
    page.goto(server.url)
    wait_idle(page)
    goto_page(page, "Label")
    page.get_by_role("combobox", name="Dataset").click()
    page.get_by_role("option", name="focus").first.click()
    wait_idle(page)
    name = page.get_by_role("textbox", name="Your name", exact=True)
    name.fill("alice")
    name.press("Enter")
    wait_idle(page)
    assert page.get_by_role("textbox", name="Your name", exact=True).count() == 0
    page.keyboard.press("s")  # a label, not a letter of the name
    page.get_by_text("Yours: 1/4").wait_for()
    wait_idle(page)
    page.keyboard.press("u")  # undo, not "aliceu"
    page.get_by_text("Yours: 0/4").wait_for()
    wait_idle(page)
    page.get_by_text("Labelling as alice").wait_for()
    page.keyboard.press("s")
    page.get_by_text("Yours: 1/4").wait_for()
    labels = current_labels(init_db(server.database_url), "focus")
    assert list(labels["labeler"]) == ["alice"]
