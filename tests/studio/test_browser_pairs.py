"""Issue 20's done-when: in a real browser, Label → Pairs compares ten pairs with the keyboard
(← → E) and undoes one (U); the comparisons are stored under the typed name."""

from __future__ import annotations

import numpy as np
import pytest

from tests.studio._browser import open_label_page, wait_idle
from tests.studio.test_browser_e2e import page, server  # noqa: F401
from vlmrm_core.frames import FrameRecord
from vlmrm_core.store import ingest_frames, init_db
from vlmrm_core.store.comparisons import comparison_history, current_comparisons

pytestmark = [pytest.mark.browser, pytest.mark.slow]

KEYS = ("ArrowLeft", "ArrowRight", "e", "ArrowLeft", "ArrowRight") * 2
CHOICE = {"ArrowLeft": "a", "ArrowRight": "b", "e": "equal"}


def test_ten_pairs_with_the_keyboard_and_one_undo(page, server):  # noqa: F811
    records = [
        FrameRecord(np.full((24, 32, 3), 20 * i, np.uint8), "upload", f"pair{i}.png")
        for i in range(6)
    ]  # six frames: fifteen pairs
    ingest_frames(init_db(server.database_url), "pairs", records)
    open_label_page(page, server.url, "pairs", "alice")
    page.get_by_text("Pairs", exact=True).click()  # the mode switch
    wait_idle(page)
    page.get_by_text("Pairs done: 0/15").wait_for()
    # The keys right after the click: the switch, a button, leaves ← / → to the answers.
    for done, key in enumerate(KEYS, start=1):
        page.keyboard.press(key)  # like a person: press, then look at the next pair
        page.get_by_text(f"Pairs done: {done}/15").wait_for()
        wait_idle(page)
    page.keyboard.press("u")
    page.get_by_text("Pairs done: 9/15").wait_for()
    wait_idle(page)

    db = init_db(server.database_url)
    stored = current_comparisons(db, "pairs")
    assert list(stored["choice"]) == [CHOICE[k] for k in KEYS[:9]]
    assert set(stored["labeler"]) == {"alice"}
    assert len(comparison_history(db, "pairs")) == 9  # the undone answer is gone
