"""Connecting to a Ray cluster: join one (``auto``, ``ray://…``, ``host:port``) or start a local one.

A local cluster started here lives exactly as long as the ``ray_session`` block; a cluster that
was already initialised in this process (a test fixture, a notebook) is reused and left running.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass

from vlmrm_core.errors import VlmrmError

RAY_ADDRESS_ENV = "VLMRM_RAY_ADDRESS"
"""Environment variable naming the cluster the app and CLI use by default (e.g. ``auto``)."""


class RayUnavailableError(VlmrmError):
    """Ray is not installed or the cluster cannot be reached."""


@dataclass(frozen=True)
class ClusterResources:
    """What the connected cluster offers (whole cluster, not only free resources)."""

    cpus: float
    gpus: float


def configured_address() -> str | None:
    """The cluster address from ``VLMRM_RAY_ADDRESS`` (None when unset or empty)."""
    return os.environ.get(RAY_ADDRESS_ENV, "").strip() or None


def import_ray():  # noqa: ANN201  (the ray module)
    """Import Ray, or explain how to install it."""
    try:
        import ray
    except ImportError as exc:  # pragma: no cover - ray is in requirements.txt
        raise RayUnavailableError(
            "Ray is not installed: run `pip install 'ray[data,tune]==2.60.*'` or use --engine local"
        ) from exc
    return ray


def worker_env() -> dict[str, str]:
    """Environment variables every Ray worker of ours gets (headless rendering, data locations)."""
    # Rendering back-ends are not passed on: each Ray worker is an entry point and calls
    # vlmrm_core.headless.use_headless_rendering() for the machine it runs on.
    env: dict[str, str] = {}
    for name in ("VLMRM_DATA_DIR", "VLMRM_DATABASE_URL", "VLMRM_MODELS_DIR", "HF_HOME"):
        if os.environ.get(name):
            env[name] = os.environ[name]
    return env


@contextlib.contextmanager
def ray_session(address: str | None = None, num_cpus: int | None = None) -> Iterator[object]:
    """Connect to Ray for the duration of the block.

    Args:
        address: ``auto``, ``ray://host:10001`` or ``host:6379`` to join a running cluster;
            None starts a local cluster (no dashboard) that is shut down on exit.
        num_cpus: CPUs of a local cluster (default: all of this machine's).

    Yields:
        The ``ray`` module.

    Raises:
        RayUnavailableError: Ray missing, or the address can't be reached.
    """
    ray = import_ray()
    if ray.is_initialized():  # someone else owns the connection: reuse it, leave it running
        yield ray
        return
    runtime_env = {"env_vars": worker_env()}
    # Ray Data (with pyarrow and pandas) takes seconds to import; ray.init mostly waits for the
    # cluster's processes to start, so the import runs meanwhile instead of delaying the first job.
    threading.Thread(target=_import_ray_data, name="import-ray-data", daemon=True).start()
    try:
        if address:
            ray.init(address=address, runtime_env=runtime_env, log_to_driver=False)
        else:
            ray.init(
                num_cpus=num_cpus or os.cpu_count() or 1,
                include_dashboard=False,
                runtime_env=runtime_env,
                log_to_driver=False,
            )
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = address or "a local cluster"
        raise RayUnavailableError(
            f"could not connect to Ray at {where}: {exc}. Start a cluster (`ray start --head`), "
            f"fix --address / {RAY_ADDRESS_ENV}, or use --engine local"
        ) from exc
    try:
        yield ray
    finally:
        ray.shutdown()


def _import_ray_data() -> None:
    # Any failure is the job's to report, when it imports ray.data itself.
    with contextlib.suppress(Exception):
        import ray.data  # noqa: F401


def cluster_resources() -> ClusterResources:
    """CPUs and GPUs of the connected cluster."""
    ray = import_ray()
    total = ray.cluster_resources()
    return ClusterResources(cpus=float(total.get("CPU", 0.0)), gpus=float(total.get("GPU", 0.0)))
