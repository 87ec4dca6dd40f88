"""Images (PNG, JPEG, WebP, BMP, GIF; still or animated) as RGB frames, in bounded memory.

The file is opened lazily with the Pillow plugin of the sniffed format: that reads the header
only, so the size is known and checked against the pixel cap before anything is decoded (a
decompression bomb is refused from its header). Pillow's own bomb check is process-global and
says nothing about the actual size, so the plugin is called directly and the project's caps
decide. Before decoding, the memory the decoded image needs is checked against a budget; images
larger than the stored-frame size are decoded at a reduced scale where the format allows it
(JPEG's DCT scaling) and reduced right after decoding otherwise, and the conversion to RGB runs
in strips of rows, so the peak stays near one decoded image plus one stored frame.
"""

from __future__ import annotations

import struct
import warnings
from collections.abc import Iterator
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps

from vlmrm_core.frames import FrameRecord, ProgressCallback, Rejection
from vlmrm_core.sources.uploads._common import (
    Limits,
    Reject,
    brief,
    human_size,
    reduction_factor,
)
from vlmrm_core.sources.uploads.sniff import PIL_FORMATS

__all__ = ["check_pixels", "image_frames", "open_image", "to_rgb"]

_STRIP_ROWS = 256
"""Rows converted to RGB at a time (bounds the temporary images of the conversion)."""

# Bytes per pixel of Pillow's in-memory storage: 1 for bilevel, greyscale and palette images,
# 2 for 16-bit greyscale, 4 for everything else (RGB is stored with a padding byte).
_ONE_BYTE_MODES = frozenset({"1", "L", "P"})
_TWO_BYTE_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N"})


def _bytes_per_pixel(mode: str) -> int:
    if mode in _ONE_BYTE_MODES:
        return 1
    if mode in _TWO_BYTE_MODES:
        return 2
    return 4


def check_pixels(name: str, width: int, height: int, max_pixels: int) -> None:
    """Raise :class:`Reject` for an image over the pixel cap or with an empty size."""
    if width * height > max_pixels:
        raise Reject(
            f"{name} is {width}×{height} = {width * height:,} pixels, over the "
            f"{max_pixels:,}-pixel cap (possible decompression bomb); downscale it first"
        )
    if width <= 0 or height <= 0:
        raise Reject(f"{name} declares an empty {width}×{height} image")


def open_image(fp: BinaryIO, name: str, kind: str) -> Image.Image:
    """Open lazily (header only) with the plugin of ``kind``; failures become one sentence."""
    Image.init()
    factory, _accept = Image.OPEN[PIL_FORMATS[kind]]
    start = fp.tell()
    try:
        # The warnings filter is set only around this call, never across a ``yield``: it is
        # process-global state and a suspended generator would leave it changed for everyone.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return factory(fp, "")
    except (SyntaxError, struct.error, EOFError, OSError, ValueError, IndexError) as exc:
        fp.seek(start)
        if isinstance(exc, SyntaxError | EOFError) or "truncated" in str(exc).lower():
            raise Reject(
                f"{name} starts like a {kind.upper()} image but is truncated or corrupt; "
                "re-export the file"
            ) from None
        raise Reject(
            f"{name} looks like {kind.upper()} but could not be read ({brief(exc)}); "
            "re-export the file"
        ) from None


