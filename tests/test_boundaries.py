"""Module boundaries that keep concepts in one place, checked on the source with ``ast``.

- SQL only in ``vlmrm_core/store/``: no other module (core or app) imports SQLAlchemy or the
  store's internals (``schema``, ``_sql``, ``db``). Alembic revisions are SQL by nature and
  live in ``vlmrm_core/migrations/``.
- ``vlmrm_core/errors.py`` is a leaf: it imports nothing from ``vlmrm_core``, so any module can
  import it without a cycle.
- Every public ``…Error`` class of the package derives from ``VlmrmError``, the one type the app
  and the CLI show to the user instead of a traceback.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import vlmrm_core

CORE = Path(vlmrm_core.__file__).parent
ROOT = CORE.parent
STORE = CORE / "store"
MIGRATIONS = CORE / "migrations"
STORE_INTERNALS = ("vlmrm_core.store.schema", "vlmrm_core.store._sql", "vlmrm_core.store.db")


def imported_modules(source: str, package: str = "") -> list[str]:
    """Every module a Python source imports (``from a import b`` gives ``a`` and ``a.b``).

    Relative imports are resolved against ``package`` (the importing module's package).
    """
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*parent, base] if base else parent)
            found.append(base)
            found += [f"{base}.{alias.name}" for alias in node.names]
    return found


def sql_imports(source: str, package: str = "") -> list[str]:
    """The imports of SQLAlchemy or of the store's internals in a Python source."""
    return [
        name
        for name in imported_modules(source, package)
        if name.split(".")[0] == "sqlalchemy" or name.startswith(STORE_INTERNALS)
    ]


def _package_of(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts if path.name == "__init__.py" else parts[:-1])


def _outside_store() -> list[Path]:
    paths = [*CORE.rglob("*.py"), *(ROOT / "vlmrm_studio").rglob("*.py")]
    return sorted(p for p in paths if STORE not in p.parents and MIGRATIONS not in p.parents)


def test_the_check_finds_sql_imports() -> None:
    source = (
        "import os\nfrom sqlalchemy import Engine\nimport sqlalchemy.orm as orm\n"
        "def f():\n    from vlmrm_core.store.schema import Frame\n"
        "from vlmrm_core.store import _sql\nfrom vlmrm_core.store import init_db\n"
    )
    assert sorted(sql_imports(source)) == [
        "sqlalchemy",
        "sqlalchemy.Engine",
        "sqlalchemy.orm",
        "vlmrm_core.store._sql",
        "vlmrm_core.store.schema",
        "vlmrm_core.store.schema.Frame",
    ]
    assert sql_imports("from .schema import Frame", package="vlmrm_core.store") == [
        "vlmrm_core.store.schema",
        "vlmrm_core.store.schema.Frame",
    ]
    assert sql_imports("import sqlalchemyish\nfrom vlmrm_core.store import Engine") == []


@pytest.mark.parametrize("path", _outside_store(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_sql_outside_the_store(path: Path) -> None:
    found = sql_imports(path.read_text(encoding="utf-8"), _package_of(path))
    assert found == [], (
        f"{path.relative_to(ROOT)} imports {found}: move the query into a typed function of "
        "vlmrm_core/store/ (type hints: `from vlmrm_core.store import Engine`)"
    )


def test_errors_module_is_a_leaf() -> None:
    path = CORE / "errors.py"
    imports = imported_modules(path.read_text(encoding="utf-8"), "vlmrm_core")
    assert [m for m in imports if m.split(".")[0] == "vlmrm_core"] == []


def _error_classes() -> dict[str, tuple[Path, list[str]]]:
    """Name → (file, base names) of every class named ``…Error`` in the package."""
    classes: dict[str, tuple[Path, list[str]]] = {}
    for path in sorted(CORE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef) and node.name.endswith("Error"):
                bases = [ast.unparse(b).rsplit(".", 1)[-1] for b in node.bases]
                classes[node.name] = (path, bases)
    return classes


def test_every_public_error_class_is_a_vlmrm_error() -> None:
    classes = _error_classes()
    assert "VlmrmError" in classes and {"ModelError", "NotFoundError", "CliError"} <= set(classes)

    def is_user_error(name: str, seen: frozenset[str] = frozenset()) -> bool:
        if name == "VlmrmError":
            return True
        if name not in classes or name in seen:
            return False
        return any(is_user_error(base, seen | {name}) for base in classes[name][1])

    strays = [
        f"{path.relative_to(ROOT)}: {name}({', '.join(bases)})"
        for name, (path, bases) in classes.items()
        if not name.startswith("_") and not is_user_error(name)
    ]
    assert strays == [], "derive these from vlmrm_core.errors.VlmrmError: " + "; ".join(strays)
