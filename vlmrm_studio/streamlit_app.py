"""VLM-RM Studio: the Streamlit entry point (``make run``).

Pages are file-based ``st.Page`` objects so Streamlit's AppTest can ``switch_page`` to them.
With sign-in configured (``[auth]`` in ``.streamlit/secrets.toml``) a visitor first signs in,
and sees only the pages of their role (see :mod:`vlmrm_studio.auth`); without it, one local user sees all.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

st.set_page_config(page_title="VLM-RM Studio", page_icon=":material/target:", layout="wide")
# The first script run of a session imports torch and open_clip (seconds): say so at once,
# instead of a blank page, then import them.
_starting = st.empty()
if "demo_checked" not in st.session_state:
    _starting.progress(0.0, text="Starting VLM-RM Studio: loading the model libraries…")

from vlmrm_core.services.demo import create_demo_if_empty  # noqa: E402
from vlmrm_studio.auth import require_sign_in, sidebar_account  # noqa: E402  (after the first paint)
from vlmrm_studio.widgets.common import engine, freeze_startup_objects, progress_bar  # noqa: E402

freeze_startup_objects()  # the libraries just imported: no garbage collector walks over them
_starting.empty()

# Not named `pages/`: Streamlit would auto-discover that folder as an old-style multipage app
# and serve deep links (e.g. /label) without running this entry point first. Each page is a
# folder, views/<page>/page.py, with its sections beside it.
VIEWS = Path(__file__).parent / "views"

PAGES = {
    "home": ("Home", ":material/home:"),
    "frames": ("Frames", ":material/photo_library:"),
    "prompt_lab": ("Prompt Lab", ":material/science:"),
    "label": ("Label", ":material/label:"),
    "evaluate": ("Evaluate", ":material/straighten:"),
    "train": ("Train", ":material/model_training:"),
    "tasks": ("Tasks", ":material/assignment:"),
    "admin": ("Admin", ":material/admin_panel_settings:"),
}

identity = require_sign_in(engine())
sidebar_account(identity)

if "demo_checked" not in st.session_state and "frames" in identity.pages:
    # First start on an empty project: render the demo state sweeps so every page has something to show,
    # whichever page the user opens first.
    update, clear = progress_bar(
        "Creating the first-run demo (CartPole and MountainCar state sweeps)"
    )
    created = create_demo_if_empty(engine(), progress=update)
    clear()
    st.session_state["demo_checked"] = True
    if created:
        st.toast(f"Demo datasets created: {', '.join(created)}")

# Only the pages of this role exist for this session: other URLs fall back to the first page.
allowed = [stem for stem in PAGES if stem in identity.pages]
navigation = st.navigation(
    [
        st.Page(
            VIEWS / stem / "page.py",
            title=PAGES[stem][0],
            icon=PAGES[stem][1],
            url_path=stem,  # every entry file is page.py: the folder names the URL
            default=i == 0,
        )
        for i, stem in enumerate(allowed)
    ]
)
navigation.run()
