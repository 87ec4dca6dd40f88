"""Reward files: a reward chosen in the studio, as one JSON file any training script can load.

A reward file holds the model reference (architecture, open_clip tag or checkpoint path with its
SHA-256, aspect, resampling, precision), the full :class:`~vlmrm_core.reward.spec.RewardSpec`, and, when
known, where the reward was evaluated (dataset, labels, EPIC distance with its CI, AP, AUC).

Format (``"format": "vlmrm-reward"``, ``"version": 1``)::

    {
      "format": "vlmrm-reward",
      "version": 1,
      "model": {"architecture": "ViT-B-32", "pretrained": "laion2b_s34b_b79k",
                "aspect": "squash", "precision": "fp32", "resize": "antialias", "sha256": null},
      "reward": {"goal_prompts": ["..."], "baseline_prompts": ["..."], "alpha": 0.5,
                 "kind": "regularized", "negatives": [], "tau": null, "beta": 0.5},
      "provenance": {"dataset": "...", "labels": "...", "n_labels": 120, "epic_distance": 0.41,
                     "epic_ci": [0.38, 0.44], "average_precision": 0.8, "roc_auc": 0.85,
                     "evaluated_at": "2026-12-01T10:00:00+00:00"},
      "created_at": "2026-12-01T10:00:00+00:00",
      "vlmrm_version": "0.1.0"
    }

Example::

    >>> import vlmrm_core
    >>> reward_model = vlmrm_core.load_reward("reward.json")  # doctest: +SKIP
    >>> rewards = reward_model(frames)  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vlmrm_core.errors import VlmrmError
from vlmrm_core.reward.spec import ModelRef, RewardSpec, SpecError

if TYPE_CHECKING:
    from vlmrm_core.reward.model import RewardModel

FORMAT = "vlmrm-reward"
VERSION = 1
"""The newest format version this package writes and reads."""


class RewardFileError(VlmrmError, ValueError):
    """A reward file that cannot be read or used; the message names the fix."""


@dataclass(frozen=True)
class Provenance:
    """Where a reward was chosen and how well it agreed with human labels (all optional)."""

    dataset: str | None = None
    """The project dataset it was evaluated on."""
    labels: str | None = None
    """Which labels: e.g. ``majority of alice, bob`` or ``adjudicated``."""
    n_labels: int | None = None
    epic_distance: float | None = None
    epic_ci: tuple[float, float] | None = None
    """Bootstrap 95% interval of the EPIC distance."""
    average_precision: float | None = None
    roc_auc: float | None = None
    evaluated_at: str | None = None
    """ISO 8601 time of the evaluation."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Anything else worth keeping (e.g. an adapted reward's cross-validation table)."""

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if self.epic_ci is not None:
            data["epic_ci"] = [float(v) for v in self.epic_ci]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Provenance:
        names = {f.name for f in fields(cls)}
        known = {k: v for k, v in data.items() if k in names}
        extra = dict(known.pop("extra", None) or {})
        extra.update({k: v for k, v in data.items() if k not in names})  # keep unknown keys
        if known.get("epic_ci") is not None:
            low, high = known["epic_ci"]
            known["epic_ci"] = (float(low), float(high))
        return cls(**known, extra=extra)


@dataclass(frozen=True)
class RewardFile:
    """The parsed content of a reward file (no model loaded)."""

    model: ModelRef
    reward: RewardSpec
    provenance: Provenance | None = None
    created_at: str | None = None
    vlmrm_version: str | None = None
    version: int = VERSION

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": self.version,
            "model": self.model.to_dict(),
            "reward": self.reward.to_dict(),
            "provenance": self.provenance.to_dict() if self.provenance else None,
            "created_at": self.created_at,
            "vlmrm_version": self.vlmrm_version,
        }


def with_checkpoint_hash(ref: ModelRef) -> ModelRef:
    """``ref`` with the SHA-256 of its checkpoint file filled in (tags and random init as given).

    Raises:
        ModelError: the checkpoint file cannot be read.
    """
    from vlmrm_core.clip.models import ModelError, file_sha256, is_checkpoint_path

    if ref.pretrained is None or not is_checkpoint_path(ref.pretrained):
        return ref
    path = Path(ref.pretrained).expanduser()
    try:
        return ref.replace(pretrained=str(path), sha256=file_sha256(path))
    except OSError:
        raise ModelError(
            f"cannot read the checkpoint {path.name}: check the path (and that it is a file)"
        ) from None


def reward_file_text(
    model: ModelRef, reward: RewardSpec, provenance: Provenance | None = None
) -> str:
    """The JSON text of a reward file (what :func:`write_reward_file` writes; for downloads)."""
    from vlmrm_core import __version__

    content = RewardFile(
        model=model,
        reward=reward,
        provenance=provenance,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        vlmrm_version=__version__,
    )
    return json.dumps(content.to_dict(), indent=2, ensure_ascii=False) + "\n"


def reward_file_name(name: str) -> str:
    """A safe file name for a reward named ``name`` (e.g. ``paper: cartpole`` → ``paper-cartpole.json``)."""
    stem = "".join(c if c.isalnum() or c in "-_." else "-" for c in name.strip())
    stem = "-".join(part for part in stem.split("-") if part).strip(".") or "reward"
    return f"{stem[:100]}.json"


