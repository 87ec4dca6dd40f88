"""VLM judges against the labels: the same EPIC / AP / ROC AUC as a prompt set, and the ranking
of several phrasings of one question (the judge's prompt search).

Every judge reward here is scored through the judge's feature cache, so once a judge has seen
the labelled frames, each further phrasing runs only its language model.

Example::

    >>> from vlmrm_core.services.judge_evaluation import phrasing_search
    >>> ranked = phrasing_search(reward, ["Is the pole upright?", "Is the pole balanced?"],
    ...                          labelled, engine=engine)  # doctest: +SKIP
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from vlmrm_core.errors import InvalidInputError
from vlmrm_core.frames import ProgressCallback
from vlmrm_core.metrics import reward_metrics
from vlmrm_core.services.evaluation import (
    Evaluation,
    LabelledFrames,
    labelled_rewards,
    over_time_note,
)

if TYPE_CHECKING:
    from vlmrm_core.judge import JudgeReward
    from vlmrm_core.services.judge_scores import DatasetJudgeScores
    from vlmrm_core.store import Engine

__all__ = ["JUDGE_MODEL_PREFIX", "evaluate_judge", "judge_rewards", "phrasing_search"]

JUDGE_MODEL_PREFIX = "judge "
"""How a judge's row names its model in an evaluation table (``judge <hub id or folder>``), so
the table tells judges from CLIP models and the CLIP scaling plot can leave judges out."""


def judge_rewards(
    reward: JudgeReward,
    hashes: Sequence[str],
    *,
    progress: ProgressCallback | None = None,
) -> np.ndarray:
    """One reward per stored frame (by pixel hash), each frame judged on its own; pixels are
    read only for frames whose vision features are not cached."""
    from vlmrm_core.judge import score_frames
    from vlmrm_core.store import load_pixels

    items = [(h, functools.partial(load_pixels, h)) for h in hashes]
    return score_frames(reward, items, total=len(items), progress=progress)


def evaluate_judge(
    reward: JudgeReward,
    labelled: LabelledFrames,
    *,
    name: str,
    n_boot: int = 1000,
    seed: int = 0,
    progress: ProgressCallback | None = None,
    over_time: DatasetJudgeScores | None = None,
) -> Evaluation:
    """Score a judge on the labelled frames and compare it with the labels, as
    :func:`vlmrm_core.services.evaluation.evaluate_reward` does for a prompt set.

    Args:
        reward: the judge and its question.
        labelled: the labelled frames and their consensus labels.
        name: the row's name (e.g. the saved judge's).
        n_boot: bootstrap resamples for the EPIC interval.
        seed: bootstrap seed.
        progress: ``progress(done, total, message)`` while judging.
        over_time: the judge's rewards of the whole dataset, each episode in time order
            (:func:`vlmrm_core.services.judge_scores.score_dataset`): the labelled frames'
            rewards are taken from them, so a judge of k frames is compared with the labels
            as training sees it (each frame judged with the k-1 before it). None: each
            labelled frame is judged alone, which is right for a judge of one frame.

    Returns:
        The rewards and metrics; a random-weight judge carries a warning saying its rewards
        are meaningless, and a judge of several frames one when labelled frames are in no
        episode (judged alone).
    """
    warnings = []
    if over_time is None:
        values = judge_rewards(reward, labelled.hashes, progress=progress)
    else:
        values = labelled_rewards(over_time.frames, over_time.rewards, labelled.hashes)
        if np.isnan(values).any():
            raise InvalidInputError(
                f"some labelled frames of {labelled.dataset!r} were not judged: score the "
                "dataset's own frames"
            )
        note = over_time_note(name, reward.frames, over_time.frames, labelled.hashes)
        if note is not None:
            warnings.append(note)
    metrics = reward_metrics(values, labelled.labels, n_boot=n_boot, seed=seed)
    judge = reward.judge
    if reward.untrained:
        warnings.append(f"The judge {judge.label} has random weights: its rewards are meaningless.")
    n_params = int(sum(p.numel() for p in judge.model.parameters()))
    return Evaluation(
        name, f"{JUDGE_MODEL_PREFIX}{judge.label}", n_params, values, metrics, warnings
    )


def phrasing_search(
    reward: JudgeReward,
    phrasings: Sequence[str],
    labelled: LabelledFrames,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    progress: ProgressCallback | None = None,
    engine: Engine | None = None,
) -> list[Evaluation]:
    """Several phrasings of the judge's question, each scored against the labels, best first.

    The judge, answers and mode stay; only the question changes, so after the first phrasing
    the vision features are cached and each phrasing runs only the language model. A judge of
    several frames, given the ``engine``, judges the dataset's episodes in time order (see
    :func:`evaluate_judge`'s ``over_time``); without it each labelled frame is judged alone.

    Args:
        reward: the judge (its question is replaced by each phrasing).
        phrasings: the questions to try (blank ones dropped, repeats tried once).
        labelled: the labelled frames.
        n_boot: bootstrap resamples of each EPIC interval.
        seed: bootstrap seed.
        progress: ``progress(done, total, message)`` after each phrasing.
        engine: the project database, to judge a judge of several frames over the labelled
            dataset's episodes.

    Returns:
        One evaluation per phrasing (named by it), lowest EPIC distance first, undefined last.

    Raises:
        InvalidInputError: no phrasing given.
        AnswerError: a phrasing the judge cannot score with its answers.
    """
    questions = list(dict.fromkeys(q.strip() for q in phrasings if q.strip()))
    if not questions:
        raise InvalidInputError("give at least one phrasing of the question, one per line")
    from vlmrm_core.services.judge_scores import score_dataset

    results = []
    for i, question in enumerate(questions):
        phrased = reward.with_question(question)
        over_time = (
            score_dataset(engine, labelled.dataset, phrased)
            if engine is not None and phrased.frames > 1
            else None
        )
        results.append(
            evaluate_judge(
                phrased, labelled, name=question, n_boot=n_boot, seed=seed, over_time=over_time
            )
        )
        if progress is not None:
            progress(i + 1, len(questions), f"{i + 1} of {len(questions)} phrasings scored")
    return sorted(
        results,
        key=lambda e: (e.metrics.epic_distance is None, e.metrics.epic_distance or 0.0),
    )
