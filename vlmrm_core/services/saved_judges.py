"""Saved judges: a VLM judge and its question kept under a name, as prompt sets keep CLIP rewards.

A saved judge is a ``judge`` reward file (:meth:`vlmrm_core.judge.JudgeReward.to_dict` in the
reward-file envelope) under ``<data dir>/judges/``, so it is exactly what the app's download
gives and what ``vlmrm_core.load_reward`` loads. Its name, the environment it was written for and
who saved it travel in the file's ``provenance.extra``; no database table is needed. Prompt
sets hold CLIP specs only, so judges live beside them rather than in their table.

Example::

    >>> from vlmrm_core.services.saved_judges import list_saved_judges
    >>> [j.name for j in list_saved_judges()]  # doctest: +SKIP
    ['pole upright (smolvlm)']
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vlmrm_core.enums import JudgeMode
from vlmrm_core.errors import InvalidInputError, VlmrmError
from vlmrm_core.judge.prompt import DEFAULT_ANSWERS
from vlmrm_core.reward.file import (
    Provenance,
    RewardFileError,
    check_reward_data,
    reward_file_data,
    write_reward_data,
)
from vlmrm_core.services.judge_scores import JudgeRequest
from vlmrm_core.settings import get_settings

if TYPE_CHECKING:
    from vlmrm_core.judge import JudgeReward

__all__ = [
    "JudgeExistsError",
    "SavedJudge",
    "judge_file_text",
    "judges_dir",
    "list_saved_judges",
    "save_judge",
]

EXTRA_KEY = "saved_judge"
"""Key of ``provenance.extra`` holding the saved judge's name, environment and author."""


class JudgeExistsError(VlmrmError):
    """A saved judge of that name exists and overwriting was not asked for."""


@dataclass(frozen=True)
class SavedJudge:
    """A saved judge as listed (no model loaded)."""

    name: str
    request: JudgeRequest
    """The model (hub id or folder), question, answers, mode and frames per question."""
    path: Path
    """Its reward file."""
    revision: str | None = None
    """The hub commit it was saved with (None for a folder)."""
    environment: str | None = None
    created_by: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)
    """The reward file's JSON (for ``JudgeReward.from_dict`` and downloads)."""

    @property
    def model_label(self) -> str:
        """The hub id, or the folder's name."""
        return self.request.model if self.revision else Path(self.request.model).name


def judges_dir() -> Path:
    """Where saved judges are kept: ``<data dir>/judges``."""
    return get_settings().data_dir / "judges"


def _file_for(name: str, directory: Path) -> Path:
    # A hash of the exact name: two names that differ only in punctuation get two files,
    # and any user text is a safe file name.
    digest = hashlib.sha256(name.encode()).hexdigest()[:16]
    return directory / f"judge-{digest}.json"


def judge_file_text(
    reward: JudgeReward,
    provenance: Provenance | None = None,
) -> str:
    """The JSON text of the reward file of a judge reward (for downloads)."""
    data = reward_file_data(reward.to_dict(), provenance)
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def save_judge(
    name: str,
    reward: JudgeReward,
    *,
    environment: str | None = None,
    created_by: str | None = None,
    overwrite: bool = False,
    directory: Path | None = None,
) -> SavedJudge:
    """Save a judge reward under ``name``.

    Args:
        name: the name shown in the app (any text, stripped).
        reward: the judge and its question.
        environment: the environment or dataset it was written for (offered there first).
        created_by: who saved it.
        overwrite: replace an existing judge of that name.
        directory: where to keep it (default :func:`judges_dir`).

    Raises:
        InvalidInputError: an empty name.
        JudgeExistsError: the name is taken and ``overwrite`` is False.
    """
    name = name.strip()
    if not name:
        raise InvalidInputError("give the judge a name to save it under")
    folder = directory or judges_dir()
    path = _file_for(name, folder)
    if path.exists() and not overwrite:
        raise JudgeExistsError(
            f"a judge named {name!r} is saved already: overwrite it or pick another name"
        )
    extra = {EXTRA_KEY: {"name": name, "environment": environment or None, "by": created_by}}
    data = reward_file_data(reward.to_dict(), Provenance(extra=extra))
    write_reward_data(path, data)
    saved = _parse(path, data)
    assert saved is not None  # written just now by this function
    return saved


def list_saved_judges(
    environment: str | None = None, *, directory: Path | None = None
) -> list[SavedJudge]:
    """Saved judges, sorted by name; with ``environment``, the ones written for it come first.

    Files that are not saved judges (or no longer parse) are skipped.
    """
    folder = directory or judges_dir()
    found: list[SavedJudge] = []
    for path in sorted(folder.glob("judge-*.json")) if folder.is_dir() else []:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        saved = _parse(path, data)
        if saved is not None:
            found.append(saved)
    found.sort(key=lambda j: j.name.casefold())
    if environment:
        found.sort(key=lambda j: not _matches(j.environment, environment))
    return found


def _matches(tag: str | None, environment: str) -> bool:
    if not tag:
        return False
    a, b = tag.casefold(), environment.casefold()
    return a in b or b in a


def _parse(path: Path, data: Any) -> SavedJudge | None:
    """A saved judge from its file's JSON, or None when it is not one."""
    try:
        if check_reward_data(data, origin=str(path)).name != "judge":
            return None
        meta = data["provenance"]["extra"][EXTRA_KEY]
        model, spec = data["model"], data["judge"]
        answers = tuple(spec.get("answers", DEFAULT_ANSWERS))
        request = JudgeRequest(
            model=str(model.get("path") or model["hf_id"]),
            question=str(spec["question"]),
            answers=(str(answers[0]), str(answers[1])),
            mode=JudgeMode(spec.get("mode", JudgeMode.LOG_ODDS)),
            frames=int(spec.get("frames", 1)),
            precision=str(model.get("precision") or "auto"),
        )
        return SavedJudge(
            name=str(meta["name"]),
            request=request,
            path=path,
            revision=model.get("revision"),
            environment=meta.get("environment"),
            created_by=meta.get("by"),
            data=data,
        )
    except (RewardFileError, KeyError, TypeError, ValueError, IndexError):
        return None
