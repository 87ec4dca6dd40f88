"""Opening app pages under Streamlit's AppTest, shared by the page tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.runtime.media_file_manager import MediaFileManager
from streamlit.testing.v1 import AppTest

import vlmrm_studio
from vlmrm_studio.widgets.common import RANDOM_LABEL

STUDIO = Path(vlmrm_studio.__file__).resolve().parent
"""The studio package (``streamlit_app.py`` and ``views/``)."""
VIEWS = STUDIO / "views"
"""The folder of the studio's pages: ``views/<page>/page.py``."""


def page_path(page: str) -> Path:
    """The entry file of a page, e.g. ``page_path("train")``."""
    return VIEWS / page / "page.py"


TINY = "ViT-S-32-alt"
"""The tiny open_clip architecture the page tests pick (random weights, fast on CPU)."""


def page_test(page: str, *, timeout: float = 90) -> AppTest:
    """An AppTest of ``vlmrm_studio/views/{page}/page.py``, not run yet.

    Args:
        page: the page's folder name, e.g. ``"frames"``.
        timeout: seconds each run may take.
    """
    return AppTest.from_file(str(page_path(page)), default_timeout=timeout)


def open_with_random_model(
    page: str, key_prefix: str, *, timeout: float = 120, reselect: bool = False
) -> AppTest:
    """Run a page whose model picker has the keys ``{key_prefix}-model`` / ``-arch`` with the
    random-weights :data:`TINY` model chosen from the first run on (the default architecture is
    slow to load), and check that it raised nothing.

    Args:
        page: the page's file name without ``.py``, e.g. ``"evaluate"``.
        key_prefix: the prefix of the page's widget keys, e.g. ``"eval"``.
        timeout: seconds each run may take.
        reselect: pick the random-weights entry in the model select box again after the first
            run, as a user would.
    """
    at = page_test(page, timeout=timeout)
    at.session_state[f"{key_prefix}-model"] = RANDOM_LABEL
    at.session_state[f"{key_prefix}-arch"] = TINY
    at.run()
    if reselect:
        at.selectbox(key=f"{key_prefix}-model").select(RANDOM_LABEL).run()
    assert not at.exception
    return at


def record_downloads(monkeypatch: pytest.MonkeyPatch) -> dict[str, bytes]:
    """Record the bytes that every ``st.download_button`` with ready data hands to Streamlit.

    AppTest's media store lives only for one run, so the files are kept here, by the URL the
    button carries; read one with :func:`download_bytes`. A button whose data is a callable
    (computed at click time, outside any script run) stores nothing and so is never found.

    Returns:
        URL -> bytes, filled as the app runs.
    """
    files: dict[str, bytes] = {}
    original = MediaFileManager.add

    def add(self, path_or_data, mimetype, coordinates, file_name=None, **kwargs):  # noqa: ANN001
        url = original(self, path_or_data, mimetype, coordinates, file_name=file_name, **kwargs)
        if isinstance(path_or_data, bytes):
            files[url] = path_or_data
        return url

    monkeypatch.setattr(MediaFileManager, "add", add)
    return files


def download_bytes(at: AppTest, files: dict[str, bytes], key: str) -> bytes:
    """The file the download button ``key`` offers now (``files`` from :func:`record_downloads`)."""
    button = at.download_button(key=key)
    assert button.proto.url in files, f"{key} offers no ready file (data computed at click time?)"
    return files[button.proto.url]
