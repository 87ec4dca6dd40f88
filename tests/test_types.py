"""The type check of ``make test``: mypy over the package (its settings are in pyproject.toml).

It runs as a test so that it shares the machine with the rest of the suite: on its own it kept
one of two cores idle for ~30 s on a fresh clone (no mypy cache). ``make typecheck`` runs the
same check by itself.
"""

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).parents[1]


@pytest.mark.slow
def test_mypy_finds_no_errors() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "mypy"], cwd=REPO, capture_output=True, text=True, timeout=540
    )
    assert out.returncode == 0, out.stdout + out.stderr
