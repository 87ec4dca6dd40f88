"""Escaping user-controlled text for Streamlit elements that render Markdown.

Every string a user chose (dataset, prompt set, file and zip entry names, labeller names,
descriptions) goes through :func:`md_escape` before ``st.markdown``, ``st.caption``,
``st.error``/``success``/``warning``/``info``, ``st.write`` of a string, widget labels, toasts
and Markdown table cells. Escaped text shows literally: ``**bold**`` stays two asterisks,
``[x](http://...)`` is not a link and ``![t](http://...)`` loads no remote image.
"""

from __future__ import annotations

from vlmrm_studio.widgets.frame_display import escape_markdown

__all__ = ["md_escape"]


def md_escape(text: object) -> str:
    """``text`` as Markdown that renders literally (HTML, links, images, emphasis, math, emoji
    shortcodes and line structure are all neutralised)."""
    return escape_markdown(str(text))
