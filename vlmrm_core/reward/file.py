"""Reward files: a reward chosen in the studio, as one JSON file any training script can load.

Every reward file has the same envelope, whatever its reward source::

    {
      "format": "vlmrm-reward",
      "version": 2,
      "source": "clip",
      ...the source's own keys...,
      "provenance": {...} or null,
      "created_at": "2026-12-01T10:00:00+00:00",
      "vlmrm_version": "0.1.0"
    }

``source`` names the kind of reward (:data:`REWARD_SOURCES`): a new source adds its own keys and
a function that builds its :class:`~vlmrm_core.reward.base.Reward` from the file, not a new
format. ``provenance`` records, when known, where the reward was evaluated (dataset, labels,
EPIC distance with its CI, AP, AUC).

The ``clip`` source (:class:`~vlmrm_core.reward.model.RewardModel`) adds the model reference
(architecture, open_clip tag or checkpoint path with its SHA-256, aspect, resampling, precision)
and the full :class:`~vlmrm_core.reward.spec.RewardSpec`::

      "model": {"architecture": "ViT-B-32", "pretrained": "laion2b_s34b_b79k",
                "aspect": "squash", "precision": "fp32", "resize": "antialias", "sha256": null},
      "reward": {"goal_prompts": ["..."], "baseline_prompts": ["..."], "alpha": 0.5,
                 "kind": "regularized", "negatives": [], "tau": null, "beta": 0.5},
      "provenance": {"dataset": "...", "labels": "...", "n_labels": 120, "epic_distance": 0.41,
                     "epic_ci": [0.38, 0.44], "average_precision": 0.8, "roc_auc": 0.85,
                     "evaluated_at": "2026-12-01T10:00:00+00:00"},

The ``judge`` source (:class:`~vlmrm_core.judge.JudgeReward`, a generative VLM asked a yes/no
question) adds the judge model (hub id with its commit, or a local folder with the SHA-256 of its
files) and the question::

      "model": {"hf_id": "HuggingFaceTB/SmolVLM-256M-Instruct", "revision": "<commit>",
                "path": null, "sha256": null, "precision": "fp32"},
      "judge": {"question": "Is the pole upright? Answer yes or no.", "answers": ["yes", "no"],
                "mode": "log-odds", "frames": 1},

:func:`save_reward` writes a file of any source whose reward can describe itself
(``to_dict()``, as the judge's does); :func:`write_reward_data` is the one path every file takes.

Version 1 (before sources) is the same without the ``source`` key: it is read as a ``clip`` file.
Keys are strict: an unknown or missing one is refused, naming it and the keys there are.

Example::

    >>> import vlmrm_core
    >>> reward = vlmrm_core.load_reward("reward.json")  # doctest: +SKIP
    >>> rewards = reward(frames)  # doctest: +SKIP
"""

from __future__ import annotations

import difflib
import importlib
import json
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast, overload

from vlmrm_core.errors import VlmrmError
from vlmrm_core.reward.spec import ModelRef, RewardSpec, SpecError

if TYPE_CHECKING:
    from vlmrm_core.reward.base import Reward
    from vlmrm_core.reward.model import RewardModel

FORMAT = "vlmrm-reward"
VERSION = 2
"""The newest format version this package writes and reads (version 1 is read too)."""

ENVELOPE_KEYS = ("format", "version", "source")
"""Top-level keys every reward file has (``source`` from version 2 on)."""
OPTIONAL_KEYS = ("provenance", "created_at", "vlmrm_version")
"""Top-level keys every reward file may have."""


class RewardFileError(VlmrmError, ValueError):
    """A reward file that cannot be read or used; the message names the fix."""


RewardBuilder = Callable[[Mapping[str, Any], Path, "str | None"], "Reward"]
"""Builds a source's reward from its file: (the file's checked JSON, its path, device)."""


@dataclass(frozen=True)
class RewardFileSource:
    """One kind of reward file: its name, its own top-level keys, and how to build its reward."""

    name: str
    """The value of the file's ``source`` key."""
    keys: tuple[str, ...]
    """The source's own top-level keys, all required (besides the envelope's)."""
    builder: str | RewardBuilder
    """The function that builds the :class:`~vlmrm_core.reward.base.Reward`, or where it is
    (``"package.module:Class.method"``), imported on first use so reading a file stays cheap."""

    def build(self, data: Mapping[str, Any], path: Path, device: str | None) -> Reward:
        """The reward of a checked file (imports the builder now, if given by name)."""
        builder = self.builder
        if isinstance(builder, str):
            module, _, qualname = builder.partition(":")
            target: Any = importlib.import_module(module)
            for attribute in qualname.split("."):
                target = getattr(target, attribute)
            builder = target
        return builder(data, path, device)


