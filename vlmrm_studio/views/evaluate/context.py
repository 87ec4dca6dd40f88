"""Evaluate: what every section of the page works on (the dataset, its labels, the model)."""

from __future__ import annotations

from dataclasses import dataclass

from vlmrm_core.clip.models import ClipModel
from vlmrm_core.services.evaluation import LabelledFrames
from vlmrm_core.store import Engine

__all__ = ["LABELS_USED", "N_BOOT", "EvaluateContext"]

N_BOOT = 1000
"""Bootstrap resamples of every EPIC interval on the page."""
LABELS_USED = "consensus of the current labels (mean over labellers)"
"""Which labels the page evaluates against, as recorded in downloaded reward files."""


@dataclass(frozen=True)
class EvaluateContext:
    """The page's choices, passed to each section."""

    db: Engine
    dataset: str
    """The labelled dataset."""
    labelled: LabelledFrames
    """Its consensus labels."""
    picked: tuple[str, str]
    """``(architecture, pretrained)`` of the page's model (``''`` for random init)."""
    clip: ClipModel
    """That model, loaded."""
