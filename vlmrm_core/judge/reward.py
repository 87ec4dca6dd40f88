"""A generative VLM judge as a reward source: a yes/no question about the frames.

The reward of a frame is read from the judge's next-token distribution after the question (the
*answer position*, see :mod:`vlmrm_core.judge.prompt`): by default the log-odds
log P(yes) − log P(no), or P(yes) in ``probability`` mode. With ``frames=k`` the judge sees the
last k frames of an episode as k images of one question (:meth:`JudgeReward.score_episode`).

Example::

    >>> from vlmrm_core.judge import JudgeReward
    >>> reward = JudgeReward.load("HuggingFaceTB/SmolVLM-256M-Instruct",
    ...                           "Is the pole balanced upright on the cart? Answer yes or no.")
    ... # doctest: +SKIP
    >>> reward(frames)  # N×H×W×3 uint8 → N float32 rewards  # doctest: +SKIP
    >>> reward.with_question("Has the pole fallen? Answer yes or no.")(frames)  # doctest: +SKIP

A question edit (:meth:`JudgeReward.with_question`) shares the loaded model and the cache of
vision features, so re-scoring the same frames runs only the language model.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import cache as _memoise
from pathlib import Path
from typing import Any

import numpy as np

from vlmrm_core.clip.models import ModelError
from vlmrm_core.enums import JudgeMode, Precision, choices
from vlmrm_core.errors import InvalidInputError
from vlmrm_core.frames import ProgressCallback, pixel_hash
from vlmrm_core.judge.features import (
    FeatureCache,
    ImageFeatures,
    answer_log_probs,
    compute_features,
    prompt_layout,
)
from vlmrm_core.judge.models import JudgeModel, folder_sha256, load_judge
from vlmrm_core.judge.prompt import (
    DEFAULT_ANSWERS,
    AnswerError,
    AnswerTokens,
    answer_tokens,
    check_question,
    render_prompt,
)
from vlmrm_core.reward.base import Reward, RewardHistory, as_frames
from vlmrm_core.settings import get_settings

DEFAULT_BATCH = 8
"""Windows per language-model pass (and frames per vision-tower pass)."""
RANDOM_WEIGHTS_NOTE = "random weights: rewards are meaningless"

FrameSource = np.ndarray | Callable[[], np.ndarray]
"""Pixels, or a function that loads them (called only when the frame's features aren't cached)."""


class JudgeReward(Reward):
    """Rewards from a VLM judge's answer to a yes/no question about the frames.

    Args:
        judge: a model from :func:`vlmrm_core.judge.load_judge`.
        question: what to ask, e.g. ``Is the pole balanced upright on the cart? Answer yes or
            no.``
        answers: the positive and the negative answer (default ``yes``, ``no``); each must be
            one token at the answer position (see :mod:`vlmrm_core.judge.prompt`).
        mode: ``log-odds`` (default) or ``probability``.
        frames: k, how many consecutive frames the judge sees per question in
            :meth:`score_episode` (1: each frame alone).
        batch_size: windows per language-model pass.
        cache: where vision features are kept (default: a fresh in-memory cache; pass
            :func:`default_feature_cache` to persist them under the data dir).

    Raises:
        AnswerError: an empty question, or answers that are not one known token each.
    """

    source = "judge"

    def __init__(
        self,
        judge: JudgeModel,
        question: str,
        answers: Sequence[str] = DEFAULT_ANSWERS,
        *,
        mode: JudgeMode | str = JudgeMode.LOG_ODDS,
        frames: int = 1,
        batch_size: int = DEFAULT_BATCH,
        cache: FeatureCache | None = None,
    ) -> None:
        if mode not in choices(JudgeMode):
            raise InvalidInputError(
                f"unknown judge mode {mode!r}: use one of {', '.join(choices(JudgeMode))}"
            )
        if isinstance(frames, bool) or not isinstance(frames, int) or frames < 1:
            raise InvalidInputError(
                f"frames per question must be a whole number ≥ 1, not {frames!r}"
            )
        if batch_size < 1:
            raise InvalidInputError(f"batch_size must be at least 1, got {batch_size}")
        pair = tuple(a.strip() for a in answers) if not isinstance(answers, str) else ()
        if len(pair) != 2:
            raise AnswerError(
                f"give exactly two answers, the positive one first (e.g. yes,no), not {answers!r}"
            )
        self.judge = judge
        self.question = check_question(question)
        self.answers: tuple[str, str] = (pair[0], pair[1])
        self.mode = JudgeMode(mode)
        self.frames = frames
        self.batch_size = batch_size
        self.cache = cache if cache is not None else FeatureCache()
        self.tokens: AnswerTokens = answer_tokens(judge.processor, self.question, self.answers)
        self._layouts: dict[tuple[tuple[int, int], ...], dict[str, Any]] = {}

    @classmethod
    def load(
        cls,
        model: str | Path,
        question: str,
        answers: Sequence[str] = DEFAULT_ANSWERS,
        *,
        revision: str | None = None,
        device: str | None = None,
        precision: Precision | str = Precision.AUTO,
        mode: JudgeMode | str = JudgeMode.LOG_ODDS,
        frames: int = 1,
        batch_size: int = DEFAULT_BATCH,
        cache: FeatureCache | None = None,
    ) -> JudgeReward:
        """Load the judge (hub id or folder, see :func:`load_judge`) and bind the question."""
        judge = load_judge(model, revision=revision, device=device, precision=precision)
        return cls(
            judge, question, answers, mode=mode, frames=frames, batch_size=batch_size, cache=cache
        )

    def with_question(
        self, question: str, answers: Sequence[str] | None = None, **changes: Any
    ) -> JudgeReward:
        """The same judge and feature cache with another question (and optionally answers, mode,
        frames or batch_size): re-scoring frames already seen runs only the language model."""
        options: dict[str, Any] = {
            "mode": self.mode,
            "frames": self.frames,
            "batch_size": self.batch_size,
        }
        options.update(changes)
        return JudgeReward(
            self.judge,
            question,
            answers if answers is not None else self.answers,
            cache=self.cache,
            **options,
        )

    @property
    def untrained(self) -> bool:
        """True for a random-init judge: its rewards are meaningless."""
        return self.judge.untrained

    @property
    def identity(self) -> str:
        question = json.dumps(self.question, ensure_ascii=False)
        answers = json.dumps(list(self.answers), ensure_ascii=False)
        return (
            f"judge:{self.judge.feature_key}|mode={self.mode.value}|frames={self.frames}"
            f"|answers={answers}|question={question}"
        )

    @property
    def description(self) -> str:
        window = f", last {self.frames} frames" if self.frames > 1 else ""
        line = (
            f'judge {self.judge.label} ({self.judge.precision}): "{self.question}" '
            f"{self.answers[0]}/{self.answers[1]}, {self.mode.value}{window}"
        )
        return f"{line} ({RANDOM_WEIGHTS_NOTE})" if self.untrained else line

    def reward(self, frames: Any) -> np.ndarray:
        """N rewards of N frames, each frame judged on its own (a window of one frame).

        Frames given together here need not be consecutive (a vectorised environment passes one
        frame per sub-environment); :meth:`score_episode` judges windows of ``frames`` frames.
        """
        array = as_frames(frames)
        return self._score(array, [(i,) for i in range(len(array))])

    def score_episode(self, frames: Any) -> np.ndarray:
        """T rewards of an episode's T frames: reward t judges frames t-k+1..t as k images.

        The first k-1 windows are shorter (frames 0..t), so reward 0 judges frame 0 alone.
        """
        array = as_frames(frames)
        k = self.frames
        windows = [tuple(range(max(0, t - k + 1), t + 1)) for t in range(len(array))]
        return self._score(array, windows)

    def features(self, frames: Sequence[FrameSource], hashes: Sequence[str]) -> list[ImageFeatures]:
        """Vision features of frames identified by pixel hash, from the cache where present.

        Loaders (callables) of cached frames are never called; the rest are computed in
        batches of ``batch_size`` frames of one size and stored in the cache.
        """
        key = self.judge.feature_key
        found: dict[str, ImageFeatures] = {}
        todo: dict[str, np.ndarray] = {}
        for source, frame_hash in zip(frames, hashes, strict=True):
            if frame_hash in found or frame_hash in todo:
                continue
            cached = self.cache.get(key, frame_hash)
            if cached is not None:
                found[frame_hash] = cached
            else:
                pixels = source() if callable(source) else source
                todo[frame_hash] = as_frames(pixels)[0]
        by_shape: dict[tuple[int, ...], list[str]] = {}
        for frame_hash, pixels in todo.items():
            by_shape.setdefault(pixels.shape, []).append(frame_hash)
        for group in by_shape.values():
            for start in range(0, len(group), self.batch_size):
                chunk = group[start : start + self.batch_size]
                for frame_hash, feats in zip(
                    chunk, compute_features(self.judge, [todo[h] for h in chunk]), strict=True
                ):
                    self.cache.put(key, frame_hash, feats)
                    found[frame_hash] = feats
        return [found[h] for h in hashes]

    def log_probs(self, windows: Sequence[Sequence[ImageFeatures]]) -> np.ndarray:
        """W×2 log-probabilities of the positive and negative answer, one row per window of
        frame features (see :meth:`features`), batched by the windows' frame sizes."""
        out = np.zeros((len(windows), 2), np.float64)
        groups: dict[tuple[tuple[int, int], ...], list[int]] = {}
        for w, window in enumerate(windows):
            groups.setdefault(tuple(f.frame_shape for f in window), []).append(w)
        for shapes, members in groups.items():
            layout = self._layout(shapes)
            for start in range(0, len(members), self.batch_size):
                chunk = members[start : start + self.batch_size]
                out[chunk] = answer_log_probs(
                    self.judge,
                    layout,
                    [windows[w] for w in chunk],
                    (self.tokens.positive, self.tokens.negative),
                )
        return out

    def score_features(self, windows: Sequence[Sequence[ImageFeatures]]) -> np.ndarray:
        """Float32 rewards of windows of frame features (the language model only)."""
        log_probs = self.log_probs(windows)
        if self.mode is JudgeMode.PROBABILITY:
            values = np.exp(log_probs[:, 0])
        else:
            values = log_probs[:, 0] - log_probs[:, 1]
        return values.astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        """The content of a reward file with source ``judge`` (see :meth:`from_dict`)."""
        judge = self.judge
        return {
            "source": self.source,
            "model": {
                "hf_id": judge.hf_id,
                "revision": judge.revision,
                "path": None if judge.hf_id else str(judge.folder),
                "sha256": judge.folder_sha256,
                "precision": judge.precision,
            },
            "judge": {
                "question": self.question,
                "answers": list(self.answers),
                "mode": self.mode.value,
                "frames": self.frames,
            },
        }

    @classmethod
    def from_dict(
        cls,
        data: Mapping[str, Any],
        *,
        device: str | None = None,
        precision: Precision | str | None = None,
        cache: FeatureCache | None = None,
    ) -> JudgeReward:
        """Rebuild a judge reward from :meth:`to_dict`'s content (loads the model).

        Args:
            data: the dict :meth:`to_dict` wrote.
            device: where to load the judge (default cuda when available).
            precision: override the recorded precision (e.g. ``auto`` on another machine).
            cache: the feature cache to use.

        Raises:
            InvalidInputError: missing or malformed fields.
            ModelError: the model cannot be loaded, or a local folder's files changed since.
        """
        try:
            model, spec = data["model"], data["judge"]
            hf_id, path = model.get("hf_id"), model.get("path")
            question, answers = spec["question"], spec.get("answers", list(DEFAULT_ANSWERS))
            if data.get("source", cls.source) != cls.source or not (hf_id or path):
                raise KeyError("source")
        except (KeyError, TypeError, AttributeError):
            raise InvalidInputError(
                "not a judge reward: it needs source 'judge', model.hf_id or model.path, and "
                "judge.question (write it with JudgeReward.to_dict or `vlmrm reward export "
                "--judge`)"
            ) from None
        chosen = precision if precision is not None else model.get("precision", Precision.AUTO)
        if path:
            folder = Path(path).expanduser()
            expected = model.get("sha256")
            if expected and folder.is_dir() and folder_sha256(folder) != expected:
                raise ModelError(
                    f"the judge folder {folder} changed since the reward was made (its files "
                    f"hash to another SHA-256): point the reward at the original model folder, "
                    "or export the reward again"
                )
            judge = load_judge(folder, device=device, precision=chosen)
        else:
            judge = load_judge(
                hf_id, revision=model.get("revision"), device=device, precision=chosen
            )
        return cls(
            judge,
            question,
            answers,
            mode=spec.get("mode", JudgeMode.LOG_ODDS),
            frames=int(spec.get("frames", 1)),
            cache=cache,
        )

    @classmethod
    def from_reward_file(
        cls,
        data: Mapping[str, Any],
        path: Path,
        device: str | None = None,
        *,
        precision: Precision | str | None = None,
        cache: FeatureCache | None = None,
    ) -> JudgeReward:
        """The ``judge`` source of reward files (see :mod:`vlmrm_core.reward.file`).

        A relative ``model.path`` is looked up next to the reward file first, so a reward and
        its judge folder can travel together; a folder's files must still hash to the recorded
        SHA-256. ``precision`` and ``cache`` are as in :meth:`from_dict`.

        Raises:
            InvalidInputError: missing or malformed ``model`` / ``judge`` fields.
            ModelError: the judge cannot be loaded, or its folder changed since.
        """
        content = dict(data)
        model = content.get("model")
        if isinstance(model, Mapping) and model.get("path"):
            written = Path(str(model["path"])).expanduser()
            beside = path.parent / written
            if not written.is_absolute() and beside.is_dir():
                content["model"] = {**model, "path": str(beside)}
        return cls.from_dict(content, device=device, precision=precision, cache=cache)

    def history(self, n_envs: int) -> JudgeWindow | None:
        """None when the judge sees one frame per question (the wrappers' fast path), else a
        fresh :class:`JudgeWindow` of ``n_envs`` sub-environments."""
        return JudgeWindow(self, n_envs) if self.frames > 1 else None

    def _score(self, frames: np.ndarray, windows: Sequence[tuple[int, ...]]) -> np.ndarray:
        feats = self.features(list(frames), [pixel_hash(f) for f in frames])
        return self.score_features([[feats[i] for i in window] for window in windows])

    def _layout(self, shapes: tuple[tuple[int, int], ...]) -> dict[str, Any]:
        layout = self._layouts.get(shapes)
        if layout is None:
            prompt = render_prompt(self.judge.processor, self.question, len(shapes))
            layout = prompt_layout(self.judge, prompt, shapes)
            self._layouts[shapes] = layout
        return layout


