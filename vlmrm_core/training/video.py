"""Writing evaluation videos: an H.264 MP4 that appears under its final name only when complete."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["VideoWriter"]


class VideoWriter:
    """H.264 MP4 writer (PyAV) that opens lazily on the first frame, whose size it adopts.

    Frames go to ``<stem>.tmp.mp4`` and :meth:`close` renames it, so a reader never sees a
    half-written video.

    Args:
        path: Destination ``.mp4`` file.
        fps: Frame rate.
    """

    def __init__(self, path: Path, fps: int) -> None:
        self.path = Path(path)
        self.fps = fps
        self._container: Any = None
        self._stream: Any = None
        self._size: tuple[int, int] | None = None

    def write(self, frame: np.ndarray) -> None:
        import av  # imported here: only evaluations need it

        if self._container is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._tmp = self.path.with_name(self.path.stem + ".tmp.mp4")
            self._container = av.open(str(self._tmp), mode="w")
            self._stream = self._container.add_stream("libx264", rate=self.fps)
            # yuv420p needs even dimensions; odd ones are padded by one pixel.
            h, w = frame.shape[:2]
            self._size = (h + h % 2, w + w % 2)
            self._stream.height, self._stream.width = self._size
            self._stream.pix_fmt = "yuv420p"
            self._stream.options = {"crf": "28", "preset": "veryfast"}
        h, w = self._size  # type: ignore[misc]
        if frame.shape[:2] != (h, w):
            padded = np.zeros((h, w, 3), dtype=np.uint8)
            fh, fw = min(h, frame.shape[0]), min(w, frame.shape[1])
            padded[:fh, :fw] = frame[:fh, :fw]
            frame = padded
        video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        for packet in self._stream.encode(video_frame):
            self._container.mux(packet)

    def close(self) -> Path | None:
        if self._container is None:
            return None
        for packet in self._stream.encode():
            self._container.mux(packet)
        self._container.close()
        os.replace(self._tmp, self.path)
        return self.path
