"""Metrics for judging reward models: EPIC distance to labels, success-detection curves, and
agreement between human labelers. Pure functions on numpy arrays (pandas for label tables).

Each statistic has one implementation: Pearson correlation in :mod:`.correlation` (row-wise, so
it scores one reward or a matrix of them), ROC AUC / AP in :mod:`.classification`, EPIC and its
bootstrap in :mod:`.epic` (built on :func:`pearson`)."""

from vlmrm_core.metrics.agreement import (
    UndefinedAgreementError,
    cohens_kappa,
    current_labels,
    krippendorff_alpha,
    labeller_disagreements,
    pairwise_kappa,
)
from vlmrm_core.metrics.classification import (
    SUCCESS_THRESHOLD,
    average_precision,
    binarize,
    precision_recall,
    roc_auc,
    roc_auc_rows,
)
from vlmrm_core.metrics.correlation import Pearson, pearson, standardize
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
from vlmrm_core.metrics.summary import RewardMetrics, check_labels, reward_metrics

__all__ = [
    "SUCCESS_THRESHOLD",
    "RewardMetrics",
    "check_labels",
    "reward_metrics",
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
    "epic_distance",
    "epic_distance_transitions",
    "evaluate_epic",
    "krippendorff_alpha",
    "labeller_disagreements",
    "Pearson",
    "pairwise_kappa",
    "pearson",
    "pearson_distance",
    "precision_recall",
    "roc_auc",
    "roc_auc_rows",
    "standardize",
]
