"""Sign-in for real: an OpenID provider on loopback, ``streamlit run`` with ``[auth]`` pointing at
it, and Chromium signing in as an admin, a labeller and a stranger.

The provider is ``oidc-provider-mock`` (its predefined users sign in with one click); the browser
is Debian's Chromium driven by playwright (never ``playwright install``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.studio._browser import REPO, free_port, launch_chromium, streamlit_server
from vlmrm_core.frames import FrameRecord
from vlmrm_core.store import current_labels, ingest_frames, init_db
from vlmrm_core.store.tasks import create_task
from vlmrm_core.store.users import ensure_admins, set_user_role

ADMIN, LABELLER, STRANGER = "admin@lab.org", "lena@lab.org", "eve@else.org"

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def provider() -> Iterator[str]:
    from oidc_provider_mock import User, run_server_in_thread

    users = [
        User(sub=email.split("@")[0], claims={"email": email, "email_verified": True})
        for email in (ADMIN, LABELLER, STRANGER)
    ]
    with run_server_in_thread(port=free_port(), user_claims=users) as server:
        yield f"http://localhost:{server.server_port}"


@pytest.fixture(scope="module")
def app_url(tmp_path_factory: pytest.TempPathFactory, provider: str) -> Iterator[tuple[str, Path]]:
    data = tmp_path_factory.mktemp("auth-data")
    workdir = tmp_path_factory.mktemp("auth-cwd")
    port = free_port()
    (workdir / ".streamlit").mkdir()
    (workdir / ".streamlit" / "secrets.toml").write_text(
        "[auth]\n"
        f'redirect_uri = "http://localhost:{port}/oauth2callback"\n'
        'cookie_secret = "test-cookie-secret-0123456789abcdef"\n'
        'client_id = "vlmrm-studio"\n'
        'client_secret = "not-so-secret"\n'
        f'server_metadata_url = "{provider}/.well-known/openid-configuration"\n'
    )
    env = {
        **os.environ,
        "VLMRM_DATA_DIR": str(data),
        "VLMRM_ADMINS": ADMIN,
        "PYTHONPATH": str(REPO),
    }
    env.pop("VLMRM_DATABASE_URL", None)
    # The team: a labeller with one task on one of two datasets.
    os.environ["VLMRM_DATA_DIR"] = str(data)
    try:
        db = init_db(f"sqlite:///{data / 'vlmrm.db'}")
        for name in ("cars", "private"):
            frames = [
                FrameRecord(np.full((12, 16, 3), 60 * i + len(name), np.uint8), "upload", f"f{i}")
                for i in range(3)
            ]
            ingest_frames(db, name, frames)
        ensure_admins(db, [ADMIN])
        set_user_role(db, LABELLER, "labeller", actor=ADMIN)
        create_task(
            db, "hill", "cars", "Is the car on the hill?", actor=ADMIN, assignees=[LABELLER]
        )
    finally:
        del os.environ["VLMRM_DATA_DIR"]
    with streamlit_server(port, env, data / "streamlit.log", cwd=workdir, host="localhost") as url:
        yield url, data


@pytest.fixture(scope="module")
def browser():
    with launch_chromium() as b:
        yield b


def _sign_in(browser, url: str, sub: str):  # noqa: ANN001, ANN202
    """A fresh browser context signed in as the provider's predefined user ``sub``."""
    context = browser.new_context(viewport={"width": 1300, "height": 1000})
    context.set_default_timeout(60_000)
    page = context.new_page()
    page.goto(url)
    page.get_by_role("button", name="Sign in").click()
    page.locator(f'button[name="sub"][value="{sub}"]').click()  # the provider's page
    page.wait_for_url(f"{url}/**")
    return context, page


def _nav_titles(page) -> list[str]:  # noqa: ANN001
    nav = page.locator('[data-testid="stSidebarNav"] a')
    nav.first.wait_for()
    return [t.strip().splitlines()[-1] for t in nav.all_inner_texts()]  # after the icon


def test_two_roles_and_a_stranger(app_url: tuple[str, Path], browser) -> None:  # noqa: ANN001
    url, data = app_url

    # The admin sees every page, including Admin, and the labeller there.
    context, page = _sign_in(browser, url, "admin")
    assert _nav_titles(page) == [
        "Home",
        "Frames",
        "Prompt Lab",
        "Label",
        "Evaluate",
        "Train",
        "Tasks",
        "Admin",
    ]
    page.locator('[data-testid="stSidebarNav"] a', has_text="Admin").click()
    page.get_by_text(LABELLER).first.wait_for()
    context.close()

    # The labeller: only the Label page, only their task's dataset, labels under their email.
    context, page = _sign_in(browser, url, "lena")
    page.get_by_text("Labelling as").first.wait_for()
    # One page only: Streamlit shows no page menu at all.
    assert page.locator('[data-testid="stSidebarNav"] a').count() == 0
    assert page.get_by_label("Your name").count() == 0  # no free-text identity
    assert page.locator("input[value='lena@lab.org']").count() == 1
    page.get_by_role("button", name="Success").click()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        os.environ["VLMRM_DATA_DIR"] = str(data)
        labels = current_labels(init_db(f"sqlite:///{data / 'vlmrm.db'}"), "cars")
        del os.environ["VLMRM_DATA_DIR"]
        if len(labels):
            break
        time.sleep(0.5)
    assert set(labels["labeler"]) == {LABELLER}
    # A deep link to another page shows the Label page, not Train.
    page.goto(f"{url}/train")
    page.get_by_text("Labelling as").first.wait_for()
    assert page.get_by_text("Start training").count() == 0
    context.close()

    # Somebody the studio does not know: no data, a request to ask for access.
    context, page = _sign_in(browser, url, "eve")
    page.get_by_text("ask an admin for access", exact=False).first.wait_for()
    assert page.get_by_text("cars").count() == 0
    context.close()
