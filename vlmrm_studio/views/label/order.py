"""Label page: the labelling order (random, sequential, most informative first).

"Most informative first" ranks the dataset's frames with
:func:`vlmrm_core.reward.active_labels.informative_order`: frames where the saved prompt sets disagree
most in rank or sit nearest their decision boundary (and nearest the adapted reward's boundary,
when an adapted prompt set is among them), spread over the cached embeddings by k-center greedy
coverage, frames already labelled seeding the coverage. The ranking is computed when the order is
picked (or re-ranked on request), not after every label. Display only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import streamlit as st

from vlmrm_core.enums import RewardKind
from vlmrm_core.errors import VlmrmError
from vlmrm_core.reward.active_labels import informative_order, informativeness
from vlmrm_core.reward.model import score_embeddings
from vlmrm_core.services.labeling import QUEUE_ORDERS, LabelSession
from vlmrm_core.services.landscape import reward_values
from vlmrm_core.services.prompt_sets import adapted_model_mismatch
from vlmrm_core.store import Engine, PromptSet, consensus_labels, list_prompt_sets
from vlmrm_studio.widgets.common import get_model
from vlmrm_studio.widgets.embeddings import dataset_embeddings
from vlmrm_studio.widgets.switches import button_switch
from vlmrm_studio.widgets.text import md_escape

__all__ = [
    "InformativeRanking",
    "PromptSetRewards",
    "choose_order",
    "informative_ranking",
    "prompt_set_rewards",
]

ORDER_KEY = "label-order"
RANKINGS = "label-rankings"  # session state: dataset -> InformativeRanking
ORDER_TITLES = {
    "random": "random",
    "sequential": "sequential",
    "informative": "most informative first",
}


@dataclass(frozen=True)
class InformativeRanking:
    """A dataset's frames, most informative first, and what the ranking used."""

    hashes: tuple[str, ...]
    prompt_sets: tuple[str, ...]
    adapted: str | None
    model: str
    skipped: tuple[str, ...] = ()
    """Prompt sets left out (another model than the one the ranking used)."""


@dataclass(frozen=True)
class PromptSetRewards:
    """The saved prompt sets' rewards on a dataset's cached embeddings (one model)."""

    hashes: list[str]
    """Distinct frames with an embedding: row i of ``embeddings`` and of each reward."""
    embeddings: np.ndarray
    rewards: list[np.ndarray]
    """The zero-shot (non-adapted) sets' rewards."""
    used: tuple[str, ...]
    """Their names."""
    adapted: np.ndarray | None
    adapted_name: str | None
    model: str
    skipped: tuple[str, ...]
    """Prompt sets left out (another model)."""

    @property
    def all_rewards(self) -> list[np.ndarray]:
        """Every reward source, the adapted one included."""
        return self.rewards + ([] if self.adapted is None else [self.adapted])


def prompt_set_rewards(
    db: Engine, dataset: str, prompt_sets: Sequence[PromptSet]
) -> PromptSetRewards | None:
    """Score the prompt sets of the most common model on that model's cached embeddings of a
    dataset (None: no usable prompt set or no embedding); the first adapted set among them
    counts as the adapted reward."""
    if not prompt_sets:
        return None
    models = [(p.model.architecture, p.model.pretrained or "", p.model.aspect) for p in prompt_sets]
    arch, pretrained, aspect = max(set(models), key=models.count)
    used = [p for p, m in zip(prompt_sets, models, strict=True) if m == (arch, pretrained, aspect)]
    skipped = tuple(p.name for p in prompt_sets if p not in used)
    clip = get_model(arch, pretrained)
    embedded = dataset_embeddings(db, clip, dataset, aspect)
    if len(embedded) == 0:
        return None
    first: dict[str, int] = {}
    for i, frame in enumerate(embedded.frames):
        first.setdefault(frame.hash, i)
    hashes = list(first)
    x = np.asarray(embedded.embeddings)[list(first.values())]
    rewards, adapted, adapted_name = [], None, None
    for p in used:
        if adapted_model_mismatch(p, (arch, pretrained)):
            continue
        values = reward_values(score_embeddings(clip, x, p.reward))
        if p.reward.kind is RewardKind.ADAPTED and adapted is None:
            adapted, adapted_name = values, p.name
        else:
            rewards.append(values)
    if not rewards and adapted is None:
        return None
    return PromptSetRewards(
        hashes,
        x,
        rewards,
        tuple(p.name for p in used if p.name != adapted_name),
        adapted,
        adapted_name,
        f"{arch} / {pretrained or 'random init'}",
        skipped,
    )


def informative_ranking(
    db: Engine, dataset: str, prompt_sets: Sequence[PromptSet]
) -> InformativeRanking | None:
    """Rank a dataset's unlabelled frames most informative first (None: no usable prompt set).

    The rewards are :func:`prompt_set_rewards`'.
    """
    scored = prompt_set_rewards(db, dataset, prompt_sets)
    if scored is None:
        return None
    scores = informativeness(scored.rewards, adapted=scored.adapted)
    labelled = set(consensus_labels(db, dataset).index)
    mask = np.array([h in labelled for h in scored.hashes])
    order = informative_order(scored.embeddings, scores, labelled=mask)
    return InformativeRanking(
        tuple(scored.hashes[i] for i in order),
        scored.used,
        scored.adapted_name,
        scored.model,
        scored.skipped,
    )


def choose_order(db: Engine, dataset: str, session: LabelSession) -> None:
    """The order picker above the frame; sets the session's order (and ranking)."""
    left, right = st.columns([3, 1], vertical_alignment="bottom")
    # Buttons, not a radio: a clicked radio keeps the focus, and Streamlit ignores the page's
    # shortcuts (S, F, K, U) while it has it. The choice is kept under ORDER_KEY, a plain
    # session-state key, so it survives a change of page.
    with left:
        order = button_switch(
            "Order",
            list(QUEUE_ORDERS),
            format_func=lambda o: ORDER_TITLES[o],
            key=ORDER_KEY,
            help="random: a shuffle of your own (labelers spread over the dataset); sequential: "
            "dataset order; most informative first: where the saved prompt sets disagree or are "
            "unsure, spread over the embedding space, so fewer labels tell the rewards apart.",
        )
    if order != "informative":
        session.order, session.ranking = order, ()
        return
    rankings: dict[str, InformativeRanking] = st.session_state.setdefault(RANKINGS, {})
    rerank = right.button("Re-rank", key="label-rerank", help="Rank again with the labels so far.")
    if dataset not in rankings or rerank:
        sets = list_prompt_sets(db, environment=dataset)
        try:
            ranking = informative_ranking(db, dataset, sets)
        except VlmrmError as exc:
            st.error(md_escape(f"Can't rank the frames: {exc}"))
            ranking = None
        if ranking is None:
            st.info(
                "Most informative first needs a saved prompt set (Prompt Lab or Evaluate) for "
                "this dataset: showing frames in random order meanwhile."
            )
            session.order, session.ranking = "random", ()
            return
        rankings[dataset] = ranking
    ranking = rankings[dataset]
    session.order, session.ranking = "informative", ranking.hashes
    used = ", ".join(ranking.prompt_sets) or "none"
    text = f"Ranked with {ranking.model}: prompt sets {used}"
    if ranking.adapted:
        text += f"; adapted reward {ranking.adapted}"
    if ranking.skipped:
        text += f" (left out, another model: {', '.join(ranking.skipped)})"
    st.caption(md_escape(text + "."))
