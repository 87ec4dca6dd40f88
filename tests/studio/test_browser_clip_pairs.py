"""Issue 20 for clips, in a real browser: Label → Pairs → Clips compares clips of consecutive
frames of episodes with the keyboard (← → E) and undoes one (U); the comparisons are stored
as clips (their length and first memberships). Debian's Chromium against a real
``streamlit run``."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.studio._browser import (
    free_port,
    launch_chromium,
    new_page,
    open_label_page,
    streamlit_server,
    wait_idle,
)
from vlmrm_core.frames import FrameRecord
from vlmrm_core.services.labeling import labeler_seed
from vlmrm_core.services.preferences import candidate_clip_pairs
from vlmrm_core.store import dataset_frames, ingest_frames, init_db
from vlmrm_core.store.comparisons import comparison_history, current_comparisons

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# Clips of the page's default length (8): two per episode, six clips, fifteen pairs.
EPISODES, STEPS, CLIP = 3, 16, 8
KEYS = ("ArrowLeft", "ArrowRight", "e")
CHOICE = {"ArrowLeft": "a", "ArrowRight": "b", "e": "equal"}


@pytest.fixture(scope="module")
def clip_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """The app on a data dir with a rollout-like dataset ``runs``: three episodes of six steps."""
    data = tmp_path_factory.mktemp("clip-pairs-e2e")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VLMRM_DATA_DIR", str(data))
        mp.delenv("VLMRM_DATABASE_URL", raising=False)
        records = [
            FrameRecord(
                np.full((24, 32, 3), 70 * e + 4 * s, np.uint8),
                "rollout",
                f"ep{e} t{s}",
                episode=e,
                step=s,
            )
            for e in range(EPISODES)
            for s in range(STEPS)
        ]
        engine = init_db()
        ingest_frames(engine, "runs", records)
        engine.dispose()
    env = {**os.environ, "VLMRM_DATA_DIR": str(data)}
    env.pop("VLMRM_DATABASE_URL", None)
    with streamlit_server(free_port(), env, data / "streamlit.log") as url:
        yield url, data


def test_three_clip_pairs_with_the_keyboard_and_one_undo(clip_server) -> None:
    url, data = clip_server
    with launch_chromium() as browser:
        page = new_page(browser)
        open_label_page(page, url, "runs", "alice")
        page.get_by_text("Pairs", exact=True).click()  # the mode switch
        wait_idle(page)
        page.get_by_text("Clips", exact=True).click()  # frames or clips
        wait_idle(page)
        page.get_by_text("Pairs done: 0/15").wait_for()
        assert page.get_by_text(f"Left ({CLIP} frames)").count() == 1
        # The keys right after the click: the switch, a button, leaves ← / → to the answers
        # (a segmented control kept the focus and moved it with the arrows).
        for done, key in enumerate(KEYS, start=1):
            page.keyboard.press(key)  # like a person: press, then look at the next pair
            page.get_by_text(f"Pairs done: {done}/15").wait_for()
            wait_idle(page)
        page.keyboard.press("u")
        page.get_by_text("Pairs done: 2/15").wait_for()
        wait_idle(page)

    db = init_db(f"sqlite:///{data / 'vlmrm.db'}")
    asked = candidate_clip_pairs(db, "runs", 50, CLIP, seed=labeler_seed("alice"))
    stored = current_comparisons(db, "runs")
    members = {m.position: m for m in dataset_frames(db, "runs")}
    assert len(asked) == 15  # the page asks the labeller's own shuffle, in this order
    expected = [
        [CLIP, a.position, b.position, CHOICE[key], "alice"]
        for (a, b), key in zip(asked[:2], KEYS[:2], strict=True)
    ]
    columns = ["length", "position_a", "position_b", "choice", "labeler"]
    assert stored[columns].values.tolist() == expected
    # The undone answer (the third pair's "equal") is gone from the history too.
    assert len(comparison_history(db, "runs")) == 2
    for _, row in stored.iterrows():  # each side is a clip start: step 0 or 3, its first frame
        for side in ("a", "b"):
            start = members[int(row[f"position_{side}"])]
            assert start.step in (0, CLIP) and start.hash == row[f"frame_{side}"]
