"""LeRobot datasets on disk as a frame source: one camera's frames, episode by episode.

The ``lerobot`` package itself needs Python ≥ 3.12, so this module reads its on-disk format
with pyarrow and PyAV. Two layouts are understood (``codebase_version`` in ``meta/info.json``):

* **v2.0 / v2.1**: one parquet file and, per camera, one MP4 per episode, at the paths that
  ``info.json``'s ``data_path`` and ``video_path`` templates give for ``episode_chunk``
  (episode index // ``chunks_size``) and ``episode_index``; episodes are listed in
  ``meta/episodes.jsonl``, tasks in ``meta/tasks.jsonl``.
* **v3.0**: several episodes per data file and per video file. ``meta/episodes/**.parquet``
  holds one row per episode with its ``data/chunk_index`` and ``data/file_index`` and, per
  camera, ``videos/<camera>/chunk_index``, ``file_index``, ``from_timestamp`` and
  ``to_timestamp`` (where the episode's span starts and ends inside the MP4); tasks are in
  ``meta/tasks.parquet``.

Frame ``i`` of an episode is the video frame nearest to ``from_timestamp + timestamp[i]``
(``timestamp`` is the column of the episode's rows in the data parquet; ``from_timestamp`` is 0
in v2.x), within half a frame interval. The reader seeks to the keyframe before the episode's
span and decodes forward; frames before the span are skipped without being converted to RGB.

Bad input raises :class:`LeRobotError` with one line that names the problem and the fix: no
``meta/info.json``, an unknown codebase version, a camera that is not in the dataset (the
message lists those that are), an episode range outside the dataset, a missing file, a video
shorter than its timestamps say. Checks that need only the metadata run before the first frame
is produced; a video found short while decoding raises mid-stream, and
:func:`~vlmrm_core.store.ingest.ingest_frames` then stores nothing.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vlmrm_core.errors import VlmrmError
from vlmrm_core.frames import FrameRecord, ProgressCallback, VideoLocation

__all__ = [
    "LAYOUTS",
    "LeRobotDatasetInfo",
    "LeRobotEpisode",
    "LeRobotError",
    "lerobot_cameras",
    "lerobot_frames",
    "lerobot_tasks",
    "parse_episode_range",
    "read_lerobot_dataset",
]

LAYOUTS = {"v2.0": 2, "v2.1": 2, "v3.0": 3}
"""Codebase versions this reader understands, with their on-disk layout (2: a file per episode;
3: several episodes per file)."""

_V2_DATA_PATH = "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet"
_V2_VIDEO_PATH = "videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4"
_V3_DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
_V3_VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
_FRAME_COLUMNS = ("episode_index", "frame_index", "timestamp")


class LeRobotError(VlmrmError, ValueError):
    """A LeRobot dataset that cannot be read as asked; the message names the problem and fix."""


@dataclass(frozen=True)
class LeRobotEpisode:
    """Where one episode lives on disk (from ``meta/episodes``)."""

    index: int
    """``episode_index``."""
    length: int
    """Frames, as the episode metadata says."""
    tasks: tuple[str, ...]
    """The episode's task descriptions."""
    data_file: str
    """Data parquet, relative to the dataset root."""
    videos: dict[str, tuple[str, float]]
    """Per camera: the MP4 (relative to the root) and where the episode starts in it (s)."""


@dataclass(frozen=True)
class LeRobotDatasetInfo:
    """What :func:`read_lerobot_dataset` learns from a dataset's ``meta/`` folder."""

    root: Path
    codebase_version: str
    fps: float
    robot_type: str | None
    cameras: tuple[str, ...]
    """Video feature keys, in the order of ``info.json``'s features (the first is the default)."""
    tasks: tuple[str, ...]
    """Task descriptions in ``task_index`` order."""
    episodes: dict[int, LeRobotEpisode]
    """By episode index, ascending."""

    @property
    def total_frames(self) -> int:
        """Frames of all episodes, as the metadata says."""
        return sum(e.length for e in self.episodes.values())


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LeRobotError(
            f"{path} is not readable JSON ({exc}); repair or re-download it."
        ) from None


