import time
from pathlib import Path

import open_clip
import pytest
import torch
from safetensors.torch import load_file

from vlmrm_core.clip.models import (
    ModelError,
    bf16_supported,
    default_model_choice,
    discover_models,
    load_model,
)

TINY_MODEL = "ViT-S-32-alt"  # same as conftest.TINY_MODEL


def first_weight(clip):
    return next(iter(clip.model.state_dict().values())).float()


def test_random_init_is_deterministic_and_flagged(tiny_clip):
    again = load_model(TINY_MODEL, "random", device="cpu")
    assert tiny_clip.identity == again.identity == f"{TINY_MODEL}/random-init"
    assert tiny_clip.untrained and again.untrained
    for a, b in zip(
        tiny_clip.model.state_dict().values(), again.model.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b)
    assert tiny_clip.image_size == (224, 224) and tiny_clip.context_length == 77
    assert tiny_clip.logit_scale == pytest.approx(1 / 0.07, rel=1e-4)


def test_safetensors_checkpoint_loads_with_content_identity(tiny_checkpoint, tiny_clip):
    clip = load_model(TINY_MODEL, str(tiny_checkpoint), device="cpu")
    assert not clip.untrained
    assert (
        clip.identity.startswith(f"{TINY_MODEL}/sha256:") and len(clip.identity.split(":")[1]) == 16
    )
    saved = load_file(str(tiny_checkpoint))
    for key, value in clip.model.state_dict().items():
        assert torch.equal(value, saved[key]), key
    assert not torch.equal(first_weight(clip), first_weight(tiny_clip))


def test_prefixed_and_wrapped_pt_checkpoints(tiny_checkpoint, tmp_path):
    state = load_file(str(tiny_checkpoint))
    prefixed = tmp_path / "ddp.pt"
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}, "epoch": 3}, prefixed)
    plain = tmp_path / "plain.bin"
    torch.save(state, plain)
    a = load_model(TINY_MODEL, str(prefixed), device="cpu")
    b = load_model(TINY_MODEL, str(plain), device="cpu")
    assert torch.equal(first_weight(a), first_weight(b))
    # identity follows the file content, not the weights: different bytes, different key
    assert a.identity != b.identity


def test_checkpoint_errors_are_clear(tiny_checkpoint, tmp_path):
    # One message for missing, unreadable and malformed files: no existence oracle.
    with pytest.raises(ModelError, match="cannot read the checkpoint 'nothere.pt'"):
        load_model(TINY_MODEL, str(tmp_path / "nothere.pt"))
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"definitely not a checkpoint")
    with pytest.raises(ModelError, match="cannot read the checkpoint 'junk.pt'"):
        load_model(TINY_MODEL, str(junk))
    with pytest.raises(ModelError, match="does not fit architecture ViT-S-16"):
        load_model("ViT-S-16", str(tiny_checkpoint))


def test_unknown_architecture_and_tag():
    with pytest.raises(ModelError, match="unknown model architecture 'ViT-B-33'.*ViT-B-32"):
        load_model("ViT-B-33")
    with pytest.raises(
        ModelError, match="'laion9b' is neither a pretrained tag of ViT-B-32.*laion2b_s34b_b79k"
    ):
        load_model("ViT-B-32", "laion9b")
    with pytest.raises(ModelError, match="precision"):
        load_model(TINY_MODEL, None, precision="fp8")


@pytest.mark.serial
def test_offline_hub_tag_fails_fast_with_the_fix(monkeypatch, tmp_path):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    # this machine has no route to the hub: the real probe must notice within seconds
    start = time.perf_counter()
    with pytest.raises(ModelError) as info:
        load_model("ViT-B-32", "laion2b_s34b_b79k")
    elapsed = time.perf_counter() - start
    assert elapsed < 5.0
    message = str(info.value)
    assert "laion2b_s34b_b79k" in message and "can't be reached" in message
    assert "--pretrained path/to/" in message


def fake_hub_cache(root: Path, repo: str, filename: str, payload_path: Path | None = None) -> Path:
    folder = root / f"models--{repo.replace('/', '--')}"
    snapshot = folder / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (folder / "refs").mkdir()
    (folder / "refs" / "main").write_text("abc123")
    target = snapshot / filename
    target.write_bytes(payload_path.read_bytes() if payload_path else b"x")
    return target


def test_discovery_lists_hub_cache_and_checkpoints(monkeypatch, tmp_path, tiny_checkpoint):
    import huggingface_hub.constants

    cache = tmp_path / "hub"
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    models_dir = tmp_path / "models"
    models_dir.mkdir()
    assert discover_models(models_dir) == [] and default_model_choice(models_dir) is None

    (models_dir / tiny_checkpoint.name).write_bytes(tiny_checkpoint.read_bytes())
    (models_dir / "notes.txt").write_text("ignored")
    (models_dir / "mystery-weights.pt").write_bytes(b"no architecture in the name")
    hub = open_clip.get_pretrained_cfg("ViT-B-32", "laion2b_s34b_b79k")["hf_hub"].strip("/")
    fake_hub_cache(cache, hub, "open_clip_model.safetensors")

    choices = discover_models(models_dir)
    assert [(c.name, c.kind) for c in choices] == [
        ("ViT-B-32", "hub-cache"),
        (TINY_MODEL, "checkpoint"),
    ]
    assert choices[0].pretrained == "laion2b_s34b_b79k"
    assert default_model_choice(models_dir) == choices[0]
    assert Path(choices[1].pretrained).name == tiny_checkpoint.name


@pytest.mark.slow
def test_cached_hub_weights_load_offline(monkeypatch, tmp_path):
    """The whole tag path: weights found in the HF cache are loaded without any network."""
    import huggingface_hub.constants
    from safetensors.torch import save_file

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(7)
        donor = open_clip.create_model("ViT-B-32", pretrained=None, pretrained_text=False)
    weights = tmp_path / "donor.safetensors"
    save_file({k: v.contiguous() for k, v in donor.state_dict().items()}, str(weights))
    cache = tmp_path / "hub"
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    hub = open_clip.get_pretrained_cfg("ViT-B-32", "laion2b_s34b_b79k")["hf_hub"].strip("/")
    fake_hub_cache(cache, hub, "open_clip_model.safetensors", weights)
    clip = load_model("ViT-B-32", "laion2b_s34b_b79k", device="cpu")
    assert clip.identity == "ViT-B-32/laion2b_s34b_b79k" and not clip.untrained
    assert torch.equal(clip.model.visual.conv1.weight, donor.visual.conv1.weight)


def test_bf16_precision_converts_weights():
    clip = load_model(TINY_MODEL, None, device="cpu", precision="bf16")
    assert first_weight(clip).dtype == torch.float32  # first_weight casts
    assert next(clip.model.parameters()).dtype == torch.bfloat16
    assert isinstance(bf16_supported("cpu"), bool)
