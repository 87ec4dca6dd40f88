import subprocess
import sys

import torch

from vlmrm_core import _torchvision_compat as compat


def test_open_clip_imports_in_a_fresh_interpreter():
    # Importing vlmrm_core does nothing; its first use of open_clip installs the workaround.
    code = (
        "import vlmrm_core; vlmrm_core.load_model\n"
        "import open_clip, torchvision; print(torchvision.__version__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.startswith("0.28.0")


def test_active_only_when_the_extension_fails_to_load():
    loads = compat._extension_loads()
    # With PyPI's CUDA torchvision on CPU torch the extension can't load and the schemas stand in;
    # with a working torchvision the workaround must have done nothing.
    assert (compat._library is not None) == (not loads)
    if not loads:
        assert torch.ops.torchvision.nms.default._schema.name == "torchvision::nms"


def test_noop_when_extension_loads(monkeypatch):
    monkeypatch.setattr(compat, "_library", None)
    monkeypatch.setattr(compat, "_extension_loads", lambda: True)
    monkeypatch.delitem(sys.modules, "torchvision", raising=False)
    assert compat.install() is False
    assert compat._library is None
