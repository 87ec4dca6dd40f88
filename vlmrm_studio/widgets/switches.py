"""Choices drawn as plain buttons, for pages driven by the arrow keys.

A radio, a segmented control or pills keep the keyboard focus after a click and take ← / →
themselves (a radio changes its choice; a segmented control is an ARIA radio group whose arrows
move the focus), so the page's ← / → shortcuts stop answering. A clicked ``st.button`` keeps the
focus too, but a button does nothing with arrows, so Streamlit's shortcuts still fire.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

import streamlit as st

from vlmrm_studio.widgets.text import md_escape

__all__ = ["button_switch", "button_toggle"]

T = TypeVar("T")


def _set(key: str, value: object) -> None:
    st.session_state[key] = value


def button_switch(
    label: str,
    options: Sequence[T],
    *,
    key: str,
    format_func: Callable[[T], str] = str,
    disabled: bool = False,
    help: str | None = None,
) -> T:
    """One option of several, as a row of buttons (the chosen one primary); the first until one
    is clicked. The choice is kept in ``st.session_state[key]``; the buttons' keys are
    ``f"{key}-{index}"``."""
    state = st.session_state
    if state.get(key) not in options:
        state[key] = options[0]
    st.caption(md_escape(label), help=help)
    row = st.container(horizontal=True, gap="small")
    for i, option in enumerate(options):
        row.button(
            md_escape(format_func(option)),
            key=f"{key}-{i}",
            type="primary" if state[key] == option else "secondary",
            disabled=disabled,
            on_click=_set,
            args=(key, option),
        )
    return state[key]


def button_toggle(label: str, *, key: str, help: str | None = None) -> bool:
    """An on / off switch as one button (primary while on), off until clicked; kept in
    ``st.session_state[key]``."""
    on = bool(st.session_state.get(key, False))
    st.button(
        md_escape(label),
        key=f"{key}-button",
        type="primary" if on else "secondary",
        icon=":material/toggle_on:" if on else ":material/toggle_off:",
        help=help,
        on_click=_set,
        args=(key, not on),
    )
    return on
