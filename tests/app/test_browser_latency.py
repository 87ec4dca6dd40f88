"""How long the Prompt Lab takes from an α change to a redrawn chart, in a real browser.

The issue's targets: ≤ 150 ms from slider release to the redrawn chart for a 1,000-frame
dataset (≤ 400 ms for 100k frames). The chart, the editor and the α slider are one
``st.fragment``, so an α change reruns only that part of the page. Timings are printed and
written to ``artifacts/latency.json``; the test fails when the median exceeds ``LIMIT_S``, which
only a full-page rerun or an expensive redraw reaches on a 2-core machine.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import time
from functools import partial
from pathlib import Path

import numpy as np
import pytest

from tests.app import _browser
from tests.app._browser import REPO, free_port, launch_chromium, new_page, streamlit_server

pytestmark = [pytest.mark.browser, pytest.mark.slow]

N_FRAMES = 1_000
LIMIT_S = float(os.environ.get("VLMRM_LATENCY_LIMIT_S", "0.6"))
TINY = "ViT-S-32-alt"


wait_idle = partial(_browser.wait_idle, settle_ms=300)


def _populate(data: Path, checkpoint: Path) -> None:
    """A 1,000-frame dataset whose embeddings are already in the cache (random unit vectors:
    latency does not depend on what they are)."""
    os.environ["VLMRM_DATA_DIR"] = str(data)
    from vlmrm_core.embedding_cache import EmbeddingCache, encoder_key
    from vlmrm_core.frames import FrameRecord
    from vlmrm_core.models import load_model
    from vlmrm_core.store import dataset_frames, ingest_frames, init_db

    engine = init_db(f"sqlite:///{data / 'vlmrm.db'}")
    rng = np.random.default_rng(0)
    records = [
        FrameRecord(
            pixels=rng.integers(0, 256, (12, 16, 3), dtype=np.uint8),
            source="sweep",
            name=f"x={i}",
            param_name="x",
            param_value=float(i),
        )
        for i in range(N_FRAMES)
    ]
    ingest_frames(engine, "lat1k", records, kind="sweep")
    clip = load_model(TINY, str(checkpoint), device="cpu")
    hashes = [f.hash for f in dataset_frames(engine, "lat1k")]
    vectors = rng.standard_normal((len(hashes), clip.model.visual.output_dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    EmbeddingCache(engine, encoder_key(clip, "squash")).put_many(hashes, vectors)


@pytest.fixture(scope="module")
def lab_server(tmp_path_factory: pytest.TempPathFactory, tiny_checkpoint: Path):
    data = tmp_path_factory.mktemp("latency-data")
    models = data / "models"
    models.mkdir()
    shutil.copy(tiny_checkpoint, models / tiny_checkpoint.name)
    saved = os.environ.get("VLMRM_DATA_DIR")
    try:
        _populate(data, models / tiny_checkpoint.name)
    finally:
        if saved is None:
            os.environ.pop("VLMRM_DATA_DIR", None)
        else:
            os.environ["VLMRM_DATA_DIR"] = saved
    port = free_port()
    env = {**os.environ, "VLMRM_DATA_DIR": str(data)}
    env.pop("VLMRM_DATABASE_URL", None)
    with streamlit_server(port, env, data / "streamlit.log") as url:
        yield url


CHART_SHOWS = """(name) => [...document.querySelectorAll('.js-plotly-plot')]
    .some(p => (p.data || []).some(t => (t.name || '') === name))"""


def test_alpha_change_redraws_the_chart_quickly(lab_server):
    with launch_chromium() as browser:
        page = new_page(browser, height=900, timeout_ms=120_000)
        page.goto(f"{lab_server}/prompt_lab")
        wait_idle(page)
        goal = page.get_by_role("textbox", name="Goal prompts (one per line)")
        goal.fill("a red square")
        goal.press("Control+Enter")
        wait_idle(page)
        baseline = page.get_by_role("textbox", name="Baseline prompts (one per line)")
        baseline.fill("a square")
        baseline.press("Control+Enter")
        wait_idle(page)
        slider = page.get_by_role("slider").first
        alpha = float(slider.get_attribute("aria-valuenow") or 0)
        try:
            page.wait_for_function(CHART_SHOWS, arg=f"α = {alpha:g}", timeout=30_000)
        except Exception:
            names = page.evaluate(
                "[...document.querySelectorAll('.js-plotly-plot')]"
                ".map(p => (p.data || []).map(t => t.name))"
            )
            raise AssertionError(f"no curve named α = {alpha:g}; curves: {names}") from None
        # the chart is visible without scrolling at 1400×900
        chart_box = page.locator(".js-plotly-plot").first.bounding_box()
        shots = REPO / "artifacts" / "screenshots"
        shots.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(shots / "prompt_lab_1400x900.png"))
        above_fold = chart_box is not None and chart_box["y"] + chart_box["height"] <= 900
        timings = []
        for _ in range(7):
            slider.focus()
            alpha = round(alpha + 0.05, 2)
            start = time.perf_counter()
            page.keyboard.press("ArrowRight")
            page.wait_for_function(CHART_SHOWS, arg=f"α = {alpha:g}", polling="raf")
            timings.append(time.perf_counter() - start)
            wait_idle(page, settle_ms=150)
    median = statistics.median(timings)
    report = {
        "frames": N_FRAMES,
        "alpha_change_to_redraw_s": [round(t, 3) for t in timings],
        "median_s": round(median, 3),
        "chart_top_px": None if chart_box is None else round(chart_box["y"]),
        "chart_bottom_px": None
        if chart_box is None
        else round(chart_box["y"] + chart_box["height"]),
    }
    print(json.dumps(report))
    artifacts = REPO / "artifacts"
    artifacts.mkdir(exist_ok=True)
    (artifacts / "latency.json").write_text(json.dumps(report, indent=2))
    assert above_fold, report
    assert median <= LIMIT_S, report
