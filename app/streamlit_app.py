"""VLM-RM Studio: the Streamlit entry point (``make run``).

Pages are file-based ``st.Page`` objects so Streamlit's AppTest can ``switch_page`` to them.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

PAGES = Path(__file__).parent / "pages"

st.set_page_config(page_title="VLM-RM Studio", page_icon=":material/target:", layout="wide")

navigation = st.navigation(
    [
        st.Page(PAGES / "home.py", title="Home", icon=":material/home:", default=True),
        st.Page(PAGES / "frames.py", title="Frames", icon=":material/photo_library:"),
        st.Page(PAGES / "prompt_lab.py", title="Prompt Lab", icon=":material/science:"),
        st.Page(PAGES / "label.py", title="Label", icon=":material/label:"),
        st.Page(PAGES / "evaluate.py", title="Evaluate", icon=":material/straighten:"),
        st.Page(PAGES / "train.py", title="Train", icon=":material/model_training:"),
    ]
)
navigation.run()
