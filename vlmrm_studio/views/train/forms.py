"""Text ⇄ config conversions for the Train page's form (kept here so the page holds no logic)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vlmrm_core.store.runs import MeasuredSpeed
from vlmrm_core.training.config import ConfigError, TrainConfig

#: Environments offered by the Train page's run and sweep forms.
ENV_CHOICES: list[str] = [
    "CartPole-v1",
    "MountainCarContinuous-v0",
    "MountainCar-v0",
    "Humanoid-v5",
    "Pendulum-v1",
    "Acrobot-v1",
]

#: Learning hyperparameters edited as text (empty = stable-baselines3's default), with types.
HYPERPARAMETERS: dict[str, type] = {
    "learning_rate": float,
    "batch_size": int,
    "gamma": float,
    "tau": float,
    "learning_starts": int,
    "train_freq": int,
    "gradient_steps": int,
    "buffer_size": int,
    "net_arch": list,
    "ent_coef": object,
    "n_steps": int,
    "n_epochs": int,
}

_OFF_POLICY = (
    "learning_rate", "batch_size", "gamma", "tau", "learning_starts", "train_freq",
    "gradient_steps", "buffer_size", "net_arch",
)  # fmt: skip
#: The hyperparameters of :data:`HYPERPARAMETERS` each algorithm takes (stable-baselines3):
#: the form shows only these, so DQN never offers PPO's rollout settings.
ALGO_HYPERPARAMETERS: dict[str, tuple[str, ...]] = {
    "dqn": _OFF_POLICY,
    "sac": (*_OFF_POLICY, "ent_coef"),
    "ppo": ("learning_rate", "batch_size", "gamma", "net_arch", "ent_coef", "n_steps", "n_epochs"),
}


def algo_hyperparameters(algo: str) -> tuple[str, ...]:
    """The learning hyperparameters ``algo`` takes (every one for an algorithm not listed)."""
    return ALGO_HYPERPARAMETERS.get(algo, tuple(HYPERPARAMETERS))


STATUS_BADGES: dict[str, str] = {
    "queued": "🕒 queued",
    "running": "🔵 running",
    "finished": "✅ finished",
    "failed": "❌ failed",
    "cancelled": "⏹️ cancelled",
    "crashed": "💥 crashed",
}


def prompt_lines(text: str) -> list[str]:
    """One prompt per non-empty line."""
    return [line.strip() for line in text.splitlines() if line.strip()]


def hyperparameter_texts(config: TrainConfig) -> dict[str, str]:
    """The config's learning hyperparameters as form text ('' where SB3's default applies)."""
    texts = {}
    for name in HYPERPARAMETERS:
        value = getattr(config, name)
        if value is None:
            texts[name] = ""
        elif name == "net_arch":
            texts[name] = ",".join(str(n) for n in value)
        else:
            texts[name] = f"{value:g}" if isinstance(value, float) else str(value)
    return texts


def parse_hyperparameters(texts: dict[str, str]) -> dict[str, Any]:
    """Parse form text into config fields.

    Args:
        texts: Field name → text; empty text means "SB3 default" (None).

    Returns:
        Field name → value, for :meth:`TrainConfig.replace`.

    Raises:
        ConfigError: A value that does not parse, naming the field.
    """
    values: dict[str, Any] = {}
    for name, text in texts.items():
        kind = HYPERPARAMETERS[name]
        text = text.strip()
        if not text:
            values[name] = None
            continue
        try:
            if kind is list:
                values[name] = [int(n) for n in text.replace(" ", "").split(",") if n]
            elif kind is object:  # ent_coef: a number, or 'auto' (SAC)
                values[name] = text if text.startswith("auto") else float(text)
            elif kind is int:
                values[name] = int(float(text))
            else:
                values[name] = float(text)
        except ValueError as exc:
            raise ConfigError(f"{name}: cannot read {text!r} as a number") from exc
    return values


def format_duration(seconds: float | None) -> str:
    """``'1h 02m'``, ``'3m 05s'``, ``'12s'``; '–' for unknown."""
    if seconds is None or seconds != seconds or seconds < 0:
        return "–"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


MAX_LOG_EVERY = 1_000
"""Metrics are logged at most this many environment steps apart..."""
LOG_POINTS = 20
"""...and at least this many times per run (short runs get live curves too)."""


def default_log_every(total_steps: int) -> int:
    """Steps between logged metric rows: ``min(1000, total / 20)``, at least 1."""
    return max(1, min(MAX_LOG_EVERY, int(total_steps) // LOG_POINTS))


@dataclass(frozen=True)
class IntervalWarning:
    """A form setting that makes the run useless or silent, with a value that fits the run."""

    field: str
    """The form field (``learning_starts``, ``checkpoint_every``, ``eval_every``, ``log_every``)."""
    value: int
    suggested: int
    message: str


def interval_warnings(
    total_steps: int,
    *,
    learning_starts: int | None = None,
    checkpoint_every: int | None = None,
    eval_every: int | None = None,
    log_every: int | None = None,
) -> list[IntervalWarning]:
    """Settings that exceed a run of ``total_steps``, each with a value scaled to the run.

    Learning that starts after the last step never learns; a checkpoint, evaluation or metrics
    interval longer than the run never happens (0 = never evaluate is fine).

    Args:
        total_steps: environment steps of the run.
        learning_starts: off-policy warm-up steps (None: the algorithm's default, not checked).
        checkpoint_every: steps between checkpoints.
        eval_every: steps between evaluations (0 = never).
        log_every: steps between metric rows.

    Returns:
        One warning per offending setting, in form order; empty when all fit.
    """
    total = max(1, int(total_steps))
    warnings: list[IntervalWarning] = []
    if learning_starts is not None and learning_starts >= total:
        warnings.append(
            IntervalWarning(
                "learning_starts",
                int(learning_starts),
                max(1, total // 10),
                f"learning starts after {learning_starts:,} steps but the run has {total:,}: "
                "the policy would never learn",
            )
        )
    if checkpoint_every is not None and checkpoint_every > total:
        warnings.append(
            IntervalWarning(
                "checkpoint_every",
                int(checkpoint_every),
                max(1, total // 5),
                f"a checkpoint every {checkpoint_every:,} steps never happens in a "
                f"{total:,}-step run (only the final one is saved)",
            )
        )
    if eval_every and eval_every > total:
        warnings.append(
            IntervalWarning(
                "eval_every",
                int(eval_every),
                max(1, total // 5),
                f"an evaluation every {eval_every:,} steps never happens in a {total:,}-step run",
            )
        )
    if log_every is not None and log_every > max(1, total // 5):
        warnings.append(
            IntervalWarning(
                "log_every",
                int(log_every),
                default_log_every(total),
                f"metrics every {log_every:,} steps give only {total // max(1, log_every)} "
                f"point(s) in a {total:,}-step run: hardly any live curve",
            )
        )
    return warnings


#: A rough guess at the speed of a whole training step on a CPU (one env, rendering included), by
#: reward-model architecture: timed once on a busy 2-core machine, and real runs have gone 2-4x
#: faster (1.7 guessed, 3-6 steps/s measured for ViT-S-32-alt). Shown only until a run of the same
#: environment, algorithm and model has finished here; its measured speed replaces it.
CPU_STEPS_PER_S: dict[str, float] = {"ViT-B-32": 0.5, "ViT-S-32-alt": 1.7}


def speed_estimate(
    architecture: str,
    total_steps: int,
    *,
    on_gpu: bool,
    measured: MeasuredSpeed | None = None,
    runs_of: str = "",
) -> str:
    """One line estimating the run's speed and duration, or a note that it is unknown.

    Args:
        architecture: open_clip architecture of the reward model.
        total_steps: environment steps of the run.
        on_gpu: whether the reward model will run on a GPU (CPU guesses don't apply).
        measured: the speed of finished runs of the same environment, algorithm and model
            (:func:`vlmrm_core.store.runs.finished_run_speed`); preferred to any guess.
        runs_of: what those runs have in common, e.g. ``"CartPole-v1 / DQN"`` (for the wording).
    """
    total = int(total_steps)
    if measured is not None:
        runs = "run" if measured.n_runs == 1 else f"{measured.n_runs} runs (median)"
        about = f" of {runs_of}" if runs_of else ""
        return (
            f"≈{measured.steps_per_s:.3g} steps/s, measured on the finished {runs}{about} with "
            f"{architecture}: {total:,} steps take about "
            f"{format_duration(total / measured.steps_per_s)}."
        )
    if on_gpu:
        return f"{architecture} runs on the GPU: speed depends on it (shown live as steps/s)."
    speed = CPU_STEPS_PER_S.get(architecture)
    if speed is None:
        return (
            f"No speed known for {architecture} yet: larger models are slower than ViT-B-32 "
            "(roughly 0.5 steps/s on a 2-core CPU). The run shows its real steps/s."
        )
    return (
        f"Rough guess (no such run has finished here yet): ≈{speed:g} steps/s for "
        f"{architecture} on a 2-core CPU, so {total:,} steps take about "
        f"{format_duration(total / speed)}; the run shows its real steps/s."
    )