def _load_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise LeRobotError(f"{path} is missing; a v2.x LeRobot dataset needs it (re-download it).")
    rows: list[dict[str, Any]] = []
    try:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                row = json.loads(line)
                if not isinstance(row, dict):
                    raise ValueError(f"line {number} is not an object")
                rows.append(row)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise LeRobotError(f"{path} is not readable JSON lines ({exc}); repair it.") from None
    return rows


def _read_parquet(path: Path, columns: Sequence[str] | None = None) -> Any:
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not path.is_file():
        raise LeRobotError(f"{path} is missing; the dataset is incomplete (re-download it).")
    try:
        if columns is not None:
            present = set(pq.read_schema(path).names)
            columns = [c for c in columns if c in present]
        return pq.read_table(path, columns=columns)
    except (OSError, pa.ArrowException) as exc:
        raise LeRobotError(
            f"{path} is not a readable parquet file ({exc}); re-download it."
        ) from None


def _inside(root: Path, relative: str, what: str) -> str:
    """``relative`` unless it points outside the dataset (a hostile path template)."""
    if not (root / relative).resolve().is_relative_to(root.resolve()):
        raise LeRobotError(f"the {what} path {relative!r} points outside the dataset folder.")
    return relative


def _format_path(template: str, what: str, **fields: Any) -> str:
    try:
        return template.format(**fields)
    except (KeyError, IndexError, ValueError, AttributeError) as exc:
        raise LeRobotError(
            f"meta/info.json's {what} template {template!r} cannot be filled ({exc!r}); "
            "repair info.json."
        ) from None


def read_lerobot_dataset(path: str | Path) -> LeRobotDatasetInfo:
    """Read a LeRobot dataset's metadata (``meta/``): version, cameras, tasks, episodes.

    Args:
        path: The dataset folder (the one holding ``meta/info.json``).

    Returns:
        The dataset's description; no video is opened.

    Raises:
        LeRobotError: Not a LeRobot dataset, an unknown codebase version, or unreadable
            metadata.
    """
    root = Path(path).expanduser()
    info_path = root / "meta" / "info.json"
    if not info_path.is_file():
        raise LeRobotError(
            f"{root} is not a LeRobot dataset: it has no meta/info.json; give the dataset's "
            "top folder (the one holding meta/, data/ and videos/)."
        )
    info = _load_json(info_path)
    if not isinstance(info, dict):
        raise LeRobotError(f"{info_path} does not hold a JSON object; repair it.")
    version = str(info.get("codebase_version", ""))
    layout = LAYOUTS.get(version)
    if layout is None:
        raise LeRobotError(
            f"codebase version {version or '(none)'!r} of {root.name} is not supported; read "
            f"are {', '.join(LAYOUTS)} (convert the dataset with lerobot's converter)."
        )
    features = info.get("features")
    fps = info.get("fps")
    if not isinstance(features, dict) or not isinstance(fps, int | float) or fps <= 0:
        raise LeRobotError(f"{info_path} lacks 'features' or a positive 'fps'; repair it.")
    cameras = tuple(
        str(k) for k, v in features.items() if isinstance(v, dict) and v.get("dtype") == "video"
    )
    if layout == 2:
        tasks, episodes = _v2_metadata(root, info, cameras)
    else:
        tasks, episodes = _v3_metadata(root, info, cameras)
    robot = info.get("robot_type")
    return LeRobotDatasetInfo(
        root=root,
        codebase_version=version,
        fps=float(fps),
        robot_type=str(robot) if robot else None,
        cameras=cameras,
        tasks=tasks,
        episodes=dict(sorted(episodes.items())),
    )


