"""The Label page's name box in a real browser: after Enter the keyboard labels, it does not
type into the name (no script of ours moves the focus)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tests.studio._browser import open_label_page, wait_idle
from tests.studio.test_browser_e2e import make_pngs, page, server  # noqa: F401
from vlmrm_core.frames import FrameRecord
from vlmrm_core.store import current_labels, dataset_frames, ingest_frames, init_db

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_keys_after_entering_the_name_label_instead_of_typing(page, server, tmp_path):  # noqa: F811
    records = [
        FrameRecord(np.asarray(Image.open(path).convert("RGB")), "upload", path.name)
        for path in make_pngs(tmp_path)
    ]
    ingest_frames(init_db(server.database_url), "focus", records)
    open_label_page(page, server.url, "focus", "alice")
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


def test_keys_right_after_choosing_an_order_label(page, server, tmp_path):  # noqa: F811
    """The Order switch is buttons: a clicked radio kept the focus, and Streamlit ignored the
    page's shortcuts until the user clicked elsewhere."""
    records = [
        FrameRecord(np.asarray(Image.open(path).convert("RGB")), "upload", path.name)
        for path in make_pngs(tmp_path)
    ]
    ingest_frames(init_db(server.database_url), "order", records)
    open_label_page(page, server.url, "order", "bob")
    page.get_by_text("sequential", exact=True).click()  # the Order switch
    wait_idle(page)
    page.keyboard.press("f")  # at once: no click beside the switch first
    page.get_by_text("Yours: 1/4").wait_for()
    wait_idle(page)
    labels = current_labels(init_db(server.database_url), "order")
    first = dataset_frames(init_db(server.database_url), "order")[0].hash
    assert labels[["frame_hash", "labeler", "value"]].values.tolist() == [[first, "bob", 0.0]]


def test_keys_right_after_switching_back_to_the_label_view(page, server, tmp_path):  # noqa: F811
    """The View switch is buttons too: after Agreement & export → Label, keys label at once."""
    records = [
        FrameRecord(np.asarray(Image.open(path).convert("RGB")), "upload", path.name)
        for path in make_pngs(tmp_path)
    ]
    ingest_frames(init_db(server.database_url), "views", records)
    open_label_page(page, server.url, "views", "carol")
    page.get_by_role("button", name="Agreement & export", exact=True).click()
    wait_idle(page)
    page.get_by_role("button", name="Label", exact=True).click()  # back to labelling
    wait_idle(page)
    page.keyboard.press("s")  # at once: no click elsewhere first
    page.get_by_text("Yours: 1/4").wait_for()
    labels = current_labels(init_db(server.database_url), "views")
    assert labels[["labeler", "value"]].values.tolist() == [["carol", 1.0]]
