"""Shared test set-up: headless rendering and an isolated data directory per test."""

from __future__ import annotations

import os

# Headless rendering must be configured before pygame / mujoco are imported anywhere.
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
# One OpenMP thread per process, here and in every subprocess a test starts (training workers,
# Streamlit servers, CLI runs): the suite runs several busy processes per core, and OpenMP's
# threads spin while they wait for each other, which on a 2-core machine doubled the CPU time of
# the training tests (tests/training/test_jobs.py: 57 CPU-s with two threads, 32 with one).
os.environ.setdefault("OMP_NUM_THREADS", "1")

from pathlib import Path  # noqa: E402
from typing import TYPE_CHECKING, Any  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from vlmrm_core._torchvision_compat import install as install_torchvision_compat  # noqa: E402

if TYPE_CHECKING:
    from vlmrm_core.store import FrameInfo

# Test modules import open_clip directly, so the workaround goes in before any of them loads.
install_torchvision_compat()


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh VLMRM_DATA_DIR (SQLite database, frames, models, runs) for one test."""
    root = tmp_path / "data"
    root.mkdir()
    monkeypatch.setenv("VLMRM_DATA_DIR", str(root))
    monkeypatch.delenv("VLMRM_DATABASE_URL", raising=False)
    monkeypatch.delenv("VLMRM_MODELS_DIR", raising=False)
    return root


@pytest.fixture
def cartpole_db(data_dir: Path):
    """A project database with a 9-point CartPole pole-angle sweep called ``cp9``."""
    from vlmrm_core.sources.state_sweeps import cartpole_sweep
    from vlmrm_core.store import ingest_frames, init_db

    engine = init_db()
    ingest_frames(engine, "cp9", cartpole_sweep(points=9), kind="sweep")
    return engine


TINY_MODEL = "ViT-S-32-alt"
"""The smallest stock open_clip ViT: ~68 images/s on 2 CPU threads with random weights."""


@pytest.fixture(scope="session")
def tiny_clip():
    """A random-init ViT-S-32-alt on CPU, shared by the whole session (read-only use)."""
    from vlmrm_core.clip.models import load_model

    return load_model(TINY_MODEL, None, device="cpu")


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ViT-S-32-alt state dict saved as .safetensors, with weights unlike the random init."""
    import open_clip
    import torch
    from safetensors.torch import save_file

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1234)
        model = open_clip.create_model(TINY_MODEL, pretrained=None, pretrained_text=False)
    path = tmp_path_factory.mktemp("models") / f"{TINY_MODEL}-test.safetensors"
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(path))
    return path


# --------------------------------------------------------------------------- shared factories
# Plain functions (import them: ``from tests.conftest import frame_info``).


def frame_info(i: int = 0, **fields: object) -> FrameInfo:
    """Metadata of stored frame ``i`` of an uploaded dataset, without a database.

    Args:
        i: position; the hash is ``i`` as 64 hex digits and the name ``frame {i}``.
        **fields: any other :class:`~vlmrm_core.store.FrameInfo` field to set.
    """
    from vlmrm_core.store import FrameInfo

    values: dict[str, object] = {
        "hash": f"{i:064x}",
        "position": i,
        "name": f"frame {i}",
        "source": "upload",
        "env_id": None,
        "episode": None,
        "step": None,
        "state": None,
        "param_name": None,
        "param_value": None,
        "width": 4,
        "height": 4,
    }
    values.update(fields)
    return FrameInfo(**values)  # type: ignore[arg-type]


def unit_rows(n: int, dim: int, seed: int = 0) -> np.ndarray:
    """``n`` random float32 unit vectors of dimension ``dim`` (stand-ins for embeddings)."""
    x = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--screenshots-to",
        default=None,
        help="folder for the browser test's screenshots (default: artifacts/screenshots)",
    )


# Work units of `--dist loadfile` that span more than one file: all of them run in one process.
SHARED_SCOPES = ("tests/scale/",)
"""tests/scale/ holds every test on the local Ray cluster: one process runs them, so one cluster
starts (seconds, and a few percent of a core while it idles), and it stops with their last test
(its fixture is package-scoped)."""

FIRST_SCOPES = ("tests/scale/", "tests/test_types.py")
"""Long work units with few tests, handed out first: xdist would otherwise hand out units with the
most tests first and leave these for the end, where one process runs them while the other idles."""


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-xdist's
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """``--dist loadfile``, with the files of each of ``SHARED_SCOPES`` as one work unit, and
    ``FIRST_SCOPES`` handed out before the others."""
    if config.getoption("dist", None) != "loadfile":
        return None  # xdist's own scheduler
    from xdist.scheduler import LoadFileScheduling

    class _Scheduling(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            shared = (s for s in SHARED_SCOPES if nodeid.startswith(s))
            return next(shared, super()._split_scope(nodeid))

        def _assign_work_unit(self, node: Any) -> None:
            first = [s for s in FIRST_SCOPES if s in self.workqueue]
            if first:
                self.workqueue.move_to_end(first[0], last=False)
            super()._assign_work_unit(node)

    return _Scheduling(config, log)
