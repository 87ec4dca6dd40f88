"""Python values as plain JSON data: the one conversion behind specs, configs, stored JSON columns
and recorded rollout states.

This module is a leaf: it imports nothing from ``vlmrm_core``, so every module can use it.

Example::

    >>> import numpy as np
    >>> from enum import Enum
    >>> class Kind(Enum):
    ...     CONTRASTIVE = "contrastive"
    >>> to_plain_json({"kind": Kind.CONTRASTIVE, "prompts": ("a", "b"), 3: np.float32(0.5)})
    {'kind': 'contrastive', 'prompts': ['a', 'b'], '3': 0.5}
    >>> to_plain_json([float("nan"), np.arange(2)], non_finite="null")
    [None, [0, 1]]
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from enum import Enum
from typing import Any, Literal

import numpy as np

__all__ = ["to_plain_json"]


def to_plain_json(
    value: Any,
    *,
    non_finite: Literal["keep", "null"] = "keep",
    other: Callable[[Any], Any] | None = None,
) -> Any:
    """``value`` built only from dicts with string keys, lists, str, int, float, bool and None.

    Enums become their values, tuples (and lists) lists, mappings dicts with ``str`` keys,
    NumPy arrays nested lists and NumPy scalars Python numbers, all recursively.

    Args:
        value: the data to convert.
        non_finite: ``keep`` leaves NaN and ±inf as floats (Python's ``json`` writes them as
            ``NaN``/``Infinity``); ``null`` turns them into None (strict JSON, e.g. for
            PostgreSQL's ``json`` type).
        other: what to do with a value of any other type (e.g. ``repr``); None leaves it as it
            is, for ``json.dumps`` to reject or a ``default=`` hook to handle.

    Returns:
        New containers; strings and numbers are shared.
    """

    def convert(item: Any) -> Any:
        if isinstance(item, Enum):
            return convert(item.value)
        if isinstance(item, np.ndarray):
            return convert(item.tolist())
        if isinstance(item, np.generic):
            return convert(item.item())
        if isinstance(item, Mapping):
            return {str(k.value if isinstance(k, Enum) else k): convert(v) for k, v in item.items()}
        if isinstance(item, list | tuple):
            return [convert(v) for v in item]
        if isinstance(item, float):
            if non_finite == "null" and not math.isfinite(item):
                return None
            return item
        if item is None or isinstance(item, str | int | bool):
            return item
        return item if other is None else other(item)

    return convert(value)
