"""A new install without CLIP weights: Prompt Lab's chart is still on screen at 1400×900.

Every machine without network access starts this way (the random-init model only). The model
picker's help and warning used to take ~400 px of the page, and pushed the reward landscape
below the fold; they are now one line that opens on click.
"""

from __future__ import annotations

import os
import shutil
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

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _dataset(data: Path) -> None:
    """A 12-frame sweep in a data dir whose models folder is empty."""
    os.environ["VLMRM_DATA_DIR"] = str(data)
    from vlmrm_core.frames import FrameRecord
    from vlmrm_core.store import ingest_frames, init_db

    rng = np.random.default_rng(0)
    records = [
        FrameRecord(
            pixels=rng.integers(0, 256, (24, 32, 3), dtype=np.uint8),
            source="sweep",
            name=f"x={i}",
            param_name="x",
            param_value=float(i),
        )
        for i in range(12)
    ]
    ingest_frames(init_db(f"sqlite:///{data / 'vlmrm.db'}"), "twelve", records, kind="sweep")
    (data / "models").mkdir(exist_ok=True)


def test_prompt_lab_chart_is_visible_without_weights(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    saved = os.environ.get("VLMRM_DATA_DIR")
    try:
        _dataset(data)
    finally:
        if saved is None:
            os.environ.pop("VLMRM_DATA_DIR", None)
        else:
            os.environ["VLMRM_DATA_DIR"] = saved
    # An empty Hugging Face cache: no hub weights either.
    env = {**os.environ, "VLMRM_DATA_DIR": str(data), "HF_HOME": str(tmp_path / "hf")}
    env.pop("VLMRM_DATABASE_URL", None)
    log = tmp_path / "streamlit.log"
    with streamlit_server(free_port(), env, log) as url, launch_chromium() as browser:
        page = new_page(browser, height=900, timeout_ms=180_000)
        page.goto(f"{url}/prompt_lab")
        wait_idle(page)
        type_text_area(page, "Goal prompts (one per line)", "a red square")
        chart = page.locator(".js-plotly-plot").first
        chart.wait_for(timeout=120_000)
        box = chart.bounding_box()
        assert box is not None
        # the plot (all but the x-axis title) fits in the 900-px-high window, unscrolled
        assert box["y"] + 0.95 * box["height"] <= 900, box
        # the untrained warning and the how-to are one click away
        notice = page.get_by_role("button", name="untrained; no CLIP weights here")
        notice.click()
        page.get_by_text("No CLIP weights are available on this machine").wait_for()
        page.get_by_text("Untrained weights: these rewards are meaningless").wait_for()
    shutil.rmtree(tmp_path / "hf", ignore_errors=True)
