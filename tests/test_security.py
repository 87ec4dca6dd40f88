"""Attacks on the shared deployment: pickled policies, module:Env ids, paths, CSV formulas."""

from __future__ import annotations

import base64
import json
import pickle
import sys
import zipfile
from pathlib import Path

import pytest

from vlmrm_core.security import (
    NotAllowedError,
    check_env_id_allowed,
    csv_safe_cell,
    files_in_folder,
    resolve_in_folder,
)
from vlmrm_core.sources.rollouts import RolloutError, check_env_id, rollout_frames


class _WritesMarker:
    """Unpickling this runs ``open(marker, 'w')``: the proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # noqa: ANN204
        return (open, (str(self.marker), "w"))


def _payload(marker: Path) -> dict[str, str]:
    return {
        ":type:": "<class 'x'>",
        ":serialized:": base64.b64encode(pickle.dumps(_WritesMarker(marker))).decode(),
    }


@pytest.fixture(scope="module")
def ppo_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from stable_baselines3 import PPO

    model = PPO("MlpPolicy", "CartPole-v1", n_steps=32, batch_size=32, seed=0, device="cpu")
    path = tmp_path_factory.mktemp("sb3") / "ppo.zip"
    model.save(path)
    return path


def _booby_trap(clean: Path, out: Path, marker: Path) -> Path:
    """The clean zip with every pickled entry (and one extra key) replaced by the payload."""
    with zipfile.ZipFile(clean) as src, zipfile.ZipFile(out, "w") as dst:
        for item in src.infolist():
            raw = src.read(item.filename)
            if item.filename == "data":
                data = json.loads(raw)
                for key, value in list(data.items()):
                    if isinstance(value, dict) and ":serialized:" in value:
                        data[key] = {**value, ":serialized:": _payload(marker)[":serialized:"]}
                data["surprise"] = _payload(marker)
                raw = json.dumps(data).encode()
            dst.writestr(item, raw)
    return out


@pytest.mark.slow
def test_crafted_sb3_zip_runs_no_code_and_the_policy_still_works(
    ppo_zip: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "pwned"
    # The payload works: plain unpickling of the entry creates the marker.
    pickle.loads(base64.b64decode(_payload(tmp_path / "proof")[":serialized:"]))
    assert (tmp_path / "proof").exists()

    trapped = _booby_trap(ppo_zip, tmp_path / "trapped.zip", marker)
    frames = list(rollout_frames("CartPole-v1", max_steps=5, policy=trapped, seed=0))
    clean = list(rollout_frames("CartPole-v1", max_steps=5, policy=ppo_zip, seed=0))
    assert not marker.exists()
    assert [f.hash for f in frames] == [f.hash for f in clean]
    assert [f.state.get("action") for f in frames] == [f.state.get("action") for f in clean]


def test_missing_and_unreadable_policy_give_the_same_message(tmp_path: Path) -> None:
    unreadable = tmp_path / "secret.zip"
    unreadable.write_bytes(b"PK")
    unreadable.chmod(0)
    messages = []
    for path in (tmp_path / "secret.zip", tmp_path / "nothing-here.zip"):
        with pytest.raises(RolloutError) as info:
            rollout_frames("CartPole-v1", policy=path)
        messages.append(str(info.value).replace(path.name, "NAME"))
    assert messages[0] == messages[1]


def test_module_env_ids_import_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    marker = tmp_path / "imported"
    (tmp_path / "evil_env_mod.py").write_text(
        f"open({str(marker)!r}, 'w').close()\nclass Env: pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    for env_id in ("evil_env_mod:Env", "evil_env_mod:Env-v0"):
        with pytest.raises(RolloutError, match="module:Env"):
            check_env_id(env_id)
        with pytest.raises(RolloutError):
            rollout_frames(env_id)
    assert not marker.exists()
    assert "evil_env_mod" not in sys.modules


def test_env_allowlist_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VLMRM_ENV_ALLOWLIST", "CartPole-*, MountainCar-v0")
    assert check_env_id_allowed("CartPole-v1") == "CartPole-v1"
    check_env_id("MountainCar-v0")
    with pytest.raises(RolloutError, match="not allowed on this server"):
        check_env_id("Acrobot-v1")
    monkeypatch.delenv("VLMRM_ENV_ALLOWLIST")
    check_env_id("Acrobot-v1")
    with pytest.raises(NotAllowedError, match="unknown"):
        check_env_id_allowed("NoSuchEnv-v0")


def test_resolve_in_folder_refuses_outside_files_with_one_message(tmp_path: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    inside = models / "ViT-B-32-x.pt"
    inside.write_bytes(b"x")
    outside = tmp_path / "secret.pt"
    outside.write_bytes(b"x")
    (models / "link.pt").symlink_to(outside)
    assert resolve_in_folder(models, "ViT-B-32-x.pt") == inside.resolve()
    assert files_in_folder(models, (".pt",)) == [inside.resolve()]
    messages = set()
    for candidate in (outside, "../secret.pt", "link.pt", "/etc/shadow", models / "none.pt"):
        with pytest.raises(NotAllowedError) as info:
            resolve_in_folder(models, candidate)
        messages.add(str(info.value).replace(repr(Path(candidate).name), "NAME"))
    assert len(messages) == 1


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ('=cmd|" /C calc"!A0', '\'=cmd|" /C calc"!A0'),
        ("+1+1", "'+1+1"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("alice", "alice"),
        (-1.5, -1.5),
        (0, 0),
        (None, None),
    ],
)
def test_csv_safe_cell(cell: object, expected: object) -> None:
    assert csv_safe_cell(cell) == expected


def test_app_checkpoints_only_from_the_models_folder(tmp_path: Path) -> None:
    from vlmrm_core.security import check_app_pretrained

    models = tmp_path / "models"
    models.mkdir()
    (models / "ViT-B-32-mine.safetensors").write_bytes(b"x")
    (tmp_path / "elsewhere.pt").write_bytes(b"x")
    assert check_app_pretrained("", models) == ""
    assert check_app_pretrained("laion2b_s34b_b79k", models) == "laion2b_s34b_b79k"
    inside = str(models / "ViT-B-32-mine.safetensors")
    assert check_app_pretrained(inside, models) == str(Path(inside).resolve())
    for bad in (str(tmp_path / "elsewhere.pt"), "/etc/shadow", "../elsewhere.pt", "x.pt"):
        with pytest.raises(NotAllowedError, match="not one of the files in the models folder"):
            check_app_pretrained(bad, models)
    with pytest.raises(NotAllowedError, match="not an open_clip pretrained tag"):
        check_app_pretrained("$(touch x)", models)


@pytest.mark.slow
def test_no_torchscript_in_the_app(
    tiny_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    from vlmrm_core.clip.models import ModelError, load_model

    scripted = tmp_path / "ViT-S-32-alt-scripted.pt"
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), str(scripted))
    calls = []
    real = torch.jit.load
    monkeypatch.setattr(torch.jit, "load", lambda *a, **k: calls.append(a) or real(*a, **k))
    with pytest.raises(ModelError, match="cannot read the checkpoint"):
        load_model("ViT-S-32-alt", str(scripted), device="cpu", allow_torchscript=False)
    assert calls == []  # the archive was never handed to torch.jit.load
    # Plain state dicts still load without it.
    model = load_model("ViT-S-32-alt", str(tiny_checkpoint), device="cpu", allow_torchscript=False)
    assert not model.untrained


@pytest.mark.slow
def test_policy_upload_validation(ppo_zip: Path, tmp_path: Path) -> None:
    from vlmrm_core.security import validate_policy_zip

    validate_policy_zip(ppo_zip)
    marker = tmp_path / "pwned"
    validate_policy_zip(_booby_trap(ppo_zip, tmp_path / "trapped.zip", marker))
    assert not marker.exists()  # validation unpickles nothing either
    # A policy.pth holding a pickled object (not plain tensors) is refused.
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as z:
        z.writestr("data", "{}")
        z.writestr("policy.pth", pickle.dumps(_WritesMarker(marker)))
    with pytest.raises(NotAllowedError, match="not a stable-baselines3 model"):
        validate_policy_zip(evil)
    assert not marker.exists()
    (tmp_path / "junk.zip").write_bytes(b"junk")
    with pytest.raises(NotAllowedError):
        validate_policy_zip(tmp_path / "junk.zip")


def test_make_run_binds_loopback_unless_told_otherwise() -> None:
    import os
    import shutil
    import subprocess

    if shutil.which("make") is None:
        pytest.skip("GNU make is not on PATH: install the Debian package `make` to run this check")
    repo = Path(__file__).resolve().parents[1]
    env = {k: v for k, v in os.environ.items() if k not in ("VLMRM_BIND", "HOST")}

    def command(*args: str, **extra: str) -> str:
        out = subprocess.run(
            ["make", "-n", "run", *args], cwd=repo, env={**env, **extra}, capture_output=True,
            text=True, check=True,
        ).stdout  # fmt: skip
        return next(line for line in out.splitlines() if "streamlit run" in line)

    assert "--server.address 127.0.0.1" in command()
    assert "--server.address 0.0.0.0" in command("HOST=0.0.0.0")
    assert "--server.address 0.0.0.0" in command(VLMRM_BIND="0.0.0.0")


@pytest.mark.slow
def test_uploads_land_in_the_models_folder_only_after_validation(
    ppo_zip: Path, tmp_path: Path
) -> None:
    import io

    from vlmrm_core.security import safe_file_stem, validate_policy_zip
    from vlmrm_studio.widgets.uploads import _store

    folder = tmp_path / "models" / "policies"
    name = f"{safe_file_stem('../../evil name;rm -rf.zip')}.zip"
    assert "/" not in name and ";" not in name and not name.startswith(".")
    with pytest.raises(NotAllowedError):
        _store(io.BytesIO(b"not a zip"), folder, name, validate_policy_zip)
    assert list(folder.iterdir()) == []  # nothing kept, not even the temp file
    stored = _store(io.BytesIO(ppo_zip.read_bytes()), folder, name, validate_policy_zip)
    assert stored.parent == folder and stored.read_bytes() == ppo_zip.read_bytes()
