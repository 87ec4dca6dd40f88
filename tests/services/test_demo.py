import numpy as np

from vlmrm_core.frames import FrameRecord
from vlmrm_core.services.demo import DEMO_TASKS, create_demo_if_empty
from vlmrm_core.store import (
    delete_dataset,
    get_prompt_set,
    ingest_frames,
    init_db,
    list_datasets,
)


def test_demo_only_on_an_empty_project(data_dir):
    engine = init_db()
    calls = []
    created = create_demo_if_empty(engine, progress=lambda d, t, m: calls.append((d, t)))
    assert created == [t.dataset for t in DEMO_TASKS]
    sizes = {d.name: d.n_frames for d in list_datasets(engine)}
    assert sizes == {t.dataset: t.points for t in DEMO_TASKS}
    assert calls[-1] == (sum(t.points for t in DEMO_TASKS),) * 2
    cartpole = get_prompt_set(engine, "paper: cartpole")
    assert cartpole.reward.goal_prompts == ("pole vertically upright on top of the cart",)
    assert cartpole.reward.baseline_prompts == ("pole and cart",)
    assert cartpole.builtin and cartpole.environment == "CartPole"
    assert (cartpole.model.aspect, cartpole.model.resize) == ("squash", "paper")

    # a user who deletes the demo does not get it back while the project has datasets
    ingest_frames(engine, "mine", [FrameRecord(np.zeros((4, 4, 3), np.uint8), "upload", "x.png")])
    for task in DEMO_TASKS:
        delete_dataset(engine, task.dataset)
    assert create_demo_if_empty(engine) == []
    assert [d.name for d in list_datasets(engine)] == ["mine"]
