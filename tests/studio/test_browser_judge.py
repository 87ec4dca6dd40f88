"""In the browser: a VLM judge asked a question in Prompt Lab's Judge mode, saved, and ranked on
Evaluate beside a prompt set (a real ``streamlit run`` and Debian's Chromium)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.studio._browser import (
    free_port,
    launch_chromium,
    new_page,
    streamlit_server,
    type_text_area,
    wait_idle,
)
from tests.studio._judges import JUDGE_FOLDER, QUESTION, tiny_judge_source
from tests.studio.test_evaluate_judges import _episodes

pytestmark = [pytest.mark.browser, pytest.mark.slow]
__all__ = ["tiny_judge_source"]  # a fixture used below


@pytest.fixture(scope="module")
def judge_server(
    tmp_path_factory: pytest.TempPathFactory, tiny_checkpoint: Path, tiny_judge_source: Path
) -> Iterator[tuple[str, Path]]:
    """The app on a data dir with a labelled rollout dataset ``robot``, the tiny CLIP checkpoint
    and the tiny random-init judge in its models dir."""
    from vlmrm_core.store import add_label, dataset_frames, ingest_frames, init_db

    data = tmp_path_factory.mktemp("judge-e2e")
    models = data / "models"
    models.mkdir()
    shutil.copy(tiny_checkpoint, models / tiny_checkpoint.name)
    shutil.copytree(tiny_judge_source, models / JUDGE_FOLDER)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VLMRM_DATA_DIR", str(data))
        mp.delenv("VLMRM_DATABASE_URL", raising=False)
        mp.delenv("VLMRM_MODELS_DIR", raising=False)
        engine = init_db()
        ingest_frames(engine, "robot", _episodes(), kind="rollout")
        for f in dataset_frames(engine, "robot"):
            add_label(engine, "robot", f.hash, "ann", float(f.step == 0))
        engine.dispose()
    env = {**os.environ, "VLMRM_DATA_DIR": str(data)}
    env.pop("VLMRM_DATABASE_URL", None)
    env.pop("VLMRM_MODELS_DIR", None)
    with streamlit_server(free_port(), env, data / "streamlit.log") as url:
        yield url, data


def test_judge_mode_then_evaluate_ranks_the_judge(judge_server, tiny_judge_source):
    url, data = judge_server
    with launch_chromium() as browser:
        page = new_page(browser)
        page.goto(url)
        wait_idle(page)
        page.get_by_test_id("stSidebarNav").get_by_role("link", name="Prompt Lab").click()
        wait_idle(page)
        page.get_by_text("VLM judge", exact=True).click()
        wait_idle(page)
        type_text_area(page, "Question (yes/no, about one frame)", QUESTION)
        page.get_by_test_id("stPlotlyChart").first.wait_for()
        assert page.get_by_text("rewards are meaningless").first.is_visible()
        page.get_by_role("textbox", name="Judge name", exact=True).fill("browser judge")
        page.keyboard.press("Enter")
        wait_idle(page)
        page.get_by_role("button", name="Save judge").click()
        wait_idle(page)
        page.get_by_text("Saved judge").first.wait_for()

        page.get_by_test_id("stSidebarNav").get_by_role("link", name="Evaluate").click()
        wait_idle(page)
        box = page.get_by_role("combobox", name="Inspect")
        box.click()
        page.get_by_role("option", name="browser judge · judge tiny-smolvlm").first.click()
        wait_idle(page)
        value = (
            page.get_by_test_id("stMetric")
            .filter(has_text="EPIC distance")
            .first.get_by_test_id("stMetricValue")
            .inner_text()
        )

    # the number on the page is the library's, on the same labelled frames
    from vlmrm_core.metrics import epic_distance
    from vlmrm_core.services.judge_evaluation import judge_rewards
    from vlmrm_core.services.judge_scores import JudgeRequest, load_judge_reward
    from vlmrm_core.store import consensus_labels, init_db

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VLMRM_DATA_DIR", str(data))
        engine = init_db()
        labels = consensus_labels(engine, "robot")
        judge = load_judge_reward(
            JudgeRequest(str(data / "models" / JUDGE_FOLDER), QUESTION), device="cpu"
        )
        rewards = judge_rewards(judge, list(labels.index))
    expected = epic_distance(rewards, labels.to_numpy())
    assert np.isfinite(expected)
    assert float(value) == pytest.approx(expected, abs=1.5e-3)
