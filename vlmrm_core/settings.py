"""Where VLM-RM Studio keeps its data, read from the environment.

Environment variables:
    VLMRM_DATA_DIR: root of all runtime data (default: ``data/`` in the current directory).
    VLMRM_DATABASE_URL: SQLAlchemy URL (default: ``sqlite:///<data_dir>/vlmrm.db``).
    VLMRM_MODELS_DIR: folder scanned for local CLIP checkpoints (default ``<data_dir>/models``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    """Resolved locations of the project's data."""

    data_dir: Path
    """Root folder of all runtime data."""
    database_url: str
    """SQLAlchemy database URL; SQLite file under ``data_dir`` unless overridden."""
    models_dir: Path
    """Folder the app and CLI scan for local checkpoints."""

    @property
    def frames_dir(self) -> Path:
        """Frame images, one PNG per pixel hash."""
        return self.data_dir / "frames"

    @property
    def runs_dir(self) -> Path:
        """Training runs: checkpoints, logs, videos."""
        return self.data_dir / "runs"


def get_settings() -> Settings:
    """Read the settings from the environment (cheap; call whenever needed)."""
    data_dir = Path(os.environ.get("VLMRM_DATA_DIR", "data")).resolve()
    url = os.environ.get("VLMRM_DATABASE_URL") or f"sqlite:///{data_dir / 'vlmrm.db'}"
    models_dir = Path(os.environ.get("VLMRM_MODELS_DIR", data_dir / "models")).resolve()
    return Settings(data_dir=data_dir, database_url=url, models_dir=models_dir)
