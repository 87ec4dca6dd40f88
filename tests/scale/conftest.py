"""One real local Ray cluster (2 CPUs, no dashboard) for the tests of this folder."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest


@pytest.fixture(scope="package")
def ray_cluster() -> Iterator[Any]:
    """The ``ray`` module, connected to a local cluster that is shut down after this folder's
    last test (``make test`` runs the folder in one process: see tests/conftest.py)."""
    from vlmrm_core.scale.cluster import ray_session

    with ray_session(None, num_cpus=2) as ray:
        yield ray


@pytest.fixture(scope="package")
def ray_address(ray_cluster: Any) -> str:
    """GCS address of the cluster, for subprocesses that join it (``--address``)."""
    return ray_cluster.get_runtime_context().gcs_address


def make_dataset(engine: Any, name: str, n: int, seed: int = 0) -> list[str]:
    """Store ``n`` distinct random 48×64 frames as a dataset; return their hashes in order."""
    from vlmrm_core.frames import FrameRecord, pixel_hash
    from vlmrm_core.store import ingest_frames

    rng = np.random.default_rng(seed)
    frames = [rng.integers(0, 256, (48, 64, 3), dtype=np.uint8) for _ in range(n)]
    ingest_frames(engine, name, (FrameRecord(pixels=f, source="upload") for f in frames))
    return [pixel_hash(f) for f in frames]