class JudgeWindow(RewardHistory):
    """The vision features of the last k frames of each sub-environment's episode, for a judge
    that sees k frames per question.

    :meth:`score` runs the vision tower once on all the frames it is given, then walks them in
    order: each frame joins its sub-env's window and is judged with it, so a rollout scored step
    by step gets exactly :meth:`JudgeReward.score_episode` of each of its episodes.

    Args:
        reward: the judge; its ``frames`` is k.
        n_envs: number of sub-environments.
    """

    def __init__(self, reward: JudgeReward, n_envs: int) -> None:
        self.reward = reward
        self.windows: list[list[ImageFeatures]] = [[] for _ in range(n_envs)]

    def score(
        self, frames: Any, envs: Sequence[int], ends: Sequence[bool] | None = None
    ) -> np.ndarray:
        array = as_frames(frames)
        feats = self.reward.features(list(array), [pixel_hash(f) for f in array])
        k = self.reward.frames
        windows: list[list[ImageFeatures]] = []
        for j, env in enumerate(envs):
            window = self.windows[env]
            window.append(feats[j])
            del window[:-k]
            windows.append(list(window))
            if ends is not None and ends[j]:
                self.windows[env] = []
        return self.reward.score_features(windows)

    def reset(self, envs: Sequence[int] | None = None) -> None:
        for env in range(len(self.windows)) if envs is None else envs:
            self.windows[env] = []


