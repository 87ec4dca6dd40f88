"""Label → Pairs in a real browser (issue 20): after a click on the mode switch or the order
switch, ← / → still answer the pair (they were radios, which keep the focus and take the
arrows); a saved judge is asked for suggestions from the page, and its suggestion shows under the
pair only once "Show judge suggestions" is on. Debian's Chromium against a real ``streamlit
run``."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.judge._tiny_judges import write_qwen2_5_vl
from tests.studio._browser import (
    free_port,
    launch_chromium,
    new_page,
    open_label_page,
    streamlit_server,
    wait_idle,
)
from tests.studio._judges import QUESTION
from vlmrm_core.frames import FrameRecord
from vlmrm_core.store import init_db
from vlmrm_core.store.comparisons import current_comparisons, is_machine_labeler

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def pair_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """The app on a data dir with six frames (``pairs``) and a saved tiny random-init judge."""
    from vlmrm_core.services.judge_scores import JudgeRequest, load_judge_reward
    from vlmrm_core.services.saved_judges import save_judge
    from vlmrm_core.store import ingest_frames

    data = tmp_path_factory.mktemp("pair-judge-e2e")
    judge = write_qwen2_5_vl(tmp_path_factory.mktemp("pair-judge-model") / "tiny-qwen")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VLMRM_DATA_DIR", str(data))
        mp.delenv("VLMRM_DATABASE_URL", raising=False)
        records = [
            FrameRecord(np.full((24, 32, 3), 20 * i, np.uint8), "upload", f"pair{i}.png")
            for i in range(6)
        ]  # six frames: fifteen pairs
        engine = init_db()
        ingest_frames(engine, "pairs", records)
        engine.dispose()
        reward = load_judge_reward(JudgeRequest(str(judge), QUESTION), device="cpu")
        save_judge("tiny pair judge", reward, environment="pairs")
    env = {**os.environ, "VLMRM_DATA_DIR": str(data)}
    env.pop("VLMRM_DATABASE_URL", None)
    with streamlit_server(free_port(), env, data / "streamlit.log") as url:
        yield url, data


def press_and_wait(page, key: str, done: int) -> None:
    page.keyboard.press(key)
    page.get_by_text(f"Pairs done: {done}/15").wait_for()
    wait_idle(page)


def test_arrows_answer_after_the_switches_and_judge_suggestions(pair_server) -> None:
    url, data = pair_server
    with launch_chromium() as browser:
        page = new_page(browser)
        open_label_page(page, url, "pairs", "alice")
        page.get_by_text("Pairs", exact=True).click()  # the mode switch
        wait_idle(page)
        page.get_by_text("Pairs done: 0/15").wait_for()
        # straight after the click, with no click elsewhere: the arrows answer the pair
        press_and_wait(page, "ArrowLeft", 1)
        page.get_by_role("button", name="random", exact=True).click()  # the order switch
        wait_idle(page)
        press_and_wait(page, "ArrowRight", 2)

        page.get_by_text("Ask a judge for suggestions").click()
        wait_idle(page)
        margin = page.get_by_role("spinbutton", name="Undecided below")
        margin.fill("0")  # a random-weight judge is barely decided: any preference counts
        margin.press("Enter")
        wait_idle(page)
        page.get_by_role("button", name="Ask the judge").click()
        page.get_by_text("suggestions stored").wait_for()
        wait_idle(page)
        assert page.get_by_text("suggests").count() == 0  # off by default
        page.get_by_role("button", name="Show judge suggestions").click()
        page.get_by_text("suggests").first.wait_for()
        wait_idle(page)
        press_and_wait(page, "ArrowLeft", 3)  # the switch leaves the arrows to the answers

    stored = current_comparisons(init_db(f"sqlite:///{data / 'vlmrm.db'}"), "pairs")
    people = stored[~stored["labeler"].map(is_machine_labeler)]
    assert list(people["choice"]) == ["a", "b", "a"] and set(people["labeler"]) == {"alice"}
    machines = stored[stored["labeler"].map(is_machine_labeler)]
    assert len(machines) == 10  # the next ten pairs of alice's queue, each decided
