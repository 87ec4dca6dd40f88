"""How long the Prompt Lab takes from an α change to a redrawn chart, in a real browser.

The issue's targets: ≤ 150 ms from slider release to the redrawn chart for a 1,000-frame
dataset and ≤ 400 ms for 100k frames. The α slider and the chart are their own ``st.fragment``
(nested in the editor's), so an α change reruns only that part of the page, and a curve of more
than ``plots.MAX_CURVE_POINTS`` frames is drawn with that many points. Timings are printed and
written to ``artifacts/latency.json``: ``median_s`` is timed in the page, from the key press to
the first animation frame showing the new curve (what the user feels), next to the same changes
timed from this process (plus the automation's round trips). A test fails when the in-page
median exceeds its limit, generous for a loaded 2-core CI machine (``VLMRM_LATENCY_LIMIT_S``,
``VLMRM_LATENCY_LIMIT_100K_S``): only a full-page rerun or an expensive redraw reaches it.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import numpy as np
import pytest

from tests.studio import _browser
from tests.studio._browser import (
    REPO,
    free_port,
    launch_chromium,
    new_page,
    streamlit_server,
    type_text_area,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.serial]

LIMIT_S = float(os.environ.get("VLMRM_LATENCY_LIMIT_S", "0.6"))
LIMIT_100K_S = float(os.environ.get("VLMRM_LATENCY_LIMIT_100K_S", "1.5"))
TINY = "ViT-S-32-alt"


wait_idle = partial(_browser.wait_idle, settle_ms=300)


def _populate(data: Path, checkpoint: Path, n_frames: int, n_images: int) -> str:
    """A sweep dataset of ``n_frames`` frames whose embeddings are already in the cache (random
    unit vectors: latency does not depend on what they are). The frames cycle through
    ``n_images`` tiny distinct images (100k frames need 1,000 PNG files, not 100k); each frame is
    its own membership, with its own swept value.

    Returns:
        The dataset's name.
    """
    os.environ["VLMRM_DATA_DIR"] = str(data)
    from vlmrm_core.clip.models import load_model
    from vlmrm_core.frames import FrameRecord, pixel_hash
    from vlmrm_core.store import ingest_frames, init_db
    from vlmrm_core.store.embedding_cache import EmbeddingCache, encoder_key

    name = f"lat{n_frames}"
    engine = init_db(f"sqlite:///{data / 'vlmrm.db'}")
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (12, 16, 3), dtype=np.uint8) for _ in range(n_images)]
    records = (
        FrameRecord(
            pixels=images[i % n_images],
            source="sweep",
            name=f"x={i}",
            param_name="x",
            param_value=float(i),
        )
        for i in range(n_frames)
    )
    ingest_frames(engine, name, records, kind="sweep")
    clip = load_model(TINY, str(checkpoint), device="cpu")
    hashes = sorted({pixel_hash(image) for image in images})  # not read back: 100k rows take 6 s
    vectors = rng.standard_normal((len(hashes), clip.model.visual.output_dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    EmbeddingCache(engine, encoder_key(clip, "squash")).put_many(hashes, vectors)
    return name


@contextmanager
def _lab_server(data: Path, tiny_checkpoint: Path, n_frames: int, n_images: int) -> Iterator[str]:
    """A Streamlit server on a data dir holding one ``n_frames`` dataset."""
    models = data / "models"
    models.mkdir(parents=True)
    shutil.copy(tiny_checkpoint, models / tiny_checkpoint.name)
    saved = os.environ.get("VLMRM_DATA_DIR")
    try:
        _populate(data, models / tiny_checkpoint.name, n_frames, n_images)
    finally:
        if saved is None:
            os.environ.pop("VLMRM_DATA_DIR", None)
        else:
            os.environ["VLMRM_DATA_DIR"] = saved
    env = {**os.environ, "VLMRM_DATA_DIR": str(data)}
    env.pop("VLMRM_DATABASE_URL", None)
    with streamlit_server(free_port(), env, data / "streamlit.log") as url:
        yield url


@pytest.fixture(scope="module")
def lab_server(tmp_path_factory: pytest.TempPathFactory, tiny_checkpoint: Path):
    with _lab_server(tmp_path_factory.mktemp("latency-data"), tiny_checkpoint, 1_000, 1_000) as url:
        yield url


CHART_SHOWS = """(name) => [...document.querySelectorAll('.js-plotly-plot')]
    .some(p => (p.data || []).some(t => (t.name || '') === name))"""

# In-page clock: the time of the last key press, and of the first animation frame at which the
# chart holds the new curve. Their difference is the latency as the user feels it, without the
# automation's own round trips (sending the key press, polling the page) that the outside
# clock also counts.
KEY_CLOCK = """document.addEventListener('keydown', () => { window.__keyAt = performance.now(); },
    true);"""
CHART_SHOWS_AT = (
    "(name) => { const shown = ("
    + CHART_SHOWS
    + ")(name); if (shown) { window.__drawnAt = performance.now(); } return shown; }"
)


def _measure_alpha_changes(url: str, n_frames: int, repeats: int) -> dict:
    """Type the prompts, then move the α slider ``repeats`` times by keyboard and time each
    change until the chart shows the new α's curve.

    Returns:
        The report (also merged into ``artifacts/latency.json`` under the number of frames).
    """
    with launch_chromium() as browser:
        page = new_page(browser, height=900, timeout_ms=120_000)
        page.add_init_script(KEY_CLOCK)
        page.goto(f"{url}/prompt_lab")
        wait_idle(page)
        type_text_area(page, "Goal prompts (one per line)", "a red square")
        type_text_area(page, "Baseline prompts (one per line)", "a square")
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
        page.screenshot(path=str(shots / f"prompt_lab_{n_frames}_1400x900.png"))
        timings, in_page = [], []
        for _ in range(repeats):
            slider.focus()
            alpha = round(alpha + 0.05, 2)
            start = time.perf_counter()
            page.keyboard.press("ArrowRight")
            page.wait_for_function(CHART_SHOWS_AT, arg=f"α = {alpha:g}", polling="raf")
            timings.append(time.perf_counter() - start)
            in_page.append(page.evaluate("(window.__drawnAt - window.__keyAt) / 1000"))
            wait_idle(page, settle_ms=150)
    report = {
        "frames": n_frames,
        "key_to_redraw_in_page_s": [round(t, 3) for t in in_page],
        "median_s": round(statistics.median(in_page), 3),
        "with_automation_round_trips_s": [round(t, 3) for t in timings],
        "with_automation_round_trips_median_s": round(statistics.median(timings), 3),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
        "chart_top_px": None if chart_box is None else round(chart_box["y"]),
        "chart_bottom_px": None
        if chart_box is None
        else round(chart_box["y"] + chart_box["height"]),
    }
    print(json.dumps(report))
    artifacts = REPO / "artifacts"
    artifacts.mkdir(exist_ok=True)
    path = artifacts / "latency.json"
    try:
        reports = json.loads(path.read_text())
        reports = reports if isinstance(reports, dict) and "frames" not in reports else {}
    except (OSError, ValueError):
        reports = {}
    reports[str(n_frames)] = report
    path.write_text(json.dumps(reports, indent=2))
    return report


def test_alpha_change_redraws_the_chart_quickly(lab_server):
    report = _measure_alpha_changes(lab_server, 1_000, repeats=7)
    assert report["chart_bottom_px"] is not None and report["chart_bottom_px"] <= 900, report
    assert report["median_s"] <= LIMIT_S, report


def test_alpha_change_redraws_a_100k_frame_chart_quickly(
    tmp_path: Path, tiny_checkpoint: Path
) -> None:
    with _lab_server(tmp_path / "data", tiny_checkpoint, 100_000, 1_000) as url:
        report = _measure_alpha_changes(url, 100_000, repeats=5)
    assert report["median_s"] <= LIMIT_100K_S, report