def write_reward_file(
    path: str | os.PathLike[str],
    model: ModelRef,
    reward: RewardSpec,
    provenance: Provenance | None = None,
) -> RewardFile:
    """Write a reward file atomically (a crash never leaves half a file).

    Args:
        path: where to write (``.json``).
        model: the model reference; a checkpoint path should carry its ``sha256``.
        reward: what to reward.
        provenance: where it was evaluated, if known.

    Returns:
        What was written.
    """
    text = reward_file_text(model, reward, provenance)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(
        "w", encoding="utf-8", dir=target.parent, prefix=f".{target.name}.", delete=False
    ) as tmp:
        tmp.write(text)
    os.replace(tmp.name, target)
    return reward_file_from_dict(json.loads(text), source=str(target))


def save_reward(
    path: str | os.PathLike[str],
    reward_model: RewardModel,
    provenance: Provenance | dict[str, Any] | None = None,
) -> RewardFile:
    """Save a loaded reward model as a reward file.

    Args:
        path: where to write (``.json``).
        reward_model: the reward; its checkpoint file (if any) is hashed into the file.
        provenance: where it was evaluated (a :class:`Provenance` or a dict of its fields).

    Returns:
        What was written.
    """
    if isinstance(provenance, dict):
        provenance = Provenance.from_dict(provenance)
    return write_reward_file(path, reward_model.model_ref, reward_model.spec, provenance)


def reward_file_from_dict(data: Any, *, source: str = "reward file") -> RewardFile:
    """Validate parsed JSON as a reward file.

    Raises:
        RewardFileError: not a reward file, a newer format, or invalid model/reward fields.
    """
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise RewardFileError(
            f'{source} is not a VLM-RM reward file (no "format": "{FORMAT}"): export one with '
            '`vlmrm reward export` or the app\'s "Download reward file"'
        )
    version = data.get("version")
    if not isinstance(version, int) or version < 1:
        raise RewardFileError(f"{source} has no valid format version (got {version!r})")
    if version > VERSION:
        raise RewardFileError(
            f"{source} uses reward-file format {version}, newer than this vlmrm reads "
            f"({VERSION}): upgrade vlmrm-studio"
        )
    try:
        model = ModelRef.from_dict(data.get("model") or {})
        reward = RewardSpec.from_dict(data.get("reward") or {})
        raw_provenance = data.get("provenance")
        provenance = Provenance.from_dict(raw_provenance) if raw_provenance else None
    except SpecError as exc:
        raise RewardFileError(f"{source}: {exc}") from None
    except (TypeError, ValueError) as exc:
        raise RewardFileError(f"{source}: malformed provenance ({exc})") from None
    return RewardFile(
        model=model,
        reward=reward,
        provenance=provenance,
        created_at=data.get("created_at"),
        vlmrm_version=data.get("vlmrm_version"),
        version=version,
    )


def read_reward_file(path: str | os.PathLike[str]) -> RewardFile:
    """Parse and validate a reward file without loading its model.

    Raises:
        RewardFileError: unreadable, not JSON, not a reward file, or invalid fields.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise RewardFileError(f"reward file {path} not found: check the path") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RewardFileError(f"cannot read reward file {path}: {exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RewardFileError(
            f"reward file {path} is not valid JSON (line {exc.lineno}, column {exc.colno})"
        ) from None
    return reward_file_from_dict(data, source=f"reward file {path}")


def load_reward(path: str | os.PathLike[str], device: str | None = None) -> RewardModel:
    """Load a reward file as a ready :class:`~vlmrm_core.RewardModel`.

    A checkpoint path in the file is looked up as written, then next to the reward file (so a
    reward and its checkpoint can travel together); its SHA-256 must match the one recorded.

    Args:
        path: the reward file.
        device: ``cuda`` / ``cpu`` (default: cuda when available).

    Raises:
        RewardFileError: the file is invalid.
        ModelError: the model cannot be loaded (an open_clip tag not available offline, a
            missing checkpoint, or one whose SHA-256 differs); the message names the fix.
    """
    from vlmrm_core.reward.model import RewardModel

    content = read_reward_file(path)
    ref = _locate_checkpoint(content.model, Path(path))
    return RewardModel.from_ref(ref, content.reward, device=device)


def _locate_checkpoint(ref: ModelRef, reward_path: Path) -> ModelRef:
    from vlmrm_core.clip.models import ModelError, is_checkpoint_path

    if ref.pretrained is None or not is_checkpoint_path(ref.pretrained):
        return ref
    written = Path(ref.pretrained).expanduser()
    candidates = [written]
    if not written.is_absolute():
        candidates.insert(0, reward_path.parent / written)
    candidates.append(reward_path.parent / written.name)
    for candidate in candidates:
        if candidate.is_file():
            return ref.replace(pretrained=str(candidate))
    raise ModelError(
        f"the reward's checkpoint {written.name} was not found (looked at {written} and next to "
        f"{reward_path.name}): copy the checkpoint next to the reward file, or set "
        '"model.pretrained" in the file to its path'
    )
