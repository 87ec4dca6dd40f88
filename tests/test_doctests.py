"""The ``>>>`` examples in the reward and metrics packages run, and the math has examples.

Every module of :mod:`vlmrm_core.reward` and :mod:`vlmrm_core.metrics` is found by walking the
packages (a new module is checked without being listed here); one that fails to import fails.
Examples that need a real model are marked ``# doctest: +SKIP``.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil
from types import ModuleType

import pytest

import vlmrm_core.metrics
import vlmrm_core.reward

PACKAGES = (vlmrm_core.reward, vlmrm_core.metrics)

MUST_HAVE_EXAMPLES = ("vlmrm_core.reward.math", "vlmrm_core.metrics.")
"""Modules (a name, or a package prefix ending in a dot) whose examples are required."""


def module_names() -> list[str]:
    names = []
    for package in PACKAGES:
        names.append(package.__name__)
        for info in pkgutil.walk_packages(package.__path__, prefix=f"{package.__name__}."):
            names.append(info.name)
    return sorted(names)


def needs_examples(name: str) -> bool:
    if name.endswith(".__init__") or name in (p.__name__ for p in PACKAGES):
        return False
    return any(
        name.startswith(rule) if rule.endswith(".") else name == rule for rule in MUST_HAVE_EXAMPLES
    )


def run_examples(module: ModuleType) -> doctest.TestResults:
    return doctest.testmod(
        module,
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
        report=True,
        verbose=False,
    )


def test_the_walk_finds_the_math_and_metrics_modules() -> None:
    names = module_names()
    for expected in (
        "vlmrm_core.reward.math",
        "vlmrm_core.reward.prompts",
        "vlmrm_core.metrics.correlation",
        "vlmrm_core.metrics.epic",
    ):
        assert expected in names


@pytest.mark.parametrize("name", module_names())
def test_module_examples_pass(name: str) -> None:
    module = importlib.import_module(name)  # an import error fails the test
    results = run_examples(module)
    assert results.failed == 0, f"{results.failed} of {results.attempted} examples in {name} fail"
    if needs_examples(name):
        assert results.attempted > 0, f"{name} has no >>> examples: add some to its functions"


def test_a_failing_or_missing_example_is_caught() -> None:
    """The checks above can fail: a wrong example counts as failed, a bare module as empty."""
    broken = ModuleType("broken")
    exec(  # noqa: S102 - a throwaway module built from a constant string
        'def f():\n    """\n    >>> 1 + 1\n    3\n    """\n', broken.__dict__
    )
    assert doctest.testmod(broken, report=False).failed == 1
    bare = ModuleType("bare")
    exec('def g():\n    """No example."""\n', bare.__dict__)  # noqa: S102
    assert doctest.testmod(bare, report=False).attempted == 0
