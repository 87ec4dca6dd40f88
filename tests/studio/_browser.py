"""The browser tests' harness: a real ``streamlit run`` on a free localhost port and Debian's
Chromium driven by the playwright package (never ``playwright install``)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def streamlit_server(
    port: int,
    env: Mapping[str, str],
    log_path: Path,
    *,
    cwd: Path = REPO,
    host: str = "127.0.0.1",
) -> Iterator[str]:
    """``streamlit run vlmrm_studio/streamlit_app.py`` on ``port``, stopped on exit.

    Args:
        port: the port to serve on (e.g. :func:`free_port`).
        env: the server's environment.
        log_path: where the server's output goes; its tail is the error when it does not start.
        cwd: the server's working directory (its ``.streamlit/`` configuration).
        host: the host name of the URL yielded (the server listens on 127.0.0.1).

    Yields:
        The server's URL, once its health check answers.
    """
    log = log_path.open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(REPO / "vlmrm_studio" / "streamlit_app.py"),
         "--server.port", str(port), "--server.address", "127.0.0.1",
         "--server.headless", "true", "--browser.gatherUsageStats", "false"],
        cwd=cwd, env=dict(env), stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://{host}:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(log_path.read_text()[-3000:]) from None
                time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def chromium_path() -> str:
    """Chromium's executable; skips the test when it is missing (fails it in CI, which installs
    it)."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        message = "Chromium not found on PATH: install the Debian package `chromium` (.ci/run does)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return chromium


@contextmanager
def launch_chromium() -> Iterator[Any]:
    """A headless Chromium (a playwright ``Browser``), closed on exit."""
    executable = chromium_path()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        try:
            yield browser
        finally:
            browser.close()


def new_page(browser: Any, *, width: int = 1400, height: int = 1500, timeout_ms: int = 90_000):
    """A page in a fresh context of ``browser``, with a ``width`` × ``height`` viewport and
    ``timeout_ms`` as the default timeout of every wait."""
    context = browser.new_context(viewport={"width": width, "height": height})
    context.set_default_timeout(timeout_ms)
    return context.new_page()


def wait_idle(page, settle_ms: int = 250) -> None:
    """Wait until Streamlit has finished the script run: no 'Running…' widget, no stale elements.

    Checked twice, ``settle_ms`` apart, because a rerun can start a moment after an input.
    (Streamlit shows its status widget as soon as an input asks for a rerun, and keeps it for a
    200 ms fade after the run ends, which also bridges a page's own ``st.rerun``.)
    """
    quiet_checks = 0
    deadline = time.monotonic() + 180
    while quiet_checks < 2:
        page.wait_for_timeout(settle_ms)
        busy = page.locator('[data-testid="stStatusWidget"], [data-stale="true"]').count()
        quiet_checks = quiet_checks + 1 if busy == 0 else 0
        if time.monotonic() > deadline:
            raise TimeoutError("the Streamlit script kept running for 3 minutes")


def type_text_area(page, label: str, text: str) -> None:
    """Fill the text area labelled ``label`` and commit it (Ctrl+Enter), then wait for the rerun."""
    box = page.get_by_role("textbox", name=label, exact=True)
    box.fill(text)
    box.press("Control+Enter")  # a text area commits on Ctrl+Enter (or on leaving it)
    wait_idle(page)


def open_label_page(page: Any, url: str, dataset: str, labeler: str) -> None:
    """Open the Label page as a user does: the home page, the sidebar link, the dataset, then the
    labeller's name (confirmed with Enter)."""
    page.goto(url)
    wait_idle(page)
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Label").click()
    wait_idle(page)
    page.get_by_role("combobox", name="Dataset").click()
    page.get_by_role("option", name=dataset).first.click()
    wait_idle(page)
    name = page.get_by_role("textbox", name="Your name", exact=True)
    name.fill(labeler)
    name.press("Enter")
    wait_idle(page)
