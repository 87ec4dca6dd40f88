"""How frames are shown to people: captions and thumbnails.

Frame names come from users (uploaded file names, ZIP entry names, dataset names). Streamlit
renders captions, alerts and headings as Markdown, so every user string that reaches one of
them goes through :func:`vlmrm_studio.widgets.text.md_escape` first; raw HTML is never enabled.
"""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image

from vlmrm_core.store import FrameInfo

__all__ = [
    "frame_caption",
    "png_bytes",
    "png_data_uri",
    "thumbnail",
]


def frame_caption(info: FrameInfo) -> str:
    """A short plain-text caption: the frame's name plus its step or swept value.

    Rollout frame names already say ``ep0 t5`` and sweep names already say ``angle=+0.1``;
    those parts are added only when the name does not carry them.

    Args:
        info: One membership of the frame in a dataset.

    Returns:
        Plain text (escape it before rendering it as Markdown).
    """
    name = info.name or info.hash[:12]
    parts = [name]
    if info.param_name is not None and info.param_value is not None:
        value = f"{info.param_name}={info.param_value:+.3f}"
        if not name.startswith(f"{info.param_name}="):
            parts.append(value)
    if info.step is not None and not name.endswith(f"t{info.step}"):
        episode = f"episode {info.episode}, " if info.episode is not None else ""
        parts.append(f"{episode}step {info.step}")
    return " · ".join(parts)


def thumbnail(pixels: np.ndarray, max_side: int = 192) -> np.ndarray:
    """Downscale an RGB frame so that its longer side is at most ``max_side`` pixels.

    Args:
        pixels: H×W×3 uint8.
        max_side: Longest side of the result; smaller frames are returned unchanged.

    Returns:
        H'×W'×3 uint8 with the aspect ratio kept.
    """
    if max_side < 1:
        raise ValueError(f"max_side must be positive, got {max_side}")
    height, width = pixels.shape[:2]
    scale = max_side / max(height, width)
    if scale >= 1.0:
        return pixels
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    image = Image.fromarray(np.ascontiguousarray(pixels, dtype=np.uint8))
    # reducing_gap speeds up large reductions with no visible loss at thumbnail size.
    return np.asarray(image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0))


def png_bytes(pixels: np.ndarray) -> bytes:
    """An RGB frame encoded as PNG (compact to cache, and what ``st.image`` serves anyway)."""
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels, dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def png_data_uri(pixels: np.ndarray) -> str:
    """A ``data:image/png;base64,...`` URI, for image columns of a data table.

    Args:
        pixels: H×W×3 uint8 (keep it small: the URI carries every byte).

    Returns:
        The data URI.
    """
    return "data:image/png;base64," + base64.b64encode(png_bytes(pixels)).decode("ascii")
