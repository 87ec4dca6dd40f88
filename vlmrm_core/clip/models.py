"""Loading CLIP models: open_clip architectures with hub tags, local checkpoints or random weights.

Every model gets a stable *identity* that keys the embedding cache:

- ``ViT-B-32/laion2b_s34b_b79k`` for a hub tag,
- ``ViT-B-32/sha256:<first 16 hex digits of the file>`` for a local checkpoint,
- ``ViT-B-32/random-init`` for untrained weights (deterministic: always seed 0).

Hub weights are resolved to a local file first (the Hugging Face cache), and the network is probed
for a few seconds only when they are missing, so an offline machine gets a clear error at once
instead of open_clip's minute of retries.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import logging
import os
import socket
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
import torch

from vlmrm_core._torchvision_compat import install as _install_torchvision_compat
from vlmrm_core.enums import Precision, choices
from vlmrm_core.errors import VlmrmError
from vlmrm_core.reward.spec import RANDOM_INIT_NAMES
from vlmrm_core.settings import get_settings

_install_torchvision_compat()  # must precede the first import of open_clip (and torchvision)

# isort: split
import open_clip  # noqa: E402

from vlmrm_core.clip.packed_vit import PackedImageEncoder, unsupported_reason  # noqa: E402

CHECKPOINT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors")
DEFAULT_MODEL = "ViT-B-32"
DEFAULT_TAGS = ("laion2b_s34b_b79k", "laion2b_e16")
PRECISIONS = choices(Precision)
HUB_PROBE_TIMEOUT_S = 3.0
_TORCH_DTYPES = {
    Precision.FP32: torch.float32,
    Precision.BF16: torch.bfloat16,
    Precision.FP16: torch.float16,
}


class ModelError(VlmrmError, RuntimeError):
    """A model could not be loaded; the message names the problem and the fix."""


@dataclass
class ClipModel:
    """A loaded CLIP model with everything needed to embed images and text."""

    name: str
    """open_clip architecture name, e.g. ``ViT-B-32``."""
    pretrained: str | None
    """Tag, checkpoint path, or None for random init."""
    identity: str
    """Stable key for caches (see module docstring)."""
    model: Any
    """The open_clip ``CLIP`` module (typed loosely: its towers are set up dynamically)."""
    tokenizer: Any
    device: torch.device
    precision: str
    """``fp32``, ``bf16`` or ``fp16``: the weights' precision (``auto`` is resolved on load)."""
    image_size: tuple[int, int]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    logit_scale: float
    """exp of the learned logit scale; Baumli's default τ is 1 / logit_scale."""
    context_length: int
    untrained: bool
    """True for random weights: rewards are then meaningless."""
    text_cache: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    """Normalised text embeddings per prompt, filled by ``encode_texts``."""
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    """Serialises forward passes when one model is shared between threads (Streamlit)."""
    packed_inference: bool = True
    """Encode images with the pre-packed CPU pass (``vlmrm_core.clip.packed_vit``) where supported."""
    _packed_encoder: PackedImageEncoder | None = field(default=None, init=False, repr=False)

    @property
    def dtype(self) -> torch.dtype:
        return _TORCH_DTYPES[Precision(self.precision)]

    def encode_image(self, images: torch.Tensor, batch_size: int = 32) -> torch.Tensor:
        """Unnormalised image features, as ``model.encode_image`` returns them.

        Args:
            images: N×3×H×W preprocessed model input in the model's dtype and device.
            batch_size: the usual batch size, a layout hint for the packed pass.

        Returns:
            N×D features in the model's dtype.
        """
        visual = self.model.visual
        if not self.packed_inference or unsupported_reason(visual) is not None:
            return self.model.encode_image(images)
        if self._packed_encoder is None or self._packed_encoder.visual is not visual:
            self._packed_encoder = PackedImageEncoder(visual, batch_size=batch_size)
        return self._packed_encoder(images)