def _v2_metadata(
    root: Path, info: dict[str, Any], cameras: Sequence[str]
) -> tuple[tuple[str, ...], dict[int, LeRobotEpisode]]:
    task_rows = _load_jsonl(root / "meta" / "tasks.jsonl")
    tasks = tuple(str(r["task"]) for r in sorted(task_rows, key=lambda r: int(r["task_index"])))
    chunks_size = int(info.get("chunks_size") or 1000)
    data_template = str(info.get("data_path") or _V2_DATA_PATH)
    video_template = str(info.get("video_path") or _V2_VIDEO_PATH)
    episodes: dict[int, LeRobotEpisode] = {}
    try:
        for row in _load_jsonl(root / "meta" / "episodes.jsonl"):
            index = int(row["episode_index"])
            fields = {"episode_chunk": index // chunks_size, "episode_index": index}
            data = _format_path(data_template, "data_path", **fields)
            videos = {
                camera: (
                    _inside(
                        root,
                        _format_path(video_template, "video_path", video_key=camera, **fields),
                        "video",
                    ),
                    0.0,
                )
                for camera in cameras
            }
            episodes[index] = _episode(root, row, data, videos)
    except (KeyError, TypeError, ValueError) as exc:
        raise _malformed(exc, f"meta/episodes.jsonl of {root.name} has a malformed row") from None
    return tasks, episodes


def _episode(
    root: Path, row: dict[str, Any], data: str, videos: dict[str, tuple[str, float]]
) -> LeRobotEpisode:
    """One episode of a metadata row (either version), its files checked to lie in ``root``."""
    return LeRobotEpisode(
        index=int(row["episode_index"]),
        length=int(row["length"]),
        tasks=tuple(str(t) for t in row.get("tasks") or ()),
        data_file=_inside(root, data, "data"),
        videos=videos,
    )


def _malformed(exc: Exception, what: str) -> LeRobotError:
    """The error for a metadata row that could not be read: ``exc`` itself when it already is
    one (a path outside the dataset), else ``what`` with the cause and the fix."""
    if isinstance(exc, LeRobotError):
        return exc
    return LeRobotError(f"{what} ({exc!r}); repair it.")


def _v3_tasks(root: Path) -> tuple[str, ...]:
    table = _read_parquet(root / "meta" / "tasks.parquet")
    # pandas writes the task strings as its index: a column named "task" (or an unnamed index).
    names = table.column_names
    text_column = next(
        (c for c in ("task", "__index_level_0__") if c in names),
        next((c for c in names if c != "task_index"), None),
    )
    if text_column is None or "task_index" not in names:
        raise LeRobotError(f"meta/tasks.parquet of {root.name} has no task column; repair it.")
    pairs = sorted(
        zip(table["task_index"].to_pylist(), table[text_column].to_pylist(), strict=True)
    )
    return tuple(str(task) for _, task in pairs)


def _v3_metadata(
    root: Path, info: dict[str, Any], cameras: Sequence[str]
) -> tuple[tuple[str, ...], dict[int, LeRobotEpisode]]:
    tasks = _v3_tasks(root)
    files = sorted((root / "meta" / "episodes").glob("**/*.parquet"))
    if not files:
        raise LeRobotError(
            f"{root.name} has no meta/episodes/*.parquet; a v3.0 dataset needs them (re-download)."
        )
    data_template = str(info.get("data_path") or _V3_DATA_PATH)
    video_template = str(info.get("video_path") or _V3_VIDEO_PATH)
    columns = ["episode_index", "length", "tasks", "data/chunk_index", "data/file_index"]
    for camera in cameras:
        columns += [f"videos/{camera}/{f}" for f in ("chunk_index", "file_index", "from_timestamp")]
    episodes: dict[int, LeRobotEpisode] = {}
    for file in files:
        rows = _read_parquet(file, columns).to_pylist()
        try:
            for row in rows:
                index = int(row["episode_index"])
                data = _format_path(
                    data_template,
                    "data_path",
                    chunk_index=int(row["data/chunk_index"]),
                    file_index=int(row["data/file_index"]),
                )
                videos: dict[str, tuple[str, float]] = {}
                for camera in cameras:
                    prefix = f"videos/{camera}/"
                    if row.get(prefix + "file_index") is None:
                        continue  # checked when this camera is asked for
                    video = _format_path(
                        video_template,
                        "video_path",
                        video_key=camera,
                        chunk_index=int(row[prefix + "chunk_index"]),
                        file_index=int(row[prefix + "file_index"]),
                    )
                    start = float(row[prefix + "from_timestamp"])
                    videos[camera] = (_inside(root, video, "video"), start)
                episodes[index] = _episode(root, row, data, videos)
        except (KeyError, TypeError, ValueError) as exc:
            what = f"{file.relative_to(root)} has a malformed episode row"
            raise _malformed(exc, what) from None
    return tasks, episodes


def lerobot_tasks(path: str | Path) -> list[str]:
    """The dataset's task descriptions (``meta/tasks``), to offer as goal prompts.

    Args:
        path: The dataset folder.

    Returns:
        Distinct, non-empty task strings in ``task_index`` order.
    """
    seen: dict[str, None] = {}
    for task in read_lerobot_dataset(path).tasks:
        if task.strip():
            seen.setdefault(task.strip())
    return list(seen)


def lerobot_cameras(path: str | Path) -> list[str]:
    """The dataset's camera keys (its video features); the first is the default camera."""
    return list(read_lerobot_dataset(path).cameras)


_RANGE = re.compile(r"^\s*(-?\d*)\s*(?::\s*(-?\d*)\s*)?$")


def parse_episode_range(text: str | None, episodes: Sequence[int]) -> list[int]:
    """The episode indices ``A:B`` selects among a dataset's episodes.

    ``A:B`` is half-open like a Python slice of episode indices (``0:10`` is episodes 0 … 9);
    ``A:`` runs to the last episode, ``:B`` starts at the first, a single ``A`` is one episode,
    and None or an empty string is every episode.

    Args:
        text: The range the user typed.
        episodes: The dataset's episode indices, ascending.

    Returns:
        The selected indices, ascending, at least one.

    Raises:
        LeRobotError: Not of the form ``A:B``, an empty range, or indices the dataset lacks.

    Example::

        >>> parse_episode_range("1:3", [0, 1, 2, 3])
        [1, 2]
        >>> parse_episode_range("2", [0, 1, 2])
        [2]
        >>> parse_episode_range("2:9", [0, 1, 2])
        Traceback (most recent call last):
        ...
        vlmrm_core.sources.lerobot.LeRobotError: episodes 2:9 are out of range: the dataset has 3 episodes (0 … 2); give a range within it, e.g. 0:3.
    """
    available = sorted(episodes)
    if not available:
        raise LeRobotError("the dataset has no episodes; there is nothing to import.")
    if text is None or not text.strip():
        return available
    match = _RANGE.match(text)
    if match is None or (match.group(1) == "" and match.group(2) is None):
        raise LeRobotError(f"episodes {text!r} is not a range; write A:B (e.g. 0:10), A: or A.")
    low_text, high_text = match.group(1), match.group(2)
    low = int(low_text) if low_text else available[0]
    if high_text is None:  # a single episode
        high_text = str(low + 1)
    high = int(high_text) if high_text else available[-1] + 1
    span = f"{available[0]} … {available[-1]}"
    limits = f"the dataset has {len(available)} episodes ({span})"
    if low < 0 or high <= low:
        raise LeRobotError(
            f"episodes {text.strip()} select nothing; {limits}: write A:B with A < B."
        )
    wanted = range(low, high)
    present = set(available)
    missing = [e for e in wanted if e not in present]
    if missing:
        raise LeRobotError(
            f"episodes {text.strip()} are out of range: {limits}; give a range within it, "
            f"e.g. {available[0]}:{available[-1] + 1}."
        )
    return list(wanted)


def _check_camera(info: LeRobotDatasetInfo, camera: str | None) -> str:
    if not info.cameras:
        raise LeRobotError(
            f"{info.root.name} stores no videos (no feature of dtype 'video'); only video "
            "cameras can be imported."
        )
    if camera is None or not camera.strip():
        return info.cameras[0]
    if camera not in info.cameras:
        listed = ", ".join(repr(c) for c in info.cameras)
        raise LeRobotError(
            f"camera {camera!r} is not in {info.root.name}; its cameras are {listed}."
        )
    return camera


@dataclass(frozen=True)
class _EpisodeRows:
    frame_index: np.ndarray
    timestamp: np.ndarray


class _DataFiles:
    """The frame rows of episodes, reading each data parquet once while episodes come in order."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._path: str | None = None
        self._by_episode: dict[int, _EpisodeRows] = {}

    def rows(self, episode: LeRobotEpisode) -> _EpisodeRows:
        if self._path != episode.data_file:
            table = _read_parquet(self.root / episode.data_file, _FRAME_COLUMNS)
            missing = [c for c in _FRAME_COLUMNS if c not in table.column_names]
            if missing:
                raise LeRobotError(
                    f"{episode.data_file} lacks the column(s) {missing}; repair the dataset."
                )
            ep = np.asarray(table["episode_index"].to_numpy(zero_copy_only=False), np.int64)
            fi = np.asarray(table["frame_index"].to_numpy(zero_copy_only=False), np.int64)
            ts = np.asarray(table["timestamp"].to_numpy(zero_copy_only=False), np.float64)
            self._by_episode = {}
            for index in np.unique(ep):
                mask = ep == index
                order = np.argsort(fi[mask], kind="stable")
                self._by_episode[int(index)] = _EpisodeRows(fi[mask][order], ts[mask][order])
            self._path = episode.data_file
        rows = self._by_episode.get(episode.index)
        if rows is None or len(rows.frame_index) == 0:
            raise LeRobotError(
                f"{episode.data_file} has no rows of episode {episode.index}; the dataset is "
                "incomplete (re-download it)."
            )
        return rows


def _decode_span(
    container: Any, path: str, queries: np.ndarray, tolerance: float, episode: int
) -> Iterator[tuple[np.ndarray, int]]:
    """The RGB frames nearest to each query time (s), in order, from an open container, each
    with its presentation timestamp (in the stream's time base).

    Seeks to the keyframe at or before the first query, then decodes forward; a frame is
    converted to RGB only when it is the answer to a query.
    """
    import av

    stream = container.streams.video[0]
    time_base = stream.time_base
    seconds_per_tick = float(time_base)  # float, not Fraction arithmetic, once per frame
    first = float(queries[0])
    n = len(queries)
    j = 0
    pending: tuple[Any, float] | None = None
    last_time: float | None = None

    def missing(query: float) -> LeRobotError:
        seen = "no frame" if last_time is None else f"its last frame at {last_time:.3f} s"
        return LeRobotError(
            f"{path} is shorter than its timestamps say: episode {episode} needs a frame at "
            f"{query:.3f} s but the video has {seen}; the dataset is damaged or incomplete "
            "(re-download or re-encode it)."
        )

    try:
        # Always seek: the container may have been decoded past this span for an earlier
        # episode of the same file.
        container.seek(max(0, int(math.floor((first - tolerance) / time_base))), stream=stream)
        for frame in container.decode(stream):
            if frame.pts is None:
                continue
            t = frame.pts * seconds_per_tick
            last_time = t
            while j < n:
                q = float(queries[j])
                if t < q - tolerance:
                    break  # before the span (the keyframe run-up) or between queries
                if t < q:
                    pending = (frame, t)  # a later frame may be nearer still
                    break
                if t <= q + tolerance:
                    if pending is not None and q - pending[1] <= t - q:
                        yield pending[0].to_ndarray(format="rgb24"), pending[0].pts
                        pending = None
                        j += 1
                        continue  # this frame may answer the next query
                    yield frame.to_ndarray(format="rgb24"), frame.pts
                    pending = None
                    j += 1
                    break
                if pending is None:
                    raise LeRobotError(
                        f"{path} has no frame near {q:.3f} s (episode {episode}); its "
                        "timestamps disagree with the data files (re-encode the dataset)."
                    )
                yield pending[0].to_ndarray(format="rgb24"), pending[0].pts
                pending = None
                j += 1
            if j == n:
                return
    except av.FFmpegError as exc:
        raise LeRobotError(f"{path} cannot be decoded ({exc}); re-download it.") from None
    if pending is not None and j < n:
        yield pending[0].to_ndarray(format="rgb24"), pending[0].pts
        j += 1
    if j < n:
        raise missing(float(queries[j]))


class _Videos:
    """Open video containers, one file at a time (v3.0 episodes usually share a file)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._path: str | None = None
        self._container: Any = None

    def open(self, relative: str) -> Any:
        import av

        if self._path != relative:
            self.close()
            path = self.root / relative
            if not path.is_file():
                raise LeRobotError(
                    f"{relative} is missing; the dataset is incomplete (re-download it)."
                )
            try:
                container = av.open(str(path), mode="r")
            except (av.FFmpegError, OSError) as exc:
                raise LeRobotError(
                    f"{relative} is not a readable video ({exc}); re-download it."
                ) from None
            if not container.streams.video:
                container.close()
                raise LeRobotError(f"{relative} has no video stream; re-download it.")
            container.streams.video[0].thread_type = "AUTO"
            self._container, self._path = container, relative
        return self._container

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
        self._container, self._path = None, None


def lerobot_frames(
    path: str | Path,
    *,
    camera: str | None = None,
    episodes: str | Sequence[int] | None = None,
    progress: ProgressCallback | None = None,
) -> Iterator[FrameRecord]:
    """The frames of one camera of a LeRobot dataset, episode after episode, in time order.

    The metadata, the camera and the episode range are checked when this is called, before a
    frame is decoded; decoding happens as the iterator is consumed.

    Each frame keeps its provenance: ``episode`` is the ``episode_index``, ``step`` the
    ``frame_index``, ``env_id`` the robot type; ``extra`` holds the camera, the timestamp within
    the episode and the episode's tasks.

    Args:
        path: The dataset folder (holding ``meta/info.json``).
        camera: A video feature key (see :func:`lerobot_cameras`); None for the first.
        episodes: ``'A:B'`` (see :func:`parse_episode_range`), explicit episode indices, or
            None for every episode.
        progress: ``progress(frames_done, frames_total, message)`` after each frame.

    Returns:
        An iterator of FrameRecords.

    Raises:
        LeRobotError: See the module docstring.
    """
    info = read_lerobot_dataset(path)
    key = _check_camera(info, camera)
    if episodes is None or isinstance(episodes, str):
        selected = parse_episode_range(episodes, list(info.episodes))
    else:
        selected = sorted(set(int(e) for e in episodes))
        unknown = [e for e in selected if e not in info.episodes]
        if unknown or not selected:
            span = f"{min(info.episodes, default=0)} … {max(info.episodes, default=0)}"
            raise LeRobotError(
                f"episodes {unknown or selected} are not in {info.root.name} "
                f"({len(info.episodes)} episodes, {span}); choose among those."
            )
    chosen = [info.episodes[e] for e in selected]
    lacking = [e.index for e in chosen if key not in e.videos]
    if lacking:
        raise LeRobotError(
            f"camera {key!r} has no video for episode(s) {lacking[:5]} in meta/episodes; "
            "choose another camera or other episodes."
        )
    return _iter_frames(info, key, chosen, progress)


def _iter_frames(
    info: LeRobotDatasetInfo,
    camera: str,
    episodes: Sequence[LeRobotEpisode],
    progress: ProgressCallback | None,
) -> Iterator[FrameRecord]:
    total = sum(e.length for e in episodes)
    tolerance = 0.5 / info.fps
    data = _DataFiles(info.root)
    videos = _Videos(info.root)
    done = 0
    label = info.root.name
    try:
        for episode in episodes:
            rows = data.rows(episode)
            video, start = episode.videos[camera]
            container = videos.open(video)
            queries = start + rows.timestamp
            decoded = _decode_span(container, video, queries, tolerance, episode.index)
            source = info.root / video
            for (pixels, pts), frame_index, timestamp in zip(
                decoded, rows.frame_index, rows.timestamp, strict=False
            ):
                step = int(frame_index)
                name = f"{label} ep{episode.index} t{step} {camera}"
                yield FrameRecord(
                    pixels=np.ascontiguousarray(pixels, dtype=np.uint8),
                    source="lerobot",
                    name=name,
                    env_id=info.robot_type,
                    episode=episode.index,
                    step=step,
                    extra={
                        "camera": camera,
                        "timestamp": round(float(timestamp), 6),
                        "tasks": list(episode.tasks),
                    },
                    # The store keeps a reference to this frame of the video, not a PNG.
                    video=VideoLocation(path=source, pts=int(pts)),
                )
                done += 1
                if progress is not None:
                    progress(done, total, name)
    finally:
        videos.close()