def score_frames(
    reward: JudgeReward,
    items: Iterable[tuple[str, FrameSource]],
    *,
    total: int | None = None,
    progress: ProgressCallback | None = None,
    chunk_size: int = 256,
) -> np.ndarray:
    """Rewards of stored frames identified by pixel hash, each frame judged on its own.

    The judge-side twin of ``vlmrm_core.clip.embedding.embed_frames``: vision features come
    from ``reward.cache`` where present (use :func:`default_feature_cache` to keep them across
    runs), and loaders of cached frames are never called, so re-scoring a dataset after a
    question edit reads no images and runs only the language model.

    Args:
        reward: the judge reward.
        items: ``(pixel_hash, pixels_or_loader)`` pairs.
        total: number of items, for progress.
        progress: ``progress(done, total, message)`` after each chunk.
        chunk_size: items handled at a time (bounds memory).

    Returns:
        N float32 rewards in input order.
    """
    rows: list[np.ndarray] = []
    done = 0
    key = reward.judge.feature_key
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, chunk_size)):
        hashes = [h for h, _ in chunk]
        fresh = sum(reward.cache.get(key, h) is None for h in dict.fromkeys(hashes))
        feats = reward.features([src for _, src in chunk], hashes)
        rows.append(reward.score_features([[f] for f in feats]))
        done += len(chunk)
        if progress is not None:
            progress(done, total, f"{done} frames judged ({fresh} new in this chunk)")
    if not rows:
        return np.zeros(0, np.float32)
    return np.concatenate(rows)


