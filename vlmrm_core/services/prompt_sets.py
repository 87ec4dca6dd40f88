"""Choosing and naming saved prompt sets: which model may score a set, which sets a dataset
starts from, a free name for a copy, the environment a dataset's name points at.

Plain logic over :mod:`vlmrm_core.store.prompt_sets` shared by the app's pages (Prompt Lab,
Evaluate, Label), so that each rule is written once.
"""

from __future__ import annotations

from vlmrm_core.enums import RewardKind
from vlmrm_core.store import Engine, PromptSet, list_prompt_sets
from vlmrm_core.store.prompt_sets import BUILTIN_PREFIX

__all__ = [
    "ENVIRONMENT_FAMILIES",
    "adapted_model_mismatch",
    "free_prompt_set_name",
    "guess_environment",
    "starting_sets",
]

ENVIRONMENT_FAMILIES = ("CartPole", "MountainCar", "Humanoid", "Pendulum", "Acrobot")
"""Environment families a dataset's name may point at (:func:`guess_environment`)."""


def adapted_model_mismatch(prompt_set: PromptSet, model: tuple[str, str | None]) -> str | None:
    """Why ``prompt_set`` can't be scored with ``model`` (None when it can).

    An adapted reward is a direction in one model's embedding space: another model (even one
    with the same embedding size) gives meaningless rewards, so it is scored only with its own.
    Every other kind is text, and any model can score it.

    Args:
        prompt_set: the saved set.
        model: ``(architecture, pretrained)``; ``""`` or None for random init.

    Returns:
        One sentence naming the set, its own model and the fix; None when ``model`` may score it.
    """
    if prompt_set.reward.kind is not RewardKind.ADAPTED:
        return None
    own = (prompt_set.model.architecture, prompt_set.model.pretrained or "")
    if (model[0], model[1] or "") == own:
        return None
    return (
        f"{prompt_set.name} is an adapted reward fitted with {prompt_set.model.label}; "
        f"it is only scored with that model (not {model[0]} / {model[1] or 'random init'}): "
        "pick it as the model to see this row"
    )


def starting_sets(db: Engine, dataset: str) -> list[PromptSet]:
    """Every saved prompt set, those written for ``dataset`` (or untagged) first."""
    first = list_prompt_sets(db, environment=dataset)
    names = {p.name for p in first}
    return first + [p for p in list_prompt_sets(db) if p.name not in names]


def free_prompt_set_name(db: Engine, base: str) -> str:
    """``base`` made unique among the saved prompt sets (``base (2)``, ``base (3)``...), never a
    built-in ``paper:`` name (``paper: x`` becomes ``x (copy)``)."""
    base = base.strip()
    if base.lower().startswith(BUILTIN_PREFIX):
        base = base[len(BUILTIN_PREFIX) :].strip() + " (copy)"
    taken = {p.name for p in list_prompt_sets(db)}
    if base not in taken:
        return base
    n = 2
    while f"{base} ({n})" in taken:
        n += 1
    return f"{base} ({n})"


def guess_environment(dataset: str) -> str:
    """The environment family a dataset's name points at (``demo-cartpole`` -> ``CartPole``),
    or ``""``."""
    for family in ENVIRONMENT_FAMILIES:
        if family.lower() in dataset.lower():
            return family
    return ""
