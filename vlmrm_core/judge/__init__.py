"""Generative VLM judges as reward sources: a yes/no question about the frames.

- :func:`load_judge` loads any Hugging Face image-text-to-text model (hub id or local folder);
  :func:`list_cached_judges` and :func:`download_judge` serve ``vlmrm models``.
- :class:`JudgeReward` is a :class:`~vlmrm_core.reward.base.Reward`: log P(yes) − log P(no)
  (or P(yes)) at the answer position of the model's chat template; ``score_episode`` judges
  windows of the last k frames.
- :func:`score_frames` scores stored frames by pixel hash over cached vision features
  (:mod:`vlmrm_core.judge.features`), so a question edit re-runs only the language model.

Importing this package loads neither torch nor transformers; the names below load on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = [
    "AnswerError",
    "FeatureCache",
    "JudgeChoice",
    "JudgeModel",
    "JudgeReward",
    "default_feature_cache",
    "download_judge",
    "list_cached_judges",
    "load_judge",
    "score_frames",
    "score_windows",
]

_EXPORTS = {
    "AnswerError": "vlmrm_core.judge.prompt",
    "FeatureCache": "vlmrm_core.judge.features",
    "JudgeChoice": "vlmrm_core.judge.models",
    "JudgeModel": "vlmrm_core.judge.models",
    "download_judge": "vlmrm_core.judge.models",
    "list_cached_judges": "vlmrm_core.judge.models",
    "load_judge": "vlmrm_core.judge.models",
    "JudgeReward": "vlmrm_core.judge.reward",
    "default_feature_cache": "vlmrm_core.judge.reward",
    "score_frames": "vlmrm_core.judge.reward",
    "score_windows": "vlmrm_core.judge.reward",
}

if TYPE_CHECKING:
    from vlmrm_core.judge.features import FeatureCache
    from vlmrm_core.judge.models import (
        JudgeChoice,
        JudgeModel,
        download_judge,
        list_cached_judges,
        load_judge,
    )
    from vlmrm_core.judge.prompt import AnswerError
    from vlmrm_core.judge.reward import (
        JudgeReward,
        default_feature_cache,
        score_frames,
        score_windows,
    )


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'vlmrm_core.judge' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
