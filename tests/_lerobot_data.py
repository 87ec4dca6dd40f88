"""Small LeRobot datasets written to disk (layouts v2.1 and v3.0), for tests and the benchmark.

Every frame is one solid colour that names its camera, episode and frame index
(:func:`frame_colour`), so a decoded frame can be traced back to where it came from within the
tolerance of h264's lossy coding. The videos are h264 written with PyAV, with a keyframe every
few frames that does not line up with the episode boundaries, so a reader of the v3.0 layout
(several episodes per file) must seek and then skip frames to find an episode's first frame.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import av
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

CAMERAS = ("observation.images.top", "observation.images.wrist")
"""The two cameras of the test datasets, in the order of ``info.json``'s features."""

LENGTHS = (5, 9, 7)
"""Frames of the three test episodes (different, so an off-by-one shows)."""

TASKS = ("pick up the red cube", "open the drawer")
"""Tasks of the test datasets; episode 1 does the second, the others the first."""

FPS = 10
WIDTH, HEIGHT = 64, 48
GOP = 4
"""Frames between keyframes of the test videos."""


def frame_colour(camera: int, episode: int, frame: int) -> tuple[int, int, int]:
    """The RGB colour of frame ``frame`` of episode ``episode`` seen by camera number ``camera``.

    Channels are at least 20 levels apart between neighbouring frames and episodes, far more
    than h264 moves a flat colour.
    """
    return (30 + 60 * episode, 20 + (20 * frame) % 220, 60 + 120 * camera)


def _frames(
    camera: int, episode: int, length: int, size: tuple[int, int], textured: bool = False
) -> np.ndarray:
    width, height = size
    frames = np.empty((length, height, width, 3), np.uint8)
    if textured:
        # Camera-like content for timing: smooth shading plus a bar that moves every frame.
        y, x = np.mgrid[0:height, 0:width]
        shade = (24 * np.sin(x / 9.0) * np.cos(y / 7.0)).astype(np.int16)[..., None]
    for index in range(length):
        frames[index] = frame_colour(camera, episode, index)
        if textured:
            moving = frames[index].astype(np.int16) + shade
            bar = (index * 7) % max(1, width - 16)
            moving[:, bar : bar + 16] = 255 - moving[:, bar : bar + 16]
            frames[index] = np.clip(moving, 0, 255).astype(np.uint8)
    return frames


