"""How every page states a dataset's size: one rule, one function.

A dataset's *frames* are its memberships (the rows the Frames browser pages through, the points
the Prompt Lab draws); an image stored under two names is two frames but one *distinct image*,
and labels belong to images (the Label page's progress counts images). Wherever a page shows a
dataset's size it says ``N frames`` and, when the two differ, ``N frames (M distinct images)``.
"""

from __future__ import annotations


def frame_count_text(n_frames: int, n_images: int | None = None) -> str:
    """``"40 frames (39 distinct images)"``, or ``"40 frames"`` when every frame is distinct.

    Args:
        n_frames: memberships of the dataset.
        n_images: distinct images among them (None: not known, not mentioned).

    Returns:
        The count as the app shows it.
    """
    text = f"{n_frames} frame{'s' * (n_frames != 1)}"
    if n_images is not None and n_images != n_frames:
        text += f" ({n_images} distinct image{'s' * (n_images != 1)})"
    return text
