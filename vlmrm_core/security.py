"""Guards for a shared deployment: what a visitor of the app may load, run or export.

Pure helpers, no Streamlit:

- :func:`check_env_id_allowed`: environment ids only from gymnasium's registry (an id of the form
  ``module:Env`` would make gymnasium import any installed module), optionally narrowed by the
  ``VLMRM_ENV_ALLOWLIST`` setting.
- :func:`files_in_folder` / :func:`resolve_in_folder`: files offered by pickers, and the check that
  a picked file really lies inside its folder (no ``..``, no symlink out of it).
- :func:`csv_safe_cell`: neutralises spreadsheet formulas in CSV exports.
- :func:`safe_sb3_custom_objects`: replacements for every pickled (``:serialized:``) entry of a
  stable-baselines3 zip, so loading it never unpickles anything.

Importing this module imports no torch, gymnasium or stable-baselines3.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from vlmrm_core.errors import VlmrmError

__all__ = [
    "ENV_ALLOWLIST_VAR",
    "FORMULA_PREFIXES",
    "NotAllowedError",
    "check_env_id_allowed",
    "csv_safe_cell",
    "csv_safe_row",
    "env_allowlist",
    "files_in_folder",
    "resolve_in_folder",
    "safe_sb3_custom_objects",
]

ENV_ALLOWLIST_VAR = "VLMRM_ENV_ALLOWLIST"
"""Comma-separated gymnasium ids or glob patterns (``CartPole-*,MountainCar-v0``); when set, only
matching registered ids can be rolled out or trained on."""

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
"""First characters that make a spreadsheet read a CSV cell as a formula (OWASP's list)."""


class NotAllowedError(VlmrmError, ValueError):
    """The input names something this deployment does not allow; the message says what is."""


def env_allowlist(environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The patterns of ``VLMRM_ENV_ALLOWLIST`` (empty: every registered id is allowed)."""
    raw = (environ if environ is not None else os.environ).get(ENV_ALLOWLIST_VAR, "")
    return tuple(p.strip() for p in raw.split(",") if p.strip())


def check_env_id_allowed(env_id: str, registered: Iterable[str] | None = None) -> str:
    """Accept only a registered gymnasium id (and, when set, one the allowlist matches).

    Args:
        env_id: The id a user typed or picked.
        registered: The registered ids; default ``gymnasium.registry`` (imports gymnasium).

    Returns:
        The id, stripped.

    Raises:
        NotAllowedError: ``module:Env`` ids (they import code), ids not in the registry, or ids
            the ``VLMRM_ENV_ALLOWLIST`` setting does not list.
    """
    env_id = env_id.strip()
    if ":" in env_id:
        raise NotAllowedError(
            f"environment ids of the form module:Env are not accepted ({env_id!r}): they import "
            "Python modules. Use a registered id such as CartPole-v1."
        )
    if registered is None:
        import gymnasium as gym

        registered = gym.registry.keys()
    if env_id not in set(registered):
        raise NotAllowedError(
            f"unknown gymnasium environment {env_id!r}: use a registered id such as CartPole-v1."
        )
    patterns = env_allowlist()
    if patterns and not any(fnmatch.fnmatchcase(env_id, p) for p in patterns):
        raise NotAllowedError(
            f"environment {env_id!r} is not allowed on this server; allowed: "
            f"{', '.join(patterns)} (the {ENV_ALLOWLIST_VAR} setting)."
        )
    return env_id


def files_in_folder(folder: Path, suffixes: tuple[str, ...]) -> list[Path]:
    """Regular files under ``folder`` (recursively) with one of ``suffixes``, sorted.

    Symlinks pointing outside the folder are left out.
    """
    if not folder.is_dir():
        return []
    root = folder.resolve()
    found = []
    for path in sorted(root.rglob("*")):
        if not path.name.lower().endswith(suffixes):
            continue
        try:
            real = path.resolve(strict=True)
        except OSError:
            continue
        if real.is_file() and real.is_relative_to(root):
            found.append(path)
    return found


def resolve_in_folder(folder: Path, candidate: str | Path) -> Path:
    """The real path of ``candidate`` if it is a file inside ``folder``, else an error.

    The message is the same whether the file does not exist, cannot be read, or lies outside the
    folder, so it reveals nothing about other files on the server.

    Raises:
        NotAllowedError: ``candidate`` is not a readable file inside ``folder``.
    """
    root = folder.resolve()
    path = Path(candidate)
    if not path.is_absolute():
        path = root / path
    try:
        real = path.resolve(strict=True)
        ok = real.is_relative_to(root) and real.is_file() and os.access(real, os.R_OK)
    except (OSError, RuntimeError):
        ok = False
    if not ok:
        raise NotAllowedError(
            f"{Path(candidate).name!r} is not one of the files in the models folder; pick a file "
            "from the list (or upload one)."
        )
    return real


def csv_safe_cell(value: Any) -> Any:
    """A CSV cell that a spreadsheet shows as text, never runs as a formula.

    Strings starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return get a leading
    apostrophe; numbers (including negative ones, also as strings such as ``"-0.5"``) and other
    values are returned unchanged.
    """
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        try:
            float(value)  # "-0.5" is a number to a spreadsheet too, not a formula
        except ValueError:
            return "'" + value
    return value


def csv_safe_row(row: Iterable[Any]) -> list[Any]:
    """:func:`csv_safe_cell` applied to every cell of a row."""
    return [csv_safe_cell(v) for v in row]


# Replacements for stable-baselines3 entries that are pickled in the zip's ``data``. Everything
# is rebuilt from plain JSON values by ``_setup_model`` or is not needed for prediction.
_SB3_NUMERIC = {"learning_rate": 0.0, "clip_range": 0.2}


def safe_sb3_custom_objects(
    data: Mapping[str, Any], observation_space: Any, action_space: Any
) -> dict[str, Any]:
    """``custom_objects`` for ``Algo.load`` overriding every ``:serialized:`` entry of ``data``.

    With these, stable-baselines3 unpickles nothing (its ``.pth`` files are read with
    ``torch.load(weights_only=True)``): the spaces come from the environment, the policy class
    from the observation space, schedules from constants, and anything else pickled is dropped.

    Args:
        data: The zip's ``data`` entry, parsed as JSON.
        observation_space: The environment's observation space.
        action_space: The environment's action space.

    Returns:
        A dict covering every key of ``data`` whose value is pickled, plus the spaces;
        ``policy_class`` is an alias string to resolve with ``Algo.policy_aliases``.
    """
    custom: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict) and ":serialized:" in value:
            custom[key] = _SB3_NUMERIC.get(key)
    custom["observation_space"] = observation_space
    custom["action_space"] = action_space
    # An alias (MlpPolicy, CnnPolicy, MultiInputPolicy): the caller resolves it per algorithm.
    custom["policy_class"] = _sb3_policy_alias(data.get("policy_class"), observation_space)
    if "policy_kwargs" in custom:
        custom["policy_kwargs"] = {}
    return custom


def _sb3_policy_alias(entry: Any, observation_space: Any) -> str:
    """``MlpPolicy`` / ``CnnPolicy`` / ``MultiInputPolicy``, read from the readable hints."""
    hint = str(entry.get("__init__", "")) if isinstance(entry, dict) else ""
    if "MultiInput" in hint or type(observation_space).__name__ == "Dict":
        return "MultiInputPolicy"
    if "Cnn" in hint:
        return "CnnPolicy"
    return "MlpPolicy"


CHECKPOINT_FILE_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors")
"""Checkpoint files the models folder offers (same list as ``vlmrm_core.clip.models``)."""

POLICY_FILE_SUFFIXES = (".zip",)
"""Saved stable-baselines3 models offered by the rollout's policy picker."""

_TAG_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")


def check_app_pretrained(pretrained: str, models_dir: Path) -> str:
    """What the app may pass to ``load_model`` as ``pretrained``: never an arbitrary path.

    Args:
        pretrained: ``''`` (random init), an open_clip tag, or a checkpoint path from the picker.
        models_dir: The models folder; checkpoint files must lie inside it.

    Returns:
        The value to load: ``''``, the tag, or the checkpoint's real path.

    Raises:
        NotAllowedError: A path outside the models folder (or missing or unreadable: one
            message), or a tag with characters no open_clip tag has.
    """
    pretrained = pretrained.strip()
    if not pretrained:
        return ""
    if (
        os.sep in pretrained
        or "/" in pretrained
        or pretrained.lower().endswith(CHECKPOINT_FILE_SUFFIXES)
    ):
        return str(resolve_in_folder(models_dir, pretrained))
    if not set(pretrained) <= _TAG_CHARS or pretrained.startswith("."):
        raise NotAllowedError(
            f"{pretrained!r} is not an open_clip pretrained tag (letters, digits, '_', '.', '-')."
        )
    return pretrained


def safe_file_stem(name: str, limit: int = 80) -> str:
    """A file name stem made of ``[A-Za-z0-9_.-]`` only (no path, no leading dot)."""
    stem = Path(name).stem
    cleaned = "".join(ch if ch in _TAG_CHARS else "-" for ch in stem).strip(".-")
    return cleaned[:limit] or "upload"


def validate_policy_zip(path: Path) -> None:
    """Check that ``path`` is a stable-baselines3 zip whose weights load without unpickling.

    Raises:
        NotAllowedError: Not a zip, no readable ``data`` JSON, no ``policy.pth``, or weights that
            ``torch.load(weights_only=True)`` refuses.
    """
    import json
    import zipfile

    import torch

    bad = NotAllowedError(
        "not a stable-baselines3 model: expected a zip written by model.save() with plain "
        "weights (policy.pth) and a JSON data entry."
    )
    try:
        with zipfile.ZipFile(path) as archive:
            data = json.loads(archive.read("data"))
            if not isinstance(data, dict):
                raise bad
            with archive.open("policy.pth") as weights:
                state = torch.load(weights, map_location="cpu", weights_only=True)
    except NotAllowedError:
        raise
    except Exception:
        raise bad from None
    if not isinstance(state, dict):
        raise bad