@dataclass(frozen=True)
class ModelChoice:
    """A model usable right now, offline: for pickers in the app and ``vlmrm models``."""

    name: str
    pretrained: str
    kind: str
    """``hub-cache`` (weights in the local Hugging Face cache) or ``checkpoint`` (a local file)."""

    @property
    def label(self) -> str:
        if self.kind == "checkpoint":
            return f"{self.name} · {Path(self.pretrained).name}"
        return f"{self.name} · {self.pretrained}"


def default_device() -> torch.device:
    """cuda if available, else cpu."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def bf16_supported(device: torch.device | str | None = None) -> bool:
    """Whether bfloat16 matrix products are fast on this device.

    On CPU that means AVX512-BF16 or AMX (otherwise bf16 is emulated and slower than fp32).
    """
    device = torch.device(device) if device is not None else default_device()
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(
    precision: Precision | str, device: torch.device | str | None = None
) -> Precision:
    """The precision a model is loaded in: ``auto`` chosen for ``device``, others as given.

    ``auto`` is bf16 on a CUDA device with native bfloat16 (Ampere and later), fp16 on other
    CUDA devices (half-precision CLIP inference is standard there, on the tensor cores),
    and fp32 on every other device: on a CPU bf16 only pays off with AVX512-BF16 or AMX, and
    fp32 is what CPUs have always used here.

    Args:
        precision: ``fp32``, ``bf16``, ``fp16`` or ``auto``.
        device: The model's device; default cuda when available.

    Returns:
        A concrete precision (never ``auto``).

    Raises:
        ModelError: An unknown precision.
    """
    if precision not in PRECISIONS:
        raise ModelError(f"unknown precision {precision!r}: use one of {', '.join(PRECISIONS)}")
    precision = Precision(precision)
    if precision is not Precision.AUTO:
        return precision
    device = torch.device(device) if device is not None else default_device()
    if device.type != "cuda":
        return Precision.FP32
    try:
        # Emulated bf16 (pre-Ampere GPUs) is slower than fp16: ask for native support only.
        native_bf16 = torch.cuda.is_bf16_supported(including_emulation=False)
    except TypeError:  # torch < 2.3 has no including_emulation (and reports native support)
        native_bf16 = torch.cuda.is_bf16_supported()
    return Precision.BF16 if native_bf16 else Precision.FP16


def is_checkpoint_path(pretrained: str) -> bool:
    """True when ``pretrained`` names a file rather than a hub tag."""
    return pretrained.lower().endswith(CHECKPOINT_SUFFIXES) or os.sep in pretrained


def load_model(
    name: str,
    pretrained: str | None = None,
    *,
    device: torch.device | str | None = None,
    precision: Precision | str = Precision.FP32,
    allow_torchscript: bool = True,
) -> ClipModel:
    """Load an open_clip model ready for embedding.

    Args:
        name: open_clip architecture, e.g. ``ViT-B-32`` (see ``open_clip.list_models()``).
        pretrained: an open_clip tag (``laion2b_s34b_b79k``), a local checkpoint file
            (.pt/.pth/.bin/.safetensors; plain or ``module.``-prefixed state dicts), or None /
            ``"random"`` for untrained weights (only for trying the interface: rewards are
            meaningless).
        device: ``cuda`` / ``cpu``; default cuda when available.
        precision: ``fp32`` (default), ``bf16`` (weights converted to bfloat16; about 2× faster
            on CPUs with AVX512-BF16, embeddings agree with fp32 to cosine ≈ 0.9999), ``fp16``,
            or ``auto``: chosen for the device by :func:`resolve_precision` (bf16 or fp16 on
            CUDA, fp32 on CPU); ``ClipModel.precision`` holds the choice. On CPU, images go
            through ``vlmrm_core.clip.packed_vit`` where the tower supports it, which keeps a second,
            re-blocked copy of the image tower's weights.
        allow_torchscript: read a local checkpoint that is a TorchScript archive (OpenAI's
            original files). The app passes False: it loads plain state dicts only.

    Returns:
        A ``ClipModel`` in eval mode on ``device``.

    Raises:
        ModelError: unknown architecture, unknown tag, missing or mismatched checkpoint, or hub
            weights that are neither cached nor downloadable.
    """
    _check_architecture(name)
    device = torch.device(device) if device is not None else default_device()
    precision = resolve_precision(precision, device)
    pretrained = (pretrained or "").strip()

    quick_gelu = False
    if pretrained.lower() in RANDOM_INIT_NAMES:
        identity, weights_file, pretrained_value = f"{name}/random-init", None, None
    elif is_checkpoint_path(pretrained):
        weights_file = Path(pretrained).expanduser()
        try:
            identity = f"{name}/sha256:{file_sha256(weights_file)[:16]}"
        except OSError:  # one message whether missing or unreadable: no existence oracle
            raise _unreadable_checkpoint(weights_file) from None
        pretrained_value = str(weights_file)
    else:
        tag_cfg = _tag_config(name, pretrained)
        quick_gelu = bool(tag_cfg.get("quick_gelu", False))
        weights_file = _resolve_hub_weights(name, pretrained, tag_cfg)
        identity, pretrained_value = f"{name}/{pretrained}", pretrained

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)  # random-init models must be identical in every process (cache keys)
        with _quiet_open_clip():  # its "initialized randomly" warning is wrong when we load weights
            model = open_clip.create_model(
                name, pretrained=None, force_quick_gelu=quick_gelu, pretrained_text=False
            )
    if weights_file is not None:
        _load_weights(model, weights_file, name, allow_torchscript=allow_torchscript)
    model.eval().requires_grad_(False)
    if precision != Precision.FP32:
        model = model.to(_TORCH_DTYPES[precision])
    model = model.to(device)

    visual = model.visual
    size = visual.image_size if hasattr(visual, "image_size") else 224
    image_size = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    mean, std = _normalisation(name, pretrained_value, visual)
    tokenizer = open_clip.get_tokenizer(name)
    return ClipModel(
        name=name,
        pretrained=pretrained_value,
        identity=identity,
        model=model,
        tokenizer=tokenizer,
        device=device,
        precision=precision.value,
        image_size=image_size,
        mean=mean,
        std=std,
        logit_scale=float(model.logit_scale.detach().float().exp().item()),
        context_length=int(getattr(tokenizer, "context_length", 77) or 77),
        untrained=weights_file is None,
    )


def discover_models(models_dir: Path | None = None) -> list[ModelChoice]:
    """Models usable offline right now.

    Args:
        models_dir: folder with local checkpoints (default: the settings' models dir). A file is
            matched to an architecture by its name: it must start with an open_clip model name,
            e.g. ``ViT-B-32-my-finetune.safetensors`` (longest match wins).

    Returns:
        Hub-cached tags first (the default model first of all), then local checkpoint files.
    """
    choices = [ModelChoice(n, t, "hub-cache") for n, t in _cached_hub_tags()]
    models_dir = models_dir or get_settings().models_dir
    if models_dir.is_dir():
        architectures = sorted(open_clip.list_models(), key=len, reverse=True)
        for path in sorted(models_dir.rglob("*")):
            if not path.is_file() or not path.name.lower().endswith(CHECKPOINT_SUFFIXES):
                continue
            arch = next((a for a in architectures if path.name.startswith(a)), None)
            if arch is not None:
                choices.append(ModelChoice(arch, str(path), "checkpoint"))

    def rank(choice: ModelChoice) -> tuple[int, str]:
        is_default = choice.name == DEFAULT_MODEL and choice.pretrained in DEFAULT_TAGS
        return (0 if is_default else 1 if choice.kind == "hub-cache" else 2, choice.label)

    return sorted(choices, key=rank)


def default_model_choice(models_dir: Path | None = None) -> ModelChoice | None:
    """The model to preselect: ViT-B-32 on LAION-2B when cached, else the first usable one."""
    choices = discover_models(models_dir)
    return choices[0] if choices else None


NO_WEIGHTS_HELP = (
    "No CLIP weights are available on this machine. Either download them once with network "
    "access (e.g. `vlmrm models download ViT-B-32 laion2b_s34b_b79k`, which fills the Hugging Face "
    "cache), or copy a checkpoint file named after its architecture (e.g. "
    "`ViT-B-32-laion2b.safetensors`) into {models_dir}. Until then, the random-init model lets you "
    "try the interface, but its rewards are meaningless."
)


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's content, memoised per (path, size, mtime) within the process."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _HASH_MEMO:
        digest = hashlib.sha256()
        with path.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 22), b""):
                digest.update(chunk)
        _HASH_MEMO[key] = digest.hexdigest()
    return _HASH_MEMO[key]


_HASH_MEMO: dict[tuple[str, int, int], str] = {}


@contextlib.contextmanager
def _quiet_open_clip() -> Iterator[None]:
    root = logging.getLogger()
    previous = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(previous)


def _check_architecture(name: str) -> None:
    known = open_clip.list_models()
    if name not in known:
        close = difflib.get_close_matches(name, known, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ModelError(
            f"unknown model architecture {name!r}.{hint} `vlmrm models --all` lists them."
        )


def _tag_config(name: str, tag: str) -> dict[str, Any]:
    cfg = open_clip.get_pretrained_cfg(name, tag)
    if not cfg:
        tags = open_clip.list_pretrained_tags_by_model(name)
        listed = ", ".join(tags) if tags else "none"
        raise ModelError(
            f"{tag!r} is neither a pretrained tag of {name} (known tags: {listed}) nor an existing "
            "checkpoint file (.pt/.pth/.bin/.safetensors)."
        )
    return cfg


def _hub_candidates(tag_cfg: dict[str, Any]) -> tuple[str, list[str]] | None:
    """The hub repo of a tag and the file names open_clip would fetch, safetensors first."""
    parts = (tag_cfg.get("hf_hub") or "").strip("/").split("/")
    if len(parts) < 2:
        return None
    repo, filename = "/".join(parts[:2]), "/".join(parts[2:]) or "open_clip_pytorch_model.bin"
    names = [filename]
    if filename.endswith(".bin"):
        names.insert(0, filename[: -len(".bin")] + ".safetensors")
        names.insert(0, "open_clip_model.safetensors")
    return repo, names


def _cached_hub_file(tag_cfg: dict[str, Any]) -> Path | None:
    candidates = _hub_candidates(tag_cfg)
    if candidates is not None:
        from huggingface_hub import constants, try_to_load_from_cache

        repo, names = candidates
        for filename in names:
            found = try_to_load_from_cache(
                repo_id=repo, filename=filename, cache_dir=constants.HF_HUB_CACHE
            )
            if isinstance(found, str) and Path(found).is_file():
                return Path(found)
    url = tag_cfg.get("url") or ""
    if url:
        legacy = Path(os.path.expanduser("~/.cache/clip")) / Path(urlparse(url).path).name
        if legacy.is_file():
            return legacy
    return None


def _hub_host(tag_cfg: dict[str, Any]) -> str:
    if tag_cfg.get("hf_hub"):
        endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
        return urlparse(endpoint).hostname or "huggingface.co"
    return urlparse(tag_cfg.get("url") or "https://huggingface.co").hostname or "huggingface.co"


def hub_reachable(host: str = "huggingface.co", timeout: float = HUB_PROBE_TIMEOUT_S) -> bool:
    """Whether a TCP connection to ``host:443`` opens within ``timeout`` seconds.

    The probe runs in a daemon thread because a DNS lookup ignores socket timeouts and can hang
    far longer than the user should wait.
    """
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        return False
    outcome: list[bool] = []

    def probe() -> None:
        try:
            with socket.create_connection((host, 443), timeout=timeout):
                outcome.append(True)
        except OSError:
            outcome.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout + 0.5)
    return bool(outcome and outcome[0])


def _resolve_hub_weights(name: str, tag: str, tag_cfg: dict[str, Any]) -> Path:
    cached = _cached_hub_file(tag_cfg)
    if cached is not None:
        return cached
    host = _hub_host(tag_cfg)
    if not hub_reachable(host):
        raise ModelError(
            f"weights for {name} / {tag} are not in the local cache and the model hub ({host}) "
            f"can't be reached (offline?). Download them once on a machine with network access "
            f"(`vlmrm models download {name} {tag}`), or pass a local checkpoint instead: "
            f"--pretrained path/to/{name}-{tag}.safetensors "
            f"(files in {get_settings().models_dir} are offered in the app)."
        )
    from open_clip.pretrained import download_pretrained

    try:
        return Path(download_pretrained(tag_cfg))
    except Exception as exc:  # network errors come in many types; the message is what matters
        raise ModelError(f"downloading {name} / {tag} failed: {exc}") from exc


def _unreadable_checkpoint(path: Path) -> ModelError:
    """The same message for a missing, unreadable or malformed checkpoint (no existence oracle)."""
    return ModelError(
        f"cannot read the checkpoint {path.name!r}: it is missing, not readable, or not a "
        "PyTorch / safetensors state dict. Give the path of a .pt/.bin/.safetensors file, or put "
        f"it in {get_settings().models_dir} to have it offered in the app."
    )


def _read_state_dict(path: Path, allow_torchscript: bool = True) -> dict[str, torch.Tensor]:
    if path.suffix.lower() == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path), device="cpu")
        except Exception:
            raise _unreadable_checkpoint(path) from None
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except OSError:
        raise _unreadable_checkpoint(path) from None
    except Exception:
        if not allow_torchscript:
            raise _unreadable_checkpoint(path) from None
        try:  # OpenAI's original checkpoints are TorchScript archives
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                obj = torch.jit.load(str(path), map_location="cpu").state_dict()
        except Exception:
            raise _unreadable_checkpoint(path) from None
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise ModelError(f"{path} does not contain a state dict (found {type(obj).__name__}).")
    return obj


def _load_weights(
    model: torch.nn.Module, path: Path, name: str, *, allow_torchscript: bool = True
) -> None:
    state = _read_state_dict(path, allow_torchscript)
    if state and all(k.startswith("module.") for k in state):
        state = {k.removeprefix("module."): v for k, v in state.items()}
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatches
        raise ModelError(
            f"checkpoint {path.name} does not fit architecture {name}: {str(exc)[:300]}"
        ) from exc
    # position_ids buffers are absent from some checkpoints and harmless to miss
    missing = [k for k in missing if not k.endswith("position_ids")]
    if missing or unexpected:
        detail = f"{len(missing)} missing keys (e.g. {missing[:3]})" if missing else ""
        if unexpected:
            detail += (
                f"{'; ' if detail else ''}{len(unexpected)} unexpected keys (e.g. {unexpected[:3]})"
            )
        raise ModelError(
            f"checkpoint {path.name} does not fit architecture {name}: {detail}. Pick the "
            "architecture the checkpoint was trained with."
        )


def _normalisation(
    name: str, pretrained: str | None, visual: torch.nn.Module
) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    mean = getattr(visual, "image_mean", None) or open_clip.OPENAI_DATASET_MEAN
    std = getattr(visual, "image_std", None) or open_clip.OPENAI_DATASET_STD
    if pretrained and not is_checkpoint_path(pretrained):
        cfg = open_clip.get_pretrained_cfg(name, pretrained)
        mean, std = cfg.get("mean", mean), cfg.get("std", std)
    return tuple(float(m) for m in mean), tuple(float(s) for s in std)  # type: ignore[return-value]


def _cached_hub_tags() -> list[tuple[str, str]]:
    found = []
    for name, tag in open_clip.list_pretrained():
        cfg = open_clip.get_pretrained_cfg(name, tag)
        try:
            if cfg and _cached_hub_file(cfg) is not None:
                found.append((name, tag))
        except Exception:  # a malformed cache entry must not break discovery
            continue
    return found
