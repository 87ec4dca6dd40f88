"""RewardSpec and ModelRef: the one definition of a reward, validated and serialised."""

from __future__ import annotations

import json

import pytest

from vlmrm_core.enums import Aspect, RewardKind
from vlmrm_core.errors import VlmrmError
from vlmrm_core.reward.spec import ModelRef, PromptError, RewardSpec, SpecError


def test_specs_round_trip_through_json():
    specs = [
        RewardSpec(("goal a", "goal b"), ("baseline",), alpha=0.5),
        RewardSpec(("open",), kind="contrastive", negatives=("closed",), tau=0.02, beta=0.7),
        RewardSpec(("start",), kind="adapted", weights=(0.5, -1.0, 2.0), bias=0.1),
    ]
    for spec in specs:
        again = RewardSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
        assert again == spec
    ref = ModelRef("ViT-B-32", "ckpt/ViT-B-32-x.safetensors", aspect="center-crop", sha256="A" * 64)
    assert ModelRef.from_dict(json.loads(json.dumps(ref.to_dict()))) == ref
    assert ref.sha256 == "a" * 64 and ref.aspect is Aspect.CENTER_CROP


def test_kind_is_an_enum_and_compares_as_its_string():
    spec = RewardSpec(("goal",), kind="contrastive", negatives=("other",))
    assert spec.kind is RewardKind.CONTRASTIVE and spec.kind == "contrastive"
    assert spec.to_dict()["kind"] == "contrastive"
    assert "weights" not in spec.to_dict()  # only adapted rewards carry weights


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"goal_prompts": ()}, "no goal prompt"),
        ({"goal_prompts": ("ok", " ")}, "goal prompt 2 is empty"),
        ({"goal_prompts": ("a",), "alpha": 0.5}, "baseline"),
        ({"goal_prompts": ("a",), "alpha": 1.5, "baseline_prompts": ("b",)}, r"\[0, 1\]"),
        ({"goal_prompts": ("a",), "kind": "contrastive"}, "negative"),
        ({"goal_prompts": ("a",), "kind": "magic"}, "unknown reward kind 'magic'"),
        ({"goal_prompts": ("a",), "tau": 0}, "τ must be positive"),
        ({"goal_prompts": ("a",), "beta": float("nan")}, "finite"),
        ({"kind": "adapted"}, "vlmrm adapt"),
        ({"goal_prompts": ("a",), "weights": (1.0,)}, "adapted kind"),
    ],
)
def test_bad_specs_name_the_problem(kwargs, message):
    with pytest.raises(SpecError, match=message) as info:
        RewardSpec(**kwargs)
    assert isinstance(info.value, VlmrmError) and isinstance(info.value, ValueError)


def test_prompt_errors_are_spec_errors():
    with pytest.raises(PromptError):
        RewardSpec(goal_prompts=(" ",))


def test_random_weights_have_one_spelling():
    for spelling in (None, "", "none", "Random", "random-init", "  "):
        assert ModelRef("ViT-S-32-alt", spelling).pretrained is None
    assert ModelRef("ViT-S-32-alt", None).is_random_init


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"goal_prompts": ["a"], "colour": "red"}, "unknown reward field"),
        ({"goal_prompts": "just one string"}, "must be a list"),
        (["not", "an", "object"], "JSON object"),
    ],
)
def test_from_dict_rejects_what_it_does_not_know(data, message):
    with pytest.raises(SpecError, match=message):
        RewardSpec.from_dict(data)


def test_model_ref_validation():
    with pytest.raises(SpecError, match="architecture is empty"):
        ModelRef(" ")
    with pytest.raises(SpecError, match="unknown aspect 'wide'"):
        ModelRef("ViT-B-32", aspect="wide")
    with pytest.raises(SpecError, match="64 hex"):
        ModelRef("ViT-B-32", "x.pt", sha256="abc")
