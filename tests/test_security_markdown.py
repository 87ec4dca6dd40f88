"""Markdown injection: user-chosen names show literally on every page (Streamlit AppTest).

A dataset, frame, labeller or environment name such as ``**bold** [x](http://e.org)
![t](http://e.org/a.png)`` must not turn bold, become a link or load a remote image: every
Markdown-rendering element gets it through ``vlmrm_studio.widgets.text.md_escape``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from tests.studio._pages import page_path
from vlmrm_core.frames import FrameRecord, pixel_hash
from vlmrm_core.store import add_label, ingest_frames, init_db
from vlmrm_studio.widgets.common import RANDOM_LABEL
from vlmrm_studio.widgets.text import md_escape

EVIL = "**bold** [x](http://e.org) ![t](http://e.org/a.png)"
RAW_MARKUP = ("**bold**", "[x](http", "![t](http")
MARKDOWN_ELEMENTS = ("markdown", "caption", "error", "success", "info", "warning", "toast")


def _rendered(at: AppTest) -> list[str]:
    """The Markdown source of every element that renders Markdown, plus image captions."""
    texts = [str(e.value) for kind in MARKDOWN_ELEMENTS for e in getattr(at, kind)]
    texts += [str(c) for img in at.image for c in img.captions]
    texts += [
        w.label
        for kind in ("button", "text_input", "selectbox", "checkbox")
        for w in getattr(at, kind)
    ]
    return texts


def _assert_literal(at: AppTest, expected: str) -> None:
    assert not at.exception, [e.value for e in at.exception]
    texts = _rendered(at)
    leaked = [t for t in texts if any(m in t for m in RAW_MARKUP)]
    assert not leaked, leaked
    assert any(expected in t for t in texts), texts


def _evil_dataset(n: int = 3) -> list[str]:
    records = [
        FrameRecord(
            pixels=np.full((10, 14, 3), 40 * i, np.uint8), source="upload", name=f"{EVIL} {i}"
        )
        for i in range(n)
    ]
    ingest_frames(init_db(), EVIL, records)
    return [pixel_hash(r.pixels) for r in records]


def _page(view: str) -> AppTest:
    at = AppTest.from_file(str(page_path(view)), default_timeout=120)
    at.session_state["current-dataset"] = EVIL
    return at


def test_frames_page(data_dir: Path) -> None:
    _evil_dataset()
    at = _page("frames")
    at.run()
    _assert_literal(at, md_escape(f"{EVIL} 0"))  # thumbnail captions
    at.button(key="frames-save-settings").click().run()
    _assert_literal(at, md_escape(EVIL))  # "Saved: <name> needs ..." notice


def test_label_page(data_dir: Path) -> None:
    _evil_dataset()
    at = _page("label")
    at.run()
    at.text_input(key="label-name").input(EVIL).run()
    _assert_literal(at, md_escape(f"{EVIL} "))  # the frame's caption
    at.button(key="label-success").click().run()
    _assert_literal(at, md_escape(EVIL))


def test_evaluate_page(data_dir: Path) -> None:
    hashes = _evil_dataset()
    for h in hashes:  # constant labels: the page explains it cannot evaluate, naming the dataset
        add_label(init_db(), EVIL, h, "sam", 1.0)
    at = _page("evaluate")
    at.run()
    _assert_literal(at, md_escape(EVIL))


@pytest.mark.slow
def test_prompt_lab_page(data_dir: Path) -> None:
    _evil_dataset()
    at = _page("prompt_lab")
    at.session_state["lab-arch"] = "ViT-S-32-alt"  # the smallest open_clip ViT, random init
    at.session_state["lab-goal"] = "a pole standing upright"
    at.session_state["lab-alpha"] = 0.0
    at.run()
    _assert_literal(at, md_escape(f"{EVIL} "))  # frame captions in the landscape's grids


@pytest.mark.slow
def test_prompt_lab_compare_caption(data_dir: Path) -> None:
    """The Compare section's caption names the open dataset: a link-shaped name stays text."""
    from vlmrm_core.reward.spec import ModelRef, RewardSpec
    from vlmrm_core.store import PromptSet, save_prompt_set

    link = "[x](http://evil.invalid)"
    records = [
        FrameRecord(pixels=np.full((10, 14, 3), 40 * i, np.uint8), source="upload", name=f"f{i}")
        for i in range(3)
    ]
    ingest_frames(init_db(), link, records)
    for name in ("one", "two"):  # Compare needs two saved prompt sets
        spec = RewardSpec((f"a pole standing upright ({name})",))
        save_prompt_set(init_db(), PromptSet(name, ModelRef("ViT-S-32-alt", None), spec))
    at = AppTest.from_file(str(page_path("prompt_lab")), default_timeout=120)
    at.session_state["lab-model"] = RANDOM_LABEL
    at.session_state["lab-arch"] = "ViT-S-32-alt"
    at.session_state["lab-goal"] = "a pole standing upright"
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    compare = [c.value for c in at.caption if "Both are scored on" in c.value]
    assert compare, [c.value for c in at.caption]
    assert all("[x](http" not in c for c in compare), compare
    assert md_escape(link) in compare[0]


def test_train_page(data_dir: Path) -> None:
    at = _page("train")
    at.run()
    at.selectbox(key="train-env").select("other…").run()
    at.text_input(key="train-env-other").input(EVIL).run()
    at.button(key="train-start").click().run()
    _assert_literal(at, md_escape(EVIL))  # the "unknown environment" error quotes it


@pytest.mark.parametrize("name", [EVIL])
def test_md_escape_neutralises_markup(name: str) -> None:
    escaped = md_escape(name)
    assert not any(m in escaped for m in RAW_MARKUP)
    assert escaped.replace("\\", "") == name
