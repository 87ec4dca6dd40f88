"""Prompt Lab's Episode view in a real browser (the issue's done-when): a LeRobot dataset of
three episodes, the reward along one of them, the frame scrubber and the α slider redrawing
the chart. Debian's Chromium driven by playwright against a real ``streamlit run``."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests._lerobot_data import LENGTHS, write_lerobot_dataset
from tests.studio._browser import (
    REPO,
    free_port,
    launch_chromium,
    new_page,
    streamlit_server,
    type_text_area,
    wait_idle,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PLOT = ".js-plotly-plot"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, tiny_checkpoint: Path) -> Iterator[str]:
    """A project holding the LeRobot test dataset as ``robot`` (no demo: it isn't empty)."""
    data = tmp_path_factory.mktemp("episodes-data")
    models = data / "models"
    models.mkdir()
    shutil.copy(tiny_checkpoint, models / tiny_checkpoint.name)
    folder = write_lerobot_dataset(tmp_path_factory.mktemp("lerobot") / "ds", "v3.0")
    from vlmrm_core.services.dataset_import import import_lerobot
    from vlmrm_core.store import init_db

    engine = init_db(f"sqlite:///{data / 'vlmrm.db'}")
    os.environ["VLMRM_DATA_DIR"], previous = str(data), os.environ.get("VLMRM_DATA_DIR")
    try:  # the frames go under this data dir
        import_lerobot(engine, folder, "robot")
    finally:
        if previous is None:
            del os.environ["VLMRM_DATA_DIR"]
        else:
            os.environ["VLMRM_DATA_DIR"] = previous
    engine.dispose()
    env = {**os.environ, "VLMRM_DATA_DIR": str(data)}
    env.pop("VLMRM_DATABASE_URL", None)
    with streamlit_server(free_port(), env, data / "streamlit.log") as url:
        yield url


def _chart(page, what: str):
    """Evaluate ``what`` (a JS expression of ``p``, the Episode chart's plot) in the page."""
    return page.evaluate(
        f"(() => {{ const p = [...document.querySelectorAll('{PLOT}')].at(-1); return {what}; }})()"
    )


def _slider(page, label: str):
    return page.get_by_test_id("stSlider").filter(has_text=label).get_by_role("slider")


def test_episode_view_scrubber_and_alpha(server):
    with launch_chromium() as browser:
        page = new_page(browser, height=1100, timeout_ms=120_000)
        page.goto(f"{server}/prompt_lab")
        wait_idle(page)
        type_text_area(page, "Goal prompts (one per line)", "a red cube in a gripper")
        type_text_area(page, "Baseline prompts (one per line)", "a robot arm")
        page.get_by_test_id("stRadio").filter(has_text="Landscape").get_by_text(
            "Episode", exact=True
        ).click()
        wait_idle(page)
        page.get_by_text("VOC on this episode").wait_for()

        # episode 0 (5 steps): one curve of 5 points, the marker at the first step
        names = _chart(page, "p.data.map(t => t.name)")
        assert names[0] == "on screen (α = 0)", names
        assert _chart(page, "p._fullData[0].x.length") == LENGTHS[0]
        assert _chart(page, "p.layout.shapes[0].x0") == 0

        # the scrubber moves the marker and the frame beside the chart
        scrubber = _slider(page, "Step (frame scrubber)")
        scrubber.focus()
        for _ in range(3):
            page.keyboard.press("ArrowRight")
        wait_idle(page)
        page.wait_for_function(
            f"[...document.querySelectorAll('{PLOT}')].at(-1).layout.shapes[0].x0 === 3"
        )
        page.get_by_text("step 3 · ").first.wait_for()

        # the α slider redraws the episode's curve
        before = _chart(page, "Array.from(p._fullData[0].y)")
        alpha = _slider(page, "α (goal-baseline regularization)")
        alpha.focus()
        for _ in range(10):
            page.keyboard.press("ArrowRight")
        wait_idle(page)
        page.wait_for_function(
            f"[...document.querySelectorAll('{PLOT}')].at(-1).data[0].name === "
            "'on screen (α = 0.5)'"
        )
        after = _chart(page, "Array.from(p._fullData[0].y)")
        assert len(after) == LENGTHS[0] and after != before
        assert _chart(page, "p.layout.shapes[0].x0") == 3  # the scrubber kept its step
        shots = REPO / "artifacts" / "screenshots"
        shots.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(shots / "prompt_lab_episode.png"))
