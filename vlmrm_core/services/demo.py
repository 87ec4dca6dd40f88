"""The first-run demo: the paper's CartPole and MountainCar sweeps with its prompts.

Created on the app's first start so a new user can click through the whole loop at once
(Frames → Prompt Lab → Label → Evaluate) without uploading anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from vlmrm_core.frames import ProgressCallback

if TYPE_CHECKING:
    from vlmrm_core.store import Engine


@dataclass(frozen=True)
class DemoTask:
    dataset: str
    sweep: str
    points: int
    textured: bool
    goal: str
    baseline: str

    @property
    def sweep_family(self) -> str:
        """The environment family the prompts were written for (``CartPole``, ``MountainCar``)."""
        return {"cartpole": "CartPole", "mountaincar": "MountainCar"}.get(self.sweep, self.sweep)


DEMO_TASKS = (
    DemoTask(
        "demo-cartpole",
        "cartpole",
        41,
        False,
        "pole vertically upright on top of the cart",
        "pole and cart",
    ),
    DemoTask(
        "demo-mountaincar",
        "mountaincar",
        41,
        False,
        "a car at the peak of the mountain, next to the yellow flag",
        "a car in the mountain",
    ),
    DemoTask(
        "demo-mountaincar-textured",
        "mountaincar",
        41,
        True,
        "a car at the peak of the mountain, next to the yellow flag",
        "a car in the mountain",
    ),
)
"""Prompts from the paper's Table 3; 41 points so that the upright pole (θ = 0) is a sample."""


def create_demo_if_empty(engine: Engine, *, progress: ProgressCallback | None = None) -> list[str]:
    """On a project with no datasets at all, create the demo datasets and prompt sets.

    Only an empty project gets the demo, so datasets a user deleted do not come back.

    Args:
        engine: the project database.
        progress: ``progress(done, total, message)`` over all demo frames.

    Returns:
        Names of the datasets created (empty when the project already had datasets).
    """
    from vlmrm_core.clip.models import default_model_choice
    from vlmrm_core.enums import Aspect, Resize
    from vlmrm_core.reward.spec import ModelRef, RewardSpec
    from vlmrm_core.services.dataset_import import import_sweep
    from vlmrm_core.store import PromptSet, list_datasets, list_prompt_sets, save_prompt_set

    if list_datasets(engine):
        return []
    created = []
    total = sum(t.points for t in DEMO_TASKS)
    offset = 0
    for task in DEMO_TASKS:

        def step(
            done: int,
            _total: int | None,
            message: str,
            base: int = offset,
            name: str = task.dataset,
        ) -> None:
            if progress is not None:
                progress(base + done, total, f"{name}: {message}")

        import_sweep(
            engine,
            task.dataset,
            task.sweep,
            points=task.points,
            textured=task.textured,
            progress=step,
        )
        created.append(task.dataset)
        offset += task.points

    choice = default_model_choice()
    # The paper's sets fit frames as the paper's code did (squash, un-antialiased bicubic), so a
    # run or reward file made from them reproduces its figures.
    model = ModelRef(
        choice.name if choice else "ViT-B-32",
        choice.pretrained if choice else None,
        aspect=Aspect.SQUASH,
        resize=Resize.PAPER,
    )
    have = {p.name for p in list_prompt_sets(engine)}
    for task in DEMO_TASKS:
        name = f"paper: {task.dataset.removeprefix('demo-')}"
        if name in have:
            continue
        reward = RewardSpec((task.goal,), (task.baseline,), alpha=0.5)
        environment = task.sweep_family
        save_prompt_set(
            engine,
            PromptSet(name=name, model=model, reward=reward, environment=environment),
            builtin=True,
        )
    return created
