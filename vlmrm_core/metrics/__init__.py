"""Metrics for judging reward models: EPIC distance to labels, success-detection curves, and
agreement between human labelers. Pure functions on numpy arrays (pandas for label tables)."""

from vlmrm_core.metrics.agreement import (
    UndefinedAgreementError,
    cohens_kappa,
    current_labels,
    disagreements,
    krippendorff_alpha,
    pairwise_kappa,
)
from vlmrm_core.metrics.classification import (
    average_precision,
    binarize,
    precision_recall,
    roc_auc,
)
from vlmrm_core.metrics.epic import (
    ConstantRewardError,
    EpicResult,
    RewardFn,
    bootstrap_ci,
    canonicalize,
    epic_distance,
    epic_distance_transitions,
    evaluate_epic,
    pearson_distance,
)

__all__ = [
    "ConstantRewardError",
    "EpicResult",
    "RewardFn",
    "UndefinedAgreementError",
    "average_precision",
    "binarize",
    "bootstrap_ci",
    "canonicalize",
    "cohens_kappa",
    "current_labels",
    "disagreements",
    "epic_distance",
    "epic_distance_transitions",
    "evaluate_epic",
    "krippendorff_alpha",
    "pairwise_kappa",
    "pearson_distance",
    "precision_recall",
    "roc_auc",
]