def to_rgb(im: Image.Image, factor: int = 1) -> np.ndarray:
    """Any Pillow mode -> H×W×3 uint8, transparency composited over white, reduced by ``factor``.

    Works strip by strip (compositing, then a box reduction of the RGB strip), so the temporary
    images are a few rows high however large the image is.
    """
    width, height = im.size
    out_w, out_h = -(-width // factor), -(-height // factor)
    out = np.empty((out_h, out_w, 3), dtype=np.uint8)
    rows = _STRIP_ROWS * factor  # a multiple of the factor: strips reduce independently
    for top in range(0, height, rows):
        strip = _strip_to_rgb(im.crop((0, top, width, min(height, top + rows))))
        if factor > 1:
            strip = np.asarray(Image.fromarray(strip).reduce(factor), dtype=np.uint8)
        out[top // factor : top // factor + strip.shape[0]] = strip
    return out


def _strip_to_rgb(im: Image.Image) -> np.ndarray:
    mode = im.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        # 16-bit greyscale: scale the full range down instead of clipping at 255 (which is what
        # a plain convert('L') does, turning most of the image white).
        grey = np.asarray(im, dtype=np.float64)
        peak = 65535.0 if mode.startswith("I;16") or grey.max(initial=0) > 255 else 255.0
        grey = np.clip(grey / peak * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if mode == "F":
        grey = np.asarray(im, dtype=np.float64)
        scale = 255.0 if grey.max(initial=0) <= 1.0 else 1.0
        grey = np.clip(grey * scale + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    has_alpha = mode in ("RGBA", "LA", "PA", "La", "RGBa") or (
        mode in ("P", "L", "RGB") and "transparency" in im.info
    )
    if has_alpha:
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        im = Image.alpha_composite(white, rgba)
    rgb = im.convert("RGB") if im.mode != "RGB" else im
    return np.asarray(rgb, dtype=np.uint8)


def _decode(im: Image.Image, name: str, limits: Limits, animated: bool) -> tuple[np.ndarray, int]:
    """Decode the current frame within the memory budget; returns pixels and the reduction."""
    width, height = im.size
    factor = reduction_factor(width, height, limits.max_frame_pixels)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            if factor > 1 and im.format == "JPEG":
                # DCT scaling: decode at 1/2, 1/4 or 1/8 scale, never holding the full image.
                im.draft("RGB", (-(-width // factor), -(-height // factor)))
            # Animation frames after the first may be expanded to RGBA while decoding.
            per_pixel = 4 if animated else _bytes_per_pixel(im.mode)
            needed = im.size[0] * im.size[1] * per_pixel
            if needed > limits.max_decode_bytes:
                raise Reject(
                    f"{name} ({width}×{height}, {im.mode}) needs {human_size(needed)} of memory "
                    f"to decode, over the {human_size(limits.max_decode_bytes)} budget; "
                    "downscale it or save it with fewer channels first"
                )
            im.load()
            if im.format == "JPEG" and not animated:
                # Phone photos store their rotation in EXIF; show them the way the user sees them.
                im = ImageOps.exif_transpose(im)
            rest = reduction_factor(im.size[0], im.size[1], limits.max_frame_pixels)
            return to_rgb(im, rest), factor
    except Reject:
        raise
    except (OSError, SyntaxError, ValueError, struct.error, EOFError) as exc:
        if "truncated" in str(exc).lower():
            raise Reject(f"{name} is truncated ({brief(exc)}); upload the complete file") from None
        raise Reject(f"{name} is corrupt and could not be decoded ({brief(exc)})") from None


def image_frames(
    fp: BinaryIO,
    name: str,
    kind: str,
    limits: Limits,
    *,
    extra: dict | None,
    progress: ProgressCallback | None,
) -> Iterator[FrameRecord | Rejection]:
    """Frames of one image file: one for a still image, every k-th of an animation.

    Frames larger than ``limits.max_frame_pixels`` are reduced by an integer factor; their
    ``extra['downscaled_from']`` holds the original ``[width, height]``.
    """
    im = open_image(fp, name, kind)
    try:
        check_pixels(name, im.width, im.height, limits.max_pixels)
        n_frames = getattr(im, "n_frames", 1) if getattr(im, "is_animated", False) else 1
        if n_frames > 1:
            yield from _animation_frames(im, name, n_frames, limits, extra, progress)
            return
        size = list(im.size)
        pixels, factor = _decode(im, name, limits, animated=False)
    finally:
        # Frees the decoded data before the consumer hashes and stores the frame. The base
        # class's close leaves the stream open: it belongs to the caller.
        Image.Image.close(im)
    info = dict(extra or {})
    if factor > 1:
        info["downscaled_from"] = size
    yield FrameRecord(pixels=pixels, source="upload", name=name, extra=info)
    if progress:
        progress(1, 1, name)


def _animation_frames(
    im: Image.Image,
    name: str,
    n_frames: int,
    limits: Limits,
    extra: dict | None,
    progress: ProgressCallback | None,
) -> Iterator[FrameRecord | Rejection]:
    wanted = min(-(-n_frames // limits.every_k), limits.max_frames)
    indices = range(0, n_frames, limits.every_k)[: limits.max_frames]
    for produced, index in enumerate(indices, start=1):
        frame_name = f"{name}#{index}"
        try:
            im.seek(index)
            check_pixels(frame_name, im.width, im.height, limits.max_pixels)
            size = list(im.size)
            pixels, factor = _decode(im, frame_name, limits, animated=True)
        except Reject as exc:
            yield Rejection(frame_name, str(exc))
            return
        except (EOFError, OSError, ValueError) as exc:
            yield Rejection(frame_name, f"{frame_name} could not be decoded ({brief(exc)})")
            return
        info = {**(extra or {}), "frame_index": index}
        if factor > 1:
            info["downscaled_from"] = size
        yield FrameRecord(pixels=pixels, source="upload", name=frame_name, extra=info)
        if progress:
            progress(produced, wanted, frame_name)