def write_video(path: Path, frames: Sequence[np.ndarray], fps: int = FPS, gop: int = GOP) -> None:
    """Encode RGB frames as an h264 MP4 whose frame k is shown at k / fps seconds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    height, width = frames[0].shape[:2]
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p"
        stream.options = {"g": str(gop), "keyint_min": str(gop), "sc_threshold": "0", "crf": "18"}
        for pixels in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")))
        container.mux(stream.encode())


def _info(version: str, lengths: Sequence[int], cameras: Sequence[str], size: tuple[int, int]):
    width, height = size
    features: dict[str, dict[str, object]] = {
        camera: {
            "dtype": "video",
            "shape": [height, width, 3],
            "names": ["height", "width", "channels"],
            "info": {"video.fps": FPS, "video.codec": "h264", "video.pix_fmt": "yuv420p"},
        }
        for camera in cameras
    }
    features["observation.state"] = {"dtype": "float32", "shape": [2], "names": None}
    for column in ("timestamp",):
        features[column] = {"dtype": "float32", "shape": [1], "names": None}
    for column in ("frame_index", "episode_index", "index", "task_index"):
        features[column] = {"dtype": "int64", "shape": [1], "names": None}
    if version == "v2.1":
        paths = {
            "data_path": "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet",
            "video_path": "videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4",
        }
    else:
        paths = {
            "data_path": "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet",
            "video_path": "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4",
        }
    return {
        "codebase_version": version,
        "robot_type": "test-arm",
        "total_episodes": len(lengths),
        "total_frames": int(sum(lengths)),
        "total_tasks": len(TASKS),
        "chunks_size": 1000,
        "fps": FPS,
        "splits": {"train": f"0:{len(lengths)}"},
        **paths,
        "features": features,
    }


def _task_index(episode: int) -> int:
    return 1 if episode == 1 else 0


def _data_table(episodes: Sequence[int], lengths: Sequence[int], first_index: int) -> pa.Table:
    rows: dict[str, list[object]] = {
        "observation.state": [],
        "timestamp": [],
        "frame_index": [],
        "episode_index": [],
        "index": [],
        "task_index": [],
    }
    index = first_index
    for episode in episodes:
        for frame in range(lengths[episode]):
            rows["observation.state"].append([float(episode), float(frame)])
            rows["timestamp"].append(frame / FPS)
            rows["frame_index"].append(frame)
            rows["episode_index"].append(episode)
            rows["index"].append(index)
            rows["task_index"].append(_task_index(episode))
            index += 1
    return pa.table(
        {
            "observation.state": pa.array(rows["observation.state"], pa.list_(pa.float32())),
            "timestamp": pa.array(rows["timestamp"], pa.float32()),
            **{k: pa.array(rows[k], pa.int64()) for k in rows if k.endswith("index")},
        }
    )


def write_lerobot_dataset(
    root: Path,
    version: str = "v3.0",
    *,
    lengths: Sequence[int] = LENGTHS,
    cameras: Sequence[str] = CAMERAS,
    size: tuple[int, int] = (WIDTH, HEIGHT),
    drop_frames: Mapping[int, int] | None = None,
    textured: bool = False,
) -> Path:
    """Write a LeRobot dataset of solid-colour frames (see :func:`frame_colour`).

    v3.0 puts episodes 0 and 1 in one data file and episode 2 in another; the first camera's
    video holds all episodes in one file, the second camera's holds episodes 0–1 and 2 in two
    files, so chunk/file indices and the from/to timestamps are exercised.

    Args:
        root: Folder to create the dataset in.
        version: ``'v2.1'`` or ``'v3.0'``.
        lengths: Frames per episode.
        cameras: Video feature keys.
        size: Frame (width, height), both even.
        drop_frames: ``{episode: n}`` leaves the last n frames of that episode out of every
            camera's video (a video shorter than its timestamps say). In v3.0 only the last
            episode of a video file really ends early; an earlier one runs into the next.
        textured: Shading and a moving bar on top of the colours (camera-like content for the
            benchmark; the colours then no longer identify frames exactly).

    Returns:
        ``root``.
    """
    drop = dict(drop_frames or {})
    root.mkdir(parents=True, exist_ok=True)
    (root / "meta").mkdir(exist_ok=True)
    (root / "meta" / "info.json").write_text(
        json.dumps(_info(version, lengths, cameras, size), indent=2)
    )
    n_episodes = len(lengths)

    def kept(camera: int, episode: int) -> np.ndarray:
        frames = _frames(camera, episode, lengths[episode], size, textured)
        return frames[: lengths[episode] - drop.get(episode, 0)]

    if version == "v2.1":
        with (root / "meta" / "tasks.jsonl").open("w") as out:
            for index, task in enumerate(TASKS):
                out.write(json.dumps({"task_index": index, "task": task}) + "\n")
        with (root / "meta" / "episodes.jsonl").open("w") as out:
            for episode, length in enumerate(lengths):
                row = {"episode_index": episode, "tasks": [TASKS[_task_index(episode)]]}
                out.write(json.dumps({**row, "length": length}) + "\n")
        first = 0
        for episode in range(n_episodes):
            path = root / f"data/chunk-000/episode_{episode:06d}.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(_data_table([episode], lengths, first), path)
            first += lengths[episode]
            for cam, key in enumerate(cameras):
                video = root / f"videos/chunk-000/{key}/episode_{episode:06d}.mp4"
                write_video(video, list(kept(cam, episode)))
        return root

    if version != "v3.0":
        raise ValueError(f"unknown layout {version!r}")
    tasks = pa.table(
        {"task_index": pa.array(range(len(TASKS)), pa.int64()), "task": pa.array(TASKS)}
    )
    pq.write_table(tasks, root / "meta" / "tasks.parquet")
    data_files = [list(range(min(2, n_episodes))), list(range(2, n_episodes))]
    data_file_of: dict[int, int] = {}
    first = 0
    for file_index, episodes in enumerate(f for f in data_files if f):
        path = root / f"data/chunk-000/file-{file_index:03d}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(_data_table(episodes, lengths, first), path)
        first += sum(lengths[e] for e in episodes)
        data_file_of.update(dict.fromkeys(episodes, file_index))
    video_meta: dict[str, dict[int, tuple[int, float, float]]] = {}
    for cam, key in enumerate(cameras):
        groups = [list(range(n_episodes))] if cam == 0 else data_files
        video_meta[key] = {}
        for file_index, episodes in enumerate(g for g in groups if g):
            frames: list[np.ndarray] = []
            start = 0.0
            for episode in episodes:
                # The metadata says the full length even where frames were dropped.
                video_meta[key][episode] = (file_index, start, start + lengths[episode] / FPS)
                frames.extend(kept(cam, episode))
                start += len(kept(cam, episode)) / FPS
            write_video(root / f"videos/{key}/chunk-000/file-{file_index:03d}.mp4", frames)
    columns: dict[str, list[object]] = {
        "episode_index": list(range(n_episodes)),
        "tasks": [[TASKS[_task_index(e)]] for e in range(n_episodes)],
        "length": list(lengths),
        "data/chunk_index": [0] * n_episodes,
        "data/file_index": [data_file_of[e] for e in range(n_episodes)],
        "dataset_from_index": [int(sum(lengths[:e])) for e in range(n_episodes)],
        "dataset_to_index": [int(sum(lengths[: e + 1])) for e in range(n_episodes)],
    }
    for key in cameras:
        columns[f"videos/{key}/chunk_index"] = [0] * n_episodes
        columns[f"videos/{key}/file_index"] = [video_meta[key][e][0] for e in range(n_episodes)]
        columns[f"videos/{key}/from_timestamp"] = [video_meta[key][e][1] for e in range(n_episodes)]
        columns[f"videos/{key}/to_timestamp"] = [video_meta[key][e][2] for e in range(n_episodes)]
    columns["stats/observation.state/mean"] = [[0.0, 0.0]] * n_episodes
    path = root / "meta/episodes/chunk-000/file-000.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(columns), path)
    return root
