"""Loading generative VLM judges: Hugging Face image-text-to-text models by hub id or local folder.

A judge is any model ``AutoModelForImageTextToText`` loads (SmolVLM / Idefics3, Qwen2.5-VL,
Qwen3-VL, ...) together with its ``AutoProcessor`` (image processor, tokenizer and chat
template). Every judge gets a stable *identity* that keys caches and reward files:

- ``HuggingFaceTB/SmolVLM-256M-Instruct@<commit>`` for a hub model (the commit of the cached
  snapshot),
- ``<folder name>@sha256:<16 hex digits>`` for a local folder (a hash of every file in it).

Hub models are read from the local Hugging Face cache only. When one is missing, the hub is
probed for a few seconds: offline, loading fails at once with a message naming
``vlmrm models download HF_ID``; online, the snapshot is downloaded first (like CLIP weights).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import torch

from vlmrm_core._torchvision_compat import install as _install_torchvision_compat
from vlmrm_core.clip.models import (
    ModelError,
    default_device,
    file_sha256,
    hub_reachable,
    resolve_precision,
)
from vlmrm_core.enums import Precision
from vlmrm_core.settings import get_settings

_install_torchvision_compat()  # transformers imports torchvision: the workaround must come first

RANDOM_INIT_FLAG = "vlmrm_random_init"
"""A config attribute marking untrained weights (written by the test and benchmark builders)."""

DOWNLOAD_PATTERNS = (
    "*.json",
    "*.safetensors",
    "*.jinja",
    "*.txt",
    "*.model",
    "*.tiktoken",
    "*.py",
)
"""Files a judge needs; hub repos often also hold ONNX or GGUF copies, which are skipped."""

_TORCH_DTYPES = {
    Precision.FP32: torch.float32,
    Precision.BF16: torch.bfloat16,
    Precision.FP16: torch.float16,
}


@dataclass
class JudgeModel:
    """A loaded judge: the model, its processor and what identifies them."""

    name: str
    """What the user gave: a hub id (``HuggingFaceTB/SmolVLM-256M-Instruct``) or a folder path."""
    identity: str
    """Stable key of the weights and processor files (see the module docstring)."""
    hf_id: str | None
    """The hub id, or None for a local folder."""
    revision: str | None
    """The commit of the hub snapshot, or None for a local folder."""
    folder: Path
    """Where the files are (the snapshot folder in the Hugging Face cache for a hub model)."""
    folder_sha256: str | None
    """Hash of every file of a local folder (None for hub models: the commit identifies them)."""
    processor: Any
    """The ``AutoProcessor`` of the model (tokenizer, image processor, chat template)."""
    model: Any
    """The ``AutoModelForImageTextToText`` module, in eval mode."""
    device: torch.device
    precision: str
    """``fp32``, ``bf16`` or ``fp16`` (``auto`` is resolved on load)."""
    untrained: bool
    """True for random weights (test and benchmark models): rewards are then meaningless."""
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    """Serialises forward passes when one judge is shared between threads (Streamlit)."""

    @property
    def dtype(self) -> torch.dtype:
        return _TORCH_DTYPES[Precision(self.precision)]

    @property
    def label(self) -> str:
        """A short name for people: the hub id, or the folder name."""
        return self.hf_id or self.folder.name

    @cached_property
    def preprocessing(self) -> str:
        """Key of the image preprocessing (a hash of the image processor's settings)."""
        settings = self.processor.image_processor.to_json_string()
        return "imgproc:" + hashlib.sha256(settings.encode()).hexdigest()[:12]

    @cached_property
    def feature_key(self) -> str:
        """What vision features are cached under: model, precision and preprocessing."""
        return f"{self.identity}|{self.precision}|{self.preprocessing}"


@dataclass(frozen=True)
class JudgeChoice:
    """A judge usable offline right now: for ``vlmrm models`` and pickers in the app."""

    name: str
    """What to pass to :func:`load_judge`: a hub id or a folder path."""
    kind: str
    """``hub-cache`` (a snapshot in the Hugging Face cache) or ``folder`` (in the models dir)."""
    model_type: str
    """The ``model_type`` of its config, e.g. ``idefics3`` or ``qwen2_5_vl``."""
    revision: str | None = None
    """The cached commit of a hub model."""
    size_bytes: int = 0
    """Bytes on disk."""


def is_judge_folder(folder: Path) -> bool:
    """True when ``folder`` holds a config of an image-text-to-text model."""
    return _judge_model_type(folder) is not None


def list_cached_judges(models_dir: Path | None = None) -> list[JudgeChoice]:
    """Judges usable offline: snapshots in the Hugging Face cache, then folders in the models dir.

    Args:
        models_dir: scanned for judge folders (default: the settings' models dir); a folder is
            a judge when its ``config.json`` names an image-text-to-text architecture.

    Returns:
        Hub-cache snapshots sorted by id, then local folders sorted by path.
    """
    choices: list[JudgeChoice] = []
    try:
        from huggingface_hub import constants, scan_cache_dir

        # Named explicitly: scan_cache_dir's own default is fixed when its module first loads.
        cache = scan_cache_dir(constants.HF_HUB_CACHE)
        repos = sorted(cache.repos, key=lambda r: r.repo_id)
    except Exception:  # no cache folder yet, or an unreadable one: nothing cached
        repos = []
    for repo in repos:
        if repo.repo_type != "model":
            continue
        for revision in sorted(repo.revisions, key=lambda r: r.last_modified, reverse=True):
            model_type = _judge_model_type(Path(revision.snapshot_path))
            if model_type is not None and _has_weights(Path(revision.snapshot_path)):
                choices.append(
                    JudgeChoice(
                        repo.repo_id,
                        "hub-cache",
                        model_type,
                        revision.commit_hash,
                        revision.size_on_disk,
                    )
                )
                break  # the newest usable snapshot stands for the repo
    models_dir = models_dir or get_settings().models_dir
    if models_dir.is_dir():
        for config in sorted(models_dir.rglob("config.json")):
            folder = config.parent
            model_type = _judge_model_type(folder)
            if model_type is not None and _has_weights(folder):
                size = sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
                choices.append(JudgeChoice(str(folder), "folder", model_type, None, size))
    return choices


def download_judge(hf_id: str, revision: str | None = None) -> Path:
    """Download a judge's files into the Hugging Face cache (needs the network).

    Only what loading needs is fetched (configs, safetensors weights, tokenizer and template
    files), not the ONNX or GGUF copies some repositories also hold.

    Args:
        hf_id: hub id, e.g. ``HuggingFaceTB/SmolVLM-256M-Instruct``.
        revision: branch, tag or commit (default: the main branch).

    Returns:
        The snapshot folder.

    Raises:
        ModelError: the hub is unreachable, the id is unknown, or the download failed.
    """
    hf_id = _check_hub_id(hf_id)
    host = _hub_host()
    if not hub_reachable(host):
        raise ModelError(
            f"cannot download {hf_id}: the model hub ({host}) can't be reached (offline?). Run "
            f"`vlmrm models download {hf_id}` on a machine with network access, or copy the "
            f"model folder (save_pretrained layout) into {get_settings().models_dir}."
        )
    from huggingface_hub import snapshot_download

    try:
        path = snapshot_download(hf_id, revision=revision, allow_patterns=list(DOWNLOAD_PATTERNS))
    except Exception as exc:  # hub errors come in many types; the message is what matters
        raise ModelError(f"downloading {hf_id} failed: {exc}") from exc
    folder = Path(path)
    if _judge_model_type(folder) is None:
        raise ModelError(
            f"{hf_id} was downloaded but is not an image-text-to-text model (its config.json "
            "names another architecture): pick a vision-language chat model, e.g. "
            "HuggingFaceTB/SmolVLM-256M-Instruct"
        )
    return folder


def load_judge(
    name: str | Path,
    *,
    revision: str | None = None,
    device: torch.device | str | None = None,
    precision: Precision | str = Precision.AUTO,
) -> JudgeModel:
    """Load a judge from a local folder or a hub id.

    Args:
        name: a folder written by ``save_pretrained`` (or a downloaded snapshot), or a hub id
            such as ``HuggingFaceTB/SmolVLM-256M-Instruct``. Existing folders win over hub ids.
        revision: the hub commit, branch or tag (hub ids only; default: the newest cached).
        device: ``cuda`` / ``cpu``; default cuda when available.
        precision: ``fp32``, ``bf16``, ``fp16`` or ``auto`` (default): bf16 on a CUDA device
            with native bfloat16, fp32 on a CPU (see ``vlmrm_core.clip.models.resolve_precision``).

    Returns:
        A ``JudgeModel`` in eval mode on ``device``.

    Raises:
        ModelError: a folder that is not a judge, a hub model that is neither cached nor
            downloadable (the message names ``vlmrm models download``), or a model
            ``AutoModelForImageTextToText`` cannot load.
    """
    device = torch.device(device) if device is not None else default_device()
    resolved = resolve_precision(precision, device)
    raw = str(name).strip()
    path = Path(raw).expanduser()
    if path.is_dir():
        if revision is not None:
            raise ModelError(
                f"--revision applies to hub ids, but {raw!r} is a local folder: drop the revision"
            )
        folder, hf_id, commit = path.resolve(), None, None
        if _judge_model_type(folder) is None:
            raise ModelError(
                f"{raw!r} is not a judge folder: it needs the config.json of an image-text-to-"
                "text model (e.g. written by save_pretrained or `vlmrm models download HF_ID`)"
            )
        content_hash = folder_sha256(folder)
        folder_hash: str | None = content_hash
        identity = f"{folder.name}@sha256:{content_hash[:16]}"
    else:
        hf_id = _check_hub_id(raw)
        cached = _cached_snapshot(hf_id, revision)
        if cached is not None:
            folder = cached
        else:
            host = _hub_host()
            if not hub_reachable(host):
                raise ModelError(
                    f"the judge {hf_id} is not in the local cache and the model hub ({host}) "
                    f"can't be reached (offline?). Download it once on a machine with network "
                    f"access (`vlmrm models download {hf_id}`), or give the path of a local "
                    "model folder instead."
                )
            folder = download_judge(hf_id, revision)
        commit = folder.name  # snapshot folders are named by their commit
        folder_hash = None
        identity = f"{hf_id}@{commit}"
        if _judge_model_type(folder) is None:
            raise ModelError(
                f"{hf_id} is not an image-text-to-text model: pick a vision-language chat "
                "model, e.g. HuggingFaceTB/SmolVLM-256M-Instruct"
            )

    from transformers import AutoModelForImageTextToText, AutoProcessor

    try:
        processor = AutoProcessor.from_pretrained(folder, local_files_only=True)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)  # weights missing from a checkpoint are initialised the same
            model = AutoModelForImageTextToText.from_pretrained(
                folder, local_files_only=True, dtype=_TORCH_DTYPES[resolved]
            )
    except (OSError, ValueError, KeyError) as exc:
        raise ModelError(
            f"cannot load the judge {raw!r} with AutoProcessor / AutoModelForImageTextToText: "
            f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}. Give a complete "
            "model folder (config, weights, processor and tokenizer files)."
        ) from None
    if getattr(processor, "image_processor", None) is None:
        raise ModelError(f"{raw!r} has no image processor: a judge must be a vision-language model")
    model.eval().requires_grad_(False)
    model = model.to(device)
    return JudgeModel(
        name=raw,
        identity=identity,
        hf_id=hf_id,
        revision=commit,
        folder=folder,
        folder_sha256=folder_hash,
        processor=processor,
        model=model,
        device=device,
        precision=resolved.value,
        untrained=bool(getattr(model.config, RANDOM_INIT_FLAG, False)),
    )


