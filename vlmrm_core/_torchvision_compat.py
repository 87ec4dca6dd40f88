"""Make ``import torchvision`` (and so ``import open_clip``) work on a CPU-only torch.

Why this exists: the only torchvision pinned to ``torch==2.13.0`` on PyPI is a CUDA build. Its
compiled extension ``torchvision/_C.so`` cannot be loaded next to the CPU build of torch, and
torchvision's import then fails while registering fake kernels for ``torchvision::nms`` and
``torchvision::qnms``, because those operator schemas were never defined (they normally come
from ``_C.so``). We never call those operators; defining the two schemas is enough for the
import to succeed.

The workaround runs only when ``_C.so`` fails to load; with a working torchvision it does
nothing. It must run before torchvision is first imported, which ``vlmrm_core/__init__.py``
guarantees.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import sys

import torch

#: The ``torch.library.Library`` holding the stand-in schemas, or None when not needed.
_library: torch.library.Library | None = None

_SCHEMAS = (
    "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms(Tensor qdets, Tensor scores, float iou_threshold) -> Tensor",
)


def _extension_loads() -> bool:
    spec = importlib.util.find_spec("torchvision")
    if spec is None or spec.origin is None:
        return True  # torchvision absent: nothing to patch
    candidates = glob.glob(os.path.join(os.path.dirname(spec.origin), "_C*.so"))
    if not candidates:
        return True
    try:
        torch.ops.load_library(candidates[0])
    except OSError:
        return False
    return True


def install() -> bool:
    """Define the stand-in schemas if torchvision's extension can't load.

    Returns:
        True if the workaround is (now) active, False if it was not needed.
    """
    global _library
    if _library is not None:
        return True
    if "torchvision" in sys.modules or _extension_loads():
        return False
    _library = torch.library.Library("torchvision", "DEF")
    for schema in _SCHEMAS:
        _library.define(schema)
    return True
