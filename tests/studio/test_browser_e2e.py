"""The whole loop in a real browser against a real `streamlit run` on a free localhost port.

Debian's Chromium driven by the playwright package (never `playwright install`). Screenshots of
every page are saved as artifacts (``artifacts/screenshots`` or ``--screenshots-to``).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.studio._browser import (
    REPO,
    free_port,
    launch_chromium,
    new_page,
    streamlit_server,
    type_text_area,
    wait_idle,
)
from vlmrm_core.store import current_labels, init_db

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def screenshots(request: pytest.FixtureRequest) -> Path:
    folder = Path(
        request.config.getoption("--screenshots-to") or REPO / "artifacts" / "screenshots"
    )
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@dataclass(frozen=True)
class Server:
    url: str
    data_dir: Path

    @property
    def database_url(self) -> str:
        return f"sqlite:///{self.data_dir / 'vlmrm.db'}"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, tiny_checkpoint: Path) -> Iterator[Server]:
    data = tmp_path_factory.mktemp("e2e-data")
    models = data / "models"
    models.mkdir()
    # the tiny checkpoint is named after its architecture, so the app offers it first
    shutil.copy(tiny_checkpoint, models / tiny_checkpoint.name)
    port = free_port()
    env = {**os.environ, "VLMRM_DATA_DIR": str(data)}
    env.pop("VLMRM_DATABASE_URL", None)
    with streamlit_server(port, env, data / "streamlit.log") as url:
        yield Server(url, data)


@pytest.fixture(scope="module")
def page(server: Server):
    with launch_chromium() as browser:
        yield new_page(browser)


def make_pngs(folder: Path, n: int = 4) -> list[Path]:
    paths = []
    for i in range(n):
        img = np.full((120, 180, 3), 40 * i, np.uint8)
        img[30:90, 20 + 30 * i : 60 + 30 * i] = (220, 180, 40)
        path = folder / f"frame_{i}.png"
        Image.fromarray(img).save(path)
        paths.append(path)
    return paths


def test_home_page_loads(page, server, screenshots):
    page.goto(server.url)
    page.get_by_text("VLM-RM Studio").first.wait_for()
    wait_idle(page)
    page.get_by_text("Models available offline").wait_for()
    page.screenshot(path=str(screenshots / "home.png"))


def goto_page(page, name: str) -> None:
    """Navigate like a user, through the sidebar (keeps the browser session)."""
    page.get_by_test_id("stSidebarNav").get_by_role("link", name=name).click()
    wait_idle(page)


def test_upload_then_label_with_keyboard(page, server, screenshots, tmp_path):
    page.goto(server.url)
    wait_idle(page)

    goto_page(page, "Frames")
    page.get_by_role("tab", name="Upload").click()
    page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(
        [str(p) for p in make_pngs(tmp_path)]
    )
    page.get_by_role("textbox", name="Dataset name", exact=True).filter(visible=True).fill("e2e")
    page.keyboard.press("Enter")
    wait_idle(page)
    page.get_by_role("button", name="Import").click()
    page.get_by_text("Imported (new frames)").wait_for()
    wait_idle(page)
    page.screenshot(path=str(screenshots / "frames.png"))

    goto_page(page, "Label")
    name = page.get_by_role("textbox", name="Your name", exact=True)
    name.fill("alice")
    name.press("Enter")
    wait_idle(page)
    page.get_by_text("Yours: 0/4").wait_for()
    for done, key in enumerate(("s", "f", "s"), start=1):
        # like a person: press, then look at the next frame before pressing again
        page.keyboard.press(key)
        page.get_by_text(f"Yours: {done}/4").wait_for()
        wait_idle(page)
    page.screenshot(path=str(screenshots / "label.png"))

    labels = current_labels(init_db(server.database_url), "e2e")
    assert sorted(labels["value"].tolist()) == [0.0, 1.0, 1.0]
    assert set(labels["labeler"]) == {"alice"}


def choose(page, label: str, option: str) -> None:
    """Pick an option of a Streamlit selectbox by its label."""
    page.get_by_role("combobox", name=label).click()
    page.get_by_role("option", name=option).first.click()
    wait_idle(page)


GOAL = "a yellow block on the right"
BASELINE = "a yellow block"


def test_prompt_lab_then_evaluate_reads_epic(page, server, screenshots, tiny_checkpoint):
    goto_page(page, "Prompt Lab")
    choose(page, "Dataset", "e2e")
    type_text_area(page, "Goal prompts (one per line)", GOAL)
    type_text_area(page, "Baseline prompts (one per line)", BASELINE)
    chart = page.get_by_test_id("stPlotlyChart").first
    chart.wait_for()
    assert chart.locator(".js-plotly-plot").count() == 1
    page.get_by_role(
        "textbox", name="Goal prompts (one per line)", exact=True
    ).scroll_into_view_if_needed()
    page.screenshot(path=str(screenshots / "prompt_lab.png"))
    page.get_by_role("textbox", name="Prompt set name", exact=True).fill("e2e-prompts")
    page.get_by_role("button", name="Save prompt set").click()
    wait_idle(page)
    # Saving reruns only its fragment: the page must run again for Compare to offer the new set.
    box = page.get_by_role("combobox", name="Prompt set A")
    for _ in range(3):  # the first click after the page's rerun may only focus the box
        box.click()
        page.wait_for_timeout(300)
        if box.get_attribute("aria-expanded") == "true":
            break
    page.get_by_role("option", name="e2e-prompts").first.wait_for(timeout=10_000)
    page.keyboard.press("Escape")
    wait_idle(page)

    goto_page(page, "Evaluate")
    choose(page, "Labelled dataset", "e2e")
    choose(page, "Inspect", "e2e-prompts")
    value = (
        page.get_by_test_id("stMetric")
        .filter(has_text="EPIC distance")
        .first.get_by_test_id("stMetricValue")
        .inner_text()
    )
    page.screenshot(path=str(screenshots / "evaluate.png"))

    # the same number, computed directly from the library on the labelled frames
    from vlmrm_core.clip.embedding import encode_images
    from vlmrm_core.clip.models import load_model
    from vlmrm_core.metrics import epic_distance
    from vlmrm_core.reward.model import score_embeddings
    from vlmrm_core.store import consensus_labels, get_prompt_set

    engine = init_db(server.database_url)
    labels = consensus_labels(engine, "e2e")
    saved = get_prompt_set(engine, "e2e-prompts")
    assert saved.reward.goal_prompts == (GOAL,) and saved.reward.baseline_prompts == (BASELINE,)
    clip = load_model("ViT-S-32-alt", str(tiny_checkpoint), device="cpu")
    pixels = [
        np.asarray(Image.open(server.data_dir / "frames" / h[:2] / f"{h}.png").convert("RGB"))
        for h in labels.index
    ]
    embeddings = encode_images(clip, pixels)
    rewards = score_embeddings(clip, embeddings, saved.reward).rewards
    expected = epic_distance(rewards, labels.to_numpy())
    assert float(value) == pytest.approx(expected, abs=1.5e-3)


def test_train_page_shows_the_launch_form(page, screenshots):
    goto_page(page, "Train")
    page.get_by_role("button", name="Start training").first.wait_for()
    page.screenshot(path=str(screenshots / "train.png"))
