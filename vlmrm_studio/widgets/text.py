"""Escaping user-controlled text for Streamlit elements that render Markdown.

Every string a user chose (dataset, prompt set, file and zip entry names, labeller names,
descriptions) goes through :func:`md_escape` before ``st.markdown``, ``st.caption``,
``st.error``/``success``/``warning``/``info``, ``st.write`` of a string, widget labels, toasts
and Markdown table cells. Escaped text shows literally: ``**bold**`` stays two asterisks,
``[x](http://...)`` is not a link and ``![t](http://...)`` loads no remote image.
"""

from __future__ import annotations

import string

__all__ = ["md_escape"]

# Every ASCII punctuation character may be backslash-escaped in CommonMark, and an escaped one
# is always literal. Escaping all of them also defuses Streamlit's own extensions (``:red[..]``
# colour directives, ``:emoji:`` short codes, ``$..$`` LaTeX) that ride on ``:``, ``[`` and ``$``.
_MARKDOWN_SPECIAL = frozenset(string.punctuation)


def md_escape(text: object) -> str:
    """``text`` as Markdown that renders literally (HTML, links, images, emphasis, math, emoji
    shortcodes and line structure are all neutralised).

    Args:
        text: Any value; it is converted with ``str()``.

    Returns:
        The text with every ASCII punctuation character backslash-escaped, and line breaks turned
        into spaces (a newline followed by ``#`` or ``-`` could otherwise start a block).
    """
    flat = " ".join(str(text).splitlines())
    return "".join(f"\\{ch}" if ch in _MARKDOWN_SPECIAL else ch for ch in flat)
