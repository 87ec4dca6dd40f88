"""Uploads into the models folder: CLIP checkpoints and stable-baselines3 policies.

The app never loads a file from a path a visitor typed: pickers list the models folder, and
uploads land there only after validation (checkpoints: a plain state dict that fits the chosen
architecture, read without unpickling; policies: a stable-baselines3 zip whose weights load with
``torch.load(weights_only=True)``). File names are reduced to ``[A-Za-z0-9_.-]``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import streamlit as st

from vlmrm_core.security import (
    CHECKPOINT_FILE_SUFFIXES,
    POLICY_FILE_SUFFIXES,
    files_in_folder,
    safe_file_stem,
    validate_policy_zip,
)
from vlmrm_core.settings import get_settings
from vlmrm_studio.widgets.text import md_escape

POLICIES_SUBDIR = "policies"


def policies_dir() -> Path:
    """Where uploaded stable-baselines3 policies go (inside the models folder)."""
    return get_settings().models_dir / POLICIES_SUBDIR


def policy_files() -> list[Path]:
    """The saved policies the rollout picker offers: every .zip under the models folder."""
    return files_in_folder(get_settings().models_dir, POLICY_FILE_SUFFIXES)


def _store(upload, folder: Path, name: str, validate) -> Path:  # noqa: ANN001
    """Write an upload to a temp file in ``folder``, validate it, then move it to ``name``."""
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".incoming-", suffix=Path(name).suffix)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(upload.getbuffer())
        validate(Path(tmp))
        target = folder / name
        os.replace(tmp, target)
        return target
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def policy_upload(key: str) -> None:
    """An uploader adding a validated stable-baselines3 zip to the models folder."""
    with st.expander("Add a saved policy (.zip) to the models folder"):
        upload = st.file_uploader("stable-baselines3 model zip", type=["zip"], key=key)
        if upload is not None and st.button("Add policy", key=f"{key}-add"):
            name = f"{safe_file_stem(upload.name)}.zip"
            try:
                _store(upload, policies_dir(), name, validate_policy_zip)
            except ValueError as exc:
                st.error(md_escape(exc))
                return
            st.success(md_escape(f"Added {name} to the models folder."))


def checkpoint_upload(key: str) -> None:
    """An uploader adding a validated CLIP checkpoint (state dict) to the models folder."""
    import open_clip

    from vlmrm_core.clip.models import load_model

    with st.expander("Add a checkpoint to the models folder"):
        arch = st.selectbox("Architecture", open_clip.list_models(), key=f"{key}-arch")
        upload = st.file_uploader(
            "Checkpoint (.safetensors, .pt, .pth, .bin: a plain state dict)",
            type=[s.lstrip(".") for s in CHECKPOINT_FILE_SUFFIXES],
            key=key,
        )
        if upload is not None and st.button("Add checkpoint", key=f"{key}-add"):
            suffix = Path(upload.name).suffix.lower()
            name = f"{arch}-{safe_file_stem(upload.name)}{suffix}"

            def validate(path: Path) -> None:
                load_model(arch, str(path), device="cpu", allow_torchscript=False)

            try:
                _store(upload, get_settings().models_dir, name, validate)
            except Exception as exc:  # ModelError (bad file) or NotAllowedError
                st.error(md_escape(f"Not added: {exc}"))
                return
            st.success(md_escape(f"Added {name}: pick it in the model list."))
