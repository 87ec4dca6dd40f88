"""The public API of ``vlmrm_core``: its names, and that importing it has no side effects."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import vlmrm_core

CONTRACT = {
    "load_model",
    "ClipModel",
    "RewardSpec",
    "RewardModel",
    "Reward",
    "as_frames",
    "load_reward",
    "save_reward",
    "epic_distance",
}


def test_public_names_are_exported():
    assert set(vlmrm_core.__all__) >= CONTRACT
    for name in vlmrm_core.__all__:
        assert getattr(vlmrm_core, name) is not None


def test_import_changes_no_environment_and_loads_no_torch():
    # A fresh interpreter: this test process has long imported torch.
    code = (
        "import json, os, sys\n"
        "before = dict(os.environ)\n"
        "import vlmrm_core\n"
        "print(json.dumps({'env_same': dict(os.environ) == before,\n"
        "  'torch': 'torch' in sys.modules, 'open_clip': 'open_clip' in sys.modules,\n"
        "  'gymnasium': 'gymnasium' in sys.modules, 'numpy': 'numpy' in sys.modules}))\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("SDL_VIDEODRIVER", "MUJOCO_GL")}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    state = json.loads(out.stdout.strip().splitlines()[-1])
    assert state == {
        "env_same": True,
        "torch": False,
        "open_clip": False,
        "gymnasium": False,
        "numpy": False,
    }


def test_the_reward_interface_loads_without_torch():
    # Writing a Reward of your own (or checking frames) must not cost a torch import.
    code = (
        "import sys, vlmrm_core\n"
        "frames = vlmrm_core.as_frames([[[0.0, 0.5, 1.0]]])\n"
        "assert issubclass(vlmrm_core.Reward, object) and frames.tolist() == [[[[0, 128, 255]]]]\n"
        "print('torch' in sys.modules, 'open_clip' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_unknown_attribute_is_an_attribute_error():
    try:
        vlmrm_core.no_such_thing  # noqa: B018
    except AttributeError as exc:
        assert "no_such_thing" in str(exc)
    else:  # pragma: no cover
        raise AssertionError("expected AttributeError")
