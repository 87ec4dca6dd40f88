"""The core library stays free of presentation: Plotly and Streamlit belong to ``vlmrm_studio/``."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import vlmrm_core

CORE = Path(vlmrm_core.__file__).parent
PRESENTATION = ("plotly", "streamlit")


def presentation_imports(source: str) -> list[str]:
    """``module`` for every import of a presentation package in Python source."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found += [n for n in names if n.split(".")[0] in PRESENTATION]
    return found


def test_the_check_finds_presentation_imports() -> None:
    source = "import os\nimport plotly.graph_objects as go\ndef f():\n    from streamlit import x\n"
    assert presentation_imports(source) == ["plotly.graph_objects", "streamlit"]
    assert presentation_imports("from plotlyish import y\nimport numpy") == []


@pytest.mark.parametrize("path", sorted(CORE.rglob("*.py")), ids=lambda p: str(p.relative_to(CORE)))
def test_core_module_imports_no_plotly_or_streamlit(path: Path) -> None:
    assert presentation_imports(path.read_text(encoding="utf-8")) == [], (
        f"{path.relative_to(CORE.parent)} imports a presentation package: move that code to vlmrm_studio/"
    )
