"""RL training on CLIP rewards: configuration, reward VecEnv wrapper, callbacks, worker, jobs.

- :mod:`.config`: :class:`TrainConfig`, :func:`paper_defaults`, :func:`validate`.
- :mod:`.envs`: the run's training VecEnv and evaluation env (textures where available).
- :mod:`.callbacks`: metrics, heartbeat, cancellation, checkpoints, evaluations.
- :mod:`.worker`: the process that trains one run (``python -m vlmrm_core.training.worker ID``).
- :mod:`.jobs`: queue, launch, cancel, resume, crash detection, run views for the app.
- :mod:`.cli`: ``vlmrm train …``.

Importing this package is cheap; stable-baselines3 and torch load with the submodules that
need them.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ConfigError",
    "TrainConfig",
    "cancel_run",
    "list_runs_view",
    "paper_defaults",
    "reconcile_runs",
    "resume_run",
    "run_worker",
    "start_run",
    "validate",
]

_LOCATIONS = {
    "ConfigError": "config",
    "TrainConfig": "config",
    "paper_defaults": "config",
    "validate": "config",
    "cancel_run": "jobs",
    "list_runs_view": "jobs",
    "reconcile_runs": "jobs",
    "resume_run": "jobs",
    "start_run": "jobs",
    "run_worker": "worker",
}


def __getattr__(name: str) -> Any:
    # Lazy: `vlmrm train list` should not pay for importing stable-baselines3 and torch.
    if name in _LOCATIONS:
        import importlib

        module = importlib.import_module(f"{__name__}.{_LOCATIONS[name]}")
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
