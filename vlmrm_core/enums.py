"""The enumerations of the project, each defined once.

They are ``StrEnum``s, so a member compares equal to its value (``RewardKind.REGULARIZED ==
"regularized"``) and is stored in the database and in JSON files as that plain string.
"""

from __future__ import annotations

from enum import StrEnum


class RewardKind(StrEnum):
    """How image embeddings become rewards."""

    REGULARIZED = "regularized"
    """Goal-baseline regularised similarity (Rocamonde et al. 2023, Def. 1)."""
    CONTRASTIVE = "contrastive"
    """Binary reward 1[p(goal | x) > β] over goal and negative prompts (Baumli et al. 2023)."""
    ADAPTED = "adapted"
    """A linear direction fitted to human labels: R(x) = x·w + b."""


class Aspect(StrEnum):
    """How a frame is fitted to the model's square input."""

    SQUASH = "squash"
    """Resize the whole frame to the square input, changing its aspect ratio (the paper's code)."""
    CENTER_CROP = "center-crop"
    """Resize the short side to the input size, then crop the centre (open_clip's transform)."""


class Resize(StrEnum):
    """Which resampling fits frames to the model input."""

    ANTIALIAS = "antialias"
    """Antialiased resampling on uint8 frames (fast; the default)."""
    PAPER = "paper"
    """Bicubic on float tensors without antialiasing, as the official VLM-RM code does."""


class Precision(StrEnum):
    """Numeric precision of the model weights."""

    FP32 = "fp32"
    BF16 = "bf16"
    FP16 = "fp16"
    AUTO = "auto"
    """Chosen when the model is loaded, for its device (``vlmrm_core.clip.models.resolve_precision``):
    bf16 on a CUDA GPU that supports it, else fp16 on CUDA, fp32 on CPU. A loaded model (and a
    reward file saved from it) records the precision it resolved to."""


class JudgeMode(StrEnum):
    """How a VLM judge's answer probabilities become a reward (``vlmrm_core.judge``)."""

    LOG_ODDS = "log-odds"
    """log P(positive) − log P(negative) at the answer position (the default)."""
    PROBABILITY = "probability"
    """P(positive) at the answer position, over the whole vocabulary."""


class RewardBatching(StrEnum):
    """How many frames a training run scores per call of its CLIP reward."""

    STEP = "step"
    """One call per env step, on the frames of all envs (every algorithm)."""
    ROLLOUT = "rollout"
    """One call per rollout window of an off-policy algorithm (``train_freq`` steps × envs),
    before its gradient steps, as the official VLM-RM code did."""


class RunStatus(StrEnum):
    """Life cycle of a training run."""

    QUEUED = "queued"
    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"
    CANCELLED = "cancelled"
    CRASHED = "crashed"

    @property
    def is_active(self) -> bool:
        """Queued or running: the run may still change."""
        return self in (RunStatus.QUEUED, RunStatus.RUNNING)


class DatasetKind(StrEnum):
    """Where a dataset's frames came from."""

    UPLOAD = "upload"
    ROLLOUT = "rollout"
    SWEEP = "sweep"
    TRAINING_EVAL = "training-eval"
    LEROBOT = "lerobot"
    """Episodes of a LeRobot dataset (one camera), read from its parquet and video files."""
    MIXED = "mixed"


def choices(enum: type[StrEnum]) -> tuple[str, ...]:
    """The values of an enumeration, in definition order (for CLI choices and pickers)."""
    return tuple(member.value for member in enum)
