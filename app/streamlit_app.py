"""VLM-RM Studio: the Streamlit entry point (``make run``).

Pages are file-based ``st.Page`` objects so Streamlit's AppTest can ``switch_page`` to them.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from app.ui import engine, progress_bar
from vlmrm_core.demo import create_demo_if_empty

# Not named `pages/`: Streamlit would auto-discover that folder as an old-style multipage app
# and serve deep links (e.g. /label) without running this entry point first.
VIEWS = Path(__file__).parent / "views"

st.set_page_config(page_title="VLM-RM Studio", page_icon=":material/target:", layout="wide")

if "demo_checked" not in st.session_state:
    # First start on an empty project: render the demo sweeps so every page has something to show,
    # whichever page the user opens first.
    update, clear = progress_bar("Creating the first-run demo (CartPole and MountainCar sweeps)")
    created = create_demo_if_empty(engine(), progress=update)
    clear()
    st.session_state["demo_checked"] = True
    if created:
        st.toast(f"Demo datasets created: {', '.join(created)}")

navigation = st.navigation(
    [
        st.Page(VIEWS / "home.py", title="Home", icon=":material/home:", default=True),
        st.Page(VIEWS / "frames.py", title="Frames", icon=":material/photo_library:"),
        st.Page(VIEWS / "prompt_lab.py", title="Prompt Lab", icon=":material/science:"),
        st.Page(VIEWS / "label.py", title="Label", icon=":material/label:"),
        st.Page(VIEWS / "evaluate.py", title="Evaluate", icon=":material/straighten:"),
        st.Page(VIEWS / "train.py", title="Train", icon=":material/model_training:"),
    ]
)
navigation.run()