def folder_sha256(folder: Path) -> str:
    """SHA-256 over the names and contents of every file in a model folder (hidden files and
    sub-folders aside), so a copied folder keeps its identity and an edited one does not."""
    digest = hashlib.sha256()
    for path in sorted(folder.iterdir()):
        if path.is_file() and not path.name.startswith("."):
            digest.update(f"{path.name}\0{file_sha256(path)}\n".encode())
    return digest.hexdigest()


def _judge_model_type(folder: Path) -> str | None:
    """The config's ``model_type`` when it is an image-text-to-text architecture, else None."""
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    model_type = config.get("model_type") if isinstance(config, dict) else None
    if not isinstance(model_type, str):
        return None
    from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES

    return model_type if model_type in MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES else None


def _has_weights(folder: Path) -> bool:
    return any(folder.glob("*.safetensors")) or any(folder.glob("*.bin"))


def _check_hub_id(name: str) -> str:
    parts = name.split("/")
    if len(parts) != 2 or not all(parts) or any(p in (".", "..") for p in parts):
        raise ModelError(
            f"{name!r} is neither an existing model folder nor a hub id like "
            "HuggingFaceTB/SmolVLM-256M-Instruct: check the path, or give an owner/name id"
        )
    return name


def _hub_host() -> str:
    from urllib.parse import urlparse

    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    return urlparse(endpoint).hostname or "huggingface.co"


def _cached_snapshot(hf_id: str, revision: str | None) -> Path | None:
    """The cached snapshot folder of a hub model (None when absent); never touches the network."""
    from huggingface_hub import snapshot_download

    try:
        path = snapshot_download(hf_id, revision=revision, local_files_only=True)
    except Exception:  # LocalEntryNotFoundError and friends: not cached
        return None
    folder = Path(path)
    return folder if (folder / "config.json").is_file() else None
