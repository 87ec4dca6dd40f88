"""The pinned stack: nothing may upgrade torch, and the environment must be consistent."""

import subprocess
import sys
from importlib.metadata import version


def test_torch_and_torchvision_are_the_pinned_versions():
    assert version("torch").split("+")[0] == "2.13.0"
    assert version("torchvision").split("+")[0] == "0.28.0"


def test_pip_check_is_clean():
    out = subprocess.run(
        [sys.executable, "-m", "pip", "check"], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_requirements_pin_torch():
    from pathlib import Path

    lines = (Path(__file__).parents[1] / "requirements.txt").read_text().splitlines()
    assert "torch==2.13.0" in lines and "torchvision==0.28.0" in lines
