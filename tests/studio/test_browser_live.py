"""Live updates in a real browser: what changes in the database shows without a reload.

Same harness as ``test_browser_e2e`` (Debian's Chromium, a real ``streamlit run``), its own
server so the worker heartbeat can be relaxed for a run owned by this test process.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.studio._browser import free_port, launch_chromium, new_page, streamlit_server, wait_idle
from vlmrm_core.reward.spec import RewardSpec
from vlmrm_core.store import create_run, init_db, update_run
from vlmrm_core.store.schema import utcnow
from vlmrm_core.training.config import TrainConfig

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory):
    data = tmp_path_factory.mktemp("live-data")
    port = free_port()
    env = {**os.environ, "VLMRM_DATA_DIR": str(data), "VLMRM_HEARTBEAT_S": "600"}
    env.pop("VLMRM_DATABASE_URL", None)
    with streamlit_server(port, env, data / "streamlit.log") as url:
        yield url, data


@pytest.fixture(scope="module")
def browser_page(live_server):
    with launch_chromium() as browser:
        yield new_page(browser)


def test_selected_run_header_buttons_and_checkpoints_refresh_live(live_server, browser_page):
    url, data = live_server
    engine = init_db(f"sqlite:///{data / 'vlmrm.db'}")
    config = TrainConfig(reward=RewardSpec(goal_prompts=("pole upright",)), total_steps=1000)
    run = create_run(
        engine,
        name="live",
        env_id="CartPole-v1",
        algo="dqn",
        config=config.to_dict(),
        total_steps=1000,
        run_dir=str(data / "runs" / "live"),
    )
    now = utcnow()
    update_run(
        engine,
        run.id,
        status="running",
        pid=os.getpid(),  # alive: this test process
        heartbeat_at=now,
        started_at=now,
        steps_done=300,
        cancel_requested=True,
    )
    page = browser_page
    page.goto(f"{url}/train")
    wait_idle(page)
    page.get_by_text("Cancellation requested").wait_for()
    page.get_by_role("tab", name="Checkpoints").click()
    page.get_by_text("No checkpoint yet").wait_for()

    # The worker saves its checkpoint and ends the run; nobody touches the page.
    checkpoints = Path(data / "runs" / "live" / "checkpoints")
    checkpoints.mkdir(parents=True)
    (checkpoints / "model_300.zip").write_bytes(b"zip")
    update_run(engine, run.id, status="cancelled", steps_done=300, pid=None)

    started = time.monotonic()
    # the panel polls every 2 s; a 2-core machine needs a few seconds more to redraw it
    page.get_by_text("⏹️ cancelled", exact=True).wait_for(timeout=15_000)
    page.get_by_text("Cancellation requested").wait_for(state="detached", timeout=15_000)
    assert time.monotonic() - started < 15
    wait_idle(page)
    page.get_by_role("tab", name="Checkpoints").click()
    page.get_by_text("No checkpoint yet").wait_for(state="detached", timeout=30_000)
    # a cancelled run can be resumed: its button is live again
    assert page.get_by_role("button", name="Resume").is_enabled()
