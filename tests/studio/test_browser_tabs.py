"""Pages with tabs, in a real browser: editing a field in a tab keeps that tab open (the page's
rerun must not send the user back to the first tab), also when the page was opened from a deep
link, as a bookmark opens it."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tests.studio._browser import wait_idle
from tests.studio.test_browser_e2e import make_pngs, page, server  # noqa: F401
from vlmrm_core.frames import FrameRecord
from vlmrm_core.store import ingest_frames, init_db

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_a_field_edited_in_a_tab_keeps_its_tab_open(page, server, tmp_path):  # noqa: F811
    records = [
        FrameRecord(np.asarray(Image.open(path).convert("RGB")), "upload", path.name)
        for path in make_pngs(tmp_path)
    ]
    ingest_frames(init_db(server.database_url), "shots", records)  # Browse shows a dataset
    page.goto(f"{server.url.rstrip('/')}/frames")  # a deep link, as a bookmark opens it
    wait_idle(page)
    page.get_by_role("tab", name="LeRobot").click()
    wait_idle(page)
    folder = page.get_by_role("textbox", name="LeRobot dataset folder")
    folder.fill("/no/such/lerobot/folder")
    folder.press("Enter")
    page.get_by_text("is not a LeRobot dataset").wait_for()
    wait_idle(page)
    assert page.get_by_role("tab", selected=True).inner_text() == "LeRobot"
    page.get_by_role("tab", name="Rollout").click()
    wait_idle(page)
    spin = page.get_by_role("spinbutton").locator("visible=true").first
    spin.fill("3")
    spin.press("Enter")
    wait_idle(page)
    assert page.get_by_role("tab", selected=True).inner_text() == "Rollout"


def test_choosing_a_dataset_under_review_keeps_the_review_tab_open(page, server, tmp_path):  # noqa: F811
    records = [
        FrameRecord(np.asarray(Image.open(path).convert("RGB")), "upload", path.name)
        for path in make_pngs(tmp_path)
    ]
    engine = init_db(server.database_url)
    ingest_frames(engine, "first", records)
    ingest_frames(engine, "second", records)
    page.goto(f"{server.url.rstrip('/')}/tasks")
    wait_idle(page)
    page.get_by_role("tab", name="Review and statistics").click()
    wait_idle(page)
    review = page.get_by_role("tabpanel", name="Review and statistics")
    review.get_by_role("combobox", name="Dataset").click()
    choice = "first" if "second" in review.inner_text() else "second"
    page.get_by_role("option", name=choice).click()
    wait_idle(page)
    assert page.get_by_role("tab", selected=True).inner_text() == "Review and statistics"
