"""Captions, thumbnails, and Markdown escaping of user strings."""

from __future__ import annotations

import base64
import io
import re
import string

import numpy as np
import pytest
from PIL import Image

from tests.conftest import frame_info
from vlmrm_core.store import FrameInfo
from vlmrm_studio.widgets.frame_display import (
    frame_caption,
    png_bytes,
    png_data_uri,
    thumbnail,
)
from vlmrm_studio.widgets.text import md_escape

HOSTILE = [
    "[click](http://evil.example)",
    "![x](http://evil.example/a.png)",
    "<img src=x onerror=alert(1)>",
    "**bold** _it_ `code`",
    ":red[alarm] :smile: $x^2$",
    "# heading\n- item",
    "a\\*b",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_escaped_markdown_is_literal(text: str) -> None:
    escaped = md_escape(text)
    # CommonMark renders a backslash-escaped ASCII punctuation character as that character and
    # gives it no meaning, so: no punctuation may stand unescaped, and dropping the escapes must
    # give back the text (line breaks flattened, so that no line can start a block).
    assert "\n" not in escaped
    unescaped = re.sub(r"\\(.)", "", escaped)
    assert not any(ch in string.punctuation for ch in unescaped)
    assert re.sub(r"\\(.)", r"\1", escaped) == " ".join(text.splitlines())


def test_md_escape_keeps_plain_text() -> None:
    assert md_escape("frame 12") == "frame 12"
    assert md_escape("ümlaut é") == "ümlaut é"
    assert md_escape(3.5) == "3\\.5"


def _info(**kwargs: object) -> FrameInfo:
    """An unnamed 8×6 upload with hash ``abab…``."""
    return frame_info(0, **{"hash": "ab" * 32, "name": None, "width": 8, "height": 6, **kwargs})


def test_frame_caption() -> None:
    assert frame_caption(_info(name="cat.png")) == "cat.png"
    assert frame_caption(_info()) == "ab" * 6
    sweep = _info(name="pole_angle=+0.100", param_name="pole_angle", param_value=0.1)
    assert frame_caption(sweep) == "pole_angle=+0.100"
    pose = _info(name="pose=lotus", param_name="pose", param_value=3.0)
    assert frame_caption(pose) == "pose=lotus"
    unnamed = _info(name="shot.png", param_name="angle", param_value=-0.5)
    assert frame_caption(unnamed) == "shot.png · angle=-0.500"
    rollout = _info(name="CartPole-v1 ep0 t5", episode=0, step=5)
    assert frame_caption(rollout) == "CartPole-v1 ep0 t5"
    renamed = _info(name="clip.mp4#4", episode=1, step=4)
    assert frame_caption(renamed) == "clip.mp4#4 · episode 1, step 4"


def test_thumbnail_keeps_aspect_and_small_frames() -> None:
    pixels = np.zeros((400, 600, 3), np.uint8)
    pixels[:, 300:] = 255
    small = thumbnail(pixels, 150)
    assert small.shape == (100, 150, 3) and small.dtype == np.uint8
    assert small[50, 10].tolist() == [0, 0, 0] and small[50, 140].tolist() == [255, 255, 255]
    tiny = np.ones((10, 20, 3), np.uint8)
    assert thumbnail(tiny, 150) is tiny
    with pytest.raises(ValueError):
        thumbnail(tiny, 0)


def test_png_bytes_and_data_uri_round_trip() -> None:
    pixels = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(png_bytes(pixels)))), pixels)
    uri = png_data_uri(pixels)
    assert uri.startswith("data:image/png;base64,")
    decoded = base64.b64decode(uri.split(",", 1)[1])
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(decoded))), pixels)
