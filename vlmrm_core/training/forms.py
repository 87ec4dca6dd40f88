"""Text ⇄ config conversions for the Train page's form (kept here so the page holds no logic)."""

from __future__ import annotations

from typing import Any

from vlmrm_core.training.config import ConfigError, TrainConfig

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