REWARD_SOURCES: dict[str, RewardFileSource] = {}
"""The sources this package reads, by name (:func:`register_reward_source` adds one)."""


def register_reward_source(name: str, builder: str | RewardBuilder, keys: tuple[str, ...]) -> None:
    """Teach :func:`load_reward` a new kind of reward file.

    Args:
        name: the ``source`` value of its files, e.g. ``"vlm-judge"``.
        builder: ``(data, path, device) -> Reward``, or its ``"module:qualname"`` to import
            lazily; ``data`` is the file's JSON, already checked for format, version and keys.
        keys: the source's own required top-level keys (``provenance`` and the other envelope
            keys are shared by every source).

    Raises:
        ValueError: a key of the envelope among ``keys``, or an empty name.
    """
    shared = set(ENVELOPE_KEYS) | set(OPTIONAL_KEYS)
    if not name or set(keys) & shared:
        raise ValueError(f"a reward source needs a name and keys other than {sorted(shared)}")
    REWARD_SOURCES[name] = RewardFileSource(name, tuple(keys), builder)


register_reward_source(
    "clip", "vlmrm_core.reward.model:RewardModel.from_reward_file", keys=("model", "reward")
)
register_reward_source(
    "judge", "vlmrm_core.judge.reward:JudgeReward.from_reward_file", keys=("model", "judge")
)


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
    """The parsed content of a ``clip`` reward file (no model loaded)."""

    model: ModelRef
    reward: RewardSpec
    provenance: Provenance | None = None
    created_at: str | None = None
    vlmrm_version: str | None = None
    version: int = VERSION
    """The format version the file was read from (:meth:`to_dict` writes the newest)."""

    def to_dict(self) -> dict[str, Any]:
        """The file's JSON in the newest format version, whatever version it was read from."""
        return {
            "format": FORMAT,
            "version": VERSION,
            "source": "clip",
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
    """The JSON text of a ``clip`` reward file (what :func:`write_reward_file` writes; for
    downloads)."""
    source_content = {"source": "clip", "model": model.to_dict(), "reward": reward.to_dict()}
    return _json_text(reward_file_data(source_content, provenance))


def reward_file_data(
    source_content: Mapping[str, Any], provenance: Provenance | None = None
) -> dict[str, Any]:
    """A reward file's JSON: the envelope (format, version, provenance, creation time and
    vlmrm version) around a source's own content.

    Args:
        source_content: ``{"source": NAME, ...its keys...}``, e.g. a
            :meth:`~vlmrm_core.judge.JudgeReward.to_dict`.
        provenance: where the reward was evaluated, if known.

    Raises:
        RewardFileError: an unknown source, or keys that are not the source's.
    """
    from vlmrm_core import __version__

    data = {
        "format": FORMAT,
        "version": VERSION,
        **dict(source_content),
        "provenance": provenance.to_dict() if provenance else None,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "vlmrm_version": __version__,
    }
    check_reward_data(data, origin=f"a {source_content.get('source')!r} reward")
    return data


def _json_text(data: Mapping[str, Any]) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def write_reward_data(path: str | os.PathLike[str], data: Mapping[str, Any]) -> Path:
    """Write a reward file's checked JSON atomically (a crash never leaves half a file): the
    one path every reward file takes to disk.

    Raises:
        RewardFileError: ``data`` is not a valid reward file.
    """
    target = Path(path)
    check_reward_data(data, origin=f"reward file {target}")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(
        "w", encoding="utf-8", dir=target.parent, prefix=f".{target.name}.", delete=False
    ) as tmp:
        tmp.write(_json_text(data))
    os.replace(tmp.name, target)
    return target


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
    data = json.loads(reward_file_text(model, reward, provenance))
    target = write_reward_data(path, data)
    return reward_file_from_dict(data, origin=str(target))


@overload
def save_reward(  # type: ignore[overload-overlap]  # a CLIP reward gives its parsed file
    path: str | os.PathLike[str],
    reward_model: RewardModel,
    provenance: Provenance | dict[str, Any] | None = None,
) -> RewardFile: ...


@overload
def save_reward(
    path: str | os.PathLike[str],
    reward_model: Reward,
    provenance: Provenance | dict[str, Any] | None = None,
) -> dict[str, Any]: ...


def save_reward(
    path: str | os.PathLike[str],
    reward_model: Reward,
    provenance: Provenance | dict[str, Any] | None = None,
) -> RewardFile | dict[str, Any]:
    """Save a loaded reward as a reward file, which :func:`load_reward` loads again.

    Args:
        path: where to write (``.json``).
        reward_model: the reward: a CLIP :class:`~vlmrm_core.RewardModel` (its checkpoint
            file, if any, is hashed into the file), or any reward that describes itself as
            its source's file content with ``to_dict()`` (e.g. a
            :class:`~vlmrm_core.judge.JudgeReward`).
        provenance: where it was evaluated (a :class:`Provenance` or a dict of its fields).

    Returns:
        What was written: a :class:`RewardFile` for a CLIP reward, the file's JSON otherwise.

    Raises:
        RewardFileError: a reward that cannot be written as a file (no ``to_dict()``, or a
            source this vlmrm does not know).
    """
    if isinstance(provenance, dict):
        provenance = Provenance.from_dict(provenance)
    if reward_model.source == "clip":
        # A CLIP reward (reward.model.RewardModel), known by its source, not its class: this
        # module stays below the model module (which loads files through it).
        clip_reward = cast("RewardModel", reward_model)
        return write_reward_file(path, clip_reward.model_ref, clip_reward.spec, provenance)
    describe = getattr(reward_model, "to_dict", None)
    if not callable(describe):
        raise RewardFileError(
            f"a {type(reward_model).__name__} ({reward_model.source or 'no source'}) cannot be "
            "saved as a reward file: it has no to_dict() giving its source's file content"
        )
    data = reward_file_data(describe(), provenance)
    write_reward_data(path, data)
    return data


def check_reward_data(data: Any, *, origin: str = "reward file") -> RewardFileSource:
    """Check a reward file's envelope (format, version, source, keys); return its source.

    Args:
        data: the parsed JSON.
        origin: how to name the file in messages, e.g. ``reward file r.json``.

    Raises:
        RewardFileError: not a reward file, a newer format, an unknown source, or an unknown or
            missing top-level key; one line naming it and what there is.
    """
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise RewardFileError(
            f'{origin} is not a VLM-RM reward file (no "format": "{FORMAT}"): export one with '
            '`vlmrm reward export` or the app\'s "Download reward file"'
        )
    version = data.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise RewardFileError(
            f"{origin} has no valid format version (got {version!r}): it must be 1 or {VERSION}"
        )
    if version > VERSION:
        raise RewardFileError(
            f"{origin} uses reward-file format {version}, newer than this vlmrm reads "
            f"({VERSION}): upgrade vlmrm-studio"
        )
    if version == 1:
        name: Any = "clip"  # version 1 had no sources: every file was a CLIP reward
        envelope = tuple(key for key in ENVELOPE_KEYS if key != "source")
    else:
        name = data.get("source")
        envelope = ENVELOPE_KEYS
        if "source" not in data:
            raise RewardFileError(
                f'{origin} has no "source" key: a version-{version} reward file names its reward '
                f"source, one of {', '.join(sorted(REWARD_SOURCES))}"
            )
    source = REWARD_SOURCES.get(name) if isinstance(name, str) else None
    if source is None:
        raise RewardFileError(
            f"{origin} has the reward source {name!r}, which this vlmrm does not know: known "
            f"sources are {', '.join(sorted(REWARD_SOURCES))} (upgrade vlmrm-studio, or "
            "register it with vlmrm_core.reward.file.register_reward_source)"
        )
    required = (*envelope, *source.keys)
    known = (*required, *OPTIONAL_KEYS)
    what = f"a {source.name} reward file" + (" of version 1" if version == 1 else "")
    unknown = [key for key in data if key not in known]
    if unknown:
        key = unknown[0]
        guess = difflib.get_close_matches(str(key), [k for k in known if k not in data], n=1)
        hint = f' (did you mean "{guess[0]}"?)' if guess else ""
        raise RewardFileError(
            f'{origin} has an unknown key "{key}"{hint}: the keys of {what} are {", ".join(known)}'
        )
    missing = [key for key in required if key not in data]
    if missing:
        raise RewardFileError(
            f'{origin} has no "{missing[0]}" key: {what} needs {", ".join(required)} (and may '
            f"have {', '.join(OPTIONAL_KEYS)})"
        )
    return source


def reward_file_from_dict(data: Any, *, origin: str = "reward file") -> RewardFile:
    """Validate parsed JSON as a ``clip`` reward file (version 1 or 2).

    Raises:
        RewardFileError: not a reward file, a newer format, another source, unknown or missing
            keys, or invalid model/reward fields.
    """
    source = check_reward_data(data, origin=origin)
    if source.name != "clip":
        raise RewardFileError(_not_clip(origin, source.name))
    try:
        model = ModelRef.from_dict(data["model"])
        reward = RewardSpec.from_dict(data["reward"])
        raw_provenance = data.get("provenance")
        provenance = Provenance.from_dict(raw_provenance) if raw_provenance else None
    except SpecError as exc:
        raise RewardFileError(f"{origin}: {exc}") from None
    except (TypeError, ValueError, AttributeError) as exc:
        raise RewardFileError(f"{origin}: malformed provenance ({exc})") from None
    return RewardFile(
        model=model,
        reward=reward,
        provenance=provenance,
        created_at=data.get("created_at"),
        vlmrm_version=data.get("vlmrm_version"),
        version=data["version"],
    )


def _not_clip(origin: str, source: str) -> str:
    return (
        f"{origin} holds a {source!r} reward, not a CLIP one (prompts and a CLIP model): "
        "load it with vlmrm_core.load_reward, or give a CLIP reward file here"
    )


def read_reward_data(path: str | os.PathLike[str]) -> tuple[RewardFileSource, dict[str, Any]]:
    """Read a reward file of any source and check its envelope; load no model.

    Returns:
        Its source and its JSON.

    Raises:
        RewardFileError: unreadable, not JSON, not a reward file, an unknown source, or an
            unknown or missing top-level key.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise RewardFileError(f"reward file {path} not found: check the path") from None
    except IsADirectoryError:
        raise RewardFileError(
            f"{path} is a folder, not a reward file: give the .json file"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RewardFileError(f"cannot read reward file {path}: {exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RewardFileError(
            f"reward file {path} is not valid JSON (line {exc.lineno}, column {exc.colno})"
        ) from None
    return check_reward_data(data, origin=f"reward file {path}"), data


def read_reward_file(path: str | os.PathLike[str]) -> RewardFile:
    """Parse and validate a ``clip`` reward file without loading its model.

    Raises:
        RewardFileError: unreadable, not JSON, not a reward file, not a CLIP reward, or invalid
            fields.
    """
    _, data = read_reward_data(path)
    return reward_file_from_dict(data, origin=f"reward file {Path(path)}")


def load_reward(path: str | os.PathLike[str], device: str | None = None) -> Reward:
    """Load a reward file as a ready :class:`~vlmrm_core.reward.base.Reward`.

    The file is read and checked before anything heavy is imported, so a wrong path or a bad
    file fails at once. For a ``clip`` file the reward is a :class:`~vlmrm_core.RewardModel`:
    a checkpoint path in the file is looked up as written, then next to the reward file (so a
    reward and its checkpoint can travel together), and its SHA-256 must match the one recorded.

    Args:
        path: the reward file.
        device: ``cuda`` / ``cpu`` (default: cuda when available).

    Raises:
        RewardFileError: the file is invalid.
        ModelError: the model cannot be loaded (an open_clip tag not available offline, a
            missing checkpoint, or one whose SHA-256 differs); the message names the fix.
    """
    _, data = read_reward_data(path)
    return reward_from_data(data, path=path, device=device)


def reward_from_data(
    data: Mapping[str, Any],
    *,
    path: str | os.PathLike[str] = "reward.json",
    device: str | None = None,
    precision: str | None = None,
) -> Reward:
    """The reward of a reward file's JSON, of any source (e.g. the copy a training run keeps).

    Args:
        data: the file's JSON.
        path: where the file is (or was): files it names relative to itself are found there.
        device: ``cuda`` / ``cpu`` (default: cuda when available).
        precision: replaces the file's ``model.precision``: a runtime choice (e.g. a training
            run's ``auto``), as for CLIP rewards in training; None keeps the file's.

    Raises:
        RewardFileError: the content is not a valid reward file.
        ModelError: the model cannot be loaded.
    """
    source = check_reward_data(data, origin=f"reward file {path}")
    model = data.get("model")
    if precision is not None and isinstance(model, Mapping) and "precision" in model:
        data = {**data, "model": {**model, "precision": str(precision)}}
    return source.build(data, Path(path), device)


def locate_checkpoint(ref: ModelRef, reward_path: Path) -> ModelRef:
    """``ref`` with its checkpoint path found: as written, relative to the reward file, or
    next to it by name (tags and random weights as given).

    Raises:
        ModelError: the checkpoint is in none of these places.
    """
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
