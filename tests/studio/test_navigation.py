"""The entry point: every file-based page is reachable through st.navigation and runs cleanly."""

import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

REPO = Path(__file__).resolve().parents[2]
VIEWS = ["frames", "prompt_lab", "label", "evaluate", "train"]


@pytest.fixture
def app(data_dir, tiny_checkpoint):
    models = data_dir / "models"
    models.mkdir()
    shutil.copy(tiny_checkpoint, models / tiny_checkpoint.name)  # offered first by the picker
    return AppTest.from_file(str(REPO / "vlmrm_studio" / "streamlit_app.py"), default_timeout=240)


def test_home_creates_the_demo_then_every_page_runs(app):
    from vlmrm_core.store import init_db, list_datasets, list_prompt_sets

    app.run()
    assert not app.exception
    assert "VLM-RM Studio" in app.title[0].value
    names = {d.name for d in list_datasets(init_db())}
    assert {"demo-cartpole", "demo-mountaincar", "demo-mountaincar-textured"} <= names
    assert {p.name for p in list_prompt_sets(init_db())} >= {"paper: cartpole"}
    for view in VIEWS:
        app.switch_page(f"views/{view}/page.py").run()
        assert not app.exception, (view, [e.value for e in app.exception])
        assert app.title, view


def test_streamlit_config_hides_the_deploy_button():
    import tomllib

    config = tomllib.loads((REPO / ".streamlit" / "config.toml").read_text())
    # "minimal" shows only the app's own menu entries: no "Deploy" button for a local tool
    assert config["client"]["toolbarMode"] == "minimal"


def test_evaluate_keeps_the_chosen_prompt_sets_across_page_changes(app, cartpole_db):
    """Streamlit drops the state of widgets that a run does not draw: after a visit to another
    page, Evaluate's prompt-set choice must come back as it was, not empty."""
    from vlmrm_core.reward.spec import ModelRef, RewardSpec
    from vlmrm_core.store import PromptSet, add_label, dataset_frames, save_prompt_set

    for frame in dataset_frames(cartpole_db, "cp9"):
        add_label(cartpole_db, "cp9", frame.hash, "ann", float(abs(frame.param_value) < 0.5))
    for name in ("a", "b", "c", "d"):
        prompt = f"pole upright ({name})"
        save_prompt_set(
            cartpole_db, PromptSet(name, ModelRef("ViT-S-32-alt", None), RewardSpec((prompt,)))
        )
    app.run()
    app.switch_page("views/evaluate/page.py").run()
    assert not app.exception, [e.value for e in app.exception]
    assert app.multiselect(key="eval-prompt-sets").value == ["a", "b", "c"]  # the defaults
    app.multiselect(key="eval-prompt-sets").set_value(["d"]).run()
    assert not app.exception

    app.switch_page("views/prompt_lab/page.py").run()
    assert not app.exception
    app.switch_page("views/evaluate/page.py").run()
    assert not app.exception
    assert app.multiselect(key="eval-prompt-sets").value == ["d"]
    assert not any("Choose at least one prompt set" in i.value for i in app.info)
