"""Videos (MP4, WebM, MOV, MKV, AVI through PyAV) as every k-th frame, decoded as a stream."""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

import numpy as np

from vlmrm_core.frames import FrameRecord, ProgressCallback, Rejection
from vlmrm_core.sources.uploads._common import Limits, Reject, brief, reduction_factor
from vlmrm_core.sources.uploads.images import check_pixels
from vlmrm_core.sources.uploads.sniff import SUPPORTED_HINT

__all__ = ["video_frames"]


def video_frames(
    fp: BinaryIO, name: str, limits: Limits, *, progress: ProgressCallback | None
) -> Iterator[FrameRecord | Rejection]:
    """Every k-th frame of a video, decoded as a stream (one frame in memory at a time).

    Frames larger than ``limits.max_frame_pixels`` are scaled down by an integer factor while
    they are converted to RGB; ``extra['downscaled_from']`` then holds the original size.
    """
    every_k, max_frames, max_pixels = limits.every_k, limits.max_frames, limits.max_pixels
    import av  # imported lazily: PyAV loads FFmpeg, which image-only uploads never need

    try:
        container = av.open(fp, mode="r")
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise Reject(
            f"{name} is not a readable video, perhaps truncated or corrupt ({brief(exc)}); "
            "upload a complete MP4, WebM, MOV or MKV file"
        ) from None
    with container:
        if not container.streams.video:
            raise Reject(f"{name} has no video stream; {SUPPORTED_HINT}")
        stream = container.streams.video[0]
        width, height = stream.codec_context.width, stream.codec_context.height
        if width and height:
            check_pixels(name, width, height, max_pixels)
        declared = stream.frames or 0
        total = min(-(-declared // every_k), max_frames) if declared else None
        index = 0
        produced = 0
        try:
            # decode() yields frames one at a time in presentation order, so memory stays at
            # one frame however long the video is.
            for frame in container.decode(stream):
                if index % every_k == 0:
                    if frame.width * frame.height > max_pixels:
                        check_pixels(f"{name}#{index}", frame.width, frame.height, max_pixels)
                    factor = reduction_factor(frame.width, frame.height, limits.max_frame_pixels)
                    if factor > 1:
                        pixels = frame.to_ndarray(
                            format="rgb24",
                            width=-(-frame.width // factor),
                            height=-(-frame.height // factor),
                        )
                    else:
                        pixels = frame.to_ndarray(format="rgb24")
                    frame_name = f"{name}#{index}"
                    produced += 1
                    yield FrameRecord(
                        pixels=np.ascontiguousarray(pixels, dtype=np.uint8),
                        source="upload",
                        name=frame_name,
                        extra={
                            "frame_index": index,
                            "time": float(frame.time) if frame.time is not None else None,
                            **(
                                {"downscaled_from": [frame.width, frame.height]}
                                if factor > 1
                                else {}
                            ),
                        },
                    )
                    if progress:
                        progress(produced, total, frame_name)
                    if produced >= max_frames:
                        return
                index += 1
        except (av.FFmpegError, OSError, ValueError) as exc:
            if produced == 0:
                raise Reject(f"{name} has no decodable video frames ({brief(exc)})") from None
            yield Rejection(
                f"{name}#{index}",
                f"decoding {name} stopped at frame {index} ({brief(exc)}); "
                f"the {produced} frames before it were kept",
            )
            return
        if produced == 0:
            raise Reject(f"{name} has no decodable video frames")
