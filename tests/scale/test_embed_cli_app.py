"""``vlmrm embed`` with the local engine, its errors, and the Frames page's "Embed with Ray"."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.scale.conftest import make_dataset
from tests.studio._pages import page_path
from vlmrm_core.cli.main import main

PAGE = page_path("frames")


def test_embed_files_locally_then_again_from_the_cache(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "shots"
    folder.mkdir()
    rng = np.random.default_rng(5)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    args = ["embed", str(folder), "--model", "ViT-S-32-alt", "--pretrained", "random"]
    assert main(args) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == "embedded 3 new, 0 already cached"
    assert main(args) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == "embedded 0 new, 3 already cached"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([], "give either INPUT files/folders or --dataset NAME"),
        (["--dataset", "nope"], "no dataset named 'nope'"),
        (["--dataset", "nope", "--address", "auto"], "--address needs --engine ray"),
    ],
)
def test_embed_user_errors(
    data_dir: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    assert main(["embed", "--model", "ViT-S-32-alt", "--pretrained", "random", *extra]) == 1
    assert message in capsys.readouterr().err


@pytest.mark.slow
def test_frames_page_embeds_a_dataset_on_the_configured_cluster(
    data_dir: Path,
    ray_address: str,
    tiny_checkpoint: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from streamlit.testing.v1 import AppTest

    from vlmrm_core.scale.embed import model_identity
    from vlmrm_core.store import get_embeddings, init_db

    engine = init_db()
    hashes = make_dataset(engine, "shots", 12, seed=11)
    models = data_dir / "models"
    models.mkdir()
    shutil.copy(tiny_checkpoint, models / tiny_checkpoint.name)

    app = AppTest.from_file(str(PAGE), default_timeout=180)
    app.run()
    assert "Embed with Ray" not in [e.label for e in app.expander]  # no cluster configured

    monkeypatch.setenv("VLMRM_RAY_ADDRESS", ray_address)
    app.run()
    assert "Embed with Ray" in [e.label for e in app.expander]
    app.button(key="frames-ray-embed-shots").click().run()
    assert not app.exception
    assert [s.value for s in app.success] == ["embedded 12 new, 0 already cached"]
    key = model_identity("ViT-S-32-alt", str(models / tiny_checkpoint.name)) + "|squash"
    assert len(get_embeddings(engine, key, hashes)) == 12
