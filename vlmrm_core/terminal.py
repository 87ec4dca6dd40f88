"""Text for the terminal: names from uploads and files must not drive it."""

from __future__ import annotations

import unicodedata


def printable(text: str) -> str:
    """``text`` with control characters (ANSI escapes, newlines, ...) shown as ``\\x1b``-style
    escapes: file and ZIP entry names come from uploads and must not drive the terminal."""
    return "".join(
        ch.encode("unicode_escape").decode("ascii")
        if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp")
        else ch
        for ch in text
    )