def default_feature_cache(directory: Path | None = None) -> FeatureCache:
    """The process-wide persistent feature cache under ``<data dir>/judge_features`` (one per
    folder: the data dir of the moment, not of the first call)."""
    return _feature_cache_in((directory or get_settings().data_dir / "judge_features").resolve())


def score_windows(
    reward: JudgeReward,
    items: Sequence[tuple[str, FrameSource]],
    windows: Sequence[Sequence[int]],
    *,
    progress: ProgressCallback | None = None,
    chunk_size: int = 256,
) -> np.ndarray:
    """Rewards of windows of stored frames: window w shows the judge the frames
    ``items[i] for i in windows[w]`` as that many images of one question (oldest first).

    The multi-frame twin of :func:`score_frames`: features come from ``reward.cache`` where
    present, and each frame's loader runs at most once per chunk of windows.

    Args:
        reward: the judge reward.
        items: ``(pixel_hash, pixels_or_loader)`` pairs.
        windows: indices into ``items``, one tuple per reward.
        progress: ``progress(done, total, message)`` after each chunk of windows.
        chunk_size: windows handled at a time (bounds memory).

    Returns:
        One float32 reward per window, in order.
    """
    rows: list[np.ndarray] = []
    for start in range(0, len(windows), chunk_size):
        chunk = windows[start : start + chunk_size]
        needed = sorted({i for window in chunk for i in window})
        feats = reward.features([items[i][1] for i in needed], [items[i][0] for i in needed])
        by_index = dict(zip(needed, feats, strict=True))
        rows.append(reward.score_features([[by_index[i] for i in window] for window in chunk]))
        if progress is not None:
            done = start + len(chunk)
            progress(done, len(windows), f"{done} windows judged")
    if not rows:
        return np.zeros(0, np.float32)
    return np.concatenate(rows)


@_memoise
def _feature_cache_in(directory: Path) -> FeatureCache:
    return FeatureCache(directory=directory)
