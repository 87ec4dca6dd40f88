"""VLM-RM Studio: the Streamlit entry point (``make run``).

Pages are file-based ``st.Page`` objects so Streamlit's AppTest can ``switch_page`` to them.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

PAGES = Path(__file__).parent / "pages"

st.set_page_config(page_title="VLM-RM Studio", page_icon="🎯", layout="wide")

navigation = st.navigation(
    [
        st.Page(PAGES / "home.py", title="Home", icon="🏠", default=True),
        st.Page(PAGES / "frames.py", title="Frames", icon="🖼️"),
        st.Page(PAGES / "prompt_lab.py", title="Prompt Lab", icon="🧪"),
        st.Page(PAGES / "label.py", title="Label", icon="🏷️"),
        st.Page(PAGES / "evaluate.py", title="Evaluate", icon="📏"),
        st.Page(PAGES / "train.py", title="Train", icon="🏋️"),
    ]
)
navigation.run()
