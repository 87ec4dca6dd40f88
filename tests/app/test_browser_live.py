"""Live updates in a real browser: what changes in the database shows without a reload.

Same harness as ``test_browser_e2e`` (Debian's Chromium, a real ``streamlit run``), its own
server so the worker heartbeat can be relaxed for a run owned by this test process.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from vlmrm_core.spec import RewardSpec
from vlmrm_core.store import create_run, init_db, update_run
from vlmrm_core.store.schema import utcnow
from vlmrm_core.training.config import TrainConfig

pytestmark = [pytest.mark.browser, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_idle(page, settle_ms: int = 400) -> None:
    """Wait until no script run is in progress (checked twice, ``settle_ms`` apart)."""
    quiet_checks = 0
    deadline = time.monotonic() + 180
    while quiet_checks < 2:
        page.wait_for_timeout(settle_ms)
        busy = page.locator('[data-testid="stStatusWidget"], [data-stale="true"]').count()
        quiet_checks = quiet_checks + 1 if busy == 0 else 0
        if time.monotonic() > deadline:
            raise TimeoutError("the Streamlit script kept running for 3 minutes")


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory):
    data = tmp_path_factory.mktemp("live-data")
    port = free_port()
    env = {**os.environ, "VLMRM_DATA_DIR": str(data), "VLMRM_HEARTBEAT_S": "600"}
    env.pop("VLMRM_DATABASE_URL", None)
    log = (data / "streamlit.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(REPO / "app" / "streamlit_app.py"),
         "--server.port", str(port), "--server.address", "127.0.0.1",
         "--server.headless", "true", "--browser.gatherUsageStats", "false"],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError((data / "streamlit.log").read_text()[-3000:]) from None
                time.sleep(0.5)
        yield url, data
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="module")
def browser_page(live_server):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        if os.environ.get("CI"):
            pytest.fail("Chromium not found on PATH: install the Debian package `chromium`")
        pytest.skip("Chromium not found on PATH: install the Debian package `chromium`")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        context = browser.new_context(viewport={"width": 1400, "height": 1500})
        context.set_default_timeout(90_000)
        yield context.new_page()
        browser.close()


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
